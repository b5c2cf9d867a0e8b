//! Building SOAP messages as strings in the exact shape WCF writes them.
//!
//! Text is escaped so that any string survives a round trip through an XML parser: `&`, `<`, `>`,
//! and CR as `&#xD;` (a literal CR would be normalised to LF by the reader). Characters XML 1.0
//! cannot carry at all (most C0 controls, U+FFFE, U+FFFF) are replaced by U+FFFD, because a
//! message containing them would be refused by SuperOffice's parser as a whole.

use super::reader::is_xml_char;
use super::{NS_ARRAYS, NS_CONTRACT, NS_ENVELOPE, NS_MIRRORING, NS_XSI};

/// Bytes that never need a second look when escaping: everything but `&`, `<`, `>`, the C0
/// controls other than TAB and LF, and 0xEF (the lead byte of U+FFFE and U+FFFF).
const PLAIN: [bool; 256] = {
    let mut table = [true; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b == b'\t' as usize || b == b'\n' as usize;
        b += 1;
    }
    table[b'&' as usize] = false;
    table[b'<' as usize] = false;
    table[b'>' as usize] = false;
    table[0xEF] = false;
    table
};

/// Appends `text` escaped for element content.
pub(crate) fn escape_into(out: &mut String, text: &str) {
    if text.bytes().all(|b| PLAIN[usize::from(b)]) {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
}

/// A small writer for the fixed shapes of the contract.
pub(crate) struct Xml {
    out: String,
}

impl Xml {
    pub fn with_capacity(capacity: usize) -> Xml {
        Xml {
            out: String::with_capacity(capacity),
        }
    }

    pub fn raw(&mut self, markup: &str) -> &mut Xml {
        self.out.push_str(markup);
        self
    }

    pub fn text(&mut self, text: &str) -> &mut Xml {
        escape_into(&mut self.out, text);
        self
    }

    pub fn open(&mut self, tag: &str) -> &mut Xml {
        self.out.push('<');
        self.out.push_str(tag);
        self.out.push('>');
        self
    }

    pub fn close(&mut self, tag: &str) -> &mut Xml {
        self.out.push_str("</");
        self.out.push_str(tag);
        self.out.push('>');
        self
    }

    /// `<tag>text</tag>`, or `<tag/>` for the empty string, as WCF writes it.
    pub fn leaf(&mut self, tag: &str, text: &str) -> &mut Xml {
        if text.is_empty() {
            self.out.push('<');
            self.out.push_str(tag);
            self.out.push_str("/>");
            return self;
        }
        self.open(tag).text(text).close(tag)
    }

    /// `<tag>n</tag>` for numbers, without an intermediate string.
    pub fn number(&mut self, tag: &str, n: impl std::fmt::Display) -> &mut Xml {
        use std::fmt::Write as _;
        self.open(tag);
        // Writing to a String cannot fail.
        let _ = write!(self.out, "{n}");
        self.close(tag)
    }

    /// `<s:Envelope …>[<s:Header>…token…</s:Header>]<s:Body>`.
    pub fn envelope_start(&mut self, token: Option<&str>) -> &mut Xml {
        self.raw("<s:Envelope xmlns:s=\"")
            .raw(NS_ENVELOPE)
            .raw("\">");
        if let Some(token) = token {
            self.raw("<s:Header><h:SignedToken s:mustUnderstand=\"1\" xmlns:h=\"")
                .raw(NS_MIRRORING)
                .raw("\">")
                .text(token)
                .raw("</h:SignedToken></s:Header>");
        }
        self.raw("<s:Body>")
    }

    pub fn envelope_end(&mut self) -> &mut Xml {
        self.raw("</s:Body></s:Envelope>")
    }

    /// `<Name xmlns="…/mirroring/0.1">`: the operation wrapper.
    pub fn wrapper_start(&mut self, name: &str) -> &mut Xml {
        self.raw("<")
            .raw(name)
            .raw(" xmlns=\"")
            .raw(NS_MIRRORING)
            .raw("\">")
    }

    /// An array member declaring the contract (`a:`) and instance (`i:`) prefixes, as WCF does.
    /// Returns whether content may follow; an empty array is written self-closed.
    pub fn array_start(&mut self, name: &str, empty: bool) -> bool {
        self.raw("<")
            .raw(name)
            .raw(" xmlns:a=\"")
            .raw(NS_CONTRACT)
            .raw("\" xmlns:i=\"")
            .raw(NS_XSI)
            .raw(if empty { "\"/>" } else { "\">" });
        !empty
    }

    /// `<a:ColumnValues xmlns:b="…/Arrays">`.
    pub fn string_array_start(&mut self, name: &str) -> &mut Xml {
        self.raw("<")
            .raw(name)
            .raw(" xmlns:b=\"")
            .raw(NS_ARRAYS)
            .raw("\">")
    }

    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(s: &str) -> String {
        let mut out = String::new();
        escape_into(&mut out, s);
        out
    }

    #[test]
    fn escapes_markup_and_carriage_returns() {
        assert_eq!(
            escaped("plain text, ünïcode\tand\nlines"),
            "plain text, ünïcode\tand\nlines"
        );
        assert_eq!(escaped("a<b>&c\r\nd"), "a&lt;b&gt;&amp;c&#xD;\nd");
        assert_eq!(escaped("quotes \"'"), "quotes \"'");
    }

    #[test]
    fn replaces_characters_xml_cannot_carry() {
        assert_eq!(
            escaped("a\u{0}b\u{1B}c\u{FFFF}"),
            "a\u{FFFD}b\u{FFFD}c\u{FFFD}"
        );
        assert_eq!(escaped("\u{FFFE}\u{7F}"), "\u{FFFD}\u{7F}");
        // Legal characters sharing U+FFFE's lead byte (0xEF) stay as they are.
        assert_eq!(
            escaped("\u{F000}\u{FF21}\u{FFFD}"),
            "\u{F000}\u{FF21}\u{FFFD}"
        );
    }

    #[test]
    fn empty_leaves_are_self_closed() {
        let mut x = Xml::with_capacity(64);
        x.leaf("ErrorMessage", "")
            .leaf("A", "x&y")
            .number("LSN", -1);
        assert_eq!(x.finish(), "<ErrorMessage/><A>x&amp;y</A><LSN>-1</LSN>");
    }
}
