//! The token-signing certificates we pin: SuperOffice's three public "Federated Login"
//! certificates, bundled into the binary, or a custom one (the simulator's, tests').
//!
//! A token names its signing certificate by SHA-1 thumbprint (`kid` in hex, `x5t` in base64url);
//! we compare that name with the pinned certificate and verify the signature with the
//! certificate's RSA key. The certificate's own validity dates are not checked: SuperOffice's
//! certificates are self-issued, valid for a century, and trust comes from pinning, not a chain.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha1::{Digest, Sha1};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

use super::error::AuthError;
use crate::config::AuthEnvironment;

const DEVELOPMENT: &[u8] = include_bytes!("../../certs/federated-login-development.crt");
const STAGE: &[u8] = include_bytes!("../../certs/federated-login-stage.crt");
const PRODUCTION: &[u8] = include_bytes!("../../certs/federated-login-production.crt");

/// RSA modulus sizes accepted for a token-signing key, in bits.
const MIN_KEY_BITS: usize = 1024;
const MAX_KEY_BITS: usize = 4096;

/// A pinned token-signing certificate with what verification needs from it.
#[derive(Clone)]
pub struct Certificate {
    label: String,
    der: Vec<u8>,
    thumbprint: [u8; 20],
    modulus: Vec<u8>,
    exponent: Vec<u8>,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("label", &self.label)
            .field("thumbprint", &self.thumbprint_hex())
            .finish()
    }
}

impl Certificate {
    /// SuperOffice's certificate for `environment`; `custom` has none bundled.
    pub fn bundled(environment: AuthEnvironment) -> Result<Certificate, AuthError> {
        let (pem, label) = match environment {
            AuthEnvironment::Development => (DEVELOPMENT, "development"),
            AuthEnvironment::Stage => (STAGE, "stage"),
            AuthEnvironment::Production => (PRODUCTION, "production"),
            AuthEnvironment::Custom => {
                return Err(AuthError::Settings(
                    "the custom environment has no bundled certificate".into(),
                ));
            }
        };
        Certificate::parse(pem, label)
    }

    /// Reads a certificate in PEM (the first `CERTIFICATE` block) or DER form. `label` names it
    /// in error messages ("does not match the custom certificate").
    pub fn parse(bytes: &[u8], label: &str) -> Result<Certificate, AuthError> {
        let der = if bytes.first() == Some(&0x30) {
            bytes.to_vec()
        } else {
            let (_, pem) = x509_parser::pem::parse_x509_pem(bytes).map_err(|_| {
                AuthError::Certificate(format!("the {label} certificate is not PEM or DER"))
            })?;
            if pem.label != "CERTIFICATE" {
                return Err(AuthError::Certificate(format!(
                    "the {label} certificate's PEM block is {}, not CERTIFICATE",
                    pem.label
                )));
            }
            pem.contents
        };
        let (rest, certificate) = X509Certificate::from_der(&der).map_err(|e| {
            AuthError::Certificate(format!("the {label} certificate cannot be parsed: {e}"))
        })?;
        if !rest.is_empty() {
            return Err(AuthError::Certificate(format!(
                "the {label} certificate has trailing bytes"
            )));
        }
        let key = certificate.public_key().parsed().map_err(|e| {
            AuthError::Certificate(format!("the {label} certificate's key cannot be read: {e}"))
        })?;
        let PublicKey::RSA(rsa) = key else {
            return Err(AuthError::Certificate(format!(
                "the {label} certificate does not hold an RSA key"
            )));
        };
        let modulus = strip_leading_zeros(rsa.modulus).to_vec();
        let exponent = strip_leading_zeros(rsa.exponent).to_vec();
        let bits = modulus.len() * 8 - modulus.first().map_or(8, |b| b.leading_zeros() as usize);
        if !(MIN_KEY_BITS..=MAX_KEY_BITS).contains(&bits) || exponent.is_empty() {
            return Err(AuthError::Certificate(format!(
                "the {label} certificate's RSA key has {bits} bits; {MIN_KEY_BITS} to {MAX_KEY_BITS} are accepted"
            )));
        }
        let thumbprint = Sha1::digest(&der).into();
        Ok(Certificate {
            label: label.to_owned(),
            der,
            thumbprint,
            modulus,
            exponent,
        })
    }

    /// How error messages name this certificate: `development`, `stage`, `production`, `custom`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The certificate in DER form.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The certificate as a PEM `CERTIFICATE` block.
    pub fn to_pem(&self) -> String {
        pem_block("CERTIFICATE", &self.der)
    }

    /// SHA-1 over the DER bytes: what the token's `kid` and `x5t` name.
    pub fn thumbprint(&self) -> [u8; 20] {
        self.thumbprint
    }

    /// The thumbprint in upper-case hex, as SuperOffice writes it in `kid`.
    pub fn thumbprint_hex(&self) -> String {
        hex::encode_upper(self.thumbprint)
    }

    /// The thumbprint in unpadded base64url, as in `x5t`.
    pub fn thumbprint_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.thumbprint)
    }

    /// The RSA modulus, big-endian without leading zeros.
    pub fn rsa_modulus(&self) -> &[u8] {
        &self.modulus
    }

    /// The RSA public exponent, big-endian without leading zeros.
    pub fn rsa_exponent(&self) -> &[u8] {
        &self.exponent
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// Wraps DER bytes in a PEM block with 64-character lines.
pub(crate) fn pem_block(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_certificates_have_superoffices_thumbprints() {
        let cases = [
            (
                AuthEnvironment::Development,
                "16B7FB8C3F9AB06885A800C64E64C97C4AB5E98C",
            ),
            (
                AuthEnvironment::Stage,
                "484903A7732B928C7980A39D38E947EA119F1089",
            ),
            (
                AuthEnvironment::Production,
                "60B61583DBB2B7EEC46FD01EC0056E62451D61F3",
            ),
        ];
        for (environment, thumbprint) in cases {
            let cert = Certificate::bundled(environment).unwrap();
            assert_eq!(cert.thumbprint_hex(), thumbprint, "{environment:?}");
            assert_eq!(cert.rsa_modulus().len(), 256, "2048-bit keys");
            assert_eq!(cert.rsa_exponent(), [1, 0, 1]);
        }
        let dev = Certificate::bundled(AuthEnvironment::Development).unwrap();
        // The x5t of the sample tokens' header.
        assert_eq!(dev.thumbprint_base64url(), "Frf7jD-asGiFqADGTmTJfEq16Yw");
        assert_eq!(dev.label(), "development");
        assert!(Certificate::bundled(AuthEnvironment::Custom).is_err());
    }

    #[test]
    fn pem_and_der_forms_are_the_same_certificate() {
        let dev = Certificate::bundled(AuthEnvironment::Development).unwrap();
        let from_der = Certificate::parse(dev.der(), "custom").unwrap();
        let from_pem = Certificate::parse(dev.to_pem().as_bytes(), "custom").unwrap();
        assert_eq!(from_der.thumbprint(), dev.thumbprint());
        assert_eq!(from_pem.thumbprint(), dev.thumbprint());
        assert_eq!(from_pem.rsa_modulus(), dev.rsa_modulus());
    }

    #[test]
    fn garbage_is_refused_with_its_label() {
        let err = Certificate::parse(b"not a certificate", "custom").unwrap_err();
        assert!(err.to_string().contains("custom certificate"), "{err}");
        let key_pem = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
        let err = Certificate::parse(key_pem.as_bytes(), "custom").unwrap_err();
        assert!(err.to_string().contains("PUBLIC KEY"), "{err}");
        let dev = Certificate::bundled(AuthEnvironment::Development).unwrap();
        let mut der = dev.der().to_vec();
        der.push(0);
        let err = Certificate::parse(&der, "custom").unwrap_err();
        assert!(err.to_string().contains("trailing"), "{err}");
    }
}
