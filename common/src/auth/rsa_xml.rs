//! The .NET `RSAKeyValue` XML key format (`RSA.ToXmlString`), in which SuperOffice's Developer
//! Portal hands out application keys.
//!
//! ```xml
//! <RSAKeyValue><Modulus>…</Modulus><Exponent>AQAB</Exponent><P>…</P><Q>…</Q><DP>…</DP>
//! <DQ>…</DQ><InverseQ>…</InverseQ><D>…</D></RSAKeyValue>
//! ```
//! Each value is a big-endian integer in standard Base64. .NET's importer insists on fixed
//! lengths (D as long as the modulus, the CRT values half of it), so that is what we write; when
//! reading we accept any length.

use base64::Engine;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use quick_xml::Reader;
use quick_xml::events::Event;
use rsa::BigUint;

use super::error::AuthError;

/// Reads Base64 with or without padding, as different exporters write it.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The members of `RSAKeyValue`, in the order .NET writes them.
pub(crate) const FIELDS: [&str; 8] = ["Modulus", "Exponent", "P", "Q", "DP", "DQ", "InverseQ", "D"];

/// The integers found in an `RSAKeyValue` document, indexed like [`FIELDS`].
pub(crate) struct RsaXml {
    values: [Option<BigUint>; 8],
}

impl RsaXml {
    /// The value of member `name` (one of [`FIELDS`]), if present.
    pub(crate) fn get(&self, name: &str) -> Option<&BigUint> {
        let index = FIELDS.iter().position(|f| *f == name)?;
        self.values[index].as_ref()
    }

    /// The value of member `name`, or an error naming it.
    pub(crate) fn require(&self, name: &'static str) -> Result<&BigUint, AuthError> {
        self.get(name)
            .ok_or_else(|| AuthError::Key(format!("RSA-XML key has no <{name}>")))
    }
}

fn bad(message: impl Into<String>) -> AuthError {
    AuthError::Key(format!("RSA-XML key: {}", message.into()))
}

/// Parses an `RSAKeyValue` document. Unknown members are ignored; DTDs and entity references are
/// refused (a key file has no use for them).
pub(crate) fn parse(text: &str) -> Result<RsaXml, AuthError> {
    let mut reader = Reader::from_str(text.trim_start_matches('\u{feff}'));
    reader.config_mut().trim_text(true);
    let mut texts: [Option<String>; 8] = Default::default();
    let mut depth = 0usize;
    let mut current: Option<usize> = None;
    let mut seen_root = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| bad(format!("not well-formed XML: {e}")))?;
        match event {
            Event::Start(element) => {
                depth += 1;
                let name = element.local_name();
                let name = name.as_ref();
                match depth {
                    1 if name == b"RSAKeyValue" && !seen_root => seen_root = true,
                    1 => return Err(bad("the root element is not <RSAKeyValue>")),
                    2 => {
                        current = FIELDS.iter().position(|f| f.as_bytes() == name);
                        if let Some(index) = current {
                            if texts[index].is_some() {
                                return Err(bad(format!("<{}> appears twice", FIELDS[index])));
                            }
                            texts[index] = Some(String::new());
                        }
                    }
                    _ => return Err(bad("unexpected nested element")),
                }
            }
            Event::Empty(element) => {
                if depth == 0 {
                    return Err(bad("<RSAKeyValue> is empty"));
                }
                if let Some(index) = FIELDS
                    .iter()
                    .position(|f| f.as_bytes() == element.local_name().as_ref())
                {
                    return Err(bad(format!("<{}> is empty", FIELDS[index])));
                }
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                current = None;
            }
            Event::Text(text) => {
                let text = text
                    .decode()
                    .map_err(|e| bad(format!("undecodable text: {e}")))?;
                append(&mut texts, current, depth, &text)?;
            }
            Event::CData(data) => {
                let text = data
                    .decode()
                    .map_err(|e| bad(format!("undecodable text: {e}")))?;
                append(&mut texts, current, depth, &text)?;
            }
            Event::GeneralRef(_) => return Err(bad("entity references are not allowed")),
            Event::DocType(_) => return Err(bad("a DTD is not allowed")),
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if depth != 0 {
        return Err(bad("not well-formed XML: an element is not closed"));
    }
    if !seen_root {
        return Err(bad("no <RSAKeyValue> element"));
    }
    let mut values: [Option<BigUint>; 8] = Default::default();
    for (index, text) in texts.iter().enumerate() {
        if let Some(text) = text {
            let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            let bytes = LENIENT
                .decode(compact)
                .map_err(|_| bad(format!("<{}> is not Base64", FIELDS[index])))?;
            if bytes.is_empty() {
                return Err(bad(format!("<{}> is empty", FIELDS[index])));
            }
            values[index] = Some(BigUint::from_bytes_be(&bytes));
        }
    }
    Ok(RsaXml { values })
}

fn append(
    texts: &mut [Option<String>; 8],
    current: Option<usize>,
    depth: usize,
    text: &str,
) -> Result<(), AuthError> {
    match (depth, current) {
        (2, Some(index)) => {
            if let Some(buffer) = texts[index].as_mut() {
                buffer.push_str(text);
            }
            Ok(())
        }
        (2, None) => Ok(()),
        _ => Err(bad("unexpected text outside a member")),
    }
}

/// Big-endian bytes of `value`, left-padded with zeros to `len` (never truncated).
pub(crate) fn fixed_bytes(value: &BigUint, len: usize) -> Vec<u8> {
    let bytes = value.to_bytes_be();
    if bytes.len() >= len {
        return bytes;
    }
    let mut out = vec![0; len - bytes.len()];
    out.extend_from_slice(&bytes);
    out
}

/// Writes an `RSAKeyValue` document from `(member, big-endian bytes)` pairs, in the given order.
pub(crate) fn write(members: &[(&str, Vec<u8>)]) -> String {
    let mut out = String::from("<RSAKeyValue>");
    for (name, bytes) in members {
        out.push_str(&format!("<{name}>{}</{name}>", STANDARD.encode(bytes)));
    }
    out.push_str("</RSAKeyValue>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_members_in_any_layout() {
        let text = "\u{feff}<?xml version=\"1.0\"?>\n<!-- app key -->\n<RSAKeyValue>\n  \
                    <Exponent>AQAB</Exponent>\n  <Modulus>\n  AQID\n  BA==</Modulus>\
                    <Extra>ignored</Extra><D><![CDATA[BQ]]></D></RSAKeyValue>";
        let key = parse(text).unwrap();
        assert_eq!(key.get("Modulus"), Some(&BigUint::from(0x01020304u32)));
        assert_eq!(key.get("Exponent"), Some(&BigUint::from(65537u32)));
        assert_eq!(key.get("D"), Some(&BigUint::from(5u32)));
        assert!(key.get("P").is_none());
        let err = key.require("P").err().unwrap();
        assert!(err.to_string().contains("<P>"), "{err}");
    }

    #[test]
    fn refuses_what_is_not_a_plain_key() {
        for (text, expected) in [
            ("<RSAKeyValue><Modulus>AQ==</Modulus>", "well-formed"),
            ("<Key><Modulus>AQ==</Modulus></Key>", "root element"),
            (
                "<RSAKeyValue><Modulus>AQ==</Modulus><Modulus>AQ==</Modulus></RSAKeyValue>",
                "twice",
            ),
            (
                "<RSAKeyValue><Modulus>A*Q==</Modulus></RSAKeyValue>",
                "not Base64",
            ),
            ("<RSAKeyValue><Modulus/></RSAKeyValue>", "empty"),
            (
                "<RSAKeyValue><Modulus>&x;</Modulus></RSAKeyValue>",
                "entity",
            ),
            ("<!DOCTYPE x [<!ENTITY x \"AQ\">]><RSAKeyValue/>", "DTD"),
            (
                "<RSAKeyValue><Modulus><i>AQ==</i></Modulus></RSAKeyValue>",
                "nested",
            ),
            ("just text", "outside"),
            ("", "no <RSAKeyValue>"),
        ] {
            let err = parse(text).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn writes_fixed_length_members_in_order() {
        assert_eq!(fixed_bytes(&BigUint::from(1u32), 3), vec![0, 0, 1]);
        assert_eq!(fixed_bytes(&BigUint::from(0x010203u32), 2), vec![1, 2, 3]);
        let xml = write(&[("Modulus", vec![1, 2, 3, 4]), ("Exponent", vec![1, 0, 1])]);
        assert_eq!(
            xml,
            "<RSAKeyValue><Modulus>AQIDBA==</Modulus><Exponent>AQAB</Exponent></RSAKeyValue>"
        );
    }
}
