//! SQL Server SQL text: bracket quoting, column types kept as sent, default literals, named
//! constraints, DDL. Pure functions: the golden tests check every statement offline.
//!
//! Constraints get deterministic names so an ALTER can drop them without a catalog lookup:
//! `PK_<table>_<tag>` and `DF_<table>_<column>_<tag>`, where `<tag>` is 8 hex digits of
//! SHA-256 over the unabridged names. Constraint names share one namespace per schema with the
//! tables, so the tag keeps `contact`.`name_x` and `contact_name`.`x` apart, and lets the
//! readable part be cut short when the names are long (a constraint name is a `sysname` too).

use chrono::{Duration, NaiveDate};
use mirror_common::schema::{Column, ColumnType, DefaultValue, TableSchema};
use sha2::{Digest, Sha256};

use crate::dialect::{Render, Tenant};
use crate::error::ApplyError;
use crate::plan::AlterAction;

/// `sysname`: the longest identifier SQL Server stores, in UTF-16 code units. Longer names are
/// refused, never truncated (two tables would become one).
pub const MAX_IDENTIFIER_CHARS: usize = 128;

/// The schema every mirror table lives in, inside the tenant's database.
pub const SCHEMA: &str = "dbo";

/// The SQL Server renderer.
#[derive(Debug, Clone, Copy, Default)]
pub struct MssqlRender;

impl MssqlRender {
    /// `CREATE DATABASE [Mirror_Cust1]`: a tenant's storage, created on first use. It runs
    /// outside any transaction (SQL Server refuses it inside one).
    pub fn create_database(&self, tenant: &Tenant) -> Result<String, ApplyError> {
        Ok(format!("CREATE DATABASE {}", self.quote(&tenant.storage)?))
    }

    /// `USE [Mirror_Cust1]`: only for operators' hook scripts, whose unqualified names must
    /// resolve in the tenant database.
    pub fn use_database(&self, tenant: &Tenant) -> Result<String, ApplyError> {
        Ok(format!("USE {}", self.quote(&tenant.storage)?))
    }

    /// The name of a table's primary-key constraint (unquoted).
    pub fn primary_key_name(&self, table: &str) -> String {
        constraint_name("PK", &[table])
    }

    /// The name of a column's default constraint (unquoted).
    pub fn default_name(&self, table: &str, column: &str) -> String {
        constraint_name("DF", &[table, column])
    }

    /// `N'…'` with quotes doubled: the only way text enters rendered SQL (defaults).
    pub fn string_literal(&self, s: &str) -> String {
        let mut out = String::with_capacity(s.len() + 3);
        out.push_str("N'");
        for c in s.chars() {
            if c == '\'' {
                out.push('\'');
            }
            out.push(c);
        }
        out.push('\'');
        out
    }

    /// `[name] type NULL|NOT NULL [CONSTRAINT [DF_…] DEFAULT (…)] [CONSTRAINT [PK_…] PRIMARY KEY]`.
    fn column_def(&self, table: &str, column: &Column, key: bool) -> Result<String, ApplyError> {
        let mut def = format!(
            "{} {} {}",
            self.quote(&column.name).map_err(|e| e.for_table(table))?,
            self.column_type(column.ty),
            if column.nullable { "NULL" } else { "NOT NULL" }
        );
        if let Some(d) = &column.default {
            def.push_str(&format!(
                " CONSTRAINT {} DEFAULT ({})",
                self.quote(&self.default_name(table, &column.name))?,
                self.default_literal(d, column.ty)
            ));
        }
        if key {
            def.push_str(&format!(
                " CONSTRAINT {} PRIMARY KEY",
                self.quote(&self.primary_key_name(table))?
            ));
        }
        Ok(def)
    }

    /// Statements changing a column's type or nullability in place. SQL Server refuses
    /// `ALTER COLUMN` on a column bound to a default (unless only its length changes) or in the
    /// primary key, so those constraints are dropped first and recreated after, with the same
    /// names. The statement restates the nullability: left out, it would become nullable.
    fn alter_column(
        &self,
        name: &str,
        schema: &TableSchema,
        column: &Column,
    ) -> Result<Vec<String>, ApplyError> {
        let table = &schema.name;
        let col = self.quote(&column.name).map_err(|e| e.for_table(table))?;
        let is_key = column.name == schema.key().name;
        let pk = self.quote(&self.primary_key_name(table))?;
        let mut out = vec![self.drop_default(name, table, &column.name)?];
        if is_key {
            out.push(format!("ALTER TABLE {name} DROP CONSTRAINT IF EXISTS {pk}"));
        }
        out.push(format!(
            "ALTER TABLE {name} ALTER COLUMN {col} {} {}",
            self.column_type(column.ty),
            if column.nullable { "NULL" } else { "NOT NULL" }
        ));
        if is_key {
            out.push(format!(
                "ALTER TABLE {name} ADD CONSTRAINT {pk} PRIMARY KEY ({col})"
            ));
        }
        if let Some(add) = self.add_default(name, table, column)? {
            out.push(add);
        }
        Ok(out)
    }

    fn drop_default(&self, name: &str, table: &str, column: &str) -> Result<String, ApplyError> {
        Ok(format!(
            "ALTER TABLE {name} DROP CONSTRAINT IF EXISTS {}",
            self.quote(&self.default_name(table, column))?
        ))
    }

    fn add_default(
        &self,
        name: &str,
        table: &str,
        column: &Column,
    ) -> Result<Option<String>, ApplyError> {
        let Some(d) = &column.default else {
            return Ok(None);
        };
        Ok(Some(format!(
            "ALTER TABLE {name} ADD CONSTRAINT {} DEFAULT ({}) FOR {}",
            self.quote(&self.default_name(table, &column.name))?,
            self.default_literal(d, column.ty),
            self.quote(&column.name).map_err(|e| e.for_table(table))?
        )))
    }
}

/// `<prefix>_<readable>_<tag>`, at most [`MAX_IDENTIFIER_CHARS`] long (see the module docs).
fn constraint_name(prefix: &str, parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update([0u8]);
        }
        hasher.update(part.as_bytes());
    }
    let tag = hex::encode(&hasher.finalize()[..4]);
    let room = MAX_IDENTIFIER_CHARS - prefix.len() - tag.len() - 2;
    let readable: String = parts.join("_").chars().take(room).collect();
    format!("{prefix}_{readable}_{tag}")
}

/// SQL Server reads an integer assigned to a `datetime` as days since 1900-01-01, but refuses
/// that conversion for `datetime2` and `date`: those get the same day as a `yyyymmdd` literal,
/// which every date type reads the same way whatever the session's language.
fn day_literal(n: i64) -> Option<String> {
    let base = NaiveDate::from_ymd_opt(1900, 1, 1)?;
    let day = base.checked_add_signed(Duration::try_days(n)?)?;
    Some(format!("N'{}'", day.format("%Y%m%d")))
}

impl Render for MssqlRender {
    fn quote(&self, ident: &str) -> Result<String, ApplyError> {
        let len = ident.encode_utf16().count();
        if len > MAX_IDENTIFIER_CHARS {
            return Err(ApplyError::IdentifierTooLong {
                table: None,
                name: ident.to_owned(),
                len,
                max: MAX_IDENTIFIER_CHARS,
            });
        }
        Ok(format!("[{}]", ident.replace(']', "]]")))
    }

    fn table(&self, tenant: &Tenant, table: &str) -> Result<String, ApplyError> {
        let table_q = self.quote(table).map_err(|e| e.for_table(table))?;
        Ok(format!(
            "{}.{}.{table_q}",
            self.quote(&tenant.storage)?,
            self.quote(SCHEMA)?
        ))
    }

    /// Kept as sent: `ColumnType`'s Display is the canonical SQL Server spelling.
    fn column_type(&self, ty: ColumnType) -> String {
        ty.to_string()
    }

    fn default_literal(&self, default: &DefaultValue, ty: ColumnType) -> String {
        use ColumnType as T;
        match default {
            DefaultValue::Null => "NULL".into(),
            DefaultValue::Integer(n) if ty.is_text() => self.string_literal(&n.to_string()),
            DefaultValue::Integer(n) if matches!(ty, T::DateTime2 | T::Date) => {
                day_literal(*n).unwrap_or_else(|| "NULL".into())
            }
            DefaultValue::Integer(n) => n.to_string(),
            DefaultValue::Float(f) if ty.is_text() => self.string_literal(&format!("{f:?}")),
            DefaultValue::Float(f) => format!("{f:?}"),
            DefaultValue::Text(s) => self.string_literal(s),
            DefaultValue::CurrentTimestamp => "getdate()".into(),
            DefaultValue::NewId => "newid()".into(),
        }
    }

    fn create_table(
        &self,
        tenant: &Tenant,
        schema: &TableSchema,
    ) -> Result<Vec<String>, ApplyError> {
        let name = self.table(tenant, &schema.name)?;
        let defs = schema
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| self.column_def(&schema.name, c, i == 0))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(vec![format!("CREATE TABLE {name} ({})", defs.join(", "))])
    }

    fn alter_table(
        &self,
        tenant: &Tenant,
        schema: &TableSchema,
        actions: &[AlterAction],
    ) -> Result<Vec<String>, ApplyError> {
        let name = self.table(tenant, &schema.name)?;
        let table = &schema.name;
        let mut out = Vec::with_capacity(actions.len() * 2);
        // `alter_column` restates a column whole (type, nullability, default), so later actions
        // on the same column have nothing left to do.
        let mut restated: Vec<&str> = Vec::new();
        for action in actions {
            match action {
                AlterAction::WidenType { column, .. }
                | AlterAction::DropNotNull { column }
                | AlterAction::SetDefault { column }
                    if restated.contains(&column.name.as_str()) => {}
                AlterAction::AddColumn(column) => {
                    // A nullable column with a default gets it in existing rows too, as on
                    // PostgreSQL (SQL Server fills NOT NULL columns anyway).
                    let fill = column.nullable
                        && matches!(&column.default, Some(d) if *d != DefaultValue::Null);
                    out.push(format!(
                        "ALTER TABLE {name} ADD {}{}",
                        self.column_def(table, column, false)?,
                        if fill { " WITH VALUES" } else { "" }
                    ));
                }
                AlterAction::WidenType { column, .. } | AlterAction::DropNotNull { column } => {
                    out.extend(self.alter_column(&name, schema, column)?);
                    restated.push(&column.name);
                }
                AlterAction::SetDefault { column } => {
                    out.push(self.drop_default(&name, table, &column.name)?);
                    if let Some(add) = self.add_default(&name, table, column)? {
                        out.push(add);
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> Tenant {
        Tenant {
            context_id: "Cust1".into(),
            storage: "Mirror_Cust1".into(),
        }
    }

    #[test]
    fn brackets_are_doubled_and_long_names_refused() {
        let r = MssqlRender;
        assert_eq!(r.quote("a]b").unwrap(), "[a]]b]");
        assert_eq!(r.quote("x'y\"z[").unwrap(), "[x'y\"z[]");
        assert!(r.quote(&"x".repeat(128)).is_ok());
        let err = r.table(&tenant(), &"x".repeat(129)).unwrap_err();
        assert!(matches!(
            err,
            ApplyError::IdentifierTooLong {
                len: 129,
                max: 128,
                ..
            }
        ));
        assert_eq!(err.table(), Some("x".repeat(129).as_str()));
        // sysname counts UTF-16 code units, not bytes.
        assert!(r.quote(&"ä".repeat(128)).is_ok());
    }

    #[test]
    fn constraint_names_are_distinct_and_bounded() {
        let r = MssqlRender;
        assert_ne!(
            r.default_name("contact", "name_x"),
            r.default_name("contact_name", "x")
        );
        assert!(
            r.default_name("contact", "name")
                .starts_with("DF_contact_name_")
        );
        let long = r.default_name(&"t".repeat(128), &"c".repeat(128));
        assert_eq!(long.len(), 128);
        assert_ne!(long, r.default_name(&"t".repeat(128), &"c".repeat(127)));
        assert_eq!(r.primary_key_name("contact").len(), "PK_contact_".len() + 8);
    }

    #[test]
    fn a_column_is_restated_once_per_alter() {
        let col = |ty, nullable, default| Column {
            name: "dbi_key".into(),
            ty,
            nullable,
            default,
        };
        let key = col(ColumnType::Int, false, None);
        let new = col(
            ColumnType::NVarChar(None),
            true,
            Some(DefaultValue::Text(String::new())),
        );
        let schema = TableSchema {
            name: "t".into(),
            columns: vec![
                Column {
                    name: "id".into(),
                    ..key
                },
                new.clone(),
            ],
        };
        let actions = [
            AlterAction::WidenType {
                column: new.clone(),
                from: ColumnType::NVarChar(Some(255)),
            },
            AlterAction::DropNotNull {
                column: new.clone(),
            },
            AlterAction::SetDefault { column: new },
        ];
        let sql = MssqlRender
            .alter_table(&tenant(), &schema, &actions)
            .unwrap();
        assert_eq!(sql.len(), 3, "{sql:?}");
        assert!(sql[0].contains("DROP CONSTRAINT IF EXISTS [DF_t_dbi_key_"));
        assert!(sql[1].ends_with("ALTER COLUMN [dbi_key] nvarchar(max) NULL"));
        assert!(sql[2].ends_with("DEFAULT (N'') FOR [dbi_key]"));
    }

    #[test]
    fn defaults_become_literals_for_the_column_type() {
        let r = MssqlRender;
        let lit = |d: DefaultValue, ty: ColumnType| r.default_literal(&d, ty);
        assert_eq!(lit(DefaultValue::Integer(-1), ColumnType::Int), "-1");
        assert_eq!(
            lit(DefaultValue::Integer(-1), ColumnType::NVarChar(Some(5))),
            "N'-1'"
        );
        assert_eq!(lit(DefaultValue::Integer(0), ColumnType::DateTime), "0");
        assert_eq!(
            lit(DefaultValue::Integer(1), ColumnType::Date),
            "N'19000102'"
        );
        assert_eq!(lit(DefaultValue::Float(1.5), ColumnType::Float), "1.5");
        assert_eq!(
            lit(DefaultValue::Text("it's".into()), ColumnType::NText),
            "N'it''s'"
        );
        assert_eq!(
            lit(DefaultValue::CurrentTimestamp, ColumnType::DateTime),
            "getdate()"
        );
        assert_eq!(
            lit(DefaultValue::NewId, ColumnType::UniqueIdentifier),
            "newid()"
        );
        assert_eq!(lit(DefaultValue::Null, ColumnType::Int), "NULL");
    }
}
