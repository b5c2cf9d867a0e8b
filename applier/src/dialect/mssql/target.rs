//! `database.url` for SQL Server → the driver's connection settings.
//!
//! Three spellings are accepted:
//! - `mssql://user:password@host[:port][/database][?option=value&…]` (`sqlserver://` too), with
//!   percent-encoded user and password. Options: `encrypt` (`required`/`true`, `on`, `off`/`false`
//!   — TLS for the login only —, `strict`, `none`), `trustServerCertificate` (`true` accepts a
//!   self-signed certificate, e.g. a developer's container), `trustServerCertificateCa` (a CA
//!   file), `instance` (a named instance; give the port too: the SQL Browser is not used),
//!   `applicationName`. Unknown options are refused so that a typo cannot go unnoticed.
//! - an ADO.NET string: `Server=tcp:host,1433;Database=master;User Id=…;Password=…;
//!   TrustServerCertificate=true`;
//! - a JDBC string: `jdbc:sqlserver://host:1433;databaseName=…;user=…;password=…`.
//!
//! The database in the URL is only where connections log in (default: the login's default
//! database); each tenant's tables live in their own database, addressed by name. Without a
//! password in the URL, `database.password_file` supplies it. TLS is required unless told
//! otherwise.

use std::path::Path;

use mirror_common::config::DatabaseSettings;
use tiberius::{AuthMethod, Config, EncryptionLevel};

use crate::error::ApplyError;

const KEY: &str = "MIRROR__DATABASE__URL";

/// True when `url` names a SQL Server (URL, ADO.NET or JDBC form).
pub fn is_mssql_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    if ["mssql://", "sqlserver://", "jdbc:sqlserver://"]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        return true;
    }
    if lower.contains("://") {
        return false;
    }
    lower
        .split(';')
        .filter_map(|kv| kv.split_once('='))
        .any(|(k, _)| {
            matches!(
                k.trim(),
                "server" | "data source" | "address" | "addr" | "network address"
            )
        })
}

/// The connection settings for `settings.url`, with the password from `password_file` when the
/// URL has none.
pub fn config(settings: &DatabaseSettings) -> Result<Config, ApplyError> {
    let url = settings.url.trim();
    let lower = url.to_ascii_lowercase();
    let password = || read_password(settings.password_file.as_deref());
    if lower.starts_with("mssql://") || lower.starts_with("sqlserver://") {
        return from_url(url, password);
    }
    let mut config = if lower.starts_with("jdbc:sqlserver://") {
        Config::from_jdbc_string(url)
    } else {
        Config::from_ado_string(url)
    }
    .map_err(|e| bad(format!("not a valid connection string: {e}")))?;
    if !has_key(url, &["password", "pwd"])
        && let Some(user) = value_of(url, &["user id", "uid", "user", "username"])
        && let Some(password) = password()?
    {
        config.authentication(AuthMethod::sql_server(user, password));
    }
    Ok(config)
}

fn bad(reason: String) -> ApplyError {
    ApplyError::Config(format!("{KEY}: {reason}"))
}

fn read_password(file: Option<&Path>) -> Result<Option<String>, ApplyError> {
    let Some(file) = file else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(file).map_err(|e| {
        ApplyError::Config(format!(
            "MIRROR__DATABASE__PASSWORD_FILE {}: {e}",
            file.display()
        ))
    })?;
    Ok(Some(text.trim_end_matches(['\r', '\n']).to_owned()))
}

fn from_url(
    url: &str,
    password_file: impl FnOnce() -> Result<Option<String>, ApplyError>,
) -> Result<Config, ApplyError> {
    let parsed = url::Url::parse(url).map_err(|e| bad(format!("not a valid URL: {e}")))?;
    let mut config = Config::new();
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("the URL names no host".into()))?;
    config.host(host.trim_start_matches('[').trim_end_matches(']'));
    config.port(parsed.port().unwrap_or(1433));
    let database = percent_decode(parsed.path().trim_start_matches('/'))?;
    if !database.is_empty() {
        config.database(database);
    }
    let user = percent_decode(parsed.username())?;
    if user.is_empty() {
        return Err(bad(
            "the URL names no user (mssql://user:password@host/…)".into()
        ));
    }
    let password = match parsed.password() {
        Some(p) => percent_decode(p)?,
        None => password_file()?.unwrap_or_default(),
    };
    config.authentication(AuthMethod::sql_server(user, password));
    config.application_name("mirror-applier");
    for (key, value) in parsed.query_pairs() {
        match key.to_ascii_lowercase().as_str() {
            "encrypt" => config.encryption(encryption(&value)?),
            "trustservercertificate" => {
                if flag(&key, &value)? {
                    config.trust_cert();
                }
            }
            "trustservercertificateca" => config.trust_cert_ca(value.as_ref()),
            "instance" => config.instance_name(value.as_ref()),
            "applicationname" => config.application_name(value.as_ref()),
            other => return Err(bad(format!("unknown option {other:?}"))),
        }
    }
    Ok(config)
}

fn encryption(value: &str) -> Result<EncryptionLevel, ApplyError> {
    Ok(match value.to_ascii_lowercase().as_str() {
        "required" | "true" | "yes" | "mandatory" => EncryptionLevel::Required,
        "on" => EncryptionLevel::On,
        "off" | "false" | "no" | "optional" => EncryptionLevel::Off,
        "strict" => EncryptionLevel::Strict,
        "none" | "not_supported" => EncryptionLevel::NotSupported,
        other => return Err(bad(format!("unknown encrypt value {other:?}"))),
    })
}

fn flag(key: &str, value: &str) -> Result<bool, ApplyError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        other => Err(bad(format!("{key} must be true or false, not {other:?}"))),
    }
}

/// `%xx` sequences → bytes → UTF-8.
fn percent_decode(s: &str) -> Result<String, ApplyError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| bad("a broken %-escape in the URL".into()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad("a %-escape in the URL is not UTF-8".into()))
}

/// The unquoted value of the first of `keys` in an ADO.NET-style string (case-insensitive).
fn value_of(conn: &str, keys: &[&str]) -> Option<String> {
    conn.split(';').find_map(|part| {
        let (k, v) = part.split_once('=')?;
        keys.contains(&k.trim().to_ascii_lowercase().as_str())
            .then(|| v.trim().trim_matches(['"', '\'']).to_owned())
    })
}

fn has_key(conn: &str, keys: &[&str]) -> bool {
    value_of(conn, keys).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> DatabaseSettings {
        DatabaseSettings {
            url: url.into(),
            ..DatabaseSettings::default()
        }
    }

    #[test]
    fn recognises_every_sql_server_spelling() {
        assert!(is_mssql_url("mssql://sa:x@localhost/master"));
        assert!(is_mssql_url("SQLSERVER://sa:x@localhost"));
        assert!(is_mssql_url("jdbc:sqlserver://localhost:1433;user=sa"));
        assert!(is_mssql_url(
            "Server=tcp:db,1433;Database=master;User Id=sa;Password=x"
        ));
        assert!(is_mssql_url("Data Source=db;User Id=sa"));
        assert!(is_mssql_url("Database=master;Server=db,1433;User Id=sa"));
        assert!(!is_mssql_url("postgres://postgres@127.0.0.1:5432/postgres"));
        assert!(!is_mssql_url("host=127.0.0.1 user=postgres"));
    }

    #[test]
    fn url_form_sets_host_port_database_and_options() {
        let c = config(&settings(
            "mssql://sa:p%40ss%3Bw@db.example:14333/master?encrypt=off&trustServerCertificate=true",
        ))
        .unwrap();
        assert_eq!(c.get_addr(), "db.example:14333");
        let c = config(&settings("mssql://sa:x@localhost")).unwrap();
        assert_eq!(c.get_addr(), "localhost:1433");
    }

    #[test]
    fn bad_urls_name_the_setting() {
        for url in [
            "mssql://localhost/master",
            "mssql://sa:x@localhost/master?encrpyt=true",
            "mssql://sa:x@localhost/master?encrypt=maybe",
            "mssql://sa:x@localhost/master?trustServerCertificate=perhaps",
            "mssql://sa:%zz@localhost",
        ] {
            let err = config(&settings(url)).unwrap_err();
            assert!(
                matches!(&err, ApplyError::Config(m) if m.starts_with(KEY)),
                "{url}: {err}"
            );
        }
    }

    #[test]
    fn percent_decoding_handles_utf8() {
        assert_eq!(percent_decode("p%C3%A4ss%40").unwrap(), "päss@");
        assert!(percent_decode("%C3").is_err());
    }

    #[test]
    fn ado_strings_parse_and_take_the_password_file() {
        let c = config(&settings(
            "Server=tcp:db,1433;Database=master;User Id=sa;Password=x;TrustServerCertificate=true",
        ))
        .unwrap();
        assert_eq!(c.get_addr(), "db:1433");
        assert_eq!(
            value_of("Server=a;User Id = \"sa\";", &["user id"]).as_deref(),
            Some("sa")
        );
        assert!(!has_key("Server=a;User Id=sa", &["password", "pwd"]));
        let missing = DatabaseSettings {
            password_file: Some("/nonexistent/mirror-password".into()),
            ..settings("Server=tcp:db,1433;User Id=sa")
        };
        assert!(
            matches!(config(&missing), Err(ApplyError::Config(m)) if m.contains("PASSWORD_FILE"))
        );
    }
}
