//! Parsers for the data contracts (`TableSchemaInfo`, `ColumnInfo`, `RowDataBatch`, `RowData`,
//! `ReplicationSummary`, `TableLSN`) and the field helpers the operation wrappers share.
//!
//! Members of a data contract are accepted in any order (WCF writes them alphabetically, but a
//! reordering serializer is still speaking the contract). A member appearing twice is an error.
//! Unknown elements in the container's own namespace are skipped, because a newer contract may add
//! members and WCF itself ignores unknown members; elements from any other namespace are errors,
//! because they mean the sender is not speaking this contract. Arrays are strict: an array holds
//! only its item element, since skipping an unknown item would shift positional values.

use std::borrow::Cow;

use super::error::{Problem, SoapError, excerpt};
use super::name::{Element, Ns};
use super::reader::XmlReader;
use super::{RawRow, RawRowBatch};
use crate::schema::{RawColumn, RawTableSchema};
use crate::wire::{ReplicationSummary, TableLsn};

/// The member name of `el` when it is in `ns`; an error for an element from another namespace.
pub(crate) fn member<'e>(el: &'e Element, ns: &Ns) -> Result<&'e str, SoapError> {
    if el.ns == *ns {
        Ok(&el.name)
    } else {
        Err(SoapError::invalid(Problem::UnexpectedElement(el.display())))
    }
}

/// Stores a member's value, refusing a second occurrence.
pub(crate) fn set<T>(slot: &mut Option<T>, name: &str, value: T) -> Result<(), SoapError> {
    if slot.is_some() {
        return Err(SoapError::invalid(Problem::Duplicate(name.to_owned())));
    }
    *slot = Some(value);
    Ok(())
}

pub(crate) fn required<T>(slot: Option<T>, name: &'static str) -> Result<T, SoapError> {
    slot.ok_or(SoapError::invalid(Problem::Missing(name)))
}

/// A string member: nil reads as the empty string, as WCF's `null` string has no other meaning here.
pub(crate) fn string(r: &mut XmlReader<'_>, el: &Element) -> Result<String, SoapError> {
    Ok(r.value(el)?.map(Cow::into_owned).unwrap_or_default())
}

/// The text of a member that must not be nil.
pub(crate) fn non_nil<'a>(r: &mut XmlReader<'a>, el: &Element) -> Result<Cow<'a, str>, SoapError> {
    r.value(el)?
        .ok_or_else(|| SoapError::invalid(Problem::Nil(el.name.to_string())))
}

/// XML Schema collapses white space around numbers and booleans; nothing else is tolerated.
fn collapse(s: &str) -> &str {
    s.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
}

fn bad(value: &str, expected: &'static str) -> SoapError {
    SoapError::invalid(Problem::BadValue {
        value: excerpt(value),
        expected,
    })
}

/// An `xs:long` member: optional sign and decimal digits only.
pub(crate) fn long(r: &mut XmlReader<'_>, el: &Element) -> Result<i64, SoapError> {
    let text = non_nil(r, el)?;
    parse_integer(collapse(&text)).ok_or_else(|| bad(&text, "64-bit integer"))
}

/// An `xs:int` member.
pub(crate) fn int(r: &mut XmlReader<'_>, el: &Element) -> Result<i32, SoapError> {
    let text = non_nil(r, el)?;
    parse_integer(collapse(&text))
        .and_then(|n| i32::try_from(n).ok())
        .ok_or_else(|| bad(&text, "32-bit integer"))
}

fn parse_integer(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// An `xs:boolean` member: `true`, `false`, `1` or `0`.
pub(crate) fn boolean(r: &mut XmlReader<'_>, el: &Element) -> Result<bool, SoapError> {
    let text = non_nil(r, el)?;
    match collapse(&text) {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(bad(&text, "boolean (true or false)")),
    }
}

/// An array of `item` elements in the contract namespace; `parse` reads one item.
pub(crate) fn array<'a, T>(
    r: &mut XmlReader<'a>,
    el: &Element,
    item: &'static str,
    mut parse: impl FnMut(&mut XmlReader<'a>) -> Result<T, SoapError>,
) -> Result<Vec<T>, SoapError> {
    if el.nil {
        r.skip()?;
        return Err(SoapError::invalid(Problem::Nil(el.name.to_string())));
    }
    let mut items = Vec::new();
    while let Some(child) = r.next_child()? {
        if !child.is(&Ns::Contract, item) {
            return Err(SoapError::invalid(Problem::UnexpectedElement(
                child.display(),
            )));
        }
        let index = items.len();
        if child.nil {
            r.skip()?;
            return Err(SoapError::invalid(Problem::Nil(format!("{item}[{index}]"))));
        }
        items.push(parse(r).map_err(|e| e.within(format_args!("{item}[{index}]")))?);
    }
    Ok(items)
}

/// `TableSchemaInfo { Columns: ColumnInfo[], TableName }`.
pub(crate) fn table_schema(r: &mut XmlReader<'_>) -> Result<RawTableSchema, SoapError> {
    let mut columns = None;
    let mut name = None;
    while let Some(el) = r.next_child()? {
        let field = member(&el, &Ns::Contract)?;
        match field {
            "Columns" => {
                let value = array(r, &el, "ColumnInfo", column).map_err(|e| e.within(field))?;
                set(&mut columns, field, value)?;
            }
            "TableName" => {
                let value = non_nil(r, &el).map_err(|e| e.within(field))?;
                set(&mut name, field, value.into_owned())?;
            }
            _ => r.skip()?,
        }
    }
    Ok(RawTableSchema {
        name: required(name, "TableName")?,
        columns: required(columns, "Columns")?,
    })
}

/// `ColumnInfo { DefaultValue, IsNullable, Name, Type }`; an absent DefaultValue means none.
fn column(r: &mut XmlReader<'_>) -> Result<RawColumn, SoapError> {
    let mut default = None;
    let mut nullable = None;
    let mut name = None;
    let mut ty = None;
    while let Some(el) = r.next_child()? {
        let field = member(&el, &Ns::Contract)?;
        let within = |e: SoapError| e.within(field);
        match field {
            "DefaultValue" => set(&mut default, field, string(r, &el).map_err(within)?)?,
            "IsNullable" => set(&mut nullable, field, boolean(r, &el).map_err(within)?)?,
            "Name" => set(
                &mut name,
                field,
                non_nil(r, &el).map_err(within)?.into_owned(),
            )?,
            "Type" => set(
                &mut ty,
                field,
                non_nil(r, &el).map_err(within)?.into_owned(),
            )?,
            _ => r.skip()?,
        }
    }
    Ok(RawColumn {
        name: required(name, "Name")?,
        ty: required(ty, "Type")?,
        nullable: required(nullable, "IsNullable")?,
        default: default.unwrap_or_default(),
    })
}

/// `RowDataBatch { Data: RowData[], LSN, TableInfo }`.
pub(crate) fn row_batch<'a>(r: &mut XmlReader<'a>) -> Result<RawRowBatch<'a>, SoapError> {
    let mut rows = None;
    let mut lsn = None;
    let mut table = None;
    while let Some(el) = r.next_child()? {
        let field = member(&el, &Ns::Contract)?;
        match field {
            "Data" => {
                // Rows of one batch have the same width: size each row's vector after the last.
                let mut width = 0;
                let value = array(r, &el, "RowData", |r| {
                    let row = row(r, width)?;
                    width = row.values.len();
                    Ok(row)
                })
                .map_err(|e| e.within(field))?;
                set(&mut rows, field, value)?;
            }
            "LSN" => set(&mut lsn, field, long(r, &el).map_err(|e| e.within(field))?)?,
            "TableInfo" => {
                if el.nil {
                    r.skip()?;
                    return Err(SoapError::invalid(Problem::Nil(field.to_owned())));
                }
                set(
                    &mut table,
                    field,
                    table_schema(r).map_err(|e| e.within(field))?,
                )?;
            }
            _ => r.skip()?,
        }
    }
    Ok(RawRowBatch {
        table: required(table, "TableInfo")?,
        lsn: required(lsn, "LSN")?,
        rows: required(rows, "Data")?,
    })
}

/// `RowData { ColumnValues: string[], Operation }`.
fn row<'a>(r: &mut XmlReader<'a>, width: usize) -> Result<RawRow<'a>, SoapError> {
    let mut values = None;
    let mut operation = None;
    while let Some(el) = r.next_child()? {
        let field = member(&el, &Ns::Contract)?;
        match field {
            "ColumnValues" => {
                let value = column_values(r, &el, width).map_err(|e| e.within(field))?;
                set(&mut values, field, value)?;
            }
            "Operation" => {
                let value = non_nil(r, &el).map_err(|e| e.within(field))?;
                set(&mut operation, field, value.into_owned())?;
            }
            _ => r.skip()?,
        }
    }
    Ok(RawRow {
        operation: required(operation, "Operation")?,
        values: required(values, "ColumnValues")?,
    })
}

/// The hot path: positional `b:string` values, borrowed from the body when possible.
fn column_values<'a>(
    r: &mut XmlReader<'a>,
    el: &Element,
    width: usize,
) -> Result<Vec<Option<Cow<'a, str>>>, SoapError> {
    if el.nil {
        r.skip()?;
        return Err(SoapError::invalid(Problem::Nil(el.name.to_string())));
    }
    let mut values = Vec::with_capacity(width);
    while let Some(item) = r.next_child()? {
        if !item.is(&Ns::Arrays, "string") {
            return Err(SoapError::invalid(Problem::UnexpectedElement(
                item.display(),
            )));
        }
        let value = r
            .value(&item)
            .map_err(|e| e.within(format_args!("string[{}]", values.len())))?;
        values.push(value);
    }
    Ok(values)
}

/// `ReplicationSummary { Deletes, Inserts, TableName, Updates }`.
pub(crate) fn summary(r: &mut XmlReader<'_>) -> Result<ReplicationSummary, SoapError> {
    let mut deletes = None;
    let mut inserts = None;
    let mut table = None;
    let mut updates = None;
    while let Some(el) = r.next_child()? {
        let field = member(&el, &Ns::Contract)?;
        let within = |e: SoapError| e.within(field);
        match field {
            "Deletes" => set(&mut deletes, field, int(r, &el).map_err(within)?)?,
            "Inserts" => set(&mut inserts, field, int(r, &el).map_err(within)?)?,
            "TableName" => set(
                &mut table,
                field,
                non_nil(r, &el).map_err(within)?.into_owned(),
            )?,
            "Updates" => set(&mut updates, field, int(r, &el).map_err(within)?)?,
            _ => r.skip()?,
        }
    }
    Ok(ReplicationSummary {
        table: required(table, "TableName")?,
        inserts: required(inserts, "Inserts")?,
        updates: required(updates, "Updates")?,
        deletes: required(deletes, "Deletes")?,
    })
}

/// `TableLSN { LSN, TableName }`.
pub(crate) fn table_lsn(r: &mut XmlReader<'_>) -> Result<TableLsn, SoapError> {
    let mut lsn = None;
    let mut table = None;
    while let Some(el) = r.next_child()? {
        let field = member(&el, &Ns::Contract)?;
        let within = |e: SoapError| e.within(field);
        match field {
            "LSN" => set(&mut lsn, field, long(r, &el).map_err(within)?)?,
            "TableName" => set(
                &mut table,
                field,
                non_nil(r, &el).map_err(within)?.into_owned(),
            )?,
            _ => r.skip()?,
        }
    }
    Ok(TableLsn {
        table: required(table, "TableName")?,
        lsn: required(lsn, "LSN")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_strict() {
        assert_eq!(parse_integer("1506269"), Some(1_506_269));
        assert_eq!(parse_integer("-1"), Some(-1));
        assert_eq!(parse_integer("+7"), Some(7));
        for bad in [
            "",
            "-",
            "1.0",
            "1e3",
            "0x10",
            "1 2",
            "９",
            "99999999999999999999",
        ] {
            assert_eq!(parse_integer(bad), None, "{bad:?}");
        }
    }
}
