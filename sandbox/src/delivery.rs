//! Webhook delivery: each delivery is its own background task, so API
//! requests never wait on a subscriber. Failures (non-2xx, timeouts,
//! connection errors) are retried with exponential backoff.

use super::store::Delivery;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::time::Duration;

pub struct Deliverer {
    /// Built on the first delivery: building a client loads the system's
    /// root certificates, which a sandbox that never delivers (most runs)
    /// should not pay for at start.
    client: std::sync::OnceLock<Option<reqwest::Client>>,
    timeout: Duration,
    base_delay: Duration,
    max_attempts: u32,
}

/// HMAC-SHA256 of the raw body, upper-case hex as Malomo's client code shows.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    hex::encode_upper(mac.finalize().into_bytes())
}

impl Deliverer {
    pub fn new(base_delay: Duration, max_attempts: u32, timeout: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            client: std::sync::OnceLock::new(),
            timeout,
            base_delay,
            max_attempts: max_attempts.max(1),
        })
    }

    fn client(&self) -> Option<&reqwest::Client> {
        self.client
            .get_or_init(|| {
                // reqwest is built without a default crypto provider; install
                // ring's (an error only means another part of the process
                // already did).
                let _ = rustls::crypto::ring::default_provider().install_default();
                reqwest::Client::builder()
                    .timeout(self.timeout)
                    .user_agent("Malomo-Webhooks (malomo-mcp sandbox)")
                    .build()
                    .map_err(
                        |e| tracing::error!(error = %e, "cannot build the webhook HTTP client"),
                    )
                    .ok()
            })
            .as_ref()
    }

    pub fn dispatch(&self, deliveries: Vec<Delivery>) {
        if deliveries.is_empty() {
            return;
        }
        let Some(client) = self.client() else {
            return;
        };
        for d in deliveries {
            let client = client.clone();
            let base = self.base_delay;
            let max = self.max_attempts;
            tokio::spawn(async move { deliver(client, d, base, max).await });
        }
    }
}

/// What logs may say of a webhook URL: its origin only. The path can be a
/// credential (malomo-mcp's inbox URLs carry their token there).
fn log_target(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => u.origin().ascii_serialization(),
        Err(_) => "<unparseable URL>".to_owned(),
    }
}

async fn deliver(client: reqwest::Client, d: Delivery, base: Duration, max_attempts: u32) {
    let signature = d.secret.as_deref().map(|s| sign(s, &d.body));
    let webhook_id = d.webhook_id.to_string();
    let target = log_target(&d.url);
    for attempt in 1..=max_attempts {
        let mut req = client
            .post(&d.url)
            .header("content-type", "application/json")
            .header("Malomo-Topic", d.topic)
            .header("Malomo-Webhook-Id", &webhook_id)
            .header("Malomo-Attempt-Number", attempt.to_string())
            .body(d.body.clone());
        if let Some(sig) = &signature {
            req = req.header("Malomo-Signature", sig);
        }
        match req.send().await {
            Ok(resp) if resp.status().is_success() => return,
            Ok(resp) => {
                tracing::debug!(%target, %webhook_id, attempt, status = %resp.status(), "webhook refused")
            }
            Err(e) => {
                // Without the URL: reqwest's message would carry its path.
                let e = e.without_url();
                tracing::debug!(%target, %webhook_id, attempt, error = %e, "webhook failed")
            }
        }
        if attempt < max_attempts {
            // base, 2×base, 4×base, ...: ten attempts at the default base
            // spread over hours, within Malomo's documented 24 h.
            tokio::time::sleep(base.saturating_mul(1u32 << (attempt - 1).min(20))).await;
        }
    }
    tracing::warn!(%target, %webhook_id, topic = d.topic, "webhook delivery abandoned after {max_attempts} attempts");
}

#[cfg(test)]
mod tests {
    #[test]
    fn logs_name_a_webhook_by_its_origin_never_its_path() {
        assert_eq!(
            super::log_target("http://127.0.0.1:8080/hooks/SECRETTOKEN?x=1"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(super::log_target("not a url"), "<unparseable URL>");
    }

    #[test]
    fn signature_matches_a_known_hmac() {
        // RFC 4231 test case 2.
        let sig = super::sign("Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig.to_lowercase(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
