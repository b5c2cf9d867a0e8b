//! A stand-in for SuperOffice's Federated Login: it issues tokens exactly like SuperOffice's
//! (same header, same claims, same lifetime), signed with a key whose self-signed certificate a
//! receiver in the `custom` environment pins. The simulator and the tests use it; production
//! never does.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use rand::RngCore;
use rsa::pkcs1v15::{Signature, SigningKey};
use serde_json::{Value, json};
use sha2::Sha256;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::asn1::{ObjectIdentifier, SetOfVec};
use x509_cert::der::{Any, Encode, Tag};
use x509_cert::name::{RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::Validity;

use super::certificate::Certificate;
use super::claims::{CONTEXT_ID_CLAIM, ISSUER};
use super::error::AuthError;
use super::key::ApplicationKey;

/// Key size of a generated issuer, as SuperOffice's certificates have.
pub const ISSUER_KEY_BITS: usize = 2048;
/// A SuperOffice token is valid from one minute before it is issued…
pub const TOKEN_VALID_BEFORE: TimeDelta = TimeDelta::minutes(1);
/// …to five minutes after.
pub const TOKEN_VALID_AFTER: TimeDelta = TimeDelta::minutes(5);
/// How long a generated issuer certificate is valid (nothing checks it; X.509 needs a date).
const CERTIFICATE_LIFETIME: Duration = Duration::from_secs(20 * 365 * 24 * 60 * 60);
/// X.520 commonName.
const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");

/// A token as SuperOffice would send it, with the nonce our answer must echo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub token: String,
    pub nonce: String,
}

/// Issues SuperOffice-shaped tokens with its own key and certificate.
#[derive(Clone)]
pub struct TokenIssuer {
    key: ApplicationKey,
    certificate: Certificate,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("certificate", &self.certificate)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// A new issuer: a fresh 2048-bit RSA key and a self-signed certificate for `common_name`.
    pub fn generate(common_name: &str) -> Result<Self, AuthError> {
        TokenIssuer::from_key(ApplicationKey::generate(ISSUER_KEY_BITS)?, common_name)
    }

    /// An issuer for an existing key, with a new self-signed certificate for `common_name`.
    pub fn from_key(key: ApplicationKey, common_name: &str) -> Result<Self, AuthError> {
        let der = self_signed_certificate(&key, common_name)?;
        let certificate = Certificate::parse(&der, "custom")?;
        Ok(TokenIssuer { key, certificate })
    }

    /// An issuer from a PEM certificate and its private key (PEM or RSA-XML).
    pub fn from_pem(certificate_pem: &str, private_key_pem: &str) -> Result<Self, AuthError> {
        let certificate = Certificate::parse(certificate_pem.as_bytes(), "custom")?;
        let key = ApplicationKey::from_text(private_key_pem)?;
        let public = key.public_key();
        if public.modulus() != certificate.rsa_modulus()
            || public.exponent() != certificate.rsa_exponent()
        {
            return Err(AuthError::Key(
                "the private key does not belong to the certificate".into(),
            ));
        }
        Ok(TokenIssuer { key, certificate })
    }

    /// The certificate a verifier pins to accept this issuer's tokens.
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// The certificate as PEM, for `MIRROR__AUTH__CERTIFICATE_FILE`.
    pub fn certificate_pem(&self) -> String {
        self.certificate.to_pem()
    }

    /// The signing key as PKCS#8 PEM.
    pub fn private_key_pem(&self) -> String {
        self.key.to_pem()
    }

    /// A token for tenant `context_id` addressed to application `client_id`, issued at `now`:
    /// valid from a minute before to five minutes after, with a fresh 32-hex-digit nonce.
    pub fn issue(&self, context_id: &str, client_id: &str, now: DateTime<Utc>) -> IssuedToken {
        let mut bytes = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut bytes);
        let nonce = hex::encode_upper(bytes);
        let claims = json!({
            "sub": context_id,
            "nonce": nonce,
            CONTEXT_ID_CLAIM: context_id,
            "nbf": (now - TOKEN_VALID_BEFORE).timestamp(),
            "exp": (now + TOKEN_VALID_AFTER).timestamp(),
            "iss": ISSUER,
            "aud": format!("spn:{client_id}"),
        });
        IssuedToken {
            token: self.sign_claims(&claims),
            nonce,
        }
    }

    /// The header SuperOffice puts on its tokens, naming this issuer's certificate.
    pub fn header(&self) -> Value {
        json!({
            "alg": "RS256",
            "kid": self.certificate.thumbprint_hex(),
            "x5t": self.certificate.thumbprint_base64url(),
            "typ": "JWT",
        })
    }

    /// Signs arbitrary `claims` under [`TokenIssuer::header`]: for tokens that are signed
    /// correctly but wrong in content (expired, another audience, no context id…).
    pub fn sign_claims(&self, claims: &Value) -> String {
        self.sign_token(&self.header(), claims)
    }

    /// Signs `claims` under an arbitrary `header` with RS256, whatever the header says.
    pub fn sign_token(&self, header: &Value, claims: &Value) -> String {
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = URL_SAFE_NO_PAD.encode(self.key.sign_pkcs1_sha256(signed.as_bytes()));
        format!("{signed}.{signature}")
    }
}

/// A self-signed X.509 v3 certificate (CA profile, SHA-256 with RSA) for `key`, in DER.
fn self_signed_certificate(key: &ApplicationKey, common_name: &str) -> Result<Vec<u8>, AuthError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        AuthError::Certificate(format!("cannot build the issuer certificate ({what}): {e}"))
    };
    let private = key.rsa_key().clone();
    let public = private.to_public_key();
    let signer = SigningKey::<Sha256>::new(private);

    let value = Any::new(Tag::Utf8String, common_name.as_bytes()).map_err(|e| fail("name", &e))?;
    let rdn = SetOfVec::try_from(vec![AttributeTypeAndValue {
        oid: COMMON_NAME,
        value,
    }])
    .map_err(|e| fail("name", &e))?;
    let subject = RdnSequence(vec![RelativeDistinguishedName(rdn)]);

    let mut serial = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut serial);
    // Positive and minimally encoded: top bit clear, second bit set.
    serial[0] = (serial[0] & 0x7f) | 0x40;
    let serial = SerialNumber::new(&serial).map_err(|e| fail("serial", &e))?;
    let validity = Validity::from_now(CERTIFICATE_LIFETIME).map_err(|e| fail("validity", &e))?;
    let spki = SubjectPublicKeyInfoOwned::from_key(public).map_err(|e| fail("public key", &e))?;

    let builder = CertificateBuilder::new(Profile::Root, serial, validity, subject, spki, &signer)
        .map_err(|e| fail("builder", &e))?;
    let certificate = builder
        .build::<Signature>()
        .map_err(|e| fail("signature", &e))?;
    certificate.to_der().map_err(|e| fail("encoding", &e))
}
