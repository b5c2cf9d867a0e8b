//! PostgreSQL SQL text: quoting, type mapping (DESIGN.md "Type mapping"), default literals, DDL.

use chrono::{Duration, NaiveDate};
use mirror_common::schema::{Column, ColumnType, DefaultValue, TableSchema};

use crate::dialect::{Render, Tenant};
use crate::error::ApplyError;
use crate::plan::AlterAction;

/// PostgreSQL's identifier limit (NAMEDATALEN - 1). Longer names would be truncated silently by
/// the server, which could make two tables one; we refuse them instead.
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// The PostgreSQL renderer.
#[derive(Debug, Clone, Copy, Default)]
pub struct PgRender;

impl PgRender {
    /// A column definition: `"name" type [DEFAULT x] [NOT NULL]`.
    fn column_def(&self, table: &str, column: &Column) -> Result<String, ApplyError> {
        let mut def = format!(
            "{} {}",
            self.quote(&column.name).map_err(|e| e.for_table(table))?,
            self.column_type(column.ty)
        );
        if let Some(d) = &column.default {
            check_default(table, column, d)?;
            def.push_str(" DEFAULT ");
            def.push_str(&self.default_literal(d, column.ty));
        }
        if !column.nullable {
            def.push_str(" NOT NULL");
        }
        Ok(def)
    }
}

/// A text default PostgreSQL cannot hold (U+0000) is refused rather than altered.
fn check_default(table: &str, column: &Column, d: &DefaultValue) -> Result<(), ApplyError> {
    match d {
        DefaultValue::Text(s) if s.contains('\0') => Err(ApplyError::BadBatch {
            table: table.to_owned(),
            reason: format!("column {}: a default containing U+0000", column.name),
        }),
        _ => Ok(()),
    }
}

/// `E'…'` with `\` and `'` escaped: correct whatever `standard_conforming_strings` says.
fn string_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 3);
    out.push_str("E'");
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// SQL Server reads an integer assigned to a datetime as days since 1900-01-01.
fn sql_server_day(n: i64) -> Option<String> {
    let base = NaiveDate::from_ymd_opt(1900, 1, 1)?;
    let day = base.checked_add_signed(Duration::try_days(n)?)?;
    Some(format!("TIMESTAMP '{} 00:00:00'", day.format("%Y-%m-%d")))
}

impl Render for PgRender {
    fn quote(&self, ident: &str) -> Result<String, ApplyError> {
        if ident.len() > MAX_IDENTIFIER_BYTES {
            return Err(ApplyError::IdentifierTooLong {
                table: None,
                name: ident.to_owned(),
                len: ident.len(),
                max: MAX_IDENTIFIER_BYTES,
            });
        }
        Ok(format!("\"{}\"", ident.replace('"', "\"\"")))
    }

    fn table(&self, tenant: &Tenant, table: &str) -> Result<String, ApplyError> {
        let table_q = self.quote(table).map_err(|e| e.for_table(table))?;
        Ok(format!("{}.{table_q}", self.quote(&tenant.storage)?))
    }

    fn column_type(&self, ty: ColumnType) -> String {
        use ColumnType as T;
        match ty {
            T::Int => "integer".into(),
            T::SmallInt | T::TinyInt => "smallint".into(),
            T::BigInt => "bigint".into(),
            T::Bit => "boolean".into(),
            T::Float => "double precision".into(),
            T::Real => "real".into(),
            T::DateTime | T::DateTime2 | T::SmallDateTime => "timestamp".into(),
            T::Date => "date".into(),
            T::NVarChar(Some(n)) | T::VarChar(Some(n)) => format!("varchar({n})"),
            T::NVarChar(None) | T::VarChar(None) | T::NText | T::Text => "text".into(),
            T::NChar(n) | T::Char(n) => format!("char({n})"),
            T::VarBinary(_) | T::Image => "bytea".into(),
            T::UniqueIdentifier => "uuid".into(),
            T::Decimal(p, s) => format!("numeric({p},{s})"),
        }
    }

    fn default_literal(&self, default: &DefaultValue, ty: ColumnType) -> String {
        use ColumnType as T;
        let datetime = matches!(ty, T::DateTime | T::DateTime2 | T::SmallDateTime);
        match default {
            DefaultValue::Null => "NULL".into(),
            DefaultValue::Integer(n) if ty == T::Bit => {
                if *n != 0 { "TRUE" } else { "FALSE" }.into()
            }
            DefaultValue::Integer(n) if datetime => {
                sql_server_day(*n).unwrap_or_else(|| "NULL".into())
            }
            DefaultValue::Integer(n) if ty.is_text() => string_literal(&n.to_string()),
            DefaultValue::Integer(n) => n.to_string(),
            DefaultValue::Float(f) if ty.is_text() => string_literal(&format!("{f:?}")),
            DefaultValue::Float(f) => format!("{f:?}"),
            DefaultValue::Text(s) => string_literal(s),
            DefaultValue::CurrentTimestamp if ty == T::Date => "CURRENT_DATE".into(),
            DefaultValue::CurrentTimestamp if ty.is_text() => "(LOCALTIMESTAMP)::text".into(),
            DefaultValue::CurrentTimestamp => "LOCALTIMESTAMP".into(),
            DefaultValue::NewId if ty.is_text() => "(gen_random_uuid())::text".into(),
            DefaultValue::NewId => "gen_random_uuid()".into(),
        }
    }

    fn create_table(
        &self,
        tenant: &Tenant,
        schema: &TableSchema,
    ) -> Result<Vec<String>, ApplyError> {
        let name = self.table(tenant, &schema.name)?;
        let mut defs = Vec::with_capacity(schema.columns.len() + 1);
        for c in &schema.columns {
            defs.push(self.column_def(&schema.name, c)?);
        }
        let key = self
            .quote(&schema.key().name)
            .map_err(|e| e.for_table(&schema.name))?;
        defs.push(format!("PRIMARY KEY ({key})"));
        Ok(vec![format!("CREATE TABLE {name} ({})", defs.join(", "))])
    }

    fn alter_table(
        &self,
        tenant: &Tenant,
        schema: &TableSchema,
        actions: &[AlterAction],
    ) -> Result<Vec<String>, ApplyError> {
        let name = self.table(tenant, &schema.name)?;
        let quote = |c: &str| self.quote(c).map_err(|e| e.for_table(&schema.name));
        let mut out = Vec::with_capacity(actions.len());
        for action in actions {
            match action {
                AlterAction::AddColumn(column) => out.push(format!(
                    "ALTER TABLE {name} ADD COLUMN {}",
                    self.column_def(&schema.name, column)?
                )),
                AlterAction::WidenType { column, from } => {
                    let to = self.column_type(column.ty);
                    // datetime → datetime2 and the like map to one PostgreSQL type: nothing to do.
                    if to != self.column_type(*from) {
                        out.push(format!(
                            "ALTER TABLE {name} ALTER COLUMN {} TYPE {to}",
                            quote(&column.name)?
                        ));
                    }
                }
                AlterAction::DropNotNull { column } => out.push(format!(
                    "ALTER TABLE {name} ALTER COLUMN {} DROP NOT NULL",
                    quote(&column.name)?
                )),
                AlterAction::SetDefault { column } => match &column.default {
                    Some(d) => {
                        check_default(&schema.name, column, d)?;
                        out.push(format!(
                            "ALTER TABLE {name} ALTER COLUMN {} SET DEFAULT {}",
                            quote(&column.name)?,
                            self.default_literal(d, column.ty)
                        ));
                    }
                    None => out.push(format!(
                        "ALTER TABLE {name} ALTER COLUMN {} DROP DEFAULT",
                        quote(&column.name)?
                    )),
                },
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirror_common::schema::RawTableSchema;

    fn tenant() -> Tenant {
        Tenant {
            context_id: "Cust1".into(),
            storage: "Mirror_Cust1".into(),
        }
    }

    fn schema(cols: &[(&str, &str, bool, &str)]) -> TableSchema {
        RawTableSchema {
            name: "contact".into(),
            columns: cols
                .iter()
                .map(|(n, t, null, d)| mirror_common::schema::RawColumn {
                    name: (*n).into(),
                    ty: (*t).into(),
                    nullable: *null,
                    default: (*d).into(),
                })
                .collect(),
        }
        .validate()
        .unwrap()
    }

    #[test]
    fn creates_superoffice_tables_with_keys_defaults_and_mapped_types() {
        let s = schema(&[
            ("contact_id", "int", false, ""),
            ("name", "nvarchar(220)", true, "default (N'')"),
            (
                "registered",
                "datetime",
                true,
                "default (N'1760-01-01 00:00:00')",
            ),
            ("deleted", "smallint", false, "default ((0))"),
            ("notes", "ntext", true, ""),
            ("blob", "varbinary(max)", true, ""),
            ("ratio", "float", true, "default ((-1))"),
        ]);
        let sql = PgRender.create_table(&tenant(), &s).unwrap();
        assert_eq!(
            sql,
            vec![
                "CREATE TABLE \"Mirror_Cust1\".\"contact\" (\"contact_id\" integer NOT NULL, \
                 \"name\" varchar(220) DEFAULT E'', \
                 \"registered\" timestamp DEFAULT E'1760-01-01 00:00:00', \
                 \"deleted\" smallint DEFAULT 0 NOT NULL, \"notes\" text, \"blob\" bytea, \
                 \"ratio\" double precision DEFAULT -1, PRIMARY KEY (\"contact_id\"))"
                    .to_owned()
            ]
        );
    }

    #[test]
    fn quotes_and_escapes_everything() {
        assert_eq!(PgRender.quote("we\"ird").unwrap(), "\"we\"\"ird\"");
        assert_eq!(
            PgRender.default_literal(
                &DefaultValue::Text("it's a \\ test".into()),
                ColumnType::NText
            ),
            "E'it''s a \\\\ test'"
        );
        assert_eq!(
            PgRender.default_literal(&DefaultValue::Integer(1), ColumnType::Bit),
            "TRUE"
        );
        assert_eq!(
            PgRender.default_literal(&DefaultValue::Integer(0), ColumnType::DateTime),
            "TIMESTAMP '1900-01-01 00:00:00'"
        );
        assert_eq!(
            PgRender.default_literal(&DefaultValue::CurrentTimestamp, ColumnType::DateTime),
            "LOCALTIMESTAMP"
        );
    }

    #[test]
    fn identifiers_over_63_bytes_are_refused_not_truncated() {
        let long = "x".repeat(64);
        let err = PgRender.table(&tenant(), &long).unwrap_err();
        assert!(matches!(
            err,
            ApplyError::IdentifierTooLong {
                len: 64,
                max: 63,
                ..
            }
        ));
        assert_eq!(err.table(), Some(long.as_str()));
        assert!(!err.is_transient());
        assert!(PgRender.quote(&"x".repeat(63)).is_ok());
    }

    #[test]
    fn alters_render_one_statement_per_action() {
        let old = schema(&[("id", "int", false, ""), ("a", "nvarchar(10)", false, "")]);
        let new = schema(&[
            ("id", "int", false, ""),
            ("a", "nvarchar(max)", true, "default (N'x')"),
            ("b", "datetime", true, ""),
        ]);
        let crate::plan::SchemaChange::Alter(actions) = crate::plan::diff(&old, &new) else {
            panic!("expected an alter");
        };
        let sql = PgRender.alter_table(&tenant(), &new, &actions).unwrap();
        let t = "ALTER TABLE \"Mirror_Cust1\".\"contact\"";
        assert_eq!(
            sql,
            vec![
                format!("{t} ALTER COLUMN \"a\" TYPE text"),
                format!("{t} ALTER COLUMN \"a\" DROP NOT NULL"),
                format!("{t} ALTER COLUMN \"a\" SET DEFAULT E'x'"),
                format!("{t} ADD COLUMN \"b\" timestamp"),
            ]
        );
    }
}
