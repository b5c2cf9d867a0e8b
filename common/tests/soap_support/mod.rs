//! Shared by the SOAP test suites: fixture loading and a canonical XML tree for comparing
//! documents as XML (namespace URIs, local names, attributes, trimmed text, child order) rather
//! than as bytes, so prefixes, indentation and self-closing style do not matter.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::{Namespace, ResolveResult};

/// The bytes of a file in `testdata/superoffice`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../testdata/superoffice/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// The body of a captured HTTP request: everything after the first blank line.
pub fn http_body(raw: &[u8]) -> &[u8] {
    let at = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP message has a blank line after its headers");
    &raw[at + 4..]
}

/// One element of a canonical tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub ns: String,
    pub local: String,
    /// Non-`xmlns` attributes by `{namespace}local`.
    pub attributes: BTreeMap<String, String>,
    /// All text content of the element, joined and trimmed.
    pub text: String,
    pub children: Vec<Node>,
}

fn ns_of(resolved: ResolveResult<'_>) -> String {
    match resolved {
        ResolveResult::Bound(Namespace(uri)) => String::from_utf8_lossy(uri).into_owned(),
        ResolveResult::Unbound => String::new(),
        ResolveResult::Unknown(p) => panic!("undeclared prefix {}", String::from_utf8_lossy(&p)),
    }
}

/// Parses a whole document into its canonical tree (panics on anything that is not plain XML:
/// the comparer is for trusted fixtures and our own output).
pub fn canonical(xml: &[u8]) -> Node {
    let mut reader = NsReader::from_reader(xml);
    let mut stack: Vec<Node> = Vec::new();
    loop {
        let (resolved, event) = reader.read_resolved_event().expect("well-formed XML");
        let ns = ns_of(resolved);
        let (start, empty) = match event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(_) => match close(&mut stack) {
                Some(root) => return root,
                None => continue,
            },
            Event::Text(t) => {
                push_text(&mut stack, &t.xml10_content().expect("utf-8"));
                continue;
            }
            Event::CData(c) => {
                push_text(&mut stack, &c.xml10_content().expect("utf-8"));
                continue;
            }
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref().expect("char ref") {
                    Some(c) => c,
                    None => match &*r.decode().expect("utf-8") {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        other => panic!("unknown entity {other}"),
                    },
                };
                push_text(&mut stack, &c.to_string());
                continue;
            }
            Event::Eof => panic!("document ended inside an element"),
            _ => continue,
        };
        let mut attributes = BTreeMap::new();
        for attr in start.attributes() {
            let attr = attr.expect("attribute");
            if attr.key.as_namespace_binding().is_some() {
                continue;
            }
            let (resolved, local) = reader.resolve_attribute(attr.key);
            let name = format!(
                "{{{}}}{}",
                ns_of(resolved),
                String::from_utf8_lossy(local.as_ref())
            );
            let value = attr
                .decode_and_unescape_value(reader.decoder())
                .expect("attribute value")
                .into_owned();
            attributes.insert(name, value);
        }
        stack.push(Node {
            ns,
            local: String::from_utf8_lossy(start.local_name().as_ref()).into_owned(),
            attributes,
            text: String::new(),
            children: Vec::new(),
        });
        if empty && let Some(root) = close(&mut stack) {
            return root;
        }
    }
}

fn push_text(stack: &mut [Node], text: &str) {
    if let Some(top) = stack.last_mut() {
        top.text.push_str(text);
    }
}

/// Pops the top element into its parent; returns it when it was the root.
fn close(stack: &mut Vec<Node>) -> Option<Node> {
    let mut node = stack.pop().expect("an open element");
    node.text = node.text.trim().to_owned();
    match stack.last_mut() {
        Some(parent) => {
            parent.children.push(node);
            None
        }
        None => Some(node),
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn write(node: &Node, depth: usize, out: &mut String) {
            let _ = write!(
                out,
                "{:indent$}{{{}}}{}",
                "",
                node.ns,
                node.local,
                indent = depth * 2
            );
            for (k, v) in &node.attributes {
                let _ = write!(out, " {k}={v:?}");
            }
            if !node.text.is_empty() {
                let _ = write!(out, " text={:?}", node.text);
            }
            out.push('\n');
            for child in &node.children {
                write(child, depth + 1, out);
            }
        }
        let mut out = String::new();
        write(self, 0, &mut out);
        f.write_str(&out)
    }
}

/// Asserts two documents are the same XML, showing both trees when they are not.
pub fn assert_same_xml(actual: &[u8], expected: &[u8]) {
    let (a, e) = (canonical(actual), canonical(expected));
    assert!(a == e, "documents differ\n--- actual\n{a}--- expected\n{e}");
}
