// SPDX-License-Identifier: MIT OR Apache-2.0
//! Signatures of recording callbacks (issue 12; not wired to the element
//! yet).
//!
//! - The Standard Webhooks scheme (<https://www.standardwebhooks.com>):
//!   headers `webhook-id`, `webhook-timestamp` and
//!   `webhook-signature: v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>`,
//!   the key given as `whsec_<base64>`.
//! - Tencent Cloud CSS: `sign = md5(key + t)` (lowercase hex) in the body,
//!   `t` the Unix time at which the notification expires.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// A Standard Webhooks signing key.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.write_str("WebhookSecret(..)")
    }
}

impl WebhookSecret {
    /// Parses `whsec_<base64>` (the `whsec_` prefix may be left out).
    pub fn parse(s: &str) -> Result<Self, String> {
        let b64 = s.strip_prefix("whsec_").unwrap_or(s);
        let key = B64
            .decode(b64.trim())
            .map_err(|e| format!("the callback secret is not whsec_<base64>: {e}"))?;
        if key.len() < 16 {
            return Err(format!(
                "the callback secret is {} bytes; at least 16 are needed (24 to 64 recommended)",
                key.len()
            ));
        }
        Ok(WebhookSecret(key))
    }

    fn mac(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
        // HMAC accepts keys of any length.
        let mut mac = match HmacSha256::new_from_slice(&self.0) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `webhook-signature` header value: `v1,<base64>`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = self.mac(msg_id, timestamp, body).finalize().into_bytes();
        format!("v1,{}", B64.encode(tag))
    }

    /// The three headers of a signed request.
    pub fn headers(
        &self,
        msg_id: &str,
        timestamp: i64,
        body: &[u8],
    ) -> [(&'static str, String); 3] {
        [
            ("webhook-id", msg_id.to_string()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", self.sign(msg_id, timestamp, body)),
        ]
    }

    /// Whether one of the space-separated `v1,` signatures in `header`
    /// matches (compared in constant time).
    pub fn verify(&self, msg_id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        header.split(' ').any(|sig| {
            let Some(b64) = sig.strip_prefix("v1,") else {
                return false;
            };
            let Ok(tag) = B64.decode(b64) else {
                return false;
            };
            self.mac(msg_id, timestamp, body).verify_slice(&tag).is_ok()
        })
    }
}

/// Tencent Cloud CSS callback signature: `md5(key + t)`, lowercase hex.
pub fn tencent_sign(key: &str, t: i64) -> String {
    let digest = Md5::digest(format!("{key}{t}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector of the Standard Webhooks reference libraries.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn standard_webhooks_reference_vector() {
        let s = WebhookSecret::parse(SECRET).unwrap();
        assert_eq!(s.sign(ID, TS, BODY), SIG);
        let h = s.headers(ID, TS, BODY);
        assert_eq!(h[0], ("webhook-id", ID.to_string()));
        assert_eq!(h[1], ("webhook-timestamp", TS.to_string()));
        assert_eq!(h[2].1, SIG);
        assert!(s.verify(ID, TS, BODY, &format!("v1,bm90IHRoaXM= {SIG}")));
    }

    #[test]
    fn wrong_secret_body_or_time_does_not_verify() {
        let s = WebhookSecret::parse(SECRET).unwrap();
        let other = WebhookSecret::parse("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        assert!(!other.verify(ID, TS, BODY, SIG));
        assert!(!s.verify(ID, TS + 1, BODY, SIG));
        assert!(!s.verify(ID, TS, b"{}", SIG));
        assert!(!s.verify(ID, TS, BODY, "v2,whatever"));
    }

    #[test]
    fn bad_secrets_are_clear_errors() {
        assert!(WebhookSecret::parse("whsec_!!!")
            .unwrap_err()
            .contains("whsec_"));
        assert!(WebhookSecret::parse("whsec_c2hvcnQ=")
            .unwrap_err()
            .contains("at least 16"));
        assert_eq!(
            format!("{:?}", WebhookSecret::parse(SECRET).unwrap()),
            "WebhookSecret(..)"
        );
    }

    #[test]
    fn tencent_sign_is_md5_of_key_and_t() {
        // md5("abc1614265330"), computed independently with Python hashlib.
        assert_eq!(
            tencent_sign("abc", 1614265330),
            "4afa79ad6f376205db33af4e4aca424b"
        );
    }
}
