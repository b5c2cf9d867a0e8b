//! Table schemas as SuperOffice describes them: column types from an allow-list, nullability,
//! `DefaultValue` clauses parsed into literals, and identifiers checked before anything uses them.
//!
//! Nothing in here is ever pasted into SQL as sent: the dialect renderers work from these typed
//! values and quote every identifier themselves.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest identifier SQL Server accepts (`sysname`).
pub const MAX_IDENTIFIER_LEN: usize = 128;

/// Longest `nvarchar(n)`/`varbinary(n)` length before `max` must be used.
const MAX_SIZED_LEN: u16 = 8000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error(
        "unsafe identifier {0:?}: expected a letter or '_' then letters, digits or '_', at most 128 characters"
    )]
    UnsafeIdentifier(String),
    #[error("table {table}: column {column}: unsupported column type {ty:?}")]
    UnknownType {
        table: String,
        column: String,
        ty: String,
    },
    #[error("table {table}: column {column}: unsupported default clause {clause:?}")]
    BadDefault {
        table: String,
        column: String,
        clause: String,
    },
    #[error("table {table}: has no columns")]
    NoColumns { table: String },
    #[error("table {table}: the first column {column} must be a non-nullable integer key")]
    BadKey { table: String, column: String },
    #[error("table {table}: column {column} appears more than once")]
    DuplicateColumn { table: String, column: String },
    #[error("table {table} appears more than once")]
    DuplicateTable { table: String },
}

/// Checks that a table or column name is a plain identifier. Names are always quoted when rendered,
/// so this is defence in depth: it keeps odd names (spaces, quotes, brackets, control characters)
/// out of every database and every log line.
pub fn check_identifier(name: &str) -> Result<(), SchemaError> {
    let mut chars = name.chars();
    let ok = name.len() <= MAX_IDENTIFIER_LEN
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(SchemaError::UnsafeIdentifier(name.to_owned()))
    }
}

/// SQL Server column types we accept. `None` lengths mean `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ColumnType {
    Int,
    SmallInt,
    TinyInt,
    BigInt,
    Bit,
    Float,
    Real,
    DateTime,
    DateTime2,
    SmallDateTime,
    Date,
    NVarChar(Option<u16>),
    VarChar(Option<u16>),
    NChar(u16),
    Char(u16),
    NText,
    Text,
    VarBinary(Option<u16>),
    Image,
    UniqueIdentifier,
    Decimal(u8, u8),
}

impl ColumnType {
    /// Parses a SuperOffice `Type` string (`int`, `nvarchar(255)`, `nvarchar(max)`, …),
    /// case-insensitively and ignoring surrounding white space. `None` for anything off the list.
    pub fn parse(raw: &str) -> Option<ColumnType> {
        let s = raw.trim().to_ascii_lowercase();
        let (base, arg) = match s.find('(') {
            Some(open) => {
                let inner = s[open + 1..].strip_suffix(')')?;
                (s[..open].trim(), Some(inner.trim()))
            }
            None => (s.as_str(), None),
        };
        let length = |arg: Option<&str>| -> Option<Option<u16>> {
            match arg? {
                "max" => Some(None),
                n => n
                    .parse::<u16>()
                    .ok()
                    .filter(|n| (1..=MAX_SIZED_LEN).contains(n))
                    .map(Some),
            }
        };
        let fixed = |arg: Option<&str>| -> Option<u16> {
            arg?.parse::<u16>()
                .ok()
                .filter(|n| (1..=MAX_SIZED_LEN).contains(n))
        };
        let ty = match (base, arg) {
            ("int", None) => ColumnType::Int,
            ("smallint", None) => ColumnType::SmallInt,
            ("tinyint", None) => ColumnType::TinyInt,
            ("bigint", None) => ColumnType::BigInt,
            ("bit", None) => ColumnType::Bit,
            ("float", None) => ColumnType::Float,
            ("real", None) => ColumnType::Real,
            ("datetime", None) => ColumnType::DateTime,
            ("datetime2", None) => ColumnType::DateTime2,
            ("smalldatetime", None) => ColumnType::SmallDateTime,
            ("date", None) => ColumnType::Date,
            ("ntext", None) => ColumnType::NText,
            ("text", None) => ColumnType::Text,
            ("image", None) => ColumnType::Image,
            ("uniqueidentifier", None) => ColumnType::UniqueIdentifier,
            ("nvarchar", a) => {
                ColumnType::NVarChar(length(a).filter(|n| n.is_none_or(|n| n <= 4000))?)
            }
            ("varchar", a) => ColumnType::VarChar(length(a)?),
            ("varbinary", a) => ColumnType::VarBinary(length(a)?),
            ("nchar", a) => ColumnType::NChar(fixed(a).filter(|n| *n <= 4000)?),
            ("char", a) => ColumnType::Char(fixed(a)?),
            ("decimal" | "numeric", Some(a)) => {
                let (p, s) = match a.split_once(',') {
                    Some((p, s)) => (p.trim().parse::<u8>().ok()?, s.trim().parse::<u8>().ok()?),
                    None => (a.parse::<u8>().ok()?, 0),
                };
                if !(1..=38).contains(&p) || s > p {
                    return None;
                }
                ColumnType::Decimal(p, s)
            }
            _ => return None,
        };
        Some(ty)
    }

    /// True for the integer types a key column may have.
    pub fn is_integer(self) -> bool {
        matches!(
            self,
            ColumnType::Int | ColumnType::SmallInt | ColumnType::TinyInt | ColumnType::BigInt
        )
    }

    /// True when values of this type are character data.
    pub fn is_text(self) -> bool {
        matches!(
            self,
            ColumnType::NVarChar(_)
                | ColumnType::VarChar(_)
                | ColumnType::NChar(_)
                | ColumnType::Char(_)
                | ColumnType::NText
                | ColumnType::Text
        )
    }
}

/// The canonical SQL Server spelling, as SuperOffice sends it (`nvarchar(max)`, `decimal(18,2)`).
impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = |n: &Option<u16>| n.map_or_else(|| "max".to_owned(), |n| n.to_string());
        match self {
            ColumnType::Int => f.write_str("int"),
            ColumnType::SmallInt => f.write_str("smallint"),
            ColumnType::TinyInt => f.write_str("tinyint"),
            ColumnType::BigInt => f.write_str("bigint"),
            ColumnType::Bit => f.write_str("bit"),
            ColumnType::Float => f.write_str("float"),
            ColumnType::Real => f.write_str("real"),
            ColumnType::DateTime => f.write_str("datetime"),
            ColumnType::DateTime2 => f.write_str("datetime2"),
            ColumnType::SmallDateTime => f.write_str("smalldatetime"),
            ColumnType::Date => f.write_str("date"),
            ColumnType::NVarChar(n) => write!(f, "nvarchar({})", len(n)),
            ColumnType::VarChar(n) => write!(f, "varchar({})", len(n)),
            ColumnType::NChar(n) => write!(f, "nchar({n})"),
            ColumnType::Char(n) => write!(f, "char({n})"),
            ColumnType::NText => f.write_str("ntext"),
            ColumnType::Text => f.write_str("text"),
            ColumnType::VarBinary(n) => write!(f, "varbinary({})", len(n)),
            ColumnType::Image => f.write_str("image"),
            ColumnType::UniqueIdentifier => f.write_str("uniqueidentifier"),
            ColumnType::Decimal(p, s) => write!(f, "decimal({p},{s})"),
        }
    }
}

/// A parsed `DefaultValue` clause. SuperOffice sends the whole clause with its keyword
/// (`default ((-1))`, `default (N'')`); only literals and a few well-known functions are accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DefaultValue {
    Null,
    Integer(i64),
    Float(f64),
    Text(String),
    /// `getdate()` / `getutcdate()` / `sysdatetime()`: the current time on the mirror server.
    CurrentTimestamp,
    /// `newid()`: a fresh GUID.
    NewId,
}

impl DefaultValue {
    /// Parses a clause. `Ok(None)` for an empty clause; an error for anything not understood.
    pub fn parse_clause(raw: &str) -> Result<Option<DefaultValue>, UnsupportedDefault> {
        let s = raw.trim();
        if s.is_empty() {
            return Ok(None);
        }
        let rest = match s.get(..7) {
            Some(kw) if kw.eq_ignore_ascii_case("default") => s[7..].trim(),
            _ => s,
        };
        parse_default_expr(rest).map(Some).ok_or(UnsupportedDefault)
    }
}

/// A `DefaultValue` clause that is not one literal or well-known function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsupportedDefault;

/// Strips balanced outer parentheses and reads one literal.
fn parse_default_expr(mut s: &str) -> Option<DefaultValue> {
    loop {
        s = s.trim();
        match s.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
            Some(inner) if balanced(inner) => s = inner,
            _ => break,
        }
    }
    if s.eq_ignore_ascii_case("null") {
        return Some(DefaultValue::Null);
    }
    let lower = s.to_ascii_lowercase();
    match lower.as_str() {
        "getdate()" | "getutcdate()" | "sysdatetime()" | "current_timestamp" => {
            return Some(DefaultValue::CurrentTimestamp);
        }
        "newid()" => return Some(DefaultValue::NewId),
        _ => {}
    }
    let quoted = s
        .strip_prefix("N'")
        .or_else(|| s.strip_prefix("n'"))
        .or_else(|| s.strip_prefix('\''));
    if let Some(body) = quoted {
        let body = body.strip_suffix('\'')?;
        // Inside the literal a quote is doubled; a lone quote means the clause is not one literal.
        let mut text = String::with_capacity(body.len());
        let mut chars = body.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\'' && chars.next() != Some('\'') {
                return None;
            }
            text.push(c);
        }
        return Some(DefaultValue::Text(text));
    }
    if let Ok(n) = s.parse::<i64>() {
        return Some(DefaultValue::Integer(n));
    }
    if s.chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'))
    {
        return s
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(DefaultValue::Float);
    }
    None
}

fn balanced(s: &str) -> bool {
    let mut depth = 0i32;
    let mut in_quote = false;
    for c in s.chars() {
        match c {
            '\'' => in_quote = !in_quote,
            '(' if !in_quote => depth += 1,
            ')' if !in_quote => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth == 0 && !in_quote
}

/// One column, validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    pub ty: ColumnType,
    pub nullable: bool,
    pub default: Option<DefaultValue>,
}

/// One table's schema, validated: safe names, known types, column 0 a non-nullable integer key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableSchema {
    pub name: String,
    pub columns: Vec<Column>,
}

/// A column exactly as it arrived on the wire, before validation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawColumn {
    pub name: String,
    pub ty: String,
    pub nullable: bool,
    pub default: String,
}

/// A table schema exactly as it arrived on the wire, before validation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawTableSchema {
    pub name: String,
    pub columns: Vec<RawColumn>,
}

impl RawTableSchema {
    /// Validates names, types, defaults and the key column.
    pub fn validate(&self) -> Result<TableSchema, SchemaError> {
        check_identifier(&self.name)?;
        let table = &self.name;
        let mut columns = Vec::with_capacity(self.columns.len());
        for raw in &self.columns {
            check_identifier(&raw.name)?;
            if columns
                .iter()
                .any(|c: &Column| c.name.eq_ignore_ascii_case(&raw.name))
            {
                return Err(SchemaError::DuplicateColumn {
                    table: table.clone(),
                    column: raw.name.clone(),
                });
            }
            let ty = ColumnType::parse(&raw.ty).ok_or_else(|| SchemaError::UnknownType {
                table: table.clone(),
                column: raw.name.clone(),
                ty: raw.ty.clone(),
            })?;
            let default =
                DefaultValue::parse_clause(&raw.default).map_err(|UnsupportedDefault| {
                    SchemaError::BadDefault {
                        table: table.clone(),
                        column: raw.name.clone(),
                        clause: raw.default.clone(),
                    }
                })?;
            columns.push(Column {
                name: raw.name.clone(),
                ty,
                nullable: raw.nullable,
                default,
            });
        }
        let key = columns.first().ok_or_else(|| SchemaError::NoColumns {
            table: table.clone(),
        })?;
        if !key.ty.is_integer() || key.nullable {
            return Err(SchemaError::BadKey {
                table: table.clone(),
                column: key.name.clone(),
            });
        }
        Ok(TableSchema {
            name: self.name.clone(),
            columns,
        })
    }
}

/// Validates a whole TableSchema call: every table, and no table twice.
pub fn validate_tables(raw: &[RawTableSchema]) -> Result<Vec<TableSchema>, SchemaError> {
    let mut tables: Vec<TableSchema> = Vec::with_capacity(raw.len());
    let mut seen = std::collections::HashSet::with_capacity(raw.len());
    for t in raw {
        let table = t.validate()?;
        if !seen.insert(table.name.to_ascii_lowercase()) {
            return Err(SchemaError::DuplicateTable { table: table.name });
        }
        tables.push(table);
    }
    Ok(tables)
}

impl TableSchema {
    /// The key column (column 0).
    pub fn key(&self) -> &Column {
        &self.columns[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_type_superoffice_sends() {
        assert_eq!(ColumnType::parse("int"), Some(ColumnType::Int));
        assert_eq!(ColumnType::parse("smallint"), Some(ColumnType::SmallInt));
        assert_eq!(ColumnType::parse("datetime"), Some(ColumnType::DateTime));
        assert_eq!(ColumnType::parse("float"), Some(ColumnType::Float));
        assert_eq!(
            ColumnType::parse("nvarchar(2)"),
            Some(ColumnType::NVarChar(Some(2)))
        );
        assert_eq!(
            ColumnType::parse("nvarchar(4000)"),
            Some(ColumnType::NVarChar(Some(4000)))
        );
        assert_eq!(
            ColumnType::parse("nvarchar(max)"),
            Some(ColumnType::NVarChar(None))
        );
        assert_eq!(
            ColumnType::parse(" NVARCHAR( MAX ) "),
            Some(ColumnType::NVarChar(None))
        );
        assert_eq!(ColumnType::parse("ntext"), Some(ColumnType::NText));
        assert_eq!(
            ColumnType::parse("varbinary(max)"),
            Some(ColumnType::VarBinary(None))
        );
        assert_eq!(
            ColumnType::parse("decimal(18, 2)"),
            Some(ColumnType::Decimal(18, 2))
        );
    }

    #[test]
    fn refuses_types_off_the_list() {
        for bad in [
            "",
            "xml",
            "geography",
            "nvarchar",
            "nvarchar(0)",
            "nvarchar(4001)",
            "nvarchar(10",
            "int(4)",
            "int; drop table x",
            "decimal(40,2)",
            "decimal(5,6)",
            "sql_variant",
        ] {
            assert_eq!(ColumnType::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn type_display_round_trips() {
        for s in [
            "int",
            "nvarchar(255)",
            "nvarchar(max)",
            "varbinary(max)",
            "decimal(18,2)",
            "nchar(3)",
        ] {
            assert_eq!(
                ColumnType::parse(s).map(|t| t.to_string()).as_deref(),
                Some(s)
            );
        }
    }

    #[test]
    fn parses_the_default_clauses_of_the_real_schema() {
        let p = |s: &str| DefaultValue::parse_clause(s);
        assert_eq!(p(""), Ok(None));
        assert_eq!(p("default ((-1))"), Ok(Some(DefaultValue::Integer(-1))));
        assert_eq!(p("default ((0))"), Ok(Some(DefaultValue::Integer(0))));
        assert_eq!(p("default ((25))"), Ok(Some(DefaultValue::Integer(25))));
        assert_eq!(
            p("default (N'')"),
            Ok(Some(DefaultValue::Text(String::new())))
        );
        assert_eq!(
            p("default (N'1760-01-01 00:00:00')"),
            Ok(Some(DefaultValue::Text("1760-01-01 00:00:00".into())))
        );
        assert_eq!(
            p("default (N'17600101 00:00:00')"),
            Ok(Some(DefaultValue::Text("17600101 00:00:00".into())))
        );
        assert_eq!(
            p("DEFAULT (getdate())"),
            Ok(Some(DefaultValue::CurrentTimestamp))
        );
        assert_eq!(p("default ((1.5))"), Ok(Some(DefaultValue::Float(1.5))));
        assert_eq!(
            p("default (N'it''s')"),
            Ok(Some(DefaultValue::Text("it's".into())))
        );
    }

    #[test]
    fn refuses_default_clauses_that_are_not_one_literal() {
        for bad in [
            "default (N'a') ; drop table x --",
            "default (N'a' + N'b')",
            "default (N'a'')",
            "default ((1)) or 1=1",
            "default (user_name())",
            "default ((1)",
        ] {
            assert_eq!(
                DefaultValue::parse_clause(bad),
                Err(UnsupportedDefault),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn identifiers() {
        for ok in ["contact", "y_kostenstelle", "x_deleted", "_a1", "A"] {
            assert_eq!(check_identifier(ok), Ok(()));
        }
        let long = "a".repeat(129);
        for bad in [
            "",
            "1abc",
            "a b",
            "a-b",
            "a]b",
            "a\"b",
            "a;b",
            "ä",
            long.as_str(),
        ] {
            assert!(check_identifier(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn validation_checks_the_key_and_duplicates() {
        let col = |n: &str, t: &str, null: bool| RawColumn {
            name: n.into(),
            ty: t.into(),
            nullable: null,
            default: String::new(),
        };
        let table = |cols| RawTableSchema {
            name: "t".into(),
            columns: cols,
        };
        assert!(
            table(vec![
                col("t_id", "int", false),
                col("x", "nvarchar(5)", true)
            ])
            .validate()
            .is_ok()
        );
        assert!(matches!(
            table(vec![col("t_id", "nvarchar(5)", false)]).validate(),
            Err(SchemaError::BadKey { .. })
        ));
        assert!(matches!(
            table(vec![col("t_id", "int", true)]).validate(),
            Err(SchemaError::BadKey { .. })
        ));
        assert!(matches!(
            table(vec![]).validate(),
            Err(SchemaError::NoColumns { .. })
        ));
        assert!(matches!(
            table(vec![col("t_id", "int", false), col("T_ID", "int", true)]).validate(),
            Err(SchemaError::DuplicateColumn { .. })
        ));
        assert!(matches!(
            table(vec![col("t_id", "int", false), col("x", "money", true)]).validate(),
            Err(SchemaError::UnknownType { .. })
        ));
    }
}
