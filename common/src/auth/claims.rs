//! The claims of a SuperOffice token, checked after its signature verified.
//!
//! Times are checked here, against the caller's `now`, rather than by the JWT library (which reads
//! the system clock): the receiver passes the real time, tests pass the fixtures' time.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value};

use super::error::{AuthError, printable};

/// The claim that carries the tenant's context id.
pub const CONTEXT_ID_CLAIM: &str = "http://schemes.superoffice.net/identity/ctx";
/// The `iss` of every SuperOffice token.
pub const ISSUER: &str = "SuperOffice AS";
/// Longest context id accepted. SuperOffice's are like `Cust24709`; the bound keeps database and
/// queue names derived from it within limits.
pub const MAX_CONTEXT_ID_LEN: usize = 64;
/// Longest nonce accepted. SuperOffice sends 32 hex digits; the slack keeps a longer nonce from
/// breaking authentication while still bounding what we echo back.
pub const MAX_NONCE_LEN: usize = 64;

/// What a verified token tells us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The tenant, from the token alone (no request body names it).
    pub context_id: String,
    /// Echoed in our answer to Authenticate.
    pub nonce: String,
    pub not_before: DateTime<Utc>,
    pub expires: DateTime<Utc>,
}

/// Whether `id` is a sane context id: 1–64 ASCII letters, digits, `_` or `-`, starting with a
/// letter or digit. It ends up in database and state-table names, so nothing else gets through.
pub fn is_valid_context_id(id: &str) -> bool {
    id.len() <= MAX_CONTEXT_ID_LEN
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Whether `nonce` is what SuperOffice sends: hex digits, at most [`MAX_NONCE_LEN`].
pub fn is_valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce.len() <= MAX_NONCE_LEN
        && nonce.chars().all(|c| c.is_ascii_hexdigit())
}

/// Checks the claims of a token whose signature already verified.
pub(crate) fn check(
    claims: &Map<String, Value>,
    audience: &str,
    leeway: TimeDelta,
    now: DateTime<Utc>,
) -> Result<Claims, AuthError> {
    let issuer = string_claim(claims, "iss")?;
    if issuer != ISSUER {
        return Err(AuthError::Issuer(printable(issuer)));
    }
    check_audience(claims, audience)?;

    let expires = time_claim(claims, "exp")?;
    let not_before = time_claim(claims, "nbf")?;
    if now >= expires + leeway {
        return Err(AuthError::Expired(expires));
    }
    if now + leeway < not_before {
        return Err(AuthError::NotYetValid(not_before));
    }

    let context_id = string_claim(claims, CONTEXT_ID_CLAIM)?;
    if !is_valid_context_id(context_id) {
        return Err(AuthError::ContextId(printable(context_id)));
    }
    if let Some(subject) = claims.get("sub") {
        let subject = subject.as_str().ok_or(AuthError::InvalidClaim {
            claim: "sub",
            reason: "not a string",
        })?;
        if subject != context_id {
            return Err(AuthError::SubjectMismatch {
                subject: printable(subject),
                context_id: printable(context_id),
            });
        }
    }

    let nonce = string_claim(claims, "nonce")?;
    if !is_valid_nonce(nonce) {
        return Err(AuthError::InvalidClaim {
            claim: "nonce",
            reason: "not 1 to 64 hex digits",
        });
    }

    Ok(Claims {
        context_id: context_id.to_owned(),
        nonce: nonce.to_owned(),
        not_before,
        expires,
    })
}

fn string_claim<'a>(
    claims: &'a Map<String, Value>,
    name: &'static str,
) -> Result<&'a str, AuthError> {
    match claims.get(name) {
        None | Some(Value::Null) => Err(AuthError::MissingClaim(name)),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(AuthError::InvalidClaim {
            claim: name,
            reason: "not a string",
        }),
    }
}

/// `aud` is a string or an array of strings (RFC 7519); ours must be among them. SuperOffice's
/// documentation writes the client id in either case, so the comparison ignores case.
fn check_audience(claims: &Map<String, Value>, audience: &str) -> Result<(), AuthError> {
    let matches = |value: &Value| {
        value
            .as_str()
            .is_some_and(|a| a.eq_ignore_ascii_case(audience))
    };
    match claims.get("aud") {
        None | Some(Value::Null) => Err(AuthError::MissingClaim("aud")),
        Some(value @ Value::String(given)) => {
            if matches(value) {
                Ok(())
            } else {
                Err(AuthError::Audience(printable(given)))
            }
        }
        Some(Value::Array(values)) => {
            if values.iter().any(matches) {
                Ok(())
            } else {
                let given: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
                Err(AuthError::Audience(printable(&given.join(","))))
            }
        }
        Some(_) => Err(AuthError::InvalidClaim {
            claim: "aud",
            reason: "not a string or an array of strings",
        }),
    }
}

/// A NumericDate: seconds since the epoch, integral or not (fractions are dropped).
fn time_claim(claims: &Map<String, Value>, name: &'static str) -> Result<DateTime<Utc>, AuthError> {
    let invalid = |reason| AuthError::InvalidClaim {
        claim: name,
        reason,
    };
    let seconds = match claims.get(name) {
        None | Some(Value::Null) => return Err(AuthError::MissingClaim(name)),
        Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i,
            (None, Some(f)) if f.is_finite() && f.abs() < 1e15 => f.floor() as i64,
            _ => return Err(invalid("not a time")),
        },
        Some(_) => return Err(invalid("not a number")),
    };
    DateTime::from_timestamp(seconds, 0).ok_or(invalid("out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const AUDIENCE: &str = "spn:6cf25376616343b38d14ddcd804f2891";

    fn claims(overrides: Value) -> Map<String, Value> {
        let mut base = json!({
            "sub": "Cust10003",
            "nonce": "BDB65A558F193A8DD88E50E7416C0D86",
            CONTEXT_ID_CLAIM: "Cust10003",
            "nbf": 1631791466,
            "exp": 1631791826,
            "iss": "SuperOffice AS",
            "aud": AUDIENCE,
        });
        let (Value::Object(map), Value::Object(changes)) = (&mut base, overrides) else {
            unreachable!()
        };
        for (k, v) in changes {
            if v.is_null() {
                map.remove(&k);
            } else {
                map.insert(k, v);
            }
        }
        map.clone()
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    fn run(overrides: Value, now: i64) -> Result<Claims, AuthError> {
        check(
            &claims(overrides),
            AUDIENCE,
            TimeDelta::seconds(30),
            at(now),
        )
    }

    #[test]
    fn a_good_token_gives_its_context_and_nonce() {
        let c = run(json!({}), 1631791600).unwrap();
        assert_eq!(c.context_id, "Cust10003");
        assert_eq!(c.nonce, "BDB65A558F193A8DD88E50E7416C0D86");
        assert_eq!(c.not_before, at(1631791466));
        assert_eq!(c.expires, at(1631791826));
    }

    #[test]
    fn the_window_includes_the_leeway_and_no_more() {
        assert!(run(json!({}), 1631791826 + 29).is_ok());
        let err = run(json!({}), 1631791826 + 30).unwrap_err();
        assert!(
            matches!(err, AuthError::Expired(t) if t == at(1631791826)),
            "{err}"
        );
        assert!(run(json!({}), 1631791466 - 30).is_ok());
        let err = run(json!({}), 1631791466 - 31).unwrap_err();
        assert!(matches!(err, AuthError::NotYetValid(_)), "{err}");
    }

    #[test]
    fn audience_ignores_case_and_may_be_an_array() {
        let upper = AUDIENCE.to_uppercase();
        assert!(run(json!({ "aud": upper }), 1631791600).is_ok());
        assert!(run(json!({ "aud": ["other", AUDIENCE] }), 1631791600).is_ok());
        let err = run(json!({ "aud": ["other"] }), 1631791600).unwrap_err();
        assert!(matches!(err, AuthError::Audience(_)), "{err}");
        let err = run(json!({ "aud": 5 }), 1631791600).unwrap_err();
        assert!(
            matches!(err, AuthError::InvalidClaim { claim: "aud", .. }),
            "{err}"
        );
    }

    #[test]
    fn each_required_claim_is_required() {
        for name in ["iss", "aud", "exp", "nbf", CONTEXT_ID_CLAIM, "nonce"] {
            let err = run(json!({ name: null }), 1631791600).unwrap_err();
            assert!(
                matches!(err, AuthError::MissingClaim(n) if n == name),
                "{name}: {err}"
            );
        }
        // `sub` is optional; when present it must agree with the context claim.
        assert!(run(json!({ "sub": null }), 1631791600).is_ok());
        let err = run(json!({ "sub": "Cust1" }), 1631791600).unwrap_err();
        assert!(matches!(err, AuthError::SubjectMismatch { .. }), "{err}");
    }

    #[test]
    fn wrong_issuer_and_odd_times_are_refused() {
        let err = run(json!({ "iss": "Evil Corp" }), 1631791600).unwrap_err();
        assert_eq!(
            err.to_string(),
            "token issuer \"Evil Corp\" is not SuperOffice AS"
        );
        let err = run(json!({ "exp": "tomorrow" }), 1631791600).unwrap_err();
        assert!(
            matches!(err, AuthError::InvalidClaim { claim: "exp", .. }),
            "{err}"
        );
        let err = run(json!({ "exp": 1e300 }), 1631791600).unwrap_err();
        assert!(
            matches!(err, AuthError::InvalidClaim { claim: "exp", .. }),
            "{err}"
        );
        assert!(run(json!({ "exp": 1631791826.9 }), 1631791600).is_ok());
    }

    #[test]
    fn context_ids_must_be_sane() {
        for good in ["Cust24709", "a", "9-x_y", &"c".repeat(64)] {
            assert!(is_valid_context_id(good), "{good}");
        }
        for bad in [
            "",
            "_cust",
            "-cust",
            "Cust 1",
            "Cust;drop",
            "Cüst",
            &"c".repeat(65),
        ] {
            assert!(!is_valid_context_id(bad), "{bad}");
            let err = run(json!({ CONTEXT_ID_CLAIM: bad, "sub": null }), 1631791600).unwrap_err();
            assert!(matches!(err, AuthError::ContextId(_)), "{bad}: {err}");
        }
    }

    #[test]
    fn nonces_must_be_hex_and_bounded() {
        assert!(is_valid_nonce("BDB65A558F193A8DD88E50E7416C0D86"));
        assert!(is_valid_nonce("bdb65a55"));
        for bad in [
            "",
            "BDB65A558F193A8DD88E50E7416C0D8G",
            "<x/>",
            &"A".repeat(65),
        ] {
            assert!(!is_valid_nonce(bad), "{bad}");
            let err = run(json!({ "nonce": bad }), 1631791600).unwrap_err();
            assert!(
                matches!(err, AuthError::InvalidClaim { claim: "nonce", .. }),
                "{err}"
            );
        }
    }
}
