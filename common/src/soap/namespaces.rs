//! The namespace declarations in scope while a document is read, each recognised once when it is
//! declared, so resolving an element's prefix is a short search that compares prefixes only.

use super::name::Ns;
use super::tokens::Attributes;

const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";
const NS_XMLNS: &str = "http://www.w3.org/2000/xmlns/";

/// One `xmlns` or `xmlns:prefix` declaration (an empty prefix is the default namespace).
struct Binding<'a> {
    prefix: &'a str,
    ns: Ns,
}

pub(crate) struct Namespaces<'a> {
    /// Outermost first; the innermost declaration of a prefix wins.
    bindings: Vec<Binding<'a>>,
}

impl<'a> Namespaces<'a> {
    pub fn new() -> Namespaces<'a> {
        Namespaces {
            bindings: vec![
                Binding {
                    prefix: "xml",
                    ns: Ns::from_uri(NS_XML.as_bytes()),
                },
                Binding {
                    prefix: "xmlns",
                    ns: Ns::from_uri(NS_XMLNS.as_bytes()),
                },
            ],
        }
    }

    /// How many declarations are in scope, to [`Self::restore`] later.
    pub fn mark(&self) -> usize {
        self.bindings.len()
    }

    /// Ends the scope of the declarations made since `mark`.
    pub fn restore(&mut self, mark: usize) {
        self.bindings.truncate(mark);
    }

    /// Adds the declarations among a start tag's attributes, up to the first malformed attribute
    /// (which the attribute check reports). The `xml` and `xmlns` prefixes and their namespaces are
    /// reserved to each other; the default namespace may be anything. Values are taken as written.
    pub fn declare(&mut self, attributes: &'a str) -> Result<(), String> {
        for attribute in Attributes::new(attributes) {
            let Ok((key, uri)) = attribute else {
                break;
            };
            let Some(prefix) = declared_prefix(key) else {
                continue;
            };
            match prefix {
                "" => {}
                "xml" if uri == NS_XML => continue,
                "xml" => return Err(format!("the xml prefix bound to {uri:?}")),
                "xmlns" => return Err("the xmlns prefix declared".to_owned()),
                _ if uri == NS_XML || uri == NS_XMLNS => {
                    return Err(format!("prefix {prefix:?} bound to the reserved {uri:?}"));
                }
                _ => {}
            }
            self.bindings.push(Binding {
                prefix,
                ns: Ns::from_uri(uri.as_bytes()),
            });
        }
        Ok(())
    }

    /// The namespace and local name of an element; the prefix when it is not declared.
    pub fn element<'n>(&self, qname: &'n str) -> Result<(Ns, &'n str), &'n str> {
        match split_prefix(qname) {
            None => {
                let ns = self.innermost("").map_or(Ns::None, |b| b.ns.clone());
                Ok((ns, qname))
            }
            Some((prefix, local)) => match self.prefixed(prefix) {
                Some(ns) => Ok((ns.clone(), local)),
                None => Err(prefix),
            },
        }
    }

    /// The namespace of a prefixed attribute name; `None` for an unprefixed or undeclared one.
    pub fn attribute(&self, qname: &str) -> Option<&Ns> {
        self.prefixed(split_prefix(qname)?.0)
    }

    fn prefixed(&self, prefix: &str) -> Option<&Ns> {
        if prefix.is_empty() {
            return None;
        }
        // `xmlns:p=""` leaves `p` undeclared.
        self.innermost(prefix)
            .map(|b| &b.ns)
            .filter(|ns| **ns != Ns::None)
    }

    fn innermost(&self, prefix: &str) -> Option<&Binding<'a>> {
        self.bindings.iter().rev().find(|b| b.prefix == prefix)
    }
}

/// `prefix:local` split at the first colon. Names are short: a plain loop beats a vectorised search.
pub(crate) fn split_prefix(qname: &str) -> Option<(&str, &str)> {
    let colon = qname.bytes().position(|b| b == b':')?;
    Some((&qname[..colon], &qname[colon + 1..]))
}

/// The prefix an attribute declares (empty for the default namespace), if it is a declaration.
pub(crate) fn declared_prefix(key: &str) -> Option<&str> {
    match key.strip_prefix("xmlns")? {
        "" => Some(""),
        rest => rest.strip_prefix(':'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_the_innermost_declaration() {
        let mut ns = Namespaces::new();
        ns.declare(r#" xmlns="http://schemas.xmlsoap.org/soap/envelope/" xmlns:a="urn:a""#)
            .unwrap();
        let mark = ns.mark();
        ns.declare(r#" xmlns:a="http://www.w3.org/2001/XMLSchema-instance" xmlns="""#)
            .unwrap();
        assert_eq!(ns.element("x").unwrap(), (Ns::None, "x"));
        assert_eq!(ns.element("a:x").unwrap(), (Ns::Xsi, "x"));
        assert_eq!(ns.attribute("a:nil"), Some(&Ns::Xsi));
        assert_eq!(ns.attribute("nil"), None);
        ns.restore(mark);
        assert_eq!(ns.element("x").unwrap(), (Ns::Envelope, "x"));
        assert_eq!(ns.element("a:x").unwrap(), (Ns::Other("urn:a".into()), "x"));
        assert_eq!(ns.element("b:x"), Err("b"));
        assert_eq!(ns.element(":x"), Err(""));
        assert_eq!(ns.element("xml:lang").unwrap().0, Ns::Other(NS_XML.into()));
    }

    #[test]
    fn an_empty_namespace_undeclares_a_prefix() {
        let mut ns = Namespaces::new();
        ns.declare(r#" xmlns:a="urn:a""#).unwrap();
        ns.declare(r#" xmlns:a="""#).unwrap();
        assert_eq!(ns.element("a:x"), Err("a"));
    }

    #[test]
    fn reserved_prefixes_and_namespaces_are_refused() {
        for attributes in [
            r#" xmlns:xml="urn:x""#,
            r#" xmlns:xmlns="urn:x""#,
            r#" xmlns:p="http://www.w3.org/XML/1998/namespace""#,
            r#" xmlns:p="http://www.w3.org/2000/xmlns/""#,
        ] {
            assert!(
                Namespaces::new().declare(attributes).is_err(),
                "{attributes}"
            );
        }
        let mut ns = Namespaces::new();
        ns.declare(r#" xmlns:xml="http://www.w3.org/XML/1998/namespace" xmlnsx="" bad"#)
            .unwrap();
        assert_eq!(ns.mark(), 2);
        ns.declare(r#" xmlns="http://www.w3.org/XML/1998/namespace""#)
            .unwrap();
        assert_eq!(ns.element("x").unwrap().0, Ns::Other(NS_XML.into()));
    }
}
