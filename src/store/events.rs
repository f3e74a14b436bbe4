//! The store side of the event inbox: each account's inbox token and
//! signing secret, and the events its inbox received.
//!
//! The token is kept hashed (to find the inbox of a delivery) and sealed
//! (so that the runtime can fill the inbox URL into the Malomo webhooks it
//! creates); the secret is sealed like an API key. Neither is ever stored in
//! plain text.

use std::fmt;
use std::time::Duration;

use anyhow::Context;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::backend::{BackendError, EventFilter, EventRow, InboxRow};
use super::{MAX_TOKEN_LEN, Store, StoreError, from_secs, new_token, now_secs, token_hash};
use crate::events::{
    EventHub, EventQuery, InboxDelivery, MAX_EVENT_PAGE, ReceivedEvent, StoredEvent,
};

/// How long and how many events each account keeps (`serve
/// --event-max-age`, `--event-max-count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRetention {
    /// Per account: older events beyond this count are swept.
    pub max_per_account: usize,
    /// Events received longer ago than this are swept.
    pub max_age: Duration,
}

impl Default for EventRetention {
    fn default() -> Self {
        Self {
            max_per_account: 10_000,
            max_age: Duration::from_secs(30 * 86_400),
        }
    }
}

/// An account's inbox as shown to people (never its token or secret).
#[derive(Debug, Clone)]
pub struct InboxInfo {
    pub account_id: String,
    pub created_at: OffsetDateTime,
}

/// A new (or rotated) inbox and its token, shown this once.
#[derive(Clone)]
pub struct CreatedInbox {
    pub info: InboxInfo,
    pub token: String,
}

impl fmt::Debug for CreatedInbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedInbox")
            .field("info", &self.info)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// The inbox a delivery's token names: whose it is and the secret its
/// signature must be made with.
#[derive(Clone)]
pub struct ResolvedInbox {
    pub account_id: String,
    pub secret: String,
}

impl fmt::Debug for ResolvedInbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolvedInbox")
            .field("account_id", &self.account_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// What storing a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    /// Stored now, at this `seq`.
    Stored(i64),
    /// A redelivery of an event the account already has.
    Duplicate,
}

fn token_aad(account_id: &str) -> Vec<u8> {
    format!("inbox-token:{account_id}").into_bytes()
}

fn secret_aad(account_id: &str) -> Vec<u8> {
    format!("inbox-secret:{account_id}").into_bytes()
}

fn now_millis() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Unix milliseconds as RFC 3339 UTC.
fn rfc3339_millis(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// `since` as Unix milliseconds: an RFC 3339 date-time, or a date (its
/// start in UTC).
fn parse_since(text: &str) -> Result<i64, StoreError> {
    let text = text.trim();
    let at = OffsetDateTime::parse(text, &Rfc3339).or_else(|_| {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        time::Date::parse(text, &format).map(|d| d.midnight().assume_utc())
    });
    match at {
        Ok(t) => Ok((t.unix_timestamp_nanos() / 1_000_000) as i64),
        Err(_) => Err(StoreError::Invalid {
            field: "since".to_owned(),
            message: format!(
                "expected an RFC 3339 date-time like 2026-01-31T00:00:00Z or a date like \
                 2026-01-31, got {text:?}"
            ),
        }),
    }
}

impl Store {
    /// Creates the account's inbox, or rotates it: a new token and a new
    /// secret, the old token answering 404 from now on. The token exists
    /// in plain text only in the answer (and sealed in the store).
    pub fn rotate_inbox(&self, account_id: &str) -> Result<CreatedInbox, StoreError> {
        if self.backend().get_account(account_id)?.is_none() {
            return Err(StoreError::AccountNotFound(account_id.to_owned()));
        }
        let (token, secret) = (new_token(), new_token());
        let key = &self.inner.key;
        let row = InboxRow {
            account_id: account_id.to_owned(),
            token_hash: token_hash(&token),
            token_sealed: key.seal(token.as_bytes(), &token_aad(account_id))?,
            secret_sealed: key.seal(secret.as_bytes(), &secret_aad(account_id))?,
            created_at: now_secs(),
        };
        match self.backend().put_inbox(&row) {
            Ok(()) => {}
            Err(BackendError::Missing(_)) => {
                return Err(StoreError::AccountNotFound(account_id.to_owned()));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(CreatedInbox {
            info: InboxInfo {
                account_id: row.account_id,
                created_at: from_secs(row.created_at)?,
            },
            token,
        })
    }

    /// The account's inbox, when it has one.
    pub fn inbox_info(&self, account_id: &str) -> Result<Option<InboxInfo>, StoreError> {
        let Some(row) = self.backend().get_inbox(account_id)? else {
            return Ok(None);
        };
        Ok(Some(InboxInfo {
            account_id: row.account_id,
            created_at: from_secs(row.created_at)?,
        }))
    }

    /// The inbox token and secret, for the runtime to fill into a Malomo
    /// webhook; `None` when the account has no inbox.
    pub fn inbox_delivery(&self, account_id: &str) -> Result<Option<InboxDelivery>, StoreError> {
        let Some(row) = self.backend().get_inbox(account_id)? else {
            return Ok(None);
        };
        let open = |sealed: &[u8], aad: Vec<u8>, what: &str| -> Result<String, StoreError> {
            let plain = self
                .inner
                .key
                .open(sealed, &aad)
                .with_context(|| format!("decrypting the inbox {what}"))?;
            Ok(String::from_utf8(plain).with_context(|| format!("stored inbox {what}"))?)
        };
        Ok(Some(InboxDelivery {
            token: open(&row.token_sealed, token_aad(account_id), "token")?,
            secret: open(&row.secret_sealed, secret_aad(account_id), "secret")?,
        }))
    }

    /// The inbox `token` opens, with its signing secret.
    pub fn resolve_inbox(&self, token: &str) -> Result<Option<ResolvedInbox>, StoreError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Ok(None);
        }
        let Some(row) = self.backend().find_inbox(&token_hash(token))? else {
            return Ok(None);
        };
        let secret = self
            .inner
            .key
            .open(&row.secret_sealed, &secret_aad(&row.account_id))
            .context("decrypting the inbox secret")?;
        Ok(Some(ResolvedInbox {
            secret: String::from_utf8(secret).context("stored inbox secret")?,
            account_id: row.account_id,
        }))
    }

    /// Stores a verified delivery, durably, unless the account already has
    /// it. Answer Malomo only after this returned.
    pub fn store_event(
        &self,
        account_id: &str,
        event: &ReceivedEvent,
    ) -> Result<EventOutcome, StoreError> {
        let row = EventRow {
            seq: 0,
            account_id: account_id.to_owned(),
            topic: event.topic.clone(),
            received_at: now_millis(),
            dedup_key: event.dedup_key.clone(),
            order_id: event.order_id.clone(),
            order_number: event.order_number.clone(),
            customer_email: event.customer_email.clone(),
            tracking_code: event.tracking_code.clone(),
            status: event.status.clone(),
            payload: event.payload.clone(),
        };
        match self.backend().insert_event(&row) {
            Ok(Some(seq)) => Ok(EventOutcome::Stored(seq)),
            Ok(None) => Ok(EventOutcome::Duplicate),
            Err(BackendError::Missing(_)) => {
                Err(StoreError::AccountNotFound(account_id.to_owned()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// An account's stored events matching `q`, newest first.
    pub fn list_events(&self, q: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        let limit = q.limit.min(MAX_EVENT_PAGE);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let filter = EventFilter {
            account_id: q.account_id.clone(),
            topic: q.topic.clone(),
            order_id: q.order_id.clone(),
            tracking_code: q.tracking_code.clone(),
            since: q.since.as_deref().map(parse_since).transpose()?,
            before_seq: q.before_seq,
            limit: limit as i64,
        };
        self.backend()
            .list_events(&filter)?
            .into_iter()
            .map(|row| {
                let payload = serde_json::from_str(&row.payload)
                    .with_context(|| format!("stored event {} is not JSON", row.seq))?;
                Ok(StoredEvent {
                    seq: row.seq,
                    account_id: row.account_id,
                    topic: row.topic,
                    received_at: rfc3339_millis(row.received_at),
                    order_id: row.order_id,
                    order_number: row.order_number,
                    customer_email: row.customer_email,
                    tracking_code: row.tracking_code,
                    status: row.status,
                    payload,
                })
            })
            .collect()
    }

    /// Deletes events past `retention`; returns how many.
    pub fn sweep_events(&self, retention: &EventRetention) -> anyhow::Result<usize> {
        let age = i64::try_from(retention.max_age.as_millis()).unwrap_or(i64::MAX);
        let keep = i64::try_from(retention.max_per_account).unwrap_or(i64::MAX);
        Ok(self
            .backend()
            .delete_old_events(now_millis().saturating_sub(age), keep)?)
    }

    /// Publishes on `hub` the events other nodes sharing this database
    /// store (PostgreSQL); this node publishes its own itself.
    pub fn forward_remote_events(&self, hub: EventHub) {
        self.backend().forward_events(hub);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_date_time_or_a_date_and_names_the_field_otherwise() {
        assert_eq!(parse_since("1970-01-01T00:00:01Z").unwrap(), 1000);
        assert_eq!(parse_since("1970-01-02").unwrap(), 86_400_000);
        let err = parse_since("yesterday").unwrap_err().to_string();
        assert!(err.starts_with("since:"), "{err}");
    }

    #[test]
    fn received_at_is_rfc3339_utc() {
        assert_eq!(rfc3339_millis(1_500), "1970-01-01T00:00:01.5Z");
    }
}
