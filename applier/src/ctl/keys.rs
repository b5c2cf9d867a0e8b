//! `mirrorctl keys`: make an application key pair, and convert keys between the .NET RSA-XML form
//! SuperOffice's Developer Portal hands out and PEM.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Subcommand, ValueEnum};
use mirror_common::auth::{ApplicationKey, ApplicationPublicKey};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a new key pair: private and public key, each as PEM and RSA-XML.
    Generate {
        /// Folder to write `application.key.{pem,xml}` and `application.pub.{pem,xml}` into.
        #[arg(long)]
        out: PathBuf,
        /// Key size in bits.
        #[arg(long, default_value_t = 2048)]
        bits: usize,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
    /// Convert a private or public key (RSA-XML or PEM) and print it.
    Convert {
        /// The key file to read.
        #[arg(long = "in")]
        input: PathBuf,
        /// The form to print.
        #[arg(long, value_enum)]
        to: KeyFormat,
        /// Print only the public half of a private key.
        #[arg(long)]
        public: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyFormat {
    Pem,
    Xml,
}

pub fn run(command: KeysCommand, json: bool) -> anyhow::Result<()> {
    match command {
        KeysCommand::Generate { out, bits, force } => generate(&out, bits, force, json),
        KeysCommand::Convert { input, to, public } => {
            let text = convert(&input, to, public)?;
            if json {
                println!("{}", serde_json::json!({ "key": text }));
            } else {
                print!("{text}");
            }
            Ok(())
        }
    }
}

fn generate(out: &Path, bits: usize, force: bool, json: bool) -> anyhow::Result<()> {
    let key = ApplicationKey::generate(bits).context("cannot generate the key")?;
    let public = key.public_key();
    fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let files = [
        ("application.key.pem", key.to_pem()),
        ("application.key.xml", key.to_rsa_xml()),
        ("application.pub.pem", public.to_pem()),
        ("application.pub.xml", public.to_rsa_xml()),
    ];
    let mut written = Vec::with_capacity(files.len());
    for (name, text) in files {
        let path = out.join(name);
        if path.exists() && !force {
            anyhow::bail!("{} exists; pass --force to replace it", path.display());
        }
        fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path.display().to_string());
    }
    if json {
        println!("{}", serde_json::json!({ "bits": bits, "files": written }));
    } else {
        for path in &written {
            println!("wrote {path}");
        }
        println!(
            "Give SuperOffice the public key; point MIRROR__AUTH__PRIVATE_KEY_FILE at the private one."
        );
    }
    Ok(())
}

/// Reads a key file and renders it in `to` form.
fn convert(input: &Path, to: KeyFormat, public_only: bool) -> anyhow::Result<String> {
    let text =
        fs::read_to_string(input).with_context(|| format!("cannot read {}", input.display()))?;
    let rendered = match ApplicationKey::from_text(&text) {
        Ok(key) if !public_only => match to {
            KeyFormat::Pem => key.to_pem(),
            KeyFormat::Xml => key.to_rsa_xml(),
        },
        Ok(key) => render_public(&key.public_key(), to),
        Err(private_error) => {
            let public = ApplicationPublicKey::from_text(&text).map_err(|_| {
                anyhow::anyhow!("{} is not an RSA key: {private_error}", input.display())
            })?;
            render_public(&public, to)
        }
    };
    Ok(rendered)
}

fn render_public(key: &ApplicationPublicKey, to: KeyFormat) -> String {
    match to {
        KeyFormat::Pem => key.to_pem(),
        KeyFormat::Xml => key.to_rsa_xml(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mirrorctl-keys-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn generate_then_convert_round_trips() {
        let dir = temp_dir();
        generate(&dir, 1024, false, false).unwrap();
        let pem = fs::read_to_string(dir.join("application.key.pem")).unwrap();
        let xml = convert(&dir.join("application.key.pem"), KeyFormat::Xml, false).unwrap();
        assert!(
            xml.starts_with("<RSAKeyValue>") && xml.contains("<D>"),
            "{xml}"
        );
        let xml_file = dir.join("converted.xml");
        fs::write(&xml_file, &xml).unwrap();
        assert_eq!(convert(&xml_file, KeyFormat::Pem, false).unwrap(), pem);
        let public = convert(&xml_file, KeyFormat::Xml, true).unwrap();
        assert!(!public.contains("<D>"), "{public}");
        assert_eq!(
            public,
            fs::read_to_string(dir.join("application.pub.xml")).unwrap()
        );
        // Refuses to overwrite without --force.
        assert!(generate(&dir, 1024, false, false).is_err());
        generate(&dir, 1024, true, false).unwrap();
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn convert_refuses_what_is_not_a_key() {
        let dir = temp_dir();
        let file = dir.join("junk.txt");
        fs::write(&file, "hello").unwrap();
        let error = convert(&file, KeyFormat::Pem, false).unwrap_err();
        assert!(error.to_string().contains("is not an RSA key"), "{error}");
        fs::remove_dir_all(dir).unwrap();
    }
}
