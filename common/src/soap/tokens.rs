//! The markup of one in-memory UTF-8 document, token by token: tags, text, references, CDATA,
//! comments, processing instructions, the XML declaration and DOCTYPE.
//!
//! Only the syntax is read here; what the tokens mean (nesting, namespaces, which characters and
//! references are allowed) is the reader's business. Text is not looked at until it is used, so
//! skipping content costs one search for the next `<` or `&`.

use memchr::{memchr, memchr_iter, memchr2, memchr2_iter, memchr3};

use super::error::SoapError;

/// One piece of markup or character data. Every slice borrows from the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token<'a> {
    /// `<name attributes>`, or `<name attributes/>` when `empty`. The name is everything up to the
    /// first white space; `attributes` is the rest of the tag.
    Start {
        name: &'a str,
        attributes: &'a str,
        empty: bool,
    },
    /// `</name>`, white space after the name removed.
    End(&'a str),
    /// Character data up to the next markup or reference, never empty.
    Text(&'a str),
    /// The content of `<![CDATA[…]]>`.
    CData(&'a str),
    /// `&name;` without `&` and `;`.
    Reference(&'a str),
    /// `<?xml …?>`: the pseudo-attributes after `xml`.
    Declaration(&'a str),
    /// A comment or a processing instruction other than the XML declaration.
    Ignorable,
    /// `<!DOCTYPE …>`.
    Doctype,
    Eof,
}

pub(crate) struct Tokenizer<'a> {
    input: &'a str,
    pos: usize,
}

impl<'a> Tokenizer<'a> {
    /// A tokenizer of `input`; a leading byte order mark is skipped.
    pub fn new(input: &'a str) -> Tokenizer<'a> {
        Tokenizer {
            input,
            pos: if input.starts_with('\u{FEFF}') { 3 } else { 0 },
        }
    }

    /// Byte offset of the next token.
    pub fn position(&self) -> u64 {
        self.pos as u64
    }

    pub fn next(&mut self) -> Result<Token<'a>, SoapError> {
        let rest = &self.input.as_bytes()[self.pos..];
        // Markup mostly follows markup directly: no search needed then.
        if rest.first() == Some(&b'<') {
            return self.markup();
        }
        match memchr2(b'<', b'&', rest) {
            Some(0) => self.reference(),
            Some(len) => Ok(Token::Text(self.take(len, 0))),
            None if rest.is_empty() => Ok(Token::Eof),
            None => Ok(Token::Text(self.take(rest.len(), 0))),
        }
    }

    /// The next `len` bytes, after which `skip` more are passed over.
    fn take(&mut self, len: usize, skip: usize) -> &'a str {
        let text = &self.input[self.pos..self.pos + len];
        self.pos += len + skip;
        text
    }

    /// `&…;`: up to the first `;`, which must come before any `&` or `<`.
    fn reference(&mut self) -> Result<Token<'a>, SoapError> {
        let after = &self.input.as_bytes()[self.pos + 1..];
        match memchr3(b';', b'&', b'<', after) {
            Some(len) if after[len] == b';' => {
                self.pos += 1;
                Ok(Token::Reference(self.take(len, 1)))
            }
            _ => Err(self.error("a reference without its closing `;`")),
        }
    }

    /// Everything starting with `<`.
    fn markup(&mut self) -> Result<Token<'a>, SoapError> {
        let start = self.pos + 1;
        let rest = &self.input.as_bytes()[start..];
        match rest.first() {
            None => Err(self.error("the document ends inside a tag")),
            Some(b'!') => self.bang(rest),
            Some(b'?') => self.processing_instruction(rest),
            Some(b'/') => {
                let (len, _) = scan_tag(rest).ok_or_else(|| self.error("an unclosed end tag"))?;
                self.pos = start;
                let name = self.take(len, 1)[1..].trim_end_matches(is_whitespace);
                Ok(Token::End(name))
            }
            Some(_) => {
                let (len, space) =
                    scan_tag(rest).ok_or_else(|| self.error("an unclosed start tag"))?;
                self.pos = start;
                let content = self.take(len, 1);
                let (content, empty) = match content.strip_suffix('/') {
                    Some(content) => (content, true),
                    None => (content, false),
                };
                // The `/` stripped is no white space, so the first one is still inside.
                let (name, attributes) = content.split_at(space.unwrap_or(content.len()));
                Ok(Token::Start {
                    name,
                    attributes,
                    empty,
                })
            }
        }
    }

    /// `<!--…-->`, `<![CDATA[…]]>` or `<!DOCTYPE …>`; `rest` starts at `!`.
    fn bang(&mut self, rest: &[u8]) -> Result<Token<'a>, SoapError> {
        let end = match rest.get(1) {
            Some(b'-') => memchr_iter(b'>', rest).find(|&i| i > 4 && rest[..i].ends_with(b"--")),
            Some(b'[') => memchr_iter(b'>', rest).find(|&i| rest[..i].ends_with(b"]]")),
            Some(b'D' | b'd') => doctype_end(rest),
            _ => return Err(self.error("`<!` starts no comment, CDATA section or DOCTYPE")),
        };
        let Some(len) = end else {
            return Err(self.error("an unclosed comment, CDATA section or DOCTYPE"));
        };
        let position = self.position();
        self.pos += 1;
        let content = self.take(len, 1);
        if content.starts_with("!--") {
            Ok(Token::Ignorable)
        } else if let Some(data) = content.strip_prefix("![CDATA[") {
            Ok(Token::CData(&data[..data.len() - 2]))
        } else if content.len() > 8
            && content.as_bytes()[..8].eq_ignore_ascii_case(b"!DOCTYPE")
            && !content[8..].trim_start_matches(is_whitespace).is_empty()
        {
            Ok(Token::Doctype)
        } else {
            Err(SoapError::Malformed {
                position,
                message: "a malformed comment, CDATA section or DOCTYPE".to_owned(),
            })
        }
    }

    /// `<?…?>`; `rest` starts at `?`.
    fn processing_instruction(&mut self, rest: &[u8]) -> Result<Token<'a>, SoapError> {
        let len = memchr_iter(b'>', rest)
            .find(|&i| i > 0 && rest[i - 1] == b'?')
            .filter(|&i| i > 1)
            .ok_or_else(|| self.error("an unclosed processing instruction"))?;
        self.pos += 2;
        let content = self.take(len - 2, 2);
        match content.strip_prefix("xml") {
            Some(attributes) if attributes.is_empty() || attributes.starts_with(is_whitespace) => {
                Ok(Token::Declaration(attributes))
            }
            _ => Ok(Token::Ignorable),
        }
    }

    fn error(&self, message: &str) -> SoapError {
        SoapError::Malformed {
            position: self.position(),
            message: message.to_owned(),
        }
    }
}

/// The index of the `>` closing a tag, skipping any inside quotes, and of the tag's first white
/// space (which ends the element name, quotes or not); `tag` starts after the `<`. Tags are short:
/// one plain loop beats vectorised searches.
fn scan_tag(tag: &[u8]) -> Option<(usize, Option<usize>)> {
    let mut quote = None;
    let mut space = None;
    let mut i = 0;
    loop {
        while tag.get(i).is_some_and(|&b| !TAG_MARKS[usize::from(b)]) {
            i += 1;
        }
        match *tag.get(i)? {
            b'>' if quote.is_none() => return Some((i, space)),
            b'>' => {}
            b @ (b'\'' | b'"') => match quote {
                None => quote = Some(b),
                Some(q) if q == b => quote = None,
                Some(_) => {}
            },
            _ => {
                space.get_or_insert(i);
            }
        }
        i += 1;
    }
}

/// The bytes [`scan_tag`] stops at: `>`, quotes and white space.
const TAG_MARKS: [bool; 256] = {
    let mut marks = [false; 256];
    let mut i = 0;
    while i < 7 {
        marks[b">'\" \t\r\n"[i] as usize] = true;
        i += 1;
    }
    marks
};

/// Index of the `>` closing a DOCTYPE, counting the `<` and `>` of its internal subset.
fn doctype_end(doctype: &[u8]) -> Option<usize> {
    let mut open = 0usize;
    for i in memchr2_iter(b'<', b'>', doctype) {
        if doctype[i] == b'<' {
            open += 1;
        } else if open == 0 {
            return Some(i);
        } else {
            open -= 1;
        }
    }
    None
}

/// XML white space.
pub(crate) fn is_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// The attributes of a start tag or declaration, as raw `(name, value)` pairs in document order.
/// Iteration ends at the first malformed attribute, which is reported as an error.
pub(crate) struct Attributes<'a> {
    rest: &'a str,
}

impl<'a> Attributes<'a> {
    pub fn new(raw: &'a str) -> Attributes<'a> {
        Attributes { rest: raw }
    }

    fn attribute(&mut self) -> Result<(&'a str, &'a str), &'static str> {
        let s = self.rest;
        let bytes = s.as_bytes();
        // The first byte belongs to the name whatever it is: `=a="1"` is an attribute `=a`.
        let key_end = 1 + bytes[1..]
            .iter()
            .position(|&b| b == b'=' || is_whitespace(char::from(b)))
            .ok_or("an attribute without `=`")?;
        let key = &s[..key_end];
        let after_key = s[key_end..].trim_start_matches(is_whitespace);
        let after_eq = after_key
            .strip_prefix('=')
            .ok_or("an attribute without `=`")?
            .trim_start_matches(is_whitespace);
        let quote = match after_eq.as_bytes().first() {
            Some(&q @ (b'"' | b'\'')) => q,
            Some(_) => return Err("an attribute value without quotes"),
            None => return Err("an attribute without a value"),
        };
        let value = &after_eq[1..];
        let len = memchr(quote, value.as_bytes()).ok_or("an unclosed attribute value")?;
        self.rest = &value[len + 1..];
        Ok((key, &value[..len]))
    }
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Result<(&'a str, &'a str), &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        self.rest = self.rest.trim_start_matches(is_whitespace);
        if self.rest.is_empty() {
            return None;
        }
        let attribute = self.attribute();
        if attribute.is_err() {
            self.rest = "";
        }
        Some(attribute)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(xml: &str) -> Result<Vec<Token<'_>>, SoapError> {
        let mut t = Tokenizer::new(xml);
        let mut out = Vec::new();
        loop {
            match t.next()? {
                Token::Eof => return Ok(out),
                token => out.push(token),
            }
        }
    }

    #[test]
    fn reads_every_kind_of_markup() {
        let xml = "\u{FEFF}<?xml version=\"1.0\"?><!-- c --><?pi x?><a x='>' y=\"'\">t&amp;<![CDATA[<]]></a ><b/><c d=\"1\" /></c>";
        assert_eq!(
            tokens(xml).unwrap(),
            [
                Token::Declaration(" version=\"1.0\""),
                Token::Ignorable,
                Token::Ignorable,
                Token::Start {
                    name: "a",
                    attributes: " x='>' y=\"'\"",
                    empty: false
                },
                Token::Text("t"),
                Token::Reference("amp"),
                Token::CData("<"),
                Token::End("a"),
                Token::Start {
                    name: "b",
                    attributes: "",
                    empty: true
                },
                Token::Start {
                    name: "c",
                    attributes: " d=\"1\" ",
                    empty: true
                },
                Token::End("c"),
            ]
        );
        assert_eq!(
            tokens("<!DOCTYPE a [<!ENTITY x \"y\">]>").unwrap(),
            [Token::Doctype]
        );
        assert_eq!(tokens("<!---->").unwrap(), [Token::Ignorable]);
        assert_eq!(tokens("<?xml?>").unwrap(), [Token::Declaration("")]);
        assert_eq!(tokens("<?xml-model x?>").unwrap(), [Token::Ignorable]);
    }

    #[test]
    fn refuses_unclosed_and_unknown_markup() {
        for xml in [
            "<",
            "<a",
            "<a x='>",
            "</a",
            "<!",
            "<!x>",
            "<!-->",
            "<!--->",
            "<!-- x ->",
            "<![CDATA[x]>",
            "<![CDAT[x]]>",
            "<!DOCTYPE>",
            "<!DOCTYPE a",
            "<!DOCTYPEX",
            "<?>",
            "<?x",
            "&",
            "&amp",
            "&a&b;",
            "&a<b;",
        ] {
            assert!(
                matches!(tokens(xml), Err(SoapError::Malformed { .. })),
                "{xml:?}"
            );
        }
    }

    #[test]
    fn attributes_need_equals_and_quotes() {
        let all = |raw| Attributes::new(raw).collect::<Result<Vec<_>, _>>();
        assert_eq!(
            all(" a='1' b = \"2\"c=''").unwrap(),
            [("a", "1"), ("b", "2"), ("c", "")]
        );
        assert_eq!(all("  ").unwrap(), []);
        // The first byte is part of the name, even `=`.
        assert_eq!(all(" =a='1'").unwrap(), [("=a", "1")]);
        for raw in [" a", " a b='1'", " a=1", " a=", " a='1", " ='1'"] {
            assert!(all(raw).is_err(), "{raw:?}");
        }
    }
}
