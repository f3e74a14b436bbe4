//! Console sessions, one-time sign-in links and the sign-in throttle.
//!
//! All three live in this process's memory and only as SHA-256 hashes of
//! the random tokens, like capability tokens in the store: a memory dump
//! shows no cookie that could be replayed. A restart signs everybody out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::store::{new_token, token_hash};

/// How long sessions and links live; tests shorten them.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// A session unused for this long is over.
    pub idle: Duration,
    /// A session is over this long after sign-in, however busy.
    pub absolute: Duration,
    /// A one-time sign-in link is dead this long after it was made.
    pub link_ttl: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            idle: Duration::from_secs(60 * 60),
            absolute: Duration::from_secs(12 * 60 * 60),
            link_ttl: Duration::from_secs(10 * 60),
        }
    }
}

/// What a page shows once and then forgets: the credentials of a server
/// just created.
#[derive(Clone)]
pub struct CreatedFlash {
    pub server_id: String,
    pub url: String,
    pub client_token: Option<String>,
}

struct Session {
    csrf: String,
    started: Instant,
    last_seen: Instant,
    notice: Option<String>,
    created: Option<CreatedFlash>,
}

/// A signed-in session as a request sees it.
#[derive(Clone, Debug)]
pub struct SessionView {
    /// The per-session form token every state-changing form carries.
    pub csrf: String,
}

/// Sessions are capped; past this the oldest is dropped.
const MAX_SESSIONS: usize = 1_000;
/// Unused sign-in links kept at most.
const MAX_LINKS: usize = 100;

/// The console's server-side sessions, keyed by the hash of the cookie.
pub struct Sessions {
    limits: SessionLimits,
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    links: Mutex<HashMap<[u8; 32], Instant>>,
}

impl Sessions {
    pub fn new(limits: SessionLimits) -> Self {
        Sessions {
            limits,
            sessions: Mutex::new(HashMap::new()),
            links: Mutex::new(HashMap::new()),
        }
    }

    pub fn limits(&self) -> SessionLimits {
        self.limits
    }

    fn live(&self, s: &Session, now: Instant) -> bool {
        now.duration_since(s.last_seen) < self.limits.idle
            && now.duration_since(s.started) < self.limits.absolute
    }

    /// Starts a session; returns the cookie value (shown only to the
    /// browser, kept here as a hash).
    pub fn start(&self) -> String {
        let cookie = new_token();
        let now = Instant::now();
        let mut map = lock(&self.sessions);
        map.retain(|_, s| self.live(s, now));
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.last_seen).map(|(k, _)| *k)
        {
            map.remove(&oldest);
        }
        map.insert(
            token_hash(&cookie),
            Session {
                csrf: new_token(),
                started: now,
                last_seen: now,
                notice: None,
                created: None,
            },
        );
        cookie
    }

    /// The live session of this cookie, touched; an expired one is removed.
    pub fn get(&self, cookie: &str) -> Option<SessionView> {
        let key = token_hash(cookie);
        let now = Instant::now();
        let mut map = lock(&self.sessions);
        let live = map.get(&key).map(|s| self.live(s, now))?;
        if !live {
            map.remove(&key);
            return None;
        }
        let session = map.get_mut(&key)?;
        session.last_seen = now;
        Some(SessionView {
            csrf: session.csrf.clone(),
        })
    }

    /// Ends a session (sign-out); unknown cookies are ignored.
    pub fn end(&self, cookie: &str) {
        lock(&self.sessions).remove(&token_hash(cookie));
    }

    /// Number of live sessions (for tests and logs).
    pub fn count(&self) -> usize {
        let now = Instant::now();
        lock(&self.sessions)
            .values()
            .filter(|s| self.live(s, now))
            .count()
    }

    fn with_session<T>(&self, cookie: &str, f: impl FnOnce(&mut Session) -> T) -> Option<T> {
        lock(&self.sessions).get_mut(&token_hash(cookie)).map(f)
    }

    /// A one-line message for the next page of this session.
    pub fn set_notice(&self, cookie: &str, notice: String) {
        self.with_session(cookie, |s| s.notice = Some(notice));
    }

    pub fn take_notice(&self, cookie: &str) -> Option<String> {
        self.with_session(cookie, |s| s.notice.take()).flatten()
    }

    /// Keeps the credentials of a new server for the one page that shows
    /// them.
    pub fn set_created(&self, cookie: &str, created: CreatedFlash) {
        self.with_session(cookie, |s| s.created = Some(created));
    }

    /// The credentials of server `server_id`, once: a second call is `None`.
    pub fn take_created(&self, cookie: &str, server_id: &str) -> Option<CreatedFlash> {
        self.with_session(cookie, |s| {
            if s.created.as_ref().is_some_and(|c| c.server_id == server_id) {
                s.created.take()
            } else {
                None
            }
        })
        .flatten()
    }

    /// Makes a one-time sign-in link token, valid for `link_ttl`.
    pub fn issue_link(&self) -> String {
        let token = new_token();
        let now = Instant::now();
        let mut links = lock(&self.links);
        links.retain(|_, made| now.duration_since(*made) < self.limits.link_ttl);
        if links.len() >= MAX_LINKS {
            links.clear();
        }
        links.insert(token_hash(&token), now);
        token
    }

    /// Uses up a sign-in link token: true once, if it is not expired.
    pub fn redeem_link(&self, token: &str) -> bool {
        if token.is_empty() || token.len() > 256 {
            return false;
        }
        lock(&self.links)
            .remove(&token_hash(token))
            .is_some_and(|made| made.elapsed() < self.limits.link_ttl)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The maps hold no invariant a panic could break half-way.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Failures allowed before sign-in attempts are spaced out.
const FREE_FAILURES: u32 = 5;
/// Longest wait between attempts.
const MAX_WAIT: Duration = Duration::from_secs(5 * 60);
/// Failures older than this are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Clients tracked at most.
const MAX_CLIENTS: usize = 10_000;

struct Failures {
    count: u32,
    last: Instant,
}

/// Slows down repeated failed sign-ins from one client: after
/// [`FREE_FAILURES`] failures, each further attempt must wait twice as
/// long as the one before (1 s, 2 s, 4 s, … up to 5 min). Attempts made
/// too early are refused without checking the token, so guesses cannot be
/// sped up by sending them in parallel.
#[derive(Default)]
pub struct SignInThrottle {
    clients: Mutex<HashMap<String, Failures>>,
}

impl SignInThrottle {
    fn wait_for(count: u32) -> Duration {
        if count < FREE_FAILURES {
            return Duration::ZERO;
        }
        let exp = (count - FREE_FAILURES).min(16);
        Duration::from_secs(1u64 << exp).min(MAX_WAIT)
    }

    /// `Err(wait)` when `client` must wait before trying again.
    pub fn check(&self, client: &str) -> Result<(), Duration> {
        let map = lock(&self.clients);
        let Some(f) = map.get(client) else {
            return Ok(());
        };
        let elapsed = f.last.elapsed();
        if elapsed >= FORGET_AFTER {
            return Ok(());
        }
        let wait = Self::wait_for(f.count);
        if elapsed < wait {
            Err(wait - elapsed)
        } else {
            Ok(())
        }
    }

    pub fn failed(&self, client: &str) {
        let now = Instant::now();
        let mut map = lock(&self.clients);
        if map.len() >= MAX_CLIENTS && !map.contains_key(client) {
            map.retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
            if map.len() >= MAX_CLIENTS {
                map.clear();
            }
        }
        let f = map.entry(client.to_string()).or_insert(Failures {
            count: 0,
            last: now,
        });
        if now.duration_since(f.last) >= FORGET_AFTER {
            f.count = 0;
        }
        f.count = f.count.saturating_add(1);
        f.last = now;
    }

    pub fn succeeded(&self, client: &str) {
        lock(&self.clients).remove(client);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn short(idle_ms: u64, absolute_ms: u64, link_ms: u64) -> Sessions {
        Sessions::new(SessionLimits {
            idle: Duration::from_millis(idle_ms),
            absolute: Duration::from_millis(absolute_ms),
            link_ttl: Duration::from_millis(link_ms),
        })
    }

    #[test]
    fn a_session_is_found_by_its_cookie_until_it_ends() {
        let sessions = Sessions::new(SessionLimits::default());
        let cookie = sessions.start();
        let view = sessions.get(&cookie).expect("live session");
        assert_eq!(view.csrf.len(), 43, "256-bit form token");
        assert!(sessions.get("not-a-cookie").is_none());
        sessions.end(&cookie);
        assert!(sessions.get(&cookie).is_none());
    }

    #[test]
    fn sessions_expire_when_idle_and_after_their_lifetime() {
        let sessions = short(50, 10_000, 1_000);
        let cookie = sessions.start();
        std::thread::sleep(Duration::from_millis(80));
        assert!(sessions.get(&cookie).is_none(), "idle session is over");

        let sessions = short(10_000, 100, 1_000);
        let cookie = sessions.start();
        for _ in 0..4 {
            std::thread::sleep(Duration::from_millis(30));
            let _ = sessions.get(&cookie);
        }
        std::thread::sleep(Duration::from_millis(40));
        assert!(
            sessions.get(&cookie).is_none(),
            "a busy session still ends at its absolute limit"
        );
    }

    #[test]
    fn every_session_has_its_own_form_token() {
        let sessions = Sessions::new(SessionLimits::default());
        let a = sessions.get(&sessions.start()).unwrap();
        let b = sessions.get(&sessions.start()).unwrap();
        assert_ne!(a.csrf, b.csrf);
    }

    #[test]
    fn a_sign_in_link_works_once_and_expires() {
        let sessions = short(10_000, 10_000, 60);
        let link = sessions.issue_link();
        assert!(sessions.redeem_link(&link));
        assert!(!sessions.redeem_link(&link), "second use refused");
        let late = sessions.issue_link();
        std::thread::sleep(Duration::from_millis(90));
        assert!(!sessions.redeem_link(&late), "expired link refused");
        assert!(!sessions.redeem_link(""));
    }

    #[test]
    fn created_credentials_are_given_out_once() {
        let sessions = Sessions::new(SessionLimits::default());
        let cookie = sessions.start();
        sessions.set_created(
            &cookie,
            CreatedFlash {
                server_id: "s1".into(),
                url: "http://x/mcp/t".into(),
                client_token: None,
            },
        );
        assert!(sessions.take_created(&cookie, "other").is_none());
        assert!(sessions.take_created(&cookie, "s1").is_some());
        assert!(sessions.take_created(&cookie, "s1").is_none());
    }

    #[test]
    fn repeated_failures_space_out_attempts() {
        let throttle = SignInThrottle::default();
        for _ in 0..FREE_FAILURES {
            assert!(throttle.check("a").is_ok());
            throttle.failed("a");
        }
        let wait = throttle.check("a").expect_err("sixth attempt must wait");
        assert!(wait > Duration::from_millis(500) && wait <= Duration::from_secs(1));
        assert!(throttle.check("b").is_ok(), "other clients are not slowed");
        throttle.failed("a");
        throttle.failed("a");
        assert!(throttle.check("a").unwrap_err() > Duration::from_secs(2));
        throttle.succeeded("a");
        assert!(throttle.check("a").is_ok());
    }
}
