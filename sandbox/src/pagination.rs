//! Cursor pagination: newest first, cursors built on the monotonic sequence
//! number every stored object gets, so that a walk yields every object
//! exactly once even while new ones are being created (they land above the
//! first page and never shift the pages below it, unlike offsets).

use super::error::{ApiError, ApiResult};
use std::collections::BTreeMap;

pub const DEFAULT_LIMIT: usize = 25;
pub const MAX_LIMIT: usize = 100;

// XOR-ing with a constant keeps cursors opaque to callers (they must not
// build or do arithmetic on them) without costing anything to decode.
const CURSOR_MASK: u64 = 0x5bd1_e995_7f4a_7c15;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// `next`: objects older than (sequence below) this one.
    Before(u64),
    /// `prev`: objects newer than (sequence above) this one.
    After(u64),
}

pub fn encode(seq: u64) -> String {
    format!("c{:016x}", seq ^ CURSOR_MASK)
}

fn decode(field: &str, raw: &str) -> ApiResult<u64> {
    raw.strip_prefix('c')
        .filter(|hex| hex.len() == 16)
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .map(|v| v ^ CURSOR_MASK)
        .ok_or_else(|| {
            ApiError::invalid(
                field,
                "not a cursor this API issued; pass the value from the Link header unchanged",
            )
        })
}

/// `limit`, `next` and `prev` from a list request.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub limit: usize,
    pub cursor: Option<Cursor>,
    /// Whether the caller gave `limit` (then it is repeated in Link URLs).
    pub explicit_limit: bool,
}

impl PageRequest {
    pub fn from_query(
        limit: Option<&str>,
        next: Option<&str>,
        prev: Option<&str>,
    ) -> ApiResult<Self> {
        let (limit, explicit_limit) = match limit {
            None => (DEFAULT_LIMIT, false),
            Some(raw) => match raw.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => (n, true),
                _ => {
                    return Err(ApiError::invalid(
                        "limit",
                        format!("must be an integer from 1 to {MAX_LIMIT}, got {raw:?}"),
                    ));
                }
            },
        };
        let cursor = match (next, prev) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    "next",
                    "give either next or prev, not both",
                ));
            }
            (Some(n), None) => Some(Cursor::Before(decode("next", n)?)),
            (None, Some(p)) => Some(Cursor::After(decode("prev", p)?)),
            (None, None) => None,
        };
        Ok(Self {
            limit,
            cursor,
            explicit_limit,
        })
    }
}

/// One page, newest first, with the cursors of its neighbours.
pub struct Page<'a, V> {
    pub items: Vec<&'a V>,
    pub next: Option<u64>,
    pub prev: Option<u64>,
}

pub fn page<'a, V>(
    rows: &'a BTreeMap<u64, V>,
    req: &PageRequest,
    keep: impl Fn(&V) -> bool,
) -> Page<'a, V> {
    let keep = |(_, v): &(&u64, &V)| keep(v);
    let take = req.limit + 1;
    match req.cursor {
        None | Some(Cursor::Before(_)) => {
            let upper = match req.cursor {
                Some(Cursor::Before(n)) => n,
                _ => u64::MAX,
            };
            let mut got: Vec<(&u64, &V)> =
                rows.range(..upper).rev().filter(keep).take(take).collect();
            let more_older = got.len() > req.limit;
            got.truncate(req.limit);
            let next = if more_older {
                got.last().map(|(s, _)| **s)
            } else {
                None
            };
            // A page reached by a cursor, or one with newer rows above it,
            // links back; an empty page links back to where it started.
            let top = got.first().map(|(s, _)| **s + 1).unwrap_or(upper);
            let newer = top < u64::MAX && rows.range(top..).any(|kv| keep(&kv));
            let prev = newer.then(|| top - 1);
            Page {
                items: got.into_iter().map(|(_, v)| v).collect(),
                next,
                prev,
            }
        }
        Some(Cursor::After(n)) => {
            let lower = n.saturating_add(1);
            let mut got: Vec<(&u64, &V)> = rows.range(lower..).filter(keep).take(take).collect();
            let more_newer = got.len() > req.limit;
            got.truncate(req.limit);
            got.reverse();
            let prev = if more_newer {
                got.first().map(|(s, _)| **s)
            } else {
                None
            };
            let bottom = got.last().map(|(s, _)| **s).unwrap_or(lower);
            let older = rows.range(..bottom).any(|kv| keep(&kv));
            let next = older.then_some(bottom);
            Page {
                items: got.into_iter().map(|(_, v)| v).collect(),
                next,
                prev,
            }
        }
    }
}

/// The `Link` header value for a page: absolute URLs carrying the caller's
/// filters and limit plus the opaque cursor.
pub fn link_header(
    base: &str,
    extra: &[(&str, &str)],
    req: &PageRequest,
    next: Option<u64>,
    prev: Option<u64>,
) -> Option<String> {
    let url = |param: &str, seq: u64| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in extra {
            q.append_pair(k, v);
        }
        if req.explicit_limit {
            q.append_pair("limit", &req.limit.to_string());
        }
        q.append_pair(param, &encode(seq));
        format!("<{base}?{}>", q.finish())
    };
    let mut parts = Vec::with_capacity(2);
    if let Some(n) = next {
        parts.push(format!("{}; rel=\"next\"", url("next", n)));
    }
    if let Some(p) = prev {
        parts.push(format!("{}; rel=\"prev\"", url("prev", p)));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: u64) -> BTreeMap<u64, u64> {
        (1..=n).map(|i| (i, i)).collect()
    }

    fn req(limit: usize, cursor: Option<Cursor>) -> PageRequest {
        PageRequest {
            limit,
            cursor,
            explicit_limit: true,
        }
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        assert_eq!(decode("next", &encode(42)).ok(), Some(42));
        assert!(decode("next", "42").is_err());
        assert!(decode("next", "czzzzzzzzzzzzzzzz").is_err());
    }

    #[test]
    fn walking_next_then_prev_covers_every_row_once() {
        let r = rows(7);
        let p1 = page(&r, &req(3, None), |_| true);
        assert_eq!(p1.items, vec![&7, &6, &5]);
        assert_eq!(p1.prev, None);
        let p2 = page(&r, &req(3, p1.next.map(Cursor::Before)), |_| true);
        assert_eq!(p2.items, vec![&4, &3, &2]);
        let p3 = page(&r, &req(3, p2.next.map(Cursor::Before)), |_| true);
        assert_eq!(p3.items, vec![&1]);
        assert_eq!(p3.next, None);
        let back = page(&r, &req(3, p3.prev.map(Cursor::After)), |_| true);
        assert_eq!(back.items, vec![&4, &3, &2]);
        let back2 = page(&r, &req(3, back.prev.map(Cursor::After)), |_| true);
        assert_eq!(back2.items, vec![&7, &6, &5]);
        assert_eq!(back2.prev, None);
    }

    #[test]
    fn limit_out_of_range_names_limit() {
        for bad in ["0", "101", "x", "-1"] {
            let err = PageRequest::from_query(Some(bad), None, None)
                .err()
                .map(|e| e.message);
            assert!(err.is_some_and(|m| m.starts_with("limit")));
        }
    }
}
