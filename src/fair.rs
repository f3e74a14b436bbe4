//! Per-server fairness: one provisioned server's traffic cannot take the
//! CPU the others need.
//!
//! The caps of [`crate::limits`] bound what a server *holds* (sessions,
//! streams, connections), not how much work it asks for: a flood of
//! `initialize` requests from one URL kept both cores busy and made every
//! other server wait (BENCHMARKS.md, "Fairness"). So each provisioned server
//! also gets
//! - a token bucket of requests: `requests_per_second_per_server` sustained,
//!   `request_burst_per_server` at once, and
//! - a cap on its requests being handled at once (`in_flight_per_server`),
//!   which also bounds the upstream answers it can have in memory together.
//!
//! Both are checked right after the capability is resolved, before the
//! request body is read or parsed, so a refused request costs little. The
//! refusal is HTTP 429 with `Retry-After` and a JSON-RPC error, like the
//! session caps'. It is sent after [`REFUSAL_DELAY`]: a client that ignores
//! `Retry-After` and asks again at once gets at most a few refusals per
//! second per connection, instead of as many as it can send, which would
//! cost CPU that other servers need even when every request is refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::limits::{CapCounter, CapPermit, Limits};

/// How long a refused request waits for its answer.
pub const REFUSAL_DELAY: Duration = Duration::from_millis(250);

/// Entries of servers whose bucket has refilled are dropped this often, so
/// that a flood of servers leaves nothing behind.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// The per-server request rate and in-flight limits.
#[derive(Debug)]
pub struct Fairness {
    in_flight: Arc<CapCounter>,
    in_flight_limit: usize,
    /// Tokens added per second.
    rate: f64,
    /// The bucket's size.
    burst: f64,
    buckets: Mutex<Buckets>,
}

#[derive(Debug)]
struct Buckets {
    by_server: HashMap<Arc<str>, Bucket>,
    swept: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// The bucket as it is `now`, refilled since it was last looked at.
    fn refilled(self, now: Instant, rate: f64, burst: f64) -> Bucket {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        Bucket {
            tokens: (self.tokens + elapsed * rate).min(burst),
            at: now,
        }
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Refusal {
    /// The server's bucket is empty: one token comes back in `retry_after`
    /// seconds.
    Rate {
        per_second: u32,
        burst: u32,
        retry_after: u64,
    },
    /// The server already has `limit` requests in progress.
    InFlight { limit: usize },
}

/// A request's place among its server's requests in flight, given back
/// when it drops.
#[derive(Debug)]
pub struct Turn {
    _in_flight: CapPermit,
}

impl Fairness {
    pub fn new(limits: &Limits) -> Self {
        Self {
            in_flight: CapCounter::new(limits.in_flight_per_server, usize::MAX),
            in_flight_limit: limits.in_flight_per_server,
            rate: f64::from(limits.requests_per_second_per_server.max(1)),
            burst: f64::from(limits.request_burst_per_server.max(1)),
            buckets: Mutex::new(Buckets {
                by_server: HashMap::new(),
                swept: Instant::now(),
            }),
        }
    }

    /// Lets one request of `server` in, or says why not. A request refused
    /// for being over the in-flight cap takes no token.
    pub fn admit(&self, server: &str) -> Result<Turn, Refusal> {
        let permit = self
            .in_flight
            .try_acquire(server)
            .map_err(|_| Refusal::InFlight {
                limit: self.in_flight_limit,
            })?;
        self.take_token(server, Instant::now())?;
        Ok(Turn { _in_flight: permit })
    }

    fn take_token(&self, server: &str, now: Instant) -> Result<(), Refusal> {
        let (rate, burst) = (self.rate, self.burst);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if now.saturating_duration_since(buckets.swept) >= SWEEP_EVERY {
            buckets
                .by_server
                .retain(|_, b| b.refilled(now, rate, burst).tokens < burst);
            buckets.swept = now;
        }
        let bucket = match buckets.by_server.get_mut(server) {
            Some(bucket) => bucket,
            None => buckets
                .by_server
                .entry(Arc::from(server))
                .or_insert(Bucket {
                    tokens: burst,
                    at: now,
                }),
        };
        *bucket = bucket.refilled(now, rate, burst);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        Err(Refusal::Rate {
            per_second: rate as u32,
            burst: burst as u32,
            retry_after: ((1.0 - bucket.tokens) / rate).ceil().max(1.0) as u64,
        })
    }

    /// Servers with a bucket entry now (for tests).
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_server
            .len()
    }
}

impl Refusal {
    /// The refusal, answered after [`REFUSAL_DELAY`] (the request holds
    /// nothing of its server meanwhile).
    pub async fn answer(self) -> Response {
        tokio::time::sleep(REFUSAL_DELAY).await;
        self.into_response()
    }
}

impl IntoResponse for Refusal {
    /// HTTP 429 with `Retry-After`, and a JSON-RPC error (`-32000`, `id`
    /// null: the body was not read) saying which limit and when to retry.
    fn into_response(self) -> Response {
        let (message, limit, retry_after) = match self {
            Refusal::Rate {
                per_second,
                burst,
                retry_after,
            } => (
                format!(
                    "this MCP server is over its request rate limit ({per_second} per second, bursts of up to {burst}); retry after {retry_after} s"
                ),
                per_second as usize,
                retry_after,
            ),
            Refusal::InFlight { limit } => (
                format!(
                    "this MCP server already has {limit} requests in progress, its limit; retry when one has finished (after 1 s)"
                ),
                limit,
                1,
            ),
        };
        crate::limits::refusal(
            StatusCode::TOO_MANY_REQUESTS,
            None,
            message,
            limit,
            retry_after,
        )
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderValue, header};

    use super::*;

    fn fairness(in_flight: usize, per_second: u32, burst: u32) -> Fairness {
        Fairness::new(&Limits {
            in_flight_per_server: in_flight,
            requests_per_second_per_server: per_second,
            request_burst_per_server: burst,
            ..Limits::default()
        })
    }

    #[test]
    fn a_server_over_its_rate_waits_for_its_bucket_and_others_do_not() {
        let fair = fairness(100, 2, 3);
        let start = Instant::now();
        for _ in 0..3 {
            fair.take_token("a", start).expect("within the burst");
        }
        assert_eq!(
            fair.take_token("a", start),
            Err(Refusal::Rate {
                per_second: 2,
                burst: 3,
                retry_after: 1
            })
        );
        fair.take_token("b", start)
            .expect("another server's own bucket");
        // Half a second refills one token at 2 per second.
        fair.take_token("a", start + Duration::from_millis(500))
            .expect("refilled");
        assert!(
            fair.take_token("a", start + Duration::from_millis(500))
                .is_err()
        );
    }

    #[test]
    fn requests_in_flight_are_capped_per_server() {
        let fair = fairness(2, 1000, 1000);
        let first = fair.admit("a").expect("first");
        let _second = fair.admit("a").expect("second");
        assert_eq!(fair.admit("a").err(), Some(Refusal::InFlight { limit: 2 }));
        let _other = fair.admit("b").expect("another server");
        drop(first);
        fair.admit("a").expect("a place again");
    }

    #[test]
    fn refilled_buckets_are_swept() {
        let fair = fairness(10, 10, 10);
        let start = Instant::now();
        fair.take_token("gone", start).expect("token");
        assert_eq!(fair.tracked(), 1);
        fair.take_token("other", start + SWEEP_EVERY)
            .expect("token");
        assert_eq!(fair.tracked(), 1, "only the server that just asked");
    }

    #[test]
    fn the_refusal_is_a_429_with_retry_after() {
        let response = Refusal::Rate {
            per_second: 50,
            burst: 200,
            retry_after: 1,
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            response.headers().get(header::RETRY_AFTER),
            Some(&HeaderValue::from(1u64))
        );
    }
}
