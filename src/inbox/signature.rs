//! `Malomo-Signature`: the HMAC-SHA256 of the raw body, in hex (Malomo's
//! client code shows upper case; either case is accepted).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The header a signed delivery carries.
pub const SIGNATURE_HEADER: &str = "malomo-signature";

fn mac(secret: &str) -> Option<Hmac<Sha256>> {
    Hmac::<Sha256>::new_from_slice(secret.as_bytes()).ok()
}

/// The signature of `body` with `secret`, upper-case hex like Malomo's.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let Some(mut mac) = mac(secret) else {
        return String::new();
    };
    mac.update(body);
    hex::encode_upper(mac.finalize().into_bytes())
}

/// Whether `signature` (hex, any case, surrounding spaces ignored) is the
/// HMAC-SHA256 of `body` with `secret`, compared in constant time.
pub fn verify(secret: &str, body: &[u8], signature: &str) -> bool {
    let Ok(given) = hex::decode(signature.trim()) else {
        return false;
    };
    let Some(mut mac) = mac(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_in_either_case_and_nothing_else_does() {
        let sig = sign("Jefe", b"what do ya want for nothing?");
        // RFC 4231 test case 2.
        assert_eq!(
            sig.to_lowercase(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(verify("Jefe", b"what do ya want for nothing?", &sig));
        assert!(verify(
            "Jefe",
            b"what do ya want for nothing?",
            &sig.to_lowercase()
        ));
        assert!(!verify("Jefe", b"what do ya want for nothing!", &sig));
        assert!(!verify("jefe", b"what do ya want for nothing?", &sig));
        assert!(!verify("Jefe", b"what do ya want for nothing?", &sig[..62]));
        assert!(!verify("Jefe", b"what do ya want for nothing?", ""));
        assert!(!verify("Jefe", b"what do ya want for nothing?", "zz"));
    }

    #[test]
    fn the_sandbox_signs_the_way_the_inbox_verifies() {
        let body = br#"{"id":"e","topic":"shipment.exception","data":{}}"#;
        let sig = malomo_sandbox::sign_webhook_body("s3cret", body);
        assert!(verify("s3cret", body, &sig));
    }
}
