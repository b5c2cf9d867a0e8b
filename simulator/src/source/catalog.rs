//! The tables of the synthetic tenant: a subset of a real SuperOffice tenant's schema, kept in
//! `data/tables.tsv` and embedded in the binary, so the simulator sends exactly the column lists,
//! types, nullability and default clauses the real Mirroring Task sends.

use mirror_common::schema::{ColumnType, RawColumn, RawTableSchema};

/// The embedded schema subset (see the file's header for its format).
pub const TABLES_TSV: &str = include_str!("../../data/tables.tsv");

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CatalogError {
    #[error("tables.tsv line {line}: {message}")]
    Line { line: usize, message: String },
}

/// Parses the catalog format: a table name on its own line, then one tab-indented line per column
/// (`name`, `type`, `true|false`, default clause). `#` starts a comment line.
pub fn parse(text: &str) -> Result<Vec<RawTableSchema>, CatalogError> {
    let mut tables: Vec<RawTableSchema> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let bad = |message: &str| CatalogError::Line {
            line: index + 1,
            message: message.to_owned(),
        };
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let Some(column) = line.strip_prefix('\t') else {
            tables.push(RawTableSchema {
                name: line.trim().to_owned(),
                columns: Vec::new(),
            });
            continue;
        };
        let fields: Vec<&str> = column.split('\t').collect();
        let [name, ty, nullable, rest @ ..] = fields.as_slice() else {
            return Err(bad("expected name, type, nullable and default"));
        };
        if rest.len() > 1 {
            return Err(bad("too many fields"));
        }
        if ColumnType::parse(ty).is_none() {
            return Err(bad("unknown column type"));
        }
        let nullable = match *nullable {
            "true" => true,
            "false" => false,
            _ => return Err(bad("nullable must be true or false")),
        };
        let table = tables
            .last_mut()
            .ok_or_else(|| bad("column before the first table"))?;
        table.columns.push(RawColumn {
            name: (*name).to_owned(),
            ty: (*ty).to_owned(),
            nullable,
            default: rest.first().map(|d| (*d).to_owned()).unwrap_or_default(),
        });
    }
    Ok(tables)
}

/// The embedded catalog, parsed. It is checked by the tests, so failure here is a build defect.
pub fn tables() -> Vec<RawTableSchema> {
    parse(TABLES_TSV).unwrap_or_default()
}

/// Share of a tenant's rows each table gets (relative weights), roughly as in a real CRM
/// database: many appointments, persons and texts, few custom-table rows.
pub fn weight(table: &str) -> u64 {
    match table {
        "appointment" => 24,
        "person" => 18,
        "text" => 14,
        "contact" => 10,
        "document" => 9,
        "sale" => 7,
        "invitation" => 5,
        "ticket" => 5,
        "ej_message" => 5,
        "project" => 3,
        "binaryobject" => 2,
        "y_collective_orders" => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirror_common::schema::validate_tables;

    const CAPTURE: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/superoffice/tableschema-request.http"
    ));

    /// The text of every `<a:tag>…</a:tag>` (or `<a:tag/>` as empty) in `block`, in order.
    fn elements<'a>(block: &'a str, tag: &str) -> Vec<&'a str> {
        let open = format!("<a:{tag}>");
        let close = format!("</a:{tag}>");
        let empty = format!("<a:{tag}/>");
        let mut out = Vec::new();
        let mut rest = block;
        loop {
            let next_open = rest.find(&open);
            let next_empty = rest.find(&empty);
            match (next_open, next_empty) {
                (Some(o), e) if e.is_none_or(|e| o < e) => {
                    let start = o + open.len();
                    let end = start + rest[start..].find(&close).unwrap();
                    out.push(&rest[start..end]);
                    rest = &rest[end + close.len()..];
                }
                (Some(_), Some(e)) | (None, Some(e)) => {
                    out.push("");
                    rest = &rest[e + empty.len()..];
                }
                (Some(_), None) | (None, None) => return out,
            }
        }
    }

    /// The capture's tables, read with a plain scanner over its fixed layout.
    fn captured() -> Vec<RawTableSchema> {
        CAPTURE
            .split("<a:TableSchemaInfo>")
            .skip(1)
            .map(|block| {
                let block = &block[..block.find("</a:TableSchemaInfo>").unwrap()];
                let columns = block
                    .split("<a:ColumnInfo>")
                    .skip(1)
                    .map(|c| RawColumn {
                        default: elements(c, "DefaultValue")[0].to_owned(),
                        nullable: elements(c, "IsNullable")[0] == "true",
                        name: elements(c, "Name")[0].to_owned(),
                        ty: elements(c, "Type")[0].to_owned(),
                    })
                    .collect();
                RawTableSchema {
                    name: elements(block, "TableName").last().unwrap().to_string(),
                    columns,
                }
            })
            .collect()
    }

    #[test]
    fn the_catalog_matches_the_captured_schema() {
        let capture = captured();
        assert_eq!(capture.len(), 413, "the capture holds 413 tables");
        let ours = tables();
        assert!(ours.len() >= 10, "{} tables", ours.len());
        for table in &ours {
            let real = capture
                .iter()
                .find(|t| t.name == table.name)
                .unwrap_or_else(|| panic!("{} is not in the capture", table.name));
            assert_eq!(table, real, "{} differs from the capture", table.name);
        }
    }

    #[test]
    fn the_catalog_covers_what_the_simulator_promises() {
        let ours = tables();
        let names: Vec<&str> = ours.iter().map(|t| t.name.as_str()).collect();
        for required in [
            "contact",
            "person",
            "appointment",
            "sale",
            "project",
            "document",
            "invitation",
        ] {
            assert!(names.contains(&required), "{required} missing");
        }
        assert!(names.iter().any(|n| n.starts_with("y_")), "no custom table");
        let columns = || ours.iter().flat_map(|t| &t.columns);
        assert!(
            columns().any(|c| c.name.starts_with("x_")),
            "no extra field"
        );
        for ty in [
            "int",
            "smallint",
            "datetime",
            "float",
            "nvarchar(max)",
            "ntext",
            "varbinary(max)",
        ] {
            assert!(columns().any(|c| c.ty == ty), "no {ty} column");
        }
        assert!(
            columns().any(|c| c.default.contains("1760-01-01")),
            "no empty-date default"
        );
        // Everything must pass the same validation the receiver applies.
        validate_tables(&ours).unwrap();
    }

    #[test]
    fn parse_reports_bad_lines() {
        assert!(matches!(
            parse("\tid\tint\tfalse\t\n"),
            Err(CatalogError::Line { line: 1, .. })
        ));
        assert!(matches!(
            parse("t\n\tid\tintx\tfalse\t\n"),
            Err(CatalogError::Line { line: 2, .. })
        ));
        assert!(matches!(
            parse("t\n\tid\tint\tmaybe\t\n"),
            Err(CatalogError::Line { line: 2, .. })
        ));
        let t =
            parse("# c\nt\n\tid\tint\tfalse\t\n\tn\tnvarchar(5)\ttrue\tdefault (N'')\n").unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].columns[1].default, "default (N'')");
    }
}
