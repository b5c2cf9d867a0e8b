//! Our answer to Authenticate: `SignedApplicationToken` = `<nonce>.<yyyyMMddHHmm>.<signature>`.
//!
//! The nonce is the one from the token just received, the timestamp the current UTC minute, and
//! the signature standard Base64 (with padding) of RSA PKCS#1 v1.5 / SHA-256 over the UTF-8 bytes
//! of `<nonce>.<yyyyMMddHHmm>`. Verification does what SuperOffice does with it: the nonce must be
//! the one it sent, the time within 15 minutes of its clock, and the signature ours.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};

use super::error::AuthError;
use super::key::{ApplicationKey, ApplicationPublicKey};

/// How far the answer's timestamp may be from the verifier's clock.
pub const ANSWER_WINDOW: TimeDelta = TimeDelta::minutes(15);
/// Longest answer accepted for verification (a 4096-bit signature is 684 Base64 characters).
const MAX_ANSWER_LEN: usize = 2048;
const STAMP_FORMAT: &str = "%Y%m%d%H%M";

impl ApplicationKey {
    /// The `SignedApplicationToken` answering a token with `nonce`, signed as of `now`.
    pub fn sign_answer(&self, nonce: &str, now: DateTime<Utc>) -> String {
        let signed = format!("{nonce}.{}", now.format(STAMP_FORMAT));
        let signature = STANDARD.encode(self.sign_pkcs1_sha256(signed.as_bytes()));
        format!("{signed}.{signature}")
    }
}

impl ApplicationPublicKey {
    /// Checks an answer as SuperOffice does: the nonce it sent, a timestamp within
    /// [`ANSWER_WINDOW`] of `now`, and a signature by this key.
    pub fn verify_answer(
        &self,
        answer: &str,
        expected_nonce: &str,
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        if answer.len() > MAX_ANSWER_LEN {
            return Err(AuthError::MalformedAnswer("too long"));
        }
        let mut parts = answer.splitn(3, '.');
        let (Some(nonce), Some(stamp), Some(signature)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::MalformedAnswer(
                "expected <nonce>.<yyyyMMddHHmm>.<signature>",
            ));
        };
        if nonce != expected_nonce {
            return Err(AuthError::AnswerNonce);
        }
        let signed_at = parse_stamp(stamp)?;
        if (now - signed_at).abs() > ANSWER_WINDOW {
            return Err(AuthError::AnswerTime {
                stamp: stamp.to_owned(),
            });
        }
        let signature = STANDARD
            .decode(signature)
            .map_err(|_| AuthError::MalformedAnswer("signature is not standard Base64"))?;
        let signed = &answer[..nonce.len() + 1 + stamp.len()];
        if self.verify_pkcs1_sha256(signed.as_bytes(), &signature) {
            Ok(())
        } else {
            Err(AuthError::AnswerSignature)
        }
    }
}

/// `yyyyMMddHHmm`, exactly twelve digits, in UTC.
fn parse_stamp(stamp: &str) -> Result<DateTime<Utc>, AuthError> {
    const BAD: AuthError = AuthError::MalformedAnswer("timestamp is not yyyyMMddHHmm");
    if stamp.len() != 12 || !stamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BAD);
    }
    NaiveDateTime::parse_from_str(stamp, STAMP_FORMAT)
        .map(|t| t.and_utc())
        .map_err(|_| BAD)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn stamps_are_twelve_digit_utc_minutes() {
        let t = parse_stamp("202109161125").unwrap();
        assert_eq!(t, Utc.with_ymd_and_hms(2021, 9, 16, 11, 25, 0).unwrap());
        for bad in [
            "20210916112",
            "2021091611250",
            "20210916112x",
            "202113161125",
            "+02109161125",
        ] {
            assert!(parse_stamp(bad).is_err(), "{bad}");
        }
    }
}
