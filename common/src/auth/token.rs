//! Verifying the JWT that SuperOffice sends with every call (PROTOCOL.md, "Authentication").
//!
//! The order of the checks matters: the size limit comes before any decoding, the header is read
//! and the algorithm pinned to RS256 before any key is used (so neither `alg: none` nor the
//! HS256-signed-with-the-public-key forgery can reach a verifier), the key id must name the pinned
//! certificate, and only after the signature verified are the claims looked at.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::certificate::Certificate;
use super::claims::{self, Claims};
use super::error::{AuthError, printable};
use crate::config::{AuthEnvironment, AuthSettings};

/// Largest token accepted, checked before any decoding. SuperOffice's are under 1 KiB.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Largest clock-skew allowance accepted: more would stretch a five-minute token's life.
pub const MAX_LEEWAY: Duration = Duration::from_secs(5 * 60);

/// Checks incoming tokens against one pinned certificate and our client id.
#[derive(Clone)]
pub struct TokenVerifier {
    certificate: Certificate,
    key: DecodingKey,
    validation: Validation,
    audience: String,
    leeway: TimeDelta,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("certificate", &self.certificate)
            .field("audience", &self.audience)
            .field("leeway", &self.leeway)
            .finish()
    }
}

impl TokenVerifier {
    /// A verifier for `environment`'s bundled certificate, or for `custom_certificate_pem`
    /// (PEM or DER) when the environment is `custom`, for tokens addressed to
    /// `spn:<client_id>`, tolerating `leeway` of clock skew on `nbf`/`exp`.
    pub fn new(
        environment: AuthEnvironment,
        custom_certificate_pem: Option<&[u8]>,
        client_id: &str,
        leeway: Duration,
    ) -> Result<Self, AuthError> {
        let certificate = match (environment, custom_certificate_pem) {
            (AuthEnvironment::Custom, Some(pem)) => Certificate::parse(pem, "custom")?,
            (AuthEnvironment::Custom, None) => {
                return Err(AuthError::Settings(
                    "the custom environment needs a certificate".into(),
                ));
            }
            (
                AuthEnvironment::Development | AuthEnvironment::Stage | AuthEnvironment::Production,
                Some(_),
            ) => {
                return Err(AuthError::Settings(
                    "a certificate is only used with the custom environment".into(),
                ));
            }
            (
                AuthEnvironment::Development | AuthEnvironment::Stage | AuthEnvironment::Production,
                None,
            ) => Certificate::bundled(environment)?,
        };
        TokenVerifier::with_certificate(certificate, client_id, leeway)
    }

    /// A verifier pinned to `certificate`.
    pub fn with_certificate(
        certificate: Certificate,
        client_id: &str,
        leeway: Duration,
    ) -> Result<Self, AuthError> {
        let client_id = client_id.trim();
        if client_id.is_empty() || client_id.chars().any(|c| !c.is_ascii_graphic()) {
            return Err(AuthError::Settings(
                "the client id must be non-empty printable ASCII".into(),
            ));
        }
        if leeway > MAX_LEEWAY {
            return Err(AuthError::Settings(format!(
                "a leeway of {}s is more than the {}s allowed",
                leeway.as_secs(),
                MAX_LEEWAY.as_secs()
            )));
        }
        let leeway = TimeDelta::from_std(leeway)
            .map_err(|_| AuthError::Settings("the leeway is out of range".into()))?;
        let key = DecodingKey::from_rsa_raw_components(
            certificate.rsa_modulus(),
            certificate.rsa_exponent(),
        );
        // The library checks the algorithm and the signature only; the claims, times included,
        // are ours to check against the caller's clock.
        let mut validation = Validation::new(Algorithm::RS256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        Ok(TokenVerifier {
            certificate,
            key,
            validation,
            audience: format!("spn:{client_id}"),
            leeway,
        })
    }

    /// The verifier the settings describe; reads the certificate file for `custom`. Errors name
    /// the `MIRROR__AUTH__…` key at fault.
    pub fn from_settings(settings: &AuthSettings) -> Result<Self, AuthError> {
        const CLIENT_ID: &str = "MIRROR__AUTH__CLIENT_ID";
        const CERTIFICATE_FILE: &str = "MIRROR__AUTH__CERTIFICATE_FILE";
        const LEEWAY: &str = "MIRROR__AUTH__LEEWAY_SECS";
        let config = |key: &'static str, message: String| AuthError::Config { key, message };

        let client_id = settings
            .client_id
            .as_deref()
            .filter(|id| !id.trim().is_empty())
            .ok_or_else(|| config(CLIENT_ID, "is required".into()))?;
        let leeway = Duration::from_secs(settings.leeway_secs);
        if leeway > MAX_LEEWAY {
            return Err(config(
                LEEWAY,
                format!("must be at most {}", MAX_LEEWAY.as_secs()),
            ));
        }
        let certificate = match settings.environment {
            AuthEnvironment::Custom => {
                let path = settings.certificate_file.as_deref().ok_or_else(|| {
                    config(
                        CERTIFICATE_FILE,
                        "is required when MIRROR__AUTH__ENVIRONMENT is custom".into(),
                    )
                })?;
                let bytes = std::fs::read(path).map_err(|source| {
                    let read = AuthError::ReadFile {
                        path: path.to_owned(),
                        source,
                    };
                    config(CERTIFICATE_FILE, read.to_string())
                })?;
                Certificate::parse(&bytes, "custom")
                    .map_err(|e| config(CERTIFICATE_FILE, format!("{}: {e}", path.display())))?
            }
            AuthEnvironment::Development | AuthEnvironment::Stage | AuthEnvironment::Production => {
                if let Some(path) = &settings.certificate_file {
                    tracing::warn!(
                        path = %path.display(),
                        environment = ?settings.environment,
                        "Ignoring MIRROR__AUTH__CERTIFICATE_FILE: the environment's bundled certificate is used."
                    );
                }
                Certificate::bundled(settings.environment)?
            }
        };
        TokenVerifier::with_certificate(certificate, client_id, leeway)
            .map_err(|e| config(CLIENT_ID, e.to_string()))
    }

    /// The certificate tokens must be signed with.
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// Verifies `token` (surrounding whitespace ignored) as of `now` and returns its claims.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Claims, AuthError> {
        let token = token.trim();
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::TokenTooLarge {
                size: token.len(),
                limit: MAX_TOKEN_BYTES,
            });
        }
        let mut parts = token.split('.');
        let (Some(header), Some(_), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::MalformedToken("not three dot-separated parts"));
        };
        self.check_header(header)?;

        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &self.key, &self.validation)
            .map_err(|e| self.library_error(e.into_kind()))?;
        claims::check(&data.claims, &self.audience, self.leeway, now)
    }

    /// Pins the algorithm and the certificate before the signature is looked at.
    fn check_header(&self, encoded: &str) -> Result<(), AuthError> {
        let json = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| AuthError::MalformedToken("header is not base64url"))?;
        let header: Map<String, Value> = serde_json::from_slice(&json)
            .map_err(|_| AuthError::MalformedToken("header is not a JSON object"))?;
        match header.get("alg") {
            Some(Value::String(alg)) if alg == "RS256" => {}
            Some(Value::String(alg)) => return Err(AuthError::Algorithm(printable(alg))),
            Some(_) | None => return Err(AuthError::MalformedToken("header has no alg")),
        }
        let kid = match header.get("kid") {
            Some(Value::String(kid)) => kid,
            Some(_) => return Err(AuthError::MalformedToken("header kid is not a string")),
            None => return Err(AuthError::MissingKeyId),
        };
        if !kid.eq_ignore_ascii_case(&self.certificate.thumbprint_hex()) {
            return Err(AuthError::KeyIdMismatch {
                kid: printable(kid),
                certificate: self.certificate.label().to_owned(),
            });
        }
        match header.get("x5t") {
            None => {}
            Some(Value::String(x5t)) if *x5t == self.certificate.thumbprint_base64url() => {}
            Some(Value::String(x5t)) => {
                return Err(AuthError::ThumbprintMismatch {
                    x5t: printable(x5t),
                    certificate: self.certificate.label().to_owned(),
                });
            }
            Some(_) => return Err(AuthError::MalformedToken("header x5t is not a string")),
        }
        Ok(())
    }

    fn library_error(&self, kind: ErrorKind) -> AuthError {
        match kind {
            ErrorKind::InvalidSignature => AuthError::BadSignature {
                certificate: self.certificate.label().to_owned(),
            },
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                AuthError::Algorithm("\"?\"".into())
            }
            ErrorKind::Base64(_) => AuthError::MalformedToken("a part is not base64url"),
            ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
                AuthError::MalformedToken("claims are not a JSON object")
            }
            ErrorKind::InvalidToken => AuthError::MalformedToken("header is not acceptable"),
            _ => AuthError::MalformedToken("cannot be verified"),
        }
    }
}
