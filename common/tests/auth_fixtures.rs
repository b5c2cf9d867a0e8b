//! Authentication against SuperOffice's real captured tokens, forged and tampered variants of
//! them, tokens from our own issuer, answer signing, and key format conversion checked against
//! an OpenSSL-generated key.

// Helpers outside `#[test]` functions are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use mirror_common::auth::{
    ApplicationKey, ApplicationPublicKey, AuthEnvironment, AuthError, CONTEXT_ID_CLAIM,
    Certificate, MAX_TOKEN_BYTES, TokenIssuer, TokenVerifier,
};
use mirror_common::config::AuthSettings;
use serde_json::{Map, Value, json};

const CLIENT_ID: &str = "6cf25376616343b38d14ddcd804f2891";
const LEEWAY: Duration = Duration::from_secs(30);
const DEV_THUMBPRINT: &str = "16B7FB8C3F9AB06885A800C64E64C97C4AB5E98C";

/// The captured requests and the tenant each one's token names.
const FIXTURES: [(&str, &str); 5] = [
    ("authenticate-request.xml", "Cust10003"),
    ("rowdata-request.xml", "Cust24709"),
    ("wipe-request.xml", "Cust24709"),
    ("replication-completed-request.xml", "Cust24709"),
    ("tableschema-request.http", "Cust24709"),
];

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/../testdata/superoffice/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The text of the `SignedToken` element, untrimmed (the receiver hands it over like that).
fn signed_token(document: &str) -> String {
    let element = document.find("SignedToken").expect("SignedToken element");
    let start = element + document[element..].find('>').unwrap() + 1;
    let end = start + document[start..].find('<').unwrap();
    document[start..end].to_owned()
}

fn fixture_token(name: &str) -> String {
    signed_token(&fixture(name))
}

fn decode_part(part: &str) -> Map<String, Value> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn encode_part(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

fn parts(token: &str) -> (Map<String, Value>, Map<String, Value>, String) {
    let pieces: Vec<&str> = token.trim().split('.').collect();
    assert_eq!(pieces.len(), 3);
    (
        decode_part(pieces[0]),
        decode_part(pieces[1]),
        pieces[2].to_owned(),
    )
}

fn time_claim(claims: &Map<String, Value>, name: &str) -> DateTime<Utc> {
    DateTime::from_timestamp(claims[name].as_i64().unwrap(), 0).unwrap()
}

/// A moment inside the token's validity window, from its own `nbf`/`exp`.
fn inside_window(token: &str) -> DateTime<Utc> {
    let (_, claims, _) = parts(token);
    let nbf = time_claim(&claims, "nbf");
    nbf + (time_claim(&claims, "exp") - nbf) / 2
}

fn verifier(environment: AuthEnvironment) -> TokenVerifier {
    TokenVerifier::new(environment, None, CLIENT_ID, LEEWAY).unwrap()
}

fn custom_verifier(issuer: &TokenIssuer) -> TokenVerifier {
    TokenVerifier::new(
        AuthEnvironment::Custom,
        Some(issuer.certificate_pem().as_bytes()),
        CLIENT_ID,
        LEEWAY,
    )
    .unwrap()
}

/// Issuers and keys are generated once per test binary: RSA key generation is slow unoptimised.
fn issuer() -> &'static TokenIssuer {
    static ISSUER: OnceLock<TokenIssuer> = OnceLock::new();
    ISSUER.get_or_init(|| TokenIssuer::generate("Mirror Test Federated Login").unwrap())
}

fn other_issuer() -> &'static TokenIssuer {
    static ISSUER: OnceLock<TokenIssuer> = OnceLock::new();
    ISSUER.get_or_init(|| {
        TokenIssuer::from_key(ApplicationKey::generate(1024).unwrap(), "Other Issuer").unwrap()
    })
}

fn application_key() -> &'static ApplicationKey {
    static KEY: OnceLock<ApplicationKey> = OnceLock::new();
    KEY.get_or_init(|| ApplicationKey::generate(1024).unwrap())
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

/// SuperOffice-shaped claims for `context_id`, valid around [`now`].
fn claims_for(context_id: &str) -> Value {
    json!({
        "sub": context_id,
        "nonce": "BDB65A558F193A8DD88E50E7416C0D86",
        CONTEXT_ID_CLAIM: context_id,
        "nbf": (now() - TimeDelta::minutes(1)).timestamp(),
        "exp": (now() + TimeDelta::minutes(5)).timestamp(),
        "iss": "SuperOffice AS",
        "aud": format!("spn:{CLIENT_ID}"),
    })
}

#[test]
fn every_fixture_token_verifies_against_the_development_certificate() {
    let verifier = verifier(AuthEnvironment::Development);
    for (name, context_id) in FIXTURES {
        let token = fixture_token(name);
        let (header, payload, _) = parts(&token);
        assert_eq!(header["kid"], DEV_THUMBPRINT, "{name}");
        let claims = verifier
            .verify(&token, inside_window(&token))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(claims.context_id, context_id, "{name}");
        assert_eq!(claims.context_id, payload["sub"], "{name}");
        assert_eq!(claims.nonce, payload["nonce"], "{name}");
        assert_eq!(claims.nonce.len(), 32, "{name}");
        assert_eq!(claims.not_before, time_claim(&payload, "nbf"), "{name}");
        assert_eq!(claims.expires, time_claim(&payload, "exp"), "{name}");
        // The edges of the window, leeway included.
        let leeway = TimeDelta::from_std(LEEWAY).unwrap();
        assert!(
            verifier.verify(&token, claims.not_before - leeway).is_ok(),
            "{name}"
        );
        let last = claims.expires + leeway - TimeDelta::seconds(1);
        assert!(verifier.verify(&token, last).is_ok(), "{name}");
    }
}

#[test]
fn fixture_tokens_are_refused_outside_their_window() {
    let verifier = verifier(AuthEnvironment::Development);
    let token = fixture_token("authenticate-request.xml");
    let in_2026 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let err = verifier.verify(&token, in_2026).unwrap_err();
    assert_eq!(err.to_string(), "token expired at 2021-09-16T11:30:26Z");

    let err = verifier
        .verify(
            &token,
            Utc.with_ymd_and_hms(2021, 9, 16, 11, 23, 45).unwrap(),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "token is not valid before 2021-09-16T11:24:26Z"
    );
    for (name, _) in FIXTURES {
        let token = fixture_token(name);
        let (_, payload, _) = parts(&token);
        let err = verifier.verify(&token, in_2026).unwrap_err();
        assert!(matches!(err, AuthError::Expired(_)), "{name}: {err}");
        let early = time_claim(&payload, "nbf") - TimeDelta::seconds(31);
        let err = verifier.verify(&token, early).unwrap_err();
        assert!(matches!(err, AuthError::NotYetValid(_)), "{name}: {err}");
    }
}

#[test]
fn fixture_tokens_are_refused_under_the_stage_and_production_certificates() {
    let token = fixture_token("rowdata-request.xml");
    for (environment, label) in [
        (AuthEnvironment::Production, "production"),
        (AuthEnvironment::Stage, "stage"),
    ] {
        let err = verifier(environment)
            .verify(&token, inside_window(&token))
            .unwrap_err();
        assert!(matches!(err, AuthError::KeyIdMismatch { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!("token key id \"{DEV_THUMBPRINT}\" does not match the {label} certificate")
        );
    }
}

#[test]
fn fixture_tokens_are_refused_for_another_application() {
    let token = fixture_token("wipe-request.xml");
    let other = TokenVerifier::new(
        AuthEnvironment::Development,
        None,
        "00000000000000000000000000000000",
        LEEWAY,
    )
    .unwrap();
    let err = other.verify(&token, inside_window(&token)).unwrap_err();
    assert!(matches!(err, AuthError::Audience(_)), "{err}");
    // The audience comparison ignores case.
    let upper = TokenVerifier::new(
        AuthEnvironment::Development,
        None,
        &CLIENT_ID.to_uppercase(),
        LEEWAY,
    )
    .unwrap();
    assert!(upper.verify(&token, inside_window(&token)).is_ok());
}

#[test]
fn tampering_with_a_fixture_token_breaks_its_signature() {
    let verifier = verifier(AuthEnvironment::Development);
    let token = fixture_token("authenticate-request.xml");
    let at = inside_window(&token);
    let pieces: Vec<&str> = token.trim().split('.').collect();

    // One claim changed, signature kept: another tenant's id.
    let mut payload = decode_part(pieces[1]);
    payload.insert("sub".into(), json!("Cust10004"));
    payload.insert(CONTEXT_ID_CLAIM.into(), json!("Cust10004"));
    let forged = format!(
        "{}.{}.{}",
        pieces[0],
        encode_part(&Value::Object(payload)),
        pieces[2]
    );
    let err = verifier.verify(&forged, at).unwrap_err();
    assert_eq!(
        err.to_string(),
        "token signature does not verify against the development certificate"
    );

    // One bit of the signature flipped.
    let mut signature = URL_SAFE_NO_PAD.decode(pieces[2]).unwrap();
    signature[100] ^= 0x01;
    let flipped = format!(
        "{}.{}.{}",
        pieces[0],
        pieces[1],
        URL_SAFE_NO_PAD.encode(&signature)
    );
    let err = verifier.verify(&flipped, at).unwrap_err();
    assert!(matches!(err, AuthError::BadSignature { .. }), "{err}");

    // Signature removed or cut short.
    for cut in ["", &pieces[2][..pieces[2].len() / 2]] {
        let token = format!("{}.{}.{cut}", pieces[0], pieces[1]);
        let err = verifier.verify(&token, at).unwrap_err();
        assert!(
            matches!(
                err,
                AuthError::BadSignature { .. } | AuthError::MalformedToken(_)
            ),
            "{err}"
        );
    }
}

#[test]
fn unsigned_and_wrongly_signed_algorithms_are_refused() {
    let verifier = verifier(AuthEnvironment::Development);
    let token = fixture_token("authenticate-request.xml");
    let at = inside_window(&token);
    let pieces: Vec<&str> = token.trim().split('.').collect();

    for alg in ["none", "None", "NONE", "RS512", "PS256", "ES256", "rs256"] {
        let header = json!({ "alg": alg, "kid": DEV_THUMBPRINT, "typ": "JWT" });
        for signature in ["", pieces[2]] {
            let forged = format!("{}.{}.{signature}", encode_part(&header), pieces[1]);
            let err = verifier.verify(&forged, at).unwrap_err();
            assert!(matches!(err, AuthError::Algorithm(_)), "{alg}: {err}");
        }
    }

    // The classic forgery: HS256 with the certificate's public key as the HMAC secret.
    let certificate = Certificate::bundled(AuthEnvironment::Development).unwrap();
    let public_pem = ApplicationPublicKey::from_text(&certificate.to_pem())
        .unwrap()
        .to_pem();
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(pieces[1]).unwrap()).unwrap();
    for secret in [
        public_pem.as_bytes(),
        certificate.to_pem().as_bytes(),
        certificate.der(),
    ] {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(DEV_THUMBPRINT.into());
        header.x5t = Some(certificate.thumbprint_base64url());
        let key = jsonwebtoken::EncodingKey::from_secret(secret).unwrap();
        let forged = jsonwebtoken::encode(&header, &claims, &key).unwrap();
        let err = verifier.verify(&forged, at).unwrap_err();
        assert_eq!(
            err.to_string(),
            "token algorithm \"HS256\" is not allowed (RS256 only)"
        );
    }

    // RS512 with a real RSA signature from the right-sized key is still not RS256.
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS512);
    header.kid = Some(issuer().certificate().thumbprint_hex());
    let key =
        jsonwebtoken::EncodingKey::from_rsa_pem(issuer().private_key_pem().as_bytes()).unwrap();
    let rs512 = jsonwebtoken::encode(&header, &claims_for("Cust1"), &key).unwrap();
    let err = custom_verifier(issuer()).verify(&rs512, now()).unwrap_err();
    assert!(matches!(err, AuthError::Algorithm(_)), "{err}");
}

#[test]
fn a_valid_signature_from_another_key_is_refused() {
    let verifier = custom_verifier(issuer());
    let intruder = other_issuer();
    // Signed by another key and naming it honestly: wrong kid.
    let token = intruder.sign_claims(&claims_for("Cust1"));
    let err = verifier.verify(&token, now()).unwrap_err();
    assert!(matches!(err, AuthError::KeyIdMismatch { .. }), "{err}");
    // Signed by another key while claiming the pinned certificate's kid and x5t.
    let token = intruder.sign_token(&issuer().header(), &claims_for("Cust1"));
    let err = verifier.verify(&token, now()).unwrap_err();
    assert!(matches!(err, AuthError::BadSignature { .. }), "{err}");
    // The pinned kid, but another certificate's x5t.
    let mut header = issuer().header();
    header["x5t"] = json!(intruder.certificate().thumbprint_base64url());
    let token = issuer().sign_token(&header, &claims_for("Cust1"));
    let err = verifier.verify(&token, now()).unwrap_err();
    assert!(matches!(err, AuthError::ThumbprintMismatch { .. }), "{err}");
    // No kid at all.
    let token = issuer().sign_token(
        &json!({ "alg": "RS256", "typ": "JWT" }),
        &claims_for("Cust1"),
    );
    let err = verifier.verify(&token, now()).unwrap_err();
    assert!(matches!(err, AuthError::MissingKeyId), "{err}");
    // The kid is compared without regard to case, and x5t is optional.
    let header =
        json!({ "alg": "RS256", "kid": issuer().certificate().thumbprint_hex().to_lowercase() });
    let token = issuer().sign_token(&header, &claims_for("Cust1"));
    assert_eq!(verifier.verify(&token, now()).unwrap().context_id, "Cust1");
}

#[test]
fn properly_signed_tokens_with_bad_claims_are_refused() {
    let verifier = custom_verifier(issuer());
    let with = |changes: Value| {
        let mut claims = claims_for("Cust24709");
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        verifier.verify(&issuer().sign_claims(&claims), now())
    };
    assert!(with(json!({})).is_ok());

    let err = with(json!({ CONTEXT_ID_CLAIM: null })).unwrap_err();
    assert_eq!(
        err.to_string(),
        "token has no http://schemes.superoffice.net/identity/ctx claim"
    );
    for insane in [
        "",
        "../Cust1",
        "Cust 1",
        "Cust1;drop table",
        "_x",
        "Ωmega",
        &"C".repeat(65),
    ] {
        let err = with(json!({ CONTEXT_ID_CLAIM: insane, "sub": null })).unwrap_err();
        assert!(matches!(err, AuthError::ContextId(_)), "{insane:?}: {err}");
    }
    let err = with(json!({ CONTEXT_ID_CLAIM: 42 })).unwrap_err();
    assert!(matches!(err, AuthError::InvalidClaim { .. }), "{err}");
    let err = with(json!({ "sub": "Cust1" })).unwrap_err();
    assert!(matches!(err, AuthError::SubjectMismatch { .. }), "{err}");
    for nonce in [json!(""), json!("XYZ"), json!("A".repeat(65)), json!(7)] {
        let err = with(json!({ "nonce": nonce })).unwrap_err();
        assert!(
            matches!(err, AuthError::InvalidClaim { claim: "nonce", .. }),
            "{err}"
        );
    }
    let err = with(json!({ "nonce": null })).unwrap_err();
    assert!(matches!(err, AuthError::MissingClaim("nonce")), "{err}");
    let err = with(json!({ "iss": "SuperOffice ASA" })).unwrap_err();
    assert!(matches!(err, AuthError::Issuer(_)), "{err}");
    let err = with(json!({ "exp": null })).unwrap_err();
    assert!(matches!(err, AuthError::MissingClaim("exp")), "{err}");
    let err = with(json!({ "aud": "spn:someone-else" })).unwrap_err();
    assert_eq!(
        err.to_string(),
        "token audience \"spn:someone-else\" is not this application"
    );
}

#[test]
fn malformed_and_oversized_tokens_are_refused_before_decoding() {
    let verifier = verifier(AuthEnvironment::Development);
    let huge = format!("{}.{}.{}", "a".repeat(MAX_TOKEN_BYTES), "b", "c");
    let err = verifier.verify(&huge, now()).unwrap_err();
    assert!(matches!(err, AuthError::TokenTooLarge { .. }), "{err}");
    for bad in [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "!!!.b.c",
        "e30.e30.",
        "bnVsbA.e30.e30",
    ] {
        let err = verifier.verify(bad, now()).unwrap_err();
        assert!(
            matches!(err, AuthError::MalformedToken(_) | AuthError::MissingKeyId),
            "{bad}: {err}"
        );
    }
    // Claims are not even decoded until the signature verified.
    let header = encode_part(&json!({ "alg": "RS256", "kid": DEV_THUMBPRINT }));
    let err = verifier
        .verify(&format!("{header}.not*base64.c2ln"), now())
        .unwrap_err();
    assert!(matches!(err, AuthError::BadSignature { .. }), "{err}");
}

#[test]
fn issued_tokens_verify_only_under_their_issuers_certificate() {
    let at = now();
    let issued = issuer().issue("Cust24709", CLIENT_ID, at);
    let claims = custom_verifier(issuer()).verify(&issued.token, at).unwrap();
    assert_eq!(claims.context_id, "Cust24709");
    assert_eq!(claims.nonce, issued.nonce);
    assert_eq!(claims.not_before, at - TimeDelta::minutes(1));
    assert_eq!(claims.expires, at + TimeDelta::minutes(5));
    assert!(claims.nonce.len() == 32 && claims.nonce.chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(
        issuer().issue("Cust24709", CLIENT_ID, at).nonce,
        issued.nonce
    );

    // Shaped like SuperOffice's: same header members, same claims.
    let (header, payload, _) = parts(&issued.token);
    let (sample_header, sample_payload, _) = parts(&fixture_token("authenticate-request.xml"));
    let keys = |m: &Map<String, Value>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&header), keys(&sample_header));
    assert_eq!(keys(&payload), keys(&sample_payload));
    assert_eq!(header["kid"], issuer().certificate().thumbprint_hex());

    let err = custom_verifier(other_issuer())
        .verify(&issued.token, at)
        .unwrap_err();
    assert!(matches!(err, AuthError::KeyIdMismatch { .. }), "{err}");
    let err = verifier(AuthEnvironment::Development)
        .verify(&issued.token, at)
        .unwrap_err();
    assert!(matches!(err, AuthError::KeyIdMismatch { .. }), "{err}");
    let err = custom_verifier(issuer())
        .verify(&issued.token, at + TimeDelta::minutes(6))
        .unwrap_err();
    assert!(matches!(err, AuthError::Expired(_)), "{err}");
}

#[test]
fn an_issuer_survives_a_trip_through_pem() {
    let copy =
        TokenIssuer::from_pem(&issuer().certificate_pem(), &issuer().private_key_pem()).unwrap();
    assert_eq!(
        copy.certificate().thumbprint(),
        issuer().certificate().thumbprint()
    );
    let issued = copy.issue("Cust1", CLIENT_ID, now());
    assert!(
        custom_verifier(issuer())
            .verify(&issued.token, now())
            .is_ok()
    );
    // The certificate is a well-formed X.509 certificate that names its subject.
    let parsed = x509_parser::parse_x509_certificate(issuer().certificate().der())
        .unwrap()
        .1;
    assert!(
        parsed
            .subject()
            .to_string()
            .contains("Mirror Test Federated Login")
    );
    let err = TokenIssuer::from_pem(
        &issuer().certificate_pem(),
        &other_issuer().private_key_pem(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("does not belong"), "{err}");
}

#[test]
fn verifiers_are_built_from_settings_naming_the_key_at_fault() {
    let dir = std::env::temp_dir().join(format!("mirror-auth-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let certificate_file = dir.join("issuer.crt");
    std::fs::write(&certificate_file, issuer().certificate_pem()).unwrap();
    let settings = AuthSettings {
        client_id: Some(CLIENT_ID.into()),
        environment: AuthEnvironment::Custom,
        certificate_file: Some(certificate_file.clone()),
        private_key_file: None,
        leeway_secs: 30,
    };
    let verifier = TokenVerifier::from_settings(&settings).unwrap();
    let issued = issuer().issue("Cust1", CLIENT_ID, now());
    assert!(verifier.verify(&issued.token, now()).is_ok());

    let missing = AuthSettings {
        certificate_file: Some(dir.join("absent.crt")),
        ..settings.clone()
    };
    let err = TokenVerifier::from_settings(&missing).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("MIRROR__AUTH__CERTIFICATE_FILE: "),
        "{err}"
    );
    let unset = AuthSettings {
        certificate_file: None,
        ..settings.clone()
    };
    let err = TokenVerifier::from_settings(&unset).unwrap_err();
    assert!(
        err.to_string().contains("MIRROR__AUTH__CERTIFICATE_FILE"),
        "{err}"
    );
    let garbage_file = dir.join("garbage.crt");
    std::fs::write(&garbage_file, "garbage").unwrap();
    let garbage = AuthSettings {
        certificate_file: Some(garbage_file.clone()),
        ..settings.clone()
    };
    let err = TokenVerifier::from_settings(&garbage).unwrap_err();
    assert!(
        err.to_string().contains("MIRROR__AUTH__CERTIFICATE_FILE"),
        "{err}"
    );
    let no_client = AuthSettings {
        client_id: None,
        ..settings.clone()
    };
    let err = TokenVerifier::from_settings(&no_client).unwrap_err();
    assert!(err.to_string().contains("MIRROR__AUTH__CLIENT_ID"), "{err}");
    let lax = AuthSettings {
        leeway_secs: 3600,
        ..settings.clone()
    };
    let err = TokenVerifier::from_settings(&lax).unwrap_err();
    assert!(
        err.to_string().contains("MIRROR__AUTH__LEEWAY_SECS"),
        "{err}"
    );
    // A bundled environment uses its own certificate whatever the file says.
    let development = AuthSettings {
        environment: AuthEnvironment::Development,
        ..settings.clone()
    };
    let verifier = TokenVerifier::from_settings(&development).unwrap();
    assert_eq!(verifier.certificate().thumbprint_hex(), DEV_THUMBPRINT);

    let err = ApplicationKey::from_settings(&settings).unwrap_err();
    assert!(
        err.to_string().contains("MIRROR__AUTH__PRIVATE_KEY_FILE"),
        "{err}"
    );
    let with_bad_key = AuthSettings {
        private_key_file: Some(garbage_file),
        ..settings.clone()
    };
    let err = ApplicationKey::from_settings(&with_bad_key).unwrap_err();
    assert!(
        err.to_string().contains("MIRROR__AUTH__PRIVATE_KEY_FILE"),
        "{err}"
    );
    let key_file = dir.join("app.xml");
    std::fs::write(&key_file, application_key().to_rsa_xml()).unwrap();
    let with_key = AuthSettings {
        private_key_file: Some(key_file),
        ..settings
    };
    let loaded = ApplicationKey::from_settings(&with_key).unwrap();
    assert_eq!(loaded.public_key(), application_key().public_key());
    std::fs::remove_dir_all(dir).unwrap();

    // Contradictory or empty arguments are refused up front.
    for (environment, certificate, client_id) in [
        (AuthEnvironment::Custom, None, CLIENT_ID),
        (
            AuthEnvironment::Production,
            Some(b"x".as_slice()),
            CLIENT_ID,
        ),
        (AuthEnvironment::Production, None, " "),
    ] {
        assert!(TokenVerifier::new(environment, certificate, client_id, LEEWAY).is_err());
    }
}

#[test]
fn answers_are_signed_and_checked_like_superoffice_does() {
    let key = application_key();
    let public = key.public_key();
    let nonce = "BDB65A558F193A8DD88E50E7416C0D86";
    let signed_at = Utc.with_ymd_and_hms(2021, 9, 16, 11, 25, 41).unwrap();
    let answer = key.sign_answer(nonce, signed_at);

    // The shape of SuperOffice's sample answer, from a key of the same size.
    let sample_document = fixture("authenticate-response.xml");
    let start = sample_document.find("<SignedApplicationToken>").unwrap() + 24;
    let end = sample_document.find("</SignedApplicationToken>").unwrap();
    let sample = &sample_document[start..end];
    let (sample_prefix, sample_signature) = sample.rsplit_once('.').unwrap();
    let (prefix, signature) = answer.rsplit_once('.').unwrap();
    assert_eq!(prefix, sample_prefix);
    assert_eq!(prefix, "BDB65A558F193A8DD88E50E7416C0D86.202109161125");
    assert_eq!(signature.len(), sample_signature.len());
    assert!(signature.ends_with('='));
    assert_eq!(STANDARD.decode(signature).unwrap().len(), 128);

    assert!(public.verify_answer(&answer, nonce, signed_at).is_ok());
    for minutes in [-15, 15] {
        let at =
            Utc.with_ymd_and_hms(2021, 9, 16, 11, 25, 0).unwrap() + TimeDelta::minutes(minutes);
        assert!(
            public.verify_answer(&answer, nonce, at).is_ok(),
            "{minutes}"
        );
    }
    for minutes in [-16, 16, 24 * 60] {
        let at =
            Utc.with_ymd_and_hms(2021, 9, 16, 11, 25, 0).unwrap() + TimeDelta::minutes(minutes);
        let err = public.verify_answer(&answer, nonce, at).unwrap_err();
        assert!(
            matches!(err, AuthError::AnswerTime { .. }),
            "{minutes}: {err}"
        );
    }
    let err = public
        .verify_answer(&answer, "A74CC8ACFB20FF5D6C1540957D4F5671", signed_at)
        .unwrap_err();
    assert!(matches!(err, AuthError::AnswerNonce), "{err}");

    // A signature by someone else, a tampered signature, a tampered timestamp.
    let foreign = ApplicationKey::from_text(&other_issuer().private_key_pem())
        .unwrap()
        .sign_answer(nonce, signed_at);
    let mut bytes = STANDARD.decode(signature).unwrap();
    bytes[0] ^= 0x80;
    let tampered = format!("{prefix}.{}", STANDARD.encode(bytes));
    let restamped = format!("{nonce}.202109161126.{signature}");
    for bad in [foreign, tampered, restamped] {
        let err = public.verify_answer(&bad, nonce, signed_at).unwrap_err();
        assert!(matches!(err, AuthError::AnswerSignature), "{err}");
    }
    for malformed in [
        "",
        "x",
        &format!("{nonce}.2021091611.{signature}"),
        &format!("{prefix}.***"),
    ] {
        let err = public
            .verify_answer(malformed, nonce, signed_at)
            .unwrap_err();
        assert!(
            matches!(err, AuthError::MalformedAnswer(_) | AuthError::AnswerNonce),
            "{malformed}: {err}"
        );
    }
}
