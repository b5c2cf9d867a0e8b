//! Our application's RSA key pair: the private key that signs our answer to Authenticate, and
//! its public half (which SuperOffice holds, and the simulator uses to check our answers).
//!
//! SuperOffice's Developer Portal hands out the private key in .NET RSA-XML form; operators may
//! also hold it as PEM (PKCS#1 or PKCS#8). Both are read; both are written, so `mirrorctl keys`
//! can convert between them. Everything a key can be turned into is computed once, when it is
//! loaded, so that the accessors cannot fail later.

use std::path::Path;

use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::der::zeroize::Zeroizing;
use rsa::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rsa::signature::{RandomizedSigner, Verifier};
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::{BigUint, RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;

use super::certificate::Certificate;
use super::error::AuthError;
use super::rsa_xml;
use crate::config::AuthSettings;

/// Smallest RSA key accepted, in bits. SuperOffice's sample application key has 1024.
pub const MIN_KEY_BITS: usize = 1024;
/// Largest RSA key accepted, in bits.
pub const MAX_KEY_BITS: usize = 4096;

/// Our application's private key.
#[derive(Clone)]
pub struct ApplicationKey {
    signing: SigningKey<Sha256>,
    public: ApplicationPublicKey,
    pem: Zeroizing<String>,
    xml: Zeroizing<String>,
}

/// The public half of an application key.
#[derive(Clone)]
pub struct ApplicationPublicKey {
    key: RsaPublicKey,
    verifying: VerifyingKey<Sha256>,
    pem: String,
    xml: String,
}

impl std::fmt::Debug for ApplicationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplicationKey")
            .field("bits", &self.bits())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ApplicationPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplicationPublicKey")
            .field("bits", &self.bits())
            .finish_non_exhaustive()
    }
}

impl PartialEq for ApplicationPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for ApplicationPublicKey {}

fn key_error(message: impl Into<String>) -> AuthError {
    AuthError::Key(message.into())
}

/// The label of the first PEM block in `text` (`RSA PRIVATE KEY`, `PUBLIC KEY`, …).
fn pem_label(text: &str) -> Option<&str> {
    let start = text.find("-----BEGIN ")? + "-----BEGIN ".len();
    let len = text[start..].find("-----")?;
    Some(&text[start..start + len])
}

/// Key files come with byte-order marks and trailing newlines; neither matters.
fn clean(text: &str) -> &str {
    text.trim_start_matches('\u{feff}').trim()
}

impl ApplicationKey {
    /// Reads a private key in .NET RSA-XML form (with `<D>`) or PEM (PKCS#1 or PKCS#8).
    pub fn from_text(text: &str) -> Result<Self, AuthError> {
        let text = clean(text);
        if text.starts_with('<') {
            let xml = rsa_xml::parse(text)?;
            let n = xml.require("Modulus")?.clone();
            let e = xml.require("Exponent")?.clone();
            let d = xml.require("D")?.clone();
            // P and Q are optional in principle: the primes can be recovered from N, E and D.
            let primes = match (xml.get("P"), xml.get("Q")) {
                (Some(p), Some(q)) => vec![p.clone(), q.clone()],
                _ => Vec::new(),
            };
            let key = RsaPrivateKey::from_components(n, e, d, primes)
                .map_err(|e| key_error(format!("RSA-XML key is not a valid RSA key: {e}")))?;
            return ApplicationKey::from_rsa(key);
        }
        let key = match pem_label(text) {
            Some("RSA PRIVATE KEY") => RsaPrivateKey::from_pkcs1_pem(text)
                .map_err(|e| key_error(format!("PKCS#1 key cannot be read: {e}")))?,
            Some("PRIVATE KEY") => RsaPrivateKey::from_pkcs8_pem(text)
                .map_err(|e| key_error(format!("PKCS#8 key cannot be read: {e}")))?,
            Some("ENCRYPTED PRIVATE KEY") => {
                return Err(key_error("encrypted private keys are not supported"));
            }
            Some(label @ ("PUBLIC KEY" | "RSA PUBLIC KEY" | "CERTIFICATE")) => {
                return Err(key_error(format!(
                    "a {label} holds no private key; the private key is needed"
                )));
            }
            Some(label) => return Err(key_error(format!("unexpected PEM block {label}"))),
            None => return Err(key_error("neither .NET RSA-XML nor PEM")),
        };
        ApplicationKey::from_rsa(key)
    }

    /// Reads a key file (RSA-XML or PEM).
    pub fn load(path: &Path) -> Result<Self, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        ApplicationKey::from_text(&text).map_err(|e| match e {
            AuthError::Key(message) => key_error(format!("{}: {message}", path.display())),
            other => other,
        })
    }

    /// The key `MIRROR__AUTH__PRIVATE_KEY_FILE` names; errors name that key.
    pub fn from_settings(settings: &AuthSettings) -> Result<Self, AuthError> {
        const KEY: &str = "MIRROR__AUTH__PRIVATE_KEY_FILE";
        let path = settings
            .private_key_file
            .as_deref()
            .ok_or_else(|| AuthError::Config {
                key: KEY,
                message: "is required".into(),
            })?;
        ApplicationKey::load(path).map_err(|e| AuthError::Config {
            key: KEY,
            message: e.to_string(),
        })
    }

    /// A new random key of `bits` bits (1024 to 4096; slow in unoptimised builds).
    pub fn generate(bits: usize) -> Result<Self, AuthError> {
        if !(MIN_KEY_BITS..=MAX_KEY_BITS).contains(&bits) {
            return Err(key_error(format!(
                "{bits}-bit keys are not supported; {MIN_KEY_BITS} to {MAX_KEY_BITS} are"
            )));
        }
        let key = RsaPrivateKey::new(&mut rand::thread_rng(), bits)
            .map_err(|e| key_error(format!("key generation failed: {e}")))?;
        ApplicationKey::from_rsa(key)
    }

    /// Wraps an RSA key after checking that every form we offer can be produced from it.
    pub fn from_rsa(mut key: RsaPrivateKey) -> Result<Self, AuthError> {
        let public = ApplicationPublicKey::from_rsa(key.to_public_key())?;
        if key.primes().len() != 2 {
            return Err(key_error("multi-prime RSA keys are not supported"));
        }
        if key.dp().is_none() || key.dq().is_none() {
            key.precompute()
                .map_err(|e| key_error(format!("invalid RSA key: {e}")))?;
        }
        let pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| key_error(format!("cannot encode the key as PEM: {e}")))?;
        let xml = Zeroizing::new(private_xml(&key)?);
        Ok(ApplicationKey {
            signing: SigningKey::new(key),
            public,
            pem,
            xml,
        })
    }

    /// Size of the modulus in bits.
    pub fn bits(&self) -> usize {
        self.public.bits()
    }

    /// The key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn to_pem(&self) -> String {
        self.pem.to_string()
    }

    /// The key in .NET RSA-XML form, as `RSA.ToXmlString(true)` writes it.
    pub fn to_rsa_xml(&self) -> String {
        self.xml.to_string()
    }

    /// The public half.
    pub fn public_key(&self) -> ApplicationPublicKey {
        self.public.clone()
    }

    /// The RSA key itself.
    pub(crate) fn rsa_key(&self) -> &RsaPrivateKey {
        self.signing.as_ref()
    }

    /// RSA PKCS#1 v1.5 signature over SHA-256 of `message` (blinded, so its timing says nothing
    /// about the key). Key sizes are bounded at construction, so signing cannot fail.
    pub(crate) fn sign_pkcs1_sha256(&self, message: &[u8]) -> Vec<u8> {
        let signature: Signature = self.signing.sign_with_rng(&mut rand::thread_rng(), message);
        Box::<[u8]>::from(signature).into_vec()
    }
}

fn private_xml(key: &RsaPrivateKey) -> Result<String, AuthError> {
    let size = key.size();
    let half = size.div_ceil(2);
    let (Some(dp), Some(dq), Some(inverse_q)) = (key.dp(), key.dq(), key.crt_coefficient()) else {
        return Err(key_error("the key's CRT values cannot be computed"));
    };
    let [p, q] = key.primes() else {
        return Err(key_error("multi-prime RSA keys are not supported"));
    };
    Ok(rsa_xml::write(&[
        ("Modulus", rsa_xml::fixed_bytes(key.n(), size)),
        ("Exponent", key.e().to_bytes_be()),
        ("P", rsa_xml::fixed_bytes(p, half)),
        ("Q", rsa_xml::fixed_bytes(q, half)),
        ("DP", rsa_xml::fixed_bytes(dp, half)),
        ("DQ", rsa_xml::fixed_bytes(dq, half)),
        ("InverseQ", rsa_xml::fixed_bytes(&inverse_q, half)),
        ("D", rsa_xml::fixed_bytes(key.d(), size)),
    ]))
}

impl ApplicationPublicKey {
    /// Reads a public key: RSA-XML (`<Modulus>`, `<Exponent>`; private members are ignored), or
    /// PEM: SubjectPublicKeyInfo, PKCS#1, a certificate, or a private key (its public half).
    pub fn from_text(text: &str) -> Result<Self, AuthError> {
        let text = clean(text);
        if text.starts_with('<') {
            let xml = rsa_xml::parse(text)?;
            let n = xml.require("Modulus")?.clone();
            let e = xml.require("Exponent")?.clone();
            return ApplicationPublicKey::from_components(n, e);
        }
        match pem_label(text) {
            Some("PUBLIC KEY") => ApplicationPublicKey::from_rsa(
                RsaPublicKey::from_public_key_pem(text)
                    .map_err(|e| key_error(format!("public key cannot be read: {e}")))?,
            ),
            Some("RSA PUBLIC KEY") => ApplicationPublicKey::from_rsa(
                RsaPublicKey::from_pkcs1_pem(text)
                    .map_err(|e| key_error(format!("PKCS#1 public key cannot be read: {e}")))?,
            ),
            Some("CERTIFICATE") => {
                let certificate = Certificate::parse(text.as_bytes(), "given")?;
                ApplicationPublicKey::from_components(
                    BigUint::from_bytes_be(certificate.rsa_modulus()),
                    BigUint::from_bytes_be(certificate.rsa_exponent()),
                )
            }
            Some(_) => Ok(ApplicationKey::from_text(text)?.public_key()),
            None => Err(key_error("neither .NET RSA-XML nor PEM")),
        }
    }

    fn from_components(n: BigUint, e: BigUint) -> Result<Self, AuthError> {
        let key = RsaPublicKey::new(n, e)
            .map_err(|e| key_error(format!("not a valid RSA public key: {e}")))?;
        ApplicationPublicKey::from_rsa(key)
    }

    /// Wraps an RSA public key after checking its size.
    pub fn from_rsa(key: RsaPublicKey) -> Result<Self, AuthError> {
        let bits = key.n().bits();
        if !(MIN_KEY_BITS..=MAX_KEY_BITS).contains(&bits) {
            return Err(key_error(format!(
                "{bits}-bit keys are not supported; {MIN_KEY_BITS} to {MAX_KEY_BITS} are"
            )));
        }
        let pem = key
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| key_error(format!("cannot encode the key as PEM: {e}")))?;
        let xml = rsa_xml::write(&[
            ("Modulus", rsa_xml::fixed_bytes(key.n(), key.size())),
            ("Exponent", key.e().to_bytes_be()),
        ]);
        Ok(ApplicationPublicKey {
            verifying: VerifyingKey::new(key.clone()),
            key,
            pem,
            xml,
        })
    }

    /// Size of the modulus in bits.
    pub fn bits(&self) -> usize {
        self.key.n().bits()
    }

    /// The key as SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn to_pem(&self) -> String {
        self.pem.clone()
    }

    /// The key in .NET RSA-XML form, as `RSA.ToXmlString(false)` writes it.
    pub fn to_rsa_xml(&self) -> String {
        self.xml.clone()
    }

    /// The RSA modulus, big-endian.
    pub fn modulus(&self) -> Vec<u8> {
        self.key.n().to_bytes_be()
    }

    /// The RSA public exponent, big-endian.
    pub fn exponent(&self) -> Vec<u8> {
        self.key.e().to_bytes_be()
    }

    /// Whether `signature` is an RSA PKCS#1 v1.5 / SHA-256 signature of `message` by this key.
    pub(crate) fn verify_pkcs1_sha256(&self, message: &[u8], signature: &[u8]) -> bool {
        Signature::try_from(signature)
            .is_ok_and(|signature| self.verifying.verify(message, &signature).is_ok())
    }
}

#[cfg(test)]
#[path = "key_tests.rs"]
mod tests;
