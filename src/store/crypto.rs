//! Secrets at rest: the master key, AES-256-GCM sealing of Malomo API keys,
//! and the capability tokens of which only a SHA-256 is ever stored.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

/// Environment variable holding the master key (64 hex chars, or base64 of
/// 32 bytes).
pub const MASTER_KEY_ENV: &str = "MALOMO_MCP_MASTER_KEY";

const NONCE_LEN: usize = 12;

/// The AES-256-GCM key that seals every Malomo API key in the store.
pub struct MasterKey {
    cipher: Aes256Gcm,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        let key = aes_gcm::Key::<Aes256Gcm>::from(*bytes);
        MasterKey {
            cipher: Aes256Gcm::new(&key),
        }
    }

    /// Parses the textual forms accepted in `MALOMO_MCP_MASTER_KEY` and in the
    /// key file: 64 hex characters, or standard base64 of exactly 32 bytes.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).context("master key is not valid hex")?
        } else {
            STANDARD.decode(text).map_err(|_| {
                anyhow::anyhow!("master key must be 64 hex characters or base64 of 32 bytes")
            })?
        };
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("master key must be exactly 32 bytes"))?;
        Ok(Self::from_bytes(&bytes))
    }

    /// The key from `MALOMO_MCP_MASTER_KEY`, which a shared database
    /// requires: a key file made by one node would not be another node's.
    pub fn from_env_for_shared_db() -> anyhow::Result<Self> {
        match std::env::var(MASTER_KEY_ENV) {
            Ok(text) if !text.trim().is_empty() => {
                Self::parse(&text).with_context(|| format!("reading {MASTER_KEY_ENV}"))
            }
            _ => anyhow::bail!(
                "{MASTER_KEY_ENV} must be set when the database is PostgreSQL: every node \
                 needs the same master key to open the API keys stored there (64 hex \
                 characters, e.g. from `openssl rand -hex 32`)"
            ),
        }
    }

    /// The key from `MALOMO_MCP_MASTER_KEY`, else from the key file beside the
    /// database (created with mode 0600 on first use).
    pub fn load_for(db_path: &Path) -> anyhow::Result<Self> {
        if let Ok(text) = std::env::var(MASTER_KEY_ENV) {
            return Self::parse(&text).with_context(|| format!("reading {MASTER_KEY_ENV}"));
        }
        let path = key_file_path(db_path);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                warn_if_shared(&path, "master key file");
                Self::parse(&text).with_context(|| format!("reading key file {}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_key_file(&path),
            Err(e) => Err(e).with_context(|| format!("reading key file {}", path.display())),
        }
    }

    /// Seals `plaintext` with a fresh random nonce; `aad` binds the value to
    /// its row so that sealed values cannot be swapped between rows.
    /// Output: nonce || ciphertext || tag.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut nonce_bytes = [0u8; NONCE_LEN];
        rand::fill(&mut nonce_bytes);
        let nonce = Nonce::from(nonce_bytes);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| anyhow::anyhow!("encryption failed"))?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> anyhow::Result<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            bail!("sealed value is truncated");
        }
        let (nonce_bytes, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_from(nonce_bytes).map_err(|_| anyhow::anyhow!("bad nonce"))?;
        self.cipher
            .decrypt(&nonce, Payload { msg: body, aad })
            .map_err(|_| anyhow::anyhow!("decryption failed: wrong master key or corrupted value"))
    }
}

/// `<db>.key` beside the database file.
pub fn key_file_path(db_path: &Path) -> PathBuf {
    let mut name = db_path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    if name.is_empty() {
        name.push("malomo-mcp.db");
    }
    name.push(".key");
    db_path.with_file_name(name)
}

/// A key file (or database) others can read is a key others have.
pub(super) fn warn_if_shared(path: &Path, what: &str) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                "{what} is readable by other users; chmod 600 it"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (path, what);
}

fn create_key_file(path: &Path) -> anyhow::Result<MasterKey> {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(hex::encode(bytes).as_bytes())
                .and_then(|()| file.sync_all())
                .with_context(|| format!("writing key file {}", path.display()))?;
            Ok(MasterKey::from_bytes(&bytes))
        }
        // Another process created it between our read and our create.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading key file {}", path.display()))?;
            MasterKey::parse(&text)
        }
        Err(e) => Err(e).with_context(|| format!("creating key file {}", path.display())),
    }
}

/// A fresh capability token: 256 random bits, base64url without padding.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the store keeps of a token.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// `sk_…abcd`: enough for a person to tell keys apart, useless to an attacker.
pub fn mask_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() < 12 {
        return "…".to_string();
    }
    let prefix: String = match key.find('_') {
        Some(i) if i <= 4 => key[..=i].to_string(),
        _ => String::new(),
    };
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{prefix}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_aad() {
        let key = MasterKey::from_bytes(&[7u8; 32]);
        let sealed = key.seal(b"sk_secret", b"acct-1").unwrap();
        assert_eq!(key.open(&sealed, b"acct-1").unwrap(), b"sk_secret");
        assert!(key.open(&sealed, b"acct-2").is_err());
        assert_ne!(key.seal(b"sk_secret", b"acct-1").unwrap(), sealed);
    }

    #[test]
    fn master_key_accepts_hex_and_base64() {
        assert!(MasterKey::parse(&"ab".repeat(32)).is_ok());
        assert!(MasterKey::parse(&STANDARD.encode([1u8; 32])).is_ok());
        assert!(MasterKey::parse("short").is_err());
        assert!(MasterKey::parse(&STANDARD.encode([1u8; 16])).is_err());
    }

    #[test]
    fn keys_are_masked() {
        assert_eq!(mask_key("sk_test_1234567890abcd"), "sk_…abcd");
        assert_eq!(mask_key("short"), "…");
        assert_eq!(mask_key("abcdefghijklmnop"), "…mnop");
    }

    #[test]
    fn tokens_are_256_bits() {
        let t = new_token();
        assert_eq!(URL_SAFE_NO_PAD.decode(&t).unwrap().len(), 32);
        assert_ne!(t, new_token());
    }
}
