//! Throwaway key material for local runs: the token issuer (SuperOffice's part: a self-signed
//! certificate and its key, which the receiver trusts with `MIRROR__AUTH__ENVIRONMENT=custom`) and
//! the partner application's key pair (the receiver signs its Authenticate answers with the
//! private key; the simulator checks them with the public key).

use std::path::{Path, PathBuf};

use mirror_common::auth::{ApplicationKey, ApplicationPublicKey, AuthError, TokenIssuer};

use crate::driver::Credentials;

/// Common name of the generated issuer certificate.
pub const ISSUER_NAME: &str = "mirror-sim token issuer";
/// Key size for generated keys.
pub const KEY_BITS: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Key { path: PathBuf, source: AuthError },
    #[error("cannot generate keys: {0}")]
    Generate(#[source] AuthError),
}

/// Where [`write_keys`] put each file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFiles {
    /// The issuer's certificate: `MIRROR__AUTH__CERTIFICATE_FILE` of the receiver.
    pub issuer_certificate: PathBuf,
    /// The issuer's private key (PEM): the simulator signs tokens with it.
    pub issuer_key: PathBuf,
    /// The application's private key, PEM: `MIRROR__AUTH__PRIVATE_KEY_FILE` of the receiver.
    pub application_key_pem: PathBuf,
    /// The same key in .NET RSA-XML form, as SuperOffice's Developer Portal delivers it.
    pub application_key_xml: PathBuf,
    /// The application's public key, PEM: the simulator checks Authenticate answers with it.
    pub application_public_pem: PathBuf,
    /// The same public key in RSA-XML form.
    pub application_public_xml: PathBuf,
}

impl KeyFiles {
    /// The file names inside `dir`.
    pub fn in_dir(dir: &Path) -> KeyFiles {
        KeyFiles {
            issuer_certificate: dir.join("issuer.crt"),
            issuer_key: dir.join("issuer.key"),
            application_key_pem: dir.join("application.key.pem"),
            application_key_xml: dir.join("application.key.xml"),
            application_public_pem: dir.join("application.pub.pem"),
            application_public_xml: dir.join("application.pub.xml"),
        }
    }
}

/// Freshly generated key material, in memory.
#[derive(Debug, Clone)]
pub struct Keys {
    pub issuer: TokenIssuer,
    pub application: ApplicationKey,
}

impl Keys {
    /// Generates an issuer and an application key of `bits` bits.
    pub fn generate(bits: usize) -> Result<Keys, KeysError> {
        let issuer_key = ApplicationKey::generate(bits).map_err(KeysError::Generate)?;
        let issuer = TokenIssuer::from_key(issuer_key, ISSUER_NAME).map_err(KeysError::Generate)?;
        let application = ApplicationKey::generate(bits).map_err(KeysError::Generate)?;
        Ok(Keys {
            issuer,
            application,
        })
    }

    /// The simulator's credentials for these keys.
    pub fn credentials(&self, client_id: &str) -> Credentials {
        Credentials {
            issuer: self.issuer.clone(),
            application_key: self.application.public_key(),
            client_id: client_id.to_owned(),
        }
    }

    /// Writes every file into `dir` (created if missing); private keys are readable by the owner
    /// only.
    pub fn write(&self, dir: &Path) -> Result<KeyFiles, KeysError> {
        std::fs::create_dir_all(dir).map_err(|source| KeysError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let files = KeyFiles::in_dir(dir);
        let public = self.application.public_key();
        write(
            &files.issuer_certificate,
            &self.issuer.certificate_pem(),
            false,
        )?;
        write(&files.issuer_key, &self.issuer.private_key_pem(), true)?;
        write(&files.application_key_pem, &self.application.to_pem(), true)?;
        write(
            &files.application_key_xml,
            &self.application.to_rsa_xml(),
            true,
        )?;
        write(&files.application_public_pem, &public.to_pem(), false)?;
        write(&files.application_public_xml, &public.to_rsa_xml(), false)?;
        Ok(files)
    }
}

/// Generates keys and writes them into `dir`.
pub fn write_keys(dir: &Path, bits: usize) -> Result<KeyFiles, KeysError> {
    Keys::generate(bits)?.write(dir)
}

fn write(path: &Path, contents: &str, private: bool) -> Result<(), KeysError> {
    let io = |source| KeysError::Io {
        path: path.to_owned(),
        source,
    };
    std::fs::write(path, contents).map_err(io)?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    #[cfg(not(unix))]
    let _ = private;
    Ok(())
}

fn read(path: &Path) -> Result<String, KeysError> {
    std::fs::read_to_string(path).map_err(|source| KeysError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Loads the simulator's credentials: the issuer certificate and key (PEM), and the
/// application's public key (PEM or RSA-XML; a private key file works too, its public half is used).
pub fn load_credentials(
    issuer_certificate: &Path,
    issuer_key: &Path,
    application_key: &Path,
    client_id: &str,
) -> Result<Credentials, KeysError> {
    let issuer = TokenIssuer::from_pem(&read(issuer_certificate)?, &read(issuer_key)?).map_err(
        |source| KeysError::Key {
            path: issuer_key.to_owned(),
            source,
        },
    )?;
    let text = read(application_key)?;
    let application_key = ApplicationPublicKey::from_text(&text)
        .or_else(|_| ApplicationKey::from_text(&text).map(|k| k.public_key()))
        .map_err(|source| KeysError::Key {
            path: application_key.to_owned(),
            source,
        })?;
    Ok(Credentials {
        issuer,
        application_key,
        client_id: client_id.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn written_keys_load_back_and_sign_and_verify() {
        let dir = std::env::temp_dir().join(format!("mirror-sim-keys-{}", uuid::Uuid::new_v4()));
        let keys = Keys::generate(1024).unwrap();
        let files = keys.write(&dir).unwrap();
        for path in [
            &files.issuer_certificate,
            &files.issuer_key,
            &files.application_key_pem,
            &files.application_key_xml,
            &files.application_public_pem,
            &files.application_public_xml,
        ] {
            assert!(
                std::fs::metadata(path).unwrap().len() > 100,
                "{}",
                path.display()
            );
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&files.issuer_key)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        for public in [
            &files.application_public_pem,
            &files.application_public_xml,
            &files.application_key_xml,
        ] {
            let credentials = load_credentials(
                &files.issuer_certificate,
                &files.issuer_key,
                public,
                "client",
            )
            .unwrap();
            // An answer signed with the application key verifies with the loaded public key.
            let answer = keys.application.sign_answer("ABCDEF", Utc::now());
            credentials
                .application_key
                .verify_answer(&answer, "ABCDEF", Utc::now())
                .unwrap();
            assert_eq!(
                credentials.issuer.certificate_pem(),
                keys.issuer.certificate_pem()
            );
        }
        // A key that does not belong to the certificate is refused.
        let err = load_credentials(
            &files.issuer_certificate,
            &files.application_key_pem,
            &files.application_public_pem,
            "client",
        )
        .unwrap_err();
        assert!(err.to_string().contains("application.key.pem"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
