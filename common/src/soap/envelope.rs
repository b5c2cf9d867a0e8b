//! The SOAP 1.1 envelope around every request and response: an optional `Header` (where requests
//! carry `SignedToken`) and a `Body` holding exactly one operation element.

use super::Limits;
use super::contract::set;
use super::error::{Problem, SoapError};
use super::name::{Element, Ns};
use super::reader::XmlReader;

/// Reads an envelope. `operation` parses the Body's element into `T`, or returns `Ok(None)` without
/// reading anything when the element is no operation it knows. Returns the trimmed `SignedToken`
/// (if any, and not blank) and the operation.
///
/// A content error is only reported once the rest of the document proved well-formed: a body that
/// is not XML is unreadable even when its first bad spot looked like bad content.
pub(crate) fn parse_envelope<'a, T>(
    input: &'a [u8],
    limits: &Limits,
    mut operation: impl FnMut(&mut XmlReader<'a>, &Element) -> Result<Option<T>, SoapError>,
) -> Result<(Option<String>, T), SoapError> {
    let mut r = XmlReader::new(input, limits.max_depth)?;
    match walk(&mut r, &mut operation) {
        Err(error) if !error.is_unreadable() => match r.drain() {
            Err(unreadable) if unreadable.is_unreadable() => Err(unreadable),
            _ => Err(error),
        },
        result => result,
    }
}

fn walk<'a, T>(
    r: &mut XmlReader<'a>,
    operation: &mut impl FnMut(&mut XmlReader<'a>, &Element) -> Result<Option<T>, SoapError>,
) -> Result<(Option<String>, T), SoapError> {
    let root = r.root()?;
    if !root.is(&Ns::Envelope, "Envelope") {
        return Err(SoapError::NotEnvelope(root.display()));
    }
    let mut token = None;
    let mut header_seen = false;
    let mut body = None;
    while let Some(el) = r.next_child().map_err(|e| e.within("Envelope"))? {
        if el.is(&Ns::Envelope, "Header") {
            if header_seen {
                return Err(
                    SoapError::invalid(Problem::Duplicate("Header".into())).within("Envelope")
                );
            }
            header_seen = true;
            token = header(r).map_err(|e| e.within("Header"))?;
        } else if el.is(&Ns::Envelope, "Body") {
            let value = read_body(r, operation)?;
            set(&mut body, "Body", value).map_err(|e| e.within("Envelope"))?;
        } else {
            // SOAP 1.1 allows further namespace-qualified elements after the Body.
            r.skip()?;
        }
    }
    r.finish()?;
    let body = body.ok_or(SoapError::NoBody)?;
    Ok((token, body))
}

/// Header entries other than `SignedToken` (WS-Addressing and the like) are ignored.
fn header(r: &mut XmlReader<'_>) -> Result<Option<String>, SoapError> {
    let mut token = None;
    while let Some(el) = r.next_child()? {
        if el.is(&Ns::Mirroring, "SignedToken") {
            let text = r.text().map_err(|e| e.within("SignedToken"))?;
            set(&mut token, "SignedToken", text.trim().to_owned())?;
        } else {
            r.skip()?;
        }
    }
    Ok(token.filter(|t| !t.is_empty()))
}

fn read_body<'a, T>(
    r: &mut XmlReader<'a>,
    operation: &mut impl FnMut(&mut XmlReader<'a>, &Element) -> Result<Option<T>, SoapError>,
) -> Result<T, SoapError> {
    let Some(el) = r.next_child().map_err(|e| e.within("Body"))? else {
        return Err(SoapError::UnknownOperation("the Body is empty".into()));
    };
    let Some(value) = operation(r, &el)? else {
        return Err(SoapError::UnknownOperation(el.display()));
    };
    if let Some(extra) = r.next_child().map_err(|e| e.within("Body"))? {
        return Err(SoapError::invalid(Problem::UnexpectedElement(extra.display())).within("Body"));
    }
    Ok(value)
}
