//! A leaky bucket per API key: each request pours one unit in, the bucket
//! drains at `rate_per_sec`, and a request that would overflow `burst` is
//! refused with 429 and the time until it would fit.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Above this many tracked keys, drained buckets are dropped so that a
/// client cycling through keys cannot grow the map without bound.
const MAX_TRACKED_KEYS: usize = 10_000;

pub struct RateLimiter {
    burst: f64,
    per_sec: f64,
    buckets: Mutex<HashMap<Box<str>, Bucket>>,
}

struct Bucket {
    level: f64,
    last: Instant,
}

/// What the limiter decided, with the numbers for the X-RateLimit headers.
#[derive(Debug, Clone, Copy)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    /// Seconds until the bucket is empty again.
    pub reset: u64,
    /// Seconds until one more request fits (meaningful when refused).
    pub retry_after: u64,
}

fn ceil_secs(units: f64, per_sec: f64) -> u64 {
    if units <= 0.0 {
        return 0;
    }
    if per_sec <= 0.0 {
        // A bucket that never drains: tell the caller to come back much later.
        return 86_400;
    }
    (units / per_sec).ceil().min(86_400.0) as u64
}

impl RateLimiter {
    pub fn new(burst: u32, per_sec: f64) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            per_sec: per_sec.max(0.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn check(&self, key: &str) -> Decision {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if !buckets.contains_key(key) && buckets.len() >= MAX_TRACKED_KEYS {
            let per_sec = self.per_sec;
            buckets
                .retain(|_, b| b.level - now.duration_since(b.last).as_secs_f64() * per_sec > 0.0);
        }
        let bucket = match buckets.get_mut(key) {
            Some(b) => b,
            None => buckets.entry(key.into()).or_insert(Bucket {
                level: 0.0,
                last: now,
            }),
        };
        let drained = now.duration_since(bucket.last).as_secs_f64() * self.per_sec;
        bucket.level = (bucket.level - drained).max(0.0);
        bucket.last = now;
        let allowed = bucket.level + 1.0 <= self.burst;
        if allowed {
            bucket.level += 1.0;
        }
        let limit = self.burst as u64;
        Decision {
            allowed,
            limit,
            remaining: (self.burst - bucket.level).floor().max(0.0) as u64,
            reset: ceil_secs(bucket.level, self.per_sec),
            retry_after: if allowed {
                0
            } else {
                ceil_secs(bucket.level + 1.0 - self.burst, self.per_sec).max(1)
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refusal_with_retry_after() {
        let rl = RateLimiter::new(3, 0.5);
        for left in [2, 1, 0] {
            let d = rl.check("sk_a");
            assert!(d.allowed);
            assert_eq!(d.remaining, left);
        }
        let d = rl.check("sk_a");
        assert!(!d.allowed);
        assert_eq!(d.retry_after, 2);
        assert!(rl.check("sk_b").allowed, "buckets are per key");
    }
}
