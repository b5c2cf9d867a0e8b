//! Key material of the tests: a stand-in for SuperOffice's token issuer, whose certificate the
//! receiver pins (`custom` environment), and our application key, which signs Authenticate
//! answers. Generating RSA keys is slow, so one set serves a whole test binary.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use mirror_common::auth::{ApplicationKey, ApplicationPublicKey, TokenIssuer};

/// Big enough for RS256, small enough to generate quickly.
const KEY_BITS: usize = 1024;

/// The keys one test binary shares.
pub struct TestKeys {
    /// Issues the tokens the receiver trusts.
    pub issuer: TokenIssuer,
    /// Issues tokens the receiver must refuse: same shape, another key and certificate.
    pub foreign_issuer: TokenIssuer,
    /// Our application key, as `MIRROR__AUTH__PRIVATE_KEY_FILE` holds it.
    pub application_pem: String,
    /// What SuperOffice checks our Authenticate answers against.
    pub application_public: ApplicationPublicKey,
}

/// The key files a receiver is configured with.
#[derive(Debug, Clone)]
pub struct KeyFiles {
    pub issuer_certificate: PathBuf,
    pub application_key: PathBuf,
}

fn issuer(common_name: &str) -> TokenIssuer {
    let key = ApplicationKey::generate(KEY_BITS).expect("an RSA key");
    TokenIssuer::from_key(key, common_name).expect("a self-signed issuer certificate")
}

/// This binary's keys, generated on first use.
pub fn shared() -> &'static TestKeys {
    static KEYS: OnceLock<TestKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let application = ApplicationKey::generate(KEY_BITS).expect("an RSA key");
        TestKeys {
            issuer: issuer("mirror-tests token issuer"),
            foreign_issuer: issuer("someone else's token issuer"),
            application_pem: application.to_pem(),
            application_public: application.public_key(),
        }
    })
}

impl TestKeys {
    /// Writes the issuer's certificate and the application key into `dir` (created if missing).
    pub fn write(&self, dir: &Path) -> KeyFiles {
        std::fs::create_dir_all(dir).expect("a key directory");
        let files = KeyFiles {
            issuer_certificate: dir.join("issuer.crt"),
            application_key: dir.join("application.pem"),
        };
        std::fs::write(&files.issuer_certificate, self.issuer.certificate_pem())
            .expect("the issuer certificate written");
        std::fs::write(&files.application_key, &self.application_pem)
            .expect("the application key written");
        files
    }
}
