//! A namespace-aware pull reader over one in-memory XML document.
//!
//! It turns the [`Tokenizer`]'s tokens into the few moves a contract parser needs — next child
//! element, text content, skip an element — and enforces what the tokens alone do not: matching
//! end tags, well-formed and unique attributes, declared namespace prefixes, no DTD, no entity
//! other than the predefined ones, a depth limit, one root element, no text outside it, XML
//! characters only and XML 1.0 end-of-line normalisation. Elements are identified by namespace
//! URI and local name only; prefixes never matter.
//!
//! The input is checked to be UTF-8 once, as a whole; text then borrows from it whenever it needed
//! no unescaping or normalisation, which is the common case for row values.

use std::borrow::Cow;

use super::error::{Problem, SoapError, excerpt};
use super::name::{Element, Ns, intern};
use super::namespaces::{Namespaces, declared_prefix, split_prefix};
use super::tokens::{Attributes, Token, Tokenizer, is_whitespace};
use super::{MAX_ATTRIBUTES, MAX_NAMESPACES};

/// Where the reader is relative to the root element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Prolog,
    Root,
    Epilog,
}

enum Node<'a> {
    Start(Element),
    End,
    /// Character data as written, checked and normalised only where it is used: the white space
    /// between elements is recognised as it is and never decoded.
    Text(&'a str),
    CData(&'a str),
    Char(char),
    Eof,
}

/// An element being read: the name its end tag must repeat, and what its start tag declared.
struct Open<'a> {
    name: &'a str,
    declared: usize,
    /// The namespace bindings in scope before its start tag.
    bindings: usize,
}

pub(crate) struct XmlReader<'a> {
    tokens: Tokenizer<'a>,
    namespaces: Namespaces<'a>,
    /// The elements being read, innermost last.
    open: Vec<Open<'a>>,
    max_depth: usize,
    place: Place,
    /// An `<x/>` was reported as a start; its end is reported by the next read.
    pending_end: bool,
    seen_event: bool,
    /// Namespace declarations of the open elements.
    in_scope: usize,
    /// The attribute names of the start tag being read, for the duplicate check.
    keys: Vec<&'a str>,
}

impl<'a> XmlReader<'a> {
    /// A reader of `input`, which must be UTF-8 as a whole (the only encoding accepted).
    pub fn new(input: &'a [u8], max_depth: usize) -> Result<XmlReader<'a>, SoapError> {
        let input = std::str::from_utf8(input).map_err(|e| SoapError::Malformed {
            position: e.valid_up_to() as u64,
            message: format!("the document is not valid UTF-8: {e}"),
        })?;
        Ok(XmlReader {
            tokens: Tokenizer::new(input),
            namespaces: Namespaces::new(),
            open: Vec::new(),
            max_depth,
            place: Place::Prolog,
            pending_end: false,
            seen_event: false,
            in_scope: 0,
            keys: Vec::new(),
        })
    }

    /// Reads the prolog and returns the root element.
    pub fn root(&mut self) -> Result<Element, SoapError> {
        loop {
            match self.next_node()? {
                Node::Start(el) => return Ok(el),
                Node::Eof => return Err(self.malformed("the document has no root element")),
                Node::End | Node::Text(_) | Node::CData(_) | Node::Char(_) => {}
            }
        }
    }

    /// The next child element of the element being read, or `None` at its end. White space
    /// between elements is ignored; any other text is a content error.
    pub fn next_child(&mut self) -> Result<Option<Element>, SoapError> {
        loop {
            match self.next_node()? {
                Node::Start(el) => return Ok(Some(el)),
                Node::End => return Ok(None),
                Node::Text(t) | Node::CData(t) if is_blank(t) => {}
                Node::Text(t) | Node::CData(t) => {
                    let text = self.content(t)?;
                    return Err(SoapError::invalid(Problem::UnexpectedText(excerpt(&text))));
                }
                Node::Char(c) => {
                    return Err(SoapError::invalid(Problem::UnexpectedText(c.to_string())));
                }
                Node::Eof => return Err(self.malformed("unexpected end of the document")),
            }
        }
    }

    /// The text content of the element just started, up to its end. Never trimmed.
    pub fn text(&mut self) -> Result<Cow<'a, str>, SoapError> {
        let mut acc: Cow<'a, str> = Cow::Borrowed("");
        loop {
            let text = match self.next_node()? {
                Node::Text(t) | Node::CData(t) => self.content(t)?,
                Node::Char(c) => {
                    acc.to_mut().push(c);
                    continue;
                }
                Node::End => return Ok(acc),
                Node::Start(el) => {
                    return Err(SoapError::invalid(Problem::UnexpectedElement(el.display())));
                }
                Node::Eof => return Err(self.malformed("unexpected end of the document")),
            };
            if acc.is_empty() {
                acc = text;
            } else {
                acc.to_mut().push_str(&text);
            }
        }
    }

    /// The content of a simple element: `None` when it is `xsi:nil` (which must then be empty).
    pub fn value(&mut self, el: &Element) -> Result<Option<Cow<'a, str>>, SoapError> {
        let text = self.text()?;
        if !el.nil {
            return Ok(Some(text));
        }
        if text.is_empty() {
            Ok(None)
        } else {
            Err(SoapError::invalid(Problem::NilWithContent(
                el.name.to_string(),
            )))
        }
    }

    /// Skips the rest of the element just started, still checking it is well-formed.
    pub fn skip(&mut self) -> Result<(), SoapError> {
        let target = self.open.len().saturating_sub(1);
        loop {
            match self.next_node()? {
                Node::End if self.open.len() == target => return Ok(()),
                Node::Eof => return Err(self.malformed("unexpected end of the document")),
                _ => {}
            }
        }
    }

    /// After the root element ended: only white space, comments and processing instructions may
    /// follow.
    pub fn finish(&mut self) -> Result<(), SoapError> {
        loop {
            match self.next_node()? {
                Node::Eof => return Ok(()),
                Node::Start(_) | Node::End | Node::Text(_) | Node::CData(_) | Node::Char(_) => {}
            }
        }
    }

    /// Reads to the end of the document, only to find out whether it is well-formed. Used after a
    /// content error, because a document that is not XML must be reported as such.
    pub fn drain(&mut self) -> Result<(), SoapError> {
        self.finish()
    }

    fn next_node(&mut self) -> Result<Node<'a>, SoapError> {
        if self.pending_end {
            self.pending_end = false;
            return Ok(self.end());
        }
        loop {
            let token = self.tokens.next()?;
            let first = !self.seen_event;
            self.seen_event = true;
            if let Some(node) = self.node(token, first)? {
                return Ok(node);
            }
        }
    }

    /// What a token means here. `None` for tokens that carry nothing (comments, PIs, the XML
    /// declaration).
    fn node(&mut self, token: Token<'a>, first: bool) -> Result<Option<Node<'a>>, SoapError> {
        let inside = self.place == Place::Root;
        let node = match token {
            Token::Start {
                name,
                attributes,
                empty,
            } => Node::Start(self.start(name, attributes, empty)?),
            Token::End(name) => match self.open.last() {
                Some(open) if open.name == name => self.end(),
                Some(open) => {
                    let message = format!("end tag </{name}> does not match <{}>", open.name);
                    return Err(self.malformed(&message));
                }
                None => return Err(self.malformed(&format!("end tag </{name}> without a start"))),
            },
            Token::Text(t) => {
                if !inside {
                    if is_blank(t) {
                        return Ok(None);
                    }
                    return Err(self.malformed("text outside the root element"));
                }
                Node::Text(t)
            }
            Token::CData(c) => {
                if !inside {
                    return Err(self.malformed("CDATA outside the root element"));
                }
                Node::CData(c)
            }
            Token::Reference(r) => {
                if !inside {
                    return Err(self.malformed("a reference outside the root element"));
                }
                Node::Char(self.reference(r)?)
            }
            Token::Ignorable => return Ok(None),
            Token::Declaration(attributes) => {
                if !first {
                    return Err(self.malformed("an XML declaration that is not at the start"));
                }
                self.encoding(attributes)?;
                return Ok(None);
            }
            Token::Doctype => return Err(SoapError::Doctype),
            Token::Eof => {
                if self.place != Place::Epilog {
                    return Err(self.malformed(if self.place == Place::Prolog {
                        "the document has no root element"
                    } else {
                        "unexpected end of the document"
                    }));
                }
                Node::Eof
            }
        };
        Ok(Some(node))
    }

    fn start(
        &mut self,
        qname: &'a str,
        attributes: &'a str,
        empty: bool,
    ) -> Result<Element, SoapError> {
        let bindings = self.namespaces.mark();
        if !is_blank(attributes) {
            self.namespaces
                .declare(attributes)
                .map_err(|message| self.malformed(&message))?;
        }
        match self.place {
            Place::Prolog => self.place = Place::Root,
            Place::Root => {}
            Place::Epilog => return Err(self.malformed("a second root element")),
        }
        if self.open.len() >= self.max_depth {
            return Err(SoapError::TooDeep {
                limit: self.max_depth,
            });
        }
        self.open.push(Open {
            name: qname,
            declared: 0,
            bindings,
        });
        self.pending_end = empty;
        let (ns, local) = self
            .namespaces
            .element(qname)
            .map_err(|prefix| self.malformed(&format!("undeclared namespace prefix {prefix:?}")))?;
        let name = intern(local.as_bytes());
        let (nil, declared) = self.attributes(attributes)?;
        if let Some(open) = self.open.last_mut() {
            open.declared = declared;
        }
        self.in_scope += declared;
        if self.in_scope > MAX_NAMESPACES {
            return Err(SoapError::TooManyNamespaces {
                limit: MAX_NAMESPACES,
            });
        }
        Ok(Element { ns, name, nil })
    }

    fn end(&mut self) -> Node<'a> {
        if let Some(open) = self.open.pop() {
            self.in_scope -= open.declared;
            self.namespaces.restore(open.bindings);
        }
        if self.open.is_empty() {
            self.place = Place::Epilog;
        }
        Node::End
    }

    /// Resolves `&…;`: the five predefined entities and character references of legal characters.
    /// Nothing else exists without a DTD, and DTDs are refused.
    fn reference(&self, name: &str) -> Result<char, SoapError> {
        if let Some(number) = name.strip_prefix('#') {
            return match char_reference(number) {
                Some(c) if is_xml_char(c) => Ok(c),
                _ => Err(self.malformed(&format!("invalid character reference &{name};"))),
            };
        }
        predefined_entity(name).ok_or_else(|| SoapError::UnknownEntity(excerpt(name)))
    }

    /// Checks the `encoding` of the XML declaration: only UTF-8 is accepted.
    fn encoding(&self, attributes: &str) -> Result<(), SoapError> {
        for attribute in Attributes::new(attributes) {
            let (key, value) = attribute.map_err(|message| self.malformed(message))?;
            if key == "encoding" {
                if !value.eq_ignore_ascii_case("utf-8") {
                    return Err(self.malformed(&format!(
                        "unsupported encoding {value:?} (only UTF-8 is accepted)"
                    )));
                }
                return Ok(());
            }
        }
        Ok(())
    }

    /// Reads `xsi:nil` (by namespace, any prefix), checks every attribute is well-formed and
    /// unique, and counts the namespace declarations. Refuses more than [`MAX_ATTRIBUTES`] before
    /// the duplicate check, which is pairwise, gets expensive.
    fn attributes(&mut self, attributes: &'a str) -> Result<(bool, usize), SoapError> {
        if is_blank(attributes) {
            return Ok((false, 0));
        }
        self.keys.clear();
        let mut nil = false;
        let mut declared = 0;
        for (i, attribute) in Attributes::new(attributes).enumerate() {
            if i == MAX_ATTRIBUTES {
                return Err(SoapError::TooManyAttributes {
                    limit: MAX_ATTRIBUTES,
                });
            }
            let (key, value) = attribute
                .map_err(|message| self.malformed(&format!("bad attribute: {message}")))?;
            if self.keys.contains(&key) {
                return Err(self.malformed(&format!("attribute {key:?} appears twice")));
            }
            self.keys.push(key);
            if declared_prefix(key).is_some() {
                declared += 1;
                continue;
            }
            let local = split_prefix(key).map_or(key, |(_, local)| local);
            if local != "nil" || self.namespaces.attribute(key) != Some(&Ns::Xsi) {
                continue;
            }
            let value = unescape(value)
                .map_err(|message| self.malformed(&format!("bad attribute value: {message}")))?;
            nil = match value.trim_matches(is_whitespace) {
                "true" | "1" => true,
                "false" | "0" => false,
                other => {
                    return Err(SoapError::invalid(Problem::BadValue {
                        value: excerpt(other),
                        expected: "xsi:nil value (true or false)",
                    }));
                }
            };
        }
        Ok((nil, declared))
    }

    /// The text of a text or CDATA node: XML characters only, with XML 1.0 end-of-line
    /// normalisation. A NUL or other control character let through would be refused later by the
    /// mirror's database instead of now.
    fn content(&self, text: &'a str) -> Result<Cow<'a, str>, SoapError> {
        if !needs_checking(text.as_bytes()) {
            return Ok(Cow::Borrowed(text));
        }
        if let Some(c) = text.chars().find(|c| !is_xml_char(*c)) {
            return Err(self.malformed(&format!(
                "character U+{:04X} is not allowed in XML",
                u32::from(c)
            )));
        }
        if text.contains('\r') {
            return Ok(Cow::Owned(text.replace("\r\n", "\n").replace('\r', "\n")));
        }
        Ok(Cow::Borrowed(text))
    }

    fn malformed(&self, message: &str) -> SoapError {
        SoapError::Malformed {
            position: self.tokens.position(),
            message: message.to_owned(),
        }
    }
}

/// Literal XML white space only (character references do not count: they are text).
fn is_blank(raw: &str) -> bool {
    raw.bytes()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

/// Whether text may hold a character XML 1.0 does not allow or a `\r` to normalise: only C0
/// controls and U+FFFE/U+FFFF (which start with 0xEF in UTF-8) can be outside `Char` in a `str`.
/// Whole blocks are looked at without stopping early, so they are checked as vectors.
fn needs_checking(bytes: &[u8]) -> bool {
    let suspect = |b: u8| (b < 0x20 && b != b'\t' && b != b'\n') | (b == 0xEF);
    let (blocks, rest) = bytes.as_chunks::<16>();
    blocks
        .iter()
        .any(|block| block.iter().fold(false, |found, &b| found | suspect(b)))
        || rest.iter().any(|&b| suspect(b))
}

/// The character of a character reference's `number` (after `&#`): decimal, or hexadecimal after
/// a lowercase `x`, without sign. `None` for U+0000 and for what is no character.
fn char_reference(number: &str) -> Option<char> {
    let (digits, radix) = match number.strip_prefix('x') {
        Some(hex) => (hex, 16),
        None => (number, 10),
    };
    if digits.starts_with(['+', '-']) {
        return None;
    }
    let code = u32::from_str_radix(digits, radix).ok()?;
    char::from_u32(code).filter(|&c| c != '\0')
}

fn predefined_entity(name: &str) -> Option<char> {
    match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "apos" => Some('\''),
        "quot" => Some('"'),
        _ => None,
    }
}

/// An attribute value with its references resolved (the predefined entities and character
/// references; unlike in text, any character but U+0000 may be referenced).
fn unescape(raw: &str) -> Result<Cow<'_, str>, String> {
    let Some(first) = raw.find('&') else {
        return Ok(Cow::Borrowed(raw));
    };
    let mut out = String::with_capacity(raw.len());
    out.push_str(&raw[..first]);
    let mut rest = &raw[first..];
    while let Some(reference) = rest.strip_prefix('&') {
        let end = reference
            .find(['&', ';'])
            .filter(|&end| reference.as_bytes()[end] == b';')
            .ok_or_else(|| format!("unterminated reference in {raw:?}"))?;
        let name = &reference[..end];
        let c = match name.strip_prefix('#') {
            Some(number) => char_reference(number),
            None => predefined_entity(name),
        };
        out.push(c.ok_or_else(|| format!("unknown or invalid reference &{name};"))?);
        rest = &reference[end + 1..];
        let text_len = rest.find('&').unwrap_or(rest.len());
        out.push_str(&rest[..text_len]);
        rest = &rest[text_len..];
    }
    Ok(Cow::Owned(out))
}

/// XML 1.0 `Char`: what a character reference may denote.
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(xml: &str) -> XmlReader<'_> {
        XmlReader::new(xml.as_bytes(), 8).unwrap()
    }

    #[test]
    fn matches_by_namespace_not_prefix() {
        let xml = r#"<x:Envelope xmlns:x="http://schemas.xmlsoap.org/soap/envelope/"><Body xmlns="http://schemas.xmlsoap.org/soap/envelope/"/></x:Envelope>"#;
        let mut r = reader(xml);
        let root = r.root().unwrap();
        assert!(root.is(&Ns::Envelope, "Envelope"));
        let body = r.next_child().unwrap().unwrap();
        assert!(body.is(&Ns::Envelope, "Body"));
        assert!(r.next_child().unwrap().is_none());
        assert!(r.next_child().unwrap().is_none());
        r.finish().unwrap();
    }

    #[test]
    fn text_borrows_when_nothing_needs_unescaping() {
        let mut r = reader("<a>  plain text  </a>");
        r.root().unwrap();
        let text = r.text().unwrap();
        assert_eq!(text, "  plain text  ");
        assert!(matches!(text, Cow::Borrowed(_)));
    }

    #[test]
    fn text_unescapes_normalises_and_joins_cdata() {
        let mut r = reader("<a>a&amp;b&#xD;c\r\nd\re<!-- x --><![CDATA[<f>]]>&#x1F600;</a>");
        r.root().unwrap();
        assert_eq!(r.text().unwrap(), "a&b\rc\nd\ne<f>😀");
    }

    #[test]
    fn nil_is_read_by_namespace() {
        let xml = r#"<a xmlns:q="http://www.w3.org/2001/XMLSchema-instance" xmlns:i="urn:other"><b q:nil="true"/><b i:nil="true"/><b q:nil="false">x</b></a>"#;
        let mut r = reader(xml);
        r.root().unwrap();
        let first = r.next_child().unwrap().unwrap();
        assert!(first.nil);
        assert_eq!(r.value(&first).unwrap(), None);
        let second = r.next_child().unwrap().unwrap();
        assert!(!second.nil);
        assert_eq!(r.value(&second).unwrap().as_deref(), Some(""));
        let third = r.next_child().unwrap().unwrap();
        assert_eq!(r.value(&third).unwrap().as_deref(), Some("x"));
    }

    #[test]
    fn skip_passes_over_nested_content() {
        let mut r = reader("<a><skip><x><y/>t</x></skip><keep/></a>");
        r.root().unwrap();
        let skip = r.next_child().unwrap().unwrap();
        assert_eq!(skip.name, "skip");
        r.skip().unwrap();
        assert_eq!(r.next_child().unwrap().unwrap().name, "keep");
    }

    #[test]
    fn refuses_what_is_not_plain_xml() {
        type Check = fn(&SoapError) -> bool;
        let cases: [(&str, Check); 8] = [
            ("<!DOCTYPE a><a/>", |e| *e == SoapError::Doctype),
            (
                "<a>&ext;</a>",
                |e| matches!(e, SoapError::UnknownEntity(n) if n == "ext"),
            ),
            ("<a>&#0;</a>", |e| matches!(e, SoapError::Malformed { .. })),
            ("<a></b>", |e| matches!(e, SoapError::Malformed { .. })),
            ("<a>", |e| matches!(e, SoapError::Malformed { .. })),
            ("<a/><b/>", |e| matches!(e, SoapError::Malformed { .. })),
            ("<p:a/>", |e| matches!(e, SoapError::Malformed { .. })),
            (
                "<a><b><c><d><e><f><g><h><i/></h></g></f></e></d></c></b></a>",
                |e| *e == SoapError::TooDeep { limit: 8 },
            ),
        ];
        for (xml, expected) in cases {
            let mut r = reader(xml);
            let err = r.root().and_then(|_| r.drain()).unwrap_err();
            assert!(expected(&err), "{xml}: {err:?}");
        }
    }

    #[test]
    fn refuses_characters_xml_does_not_allow() {
        for xml in [
            "<a>x\u{0}y</a>",
            "<a><![CDATA[\u{1b}]]></a>",
            "<a>\u{FFFE}</a>",
            "<a>ok&amp;\u{1}</a>",
        ] {
            let mut r = reader(xml);
            r.root().unwrap();
            let err = r.text().unwrap_err();
            assert!(
                matches!(&err, SoapError::Malformed { message, .. } if message.contains("is not allowed in XML")),
                "{xml:?}: {err:?}"
            );
        }
        let mut r = reader("<a>\u{FFFD}\t\u{10000}</a>");
        r.root().unwrap();
        assert_eq!(r.text().unwrap(), "\u{FFFD}\t\u{10000}");
    }

    /// Hundreds of thousands of attributes or namespace declarations once cost minutes of CPU
    /// (pairwise duplicate checks, linear prefix lookups); they are refused at the bound instead.
    #[test]
    fn refuses_attribute_and_namespace_floods() {
        let attributes: String = (0..200_000).map(|i| format!(" a{i}=\"\"")).collect();
        let xml = format!("<a{attributes}/>");
        let mut r = reader(&xml);
        assert_eq!(
            r.root().unwrap_err(),
            SoapError::TooManyAttributes {
                limit: MAX_ATTRIBUTES
            }
        );

        let declarations = |from: usize, n: usize| -> String {
            (from..from + n)
                .map(|i| format!(" xmlns:p{i}=\"u\""))
                .collect()
        };
        let half = MAX_NAMESPACES / 2;
        let xml = format!(
            "<a{}><b{}><c/></b><d{}/></a>",
            declarations(0, half),
            declarations(half, half),
            declarations(2 * half, half)
        );
        let mut r = reader(&xml);
        r.root().unwrap();
        r.drain().unwrap();
        let xml = format!(
            "<a{}><b{}><c{}/></b></a>",
            declarations(0, half),
            declarations(half, half),
            declarations(2 * half, 1)
        );
        let mut r = reader(&xml);
        let err = r.root().and_then(|_| r.drain()).unwrap_err();
        assert_eq!(
            err,
            SoapError::TooManyNamespaces {
                limit: MAX_NAMESPACES
            }
        );
    }
}
