//! A namespace-aware pull reader over one in-memory XML document, on top of quick-xml's `NsReader`.
//!
//! It turns quick-xml's events into the few moves a contract parser needs — next child element,
//! text content, skip an element — and enforces what quick-xml leaves to its caller: no DTD, no
//! entity other than the predefined ones, a depth limit, one root element, no text outside it,
//! XML 1.0 end-of-line normalisation, and declared namespace prefixes. Elements are identified by
//! namespace URI and local name only; prefixes never matter.
//!
//! Text borrows from the input whenever it needed no unescaping or normalisation, which is the
//! common case for row values.

use std::borrow::Cow;

use quick_xml::NsReader;
use quick_xml::events::{BytesCData, BytesRef, BytesStart, BytesText, Event};
use quick_xml::name::{Namespace, ResolveResult};

use super::error::{Problem, SoapError, excerpt};
use super::name::{Element, Ns, intern};
use super::{MAX_ATTRIBUTES, MAX_NAMESPACES, NS_XSI};

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
    /// Character data, decoded only where it is used: the white space between elements is
    /// recognised on the raw bytes and never decoded.
    Text(BytesText<'a>),
    CData(BytesCData<'a>),
    Char(char),
    Eof,
}

pub(crate) struct XmlReader<'a> {
    inner: NsReader<&'a [u8]>,
    depth: usize,
    max_depth: usize,
    place: Place,
    /// An `<x/>` was reported as a start; its end is reported by the next read.
    pending_end: bool,
    seen_event: bool,
    /// Namespace declarations of each open element, innermost last, and their sum.
    declarations: Vec<usize>,
    in_scope: usize,
}

impl<'a> XmlReader<'a> {
    pub fn new(input: &'a [u8], max_depth: usize) -> XmlReader<'a> {
        XmlReader {
            inner: NsReader::from_reader(input),
            depth: 0,
            max_depth,
            place: Place::Prolog,
            pending_end: false,
            seen_event: false,
            declarations: Vec::new(),
            in_scope: 0,
        }
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
                Node::Text(t) if is_blank(&t) => {}
                Node::CData(c) if is_blank(&c) => {}
                Node::Text(t) => {
                    let text = self.decode(t.xml10_content())?;
                    return Err(SoapError::invalid(Problem::UnexpectedText(excerpt(&text))));
                }
                Node::CData(c) => {
                    let text = self.decode(c.xml10_content())?;
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
                Node::Text(t) => self.decode(t.xml10_content())?,
                Node::CData(c) => self.decode(c.xml10_content())?,
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
        let target = self.depth.saturating_sub(1);
        loop {
            match self.next_node()? {
                Node::End if self.depth == target => return Ok(()),
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
            // Only starts need their namespace: resolving end tags too would be wasted work.
            let (e, empty) = match self.inner.read_event() {
                Ok(Event::Start(e)) => (e, false),
                Ok(Event::Empty(e)) => (e, true),
                Ok(event) => {
                    let first = !self.seen_event;
                    self.seen_event = true;
                    match self.other_event(event, first)? {
                        Some(node) => return Ok(node),
                        None => continue,
                    }
                }
                Err(error) => {
                    return Err(SoapError::Malformed {
                        position: self.inner.error_position(),
                        message: error.to_string(),
                    });
                }
            };
            self.seen_event = true;
            let ns = owned_ns(self.inner.resolve_element(e.name()).0);
            return self.start(ns, &e, empty).map(Node::Start);
        }
    }

    fn start(
        &mut self,
        ns: Result<Ns, Vec<u8>>,
        e: &BytesStart<'_>,
        empty: bool,
    ) -> Result<Element, SoapError> {
        match self.place {
            Place::Prolog => self.place = Place::Root,
            Place::Root => {}
            Place::Epilog => return Err(self.malformed("a second root element")),
        }
        if self.depth >= self.max_depth {
            return Err(SoapError::TooDeep {
                limit: self.max_depth,
            });
        }
        self.depth += 1;
        self.pending_end = empty;
        let ns = ns.map_err(|prefix| {
            self.malformed(&format!(
                "undeclared namespace prefix {:?}",
                String::from_utf8_lossy(&prefix)
            ))
        })?;
        let name = intern(e.local_name().as_ref());
        let (nil, declared) = self.attributes(e)?;
        self.declarations.push(declared);
        self.in_scope += declared;
        if self.in_scope > MAX_NAMESPACES {
            return Err(SoapError::TooManyNamespaces {
                limit: MAX_NAMESPACES,
            });
        }
        Ok(Element { ns, name, nil })
    }

    fn end(&mut self) -> Node<'a> {
        self.depth = self.depth.saturating_sub(1);
        self.in_scope -= self.declarations.pop().unwrap_or(0);
        if self.depth == 0 {
            self.place = Place::Epilog;
        }
        Node::End
    }

    /// Everything but element starts. `None` for events that carry nothing (comments, PIs).
    fn other_event(
        &mut self,
        event: Event<'a>,
        first: bool,
    ) -> Result<Option<Node<'a>>, SoapError> {
        let inside = self.place == Place::Root;
        let node = match event {
            Event::End(_) => Some(self.end()),
            Event::Text(t) => {
                if !inside {
                    if is_blank(&t) {
                        return Ok(None);
                    }
                    return Err(self.malformed("text outside the root element"));
                }
                Some(Node::Text(t))
            }
            Event::CData(c) => {
                if !inside {
                    return Err(self.malformed("CDATA outside the root element"));
                }
                Some(Node::CData(c))
            }
            Event::GeneralRef(r) => {
                if !inside {
                    return Err(self.malformed("a reference outside the root element"));
                }
                Some(Node::Char(self.reference(&r)?))
            }
            Event::Comment(_) | Event::PI(_) => None,
            Event::Decl(d) => {
                if !first {
                    return Err(self.malformed("an XML declaration that is not at the start"));
                }
                if let Some(enc) = d.encoding() {
                    let enc = enc.map_err(|e| self.malformed(&e.to_string()))?;
                    if !enc.eq_ignore_ascii_case(b"utf-8") {
                        return Err(self.malformed(&format!(
                            "unsupported encoding {:?} (only UTF-8 is accepted)",
                            String::from_utf8_lossy(&enc)
                        )));
                    }
                }
                None
            }
            Event::DocType(_) => return Err(SoapError::Doctype),
            Event::Eof => {
                if self.place != Place::Epilog {
                    return Err(self.malformed(if self.place == Place::Prolog {
                        "the document has no root element"
                    } else {
                        "unexpected end of the document"
                    }));
                }
                Some(Node::Eof)
            }
            Event::Start(_) | Event::Empty(_) => None,
        };
        Ok(node)
    }

    /// Resolves `&…;`: the five predefined entities and character references of legal characters.
    /// Nothing else exists without a DTD, and DTDs are refused.
    fn reference(&self, r: &BytesRef<'_>) -> Result<char, SoapError> {
        if r.is_char_ref() {
            return match r.resolve_char_ref() {
                Ok(Some(c)) if is_xml_char(c) => Ok(c),
                _ => Err(self.malformed(&format!(
                    "invalid character reference &{};",
                    String::from_utf8_lossy(r)
                ))),
            };
        }
        let name: &[u8] = r;
        match name {
            b"lt" => Ok('<'),
            b"gt" => Ok('>'),
            b"amp" => Ok('&'),
            b"apos" => Ok('\''),
            b"quot" => Ok('"'),
            other => Err(SoapError::UnknownEntity(excerpt(&String::from_utf8_lossy(
                other,
            )))),
        }
    }

    /// Reads `xsi:nil` (by namespace, any prefix), checks every attribute is well-formed and
    /// counts the namespace declarations. Refuses more than [`MAX_ATTRIBUTES`] before the
    /// duplicate check, which is pairwise, gets expensive.
    fn attributes(&self, e: &BytesStart<'_>) -> Result<(bool, usize), SoapError> {
        let mut nil = false;
        let mut declared = 0;
        for (i, attr) in e.attributes().enumerate() {
            if i == MAX_ATTRIBUTES {
                return Err(SoapError::TooManyAttributes {
                    limit: MAX_ATTRIBUTES,
                });
            }
            let attr = attr.map_err(|err| self.malformed(&format!("bad attribute: {err}")))?;
            if attr.key.as_namespace_binding().is_some() {
                declared += 1;
                continue;
            }
            if attr.key.local_name().as_ref() != b"nil" {
                continue;
            }
            let (ResolveResult::Bound(Namespace(uri)), _) = self.inner.resolve_attribute(attr.key)
            else {
                continue;
            };
            if uri != NS_XSI.as_bytes() {
                continue;
            }
            let value = attr
                .decode_and_unescape_value(self.inner.decoder())
                .map_err(|err| self.malformed(&format!("bad attribute value: {err}")))?;
            nil = match value.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n')) {
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

    /// Text as UTF-8 of XML characters only: quick-xml checks neither, and a NUL or other control
    /// character let through would be refused later by the mirror's database instead of now.
    fn decode<E: std::fmt::Display>(
        &self,
        decoded: Result<Cow<'a, str>, E>,
    ) -> Result<Cow<'a, str>, SoapError> {
        let text = decoded.map_err(|e| self.malformed(&format!("text is not valid UTF-8: {e}")))?;
        match first_non_xml_char(&text) {
            Some(c) => Err(self.malformed(&format!(
                "character U+{:04X} is not allowed in XML",
                u32::from(c)
            ))),
            None => Ok(text),
        }
    }

    fn malformed(&self, message: &str) -> SoapError {
        SoapError::Malformed {
            position: self.inner.buffer_position(),
            message: message.to_owned(),
        }
    }
}

/// Literal XML white space only (character references do not count: they are text).
fn is_blank(raw: &[u8]) -> bool {
    raw.iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

fn owned_ns(resolved: ResolveResult<'_>) -> Result<Ns, Vec<u8>> {
    match resolved {
        ResolveResult::Unbound => Ok(Ns::None),
        ResolveResult::Bound(Namespace(uri)) => Ok(Ns::from_uri(uri)),
        ResolveResult::Unknown(prefix) => Err(prefix),
    }
}

/// The first character of `text` that XML 1.0 does not allow. The bytes are looked at first: only
/// C0 controls and U+FFFE/U+FFFF (which start with 0xEF in UTF-8) can be outside `Char` in a `str`.
fn first_non_xml_char(text: &str) -> Option<char> {
    let suspect = text
        .bytes()
        .any(|b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r') || b == 0xEF);
    if suspect {
        text.chars().find(|c| !is_xml_char(*c))
    } else {
        None
    }
}

/// XML 1.0 `Char`: what a character reference may denote.
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(xml: &str) -> XmlReader<'_> {
        XmlReader::new(xml.as_bytes(), 8)
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
