//! Builders for hclspec values: how a plugin tells the Nomad client to read an HCL config block.
//!
//! The client decodes the user's block with these (hcldec), fills defaults, rejects unknown and
//! missing required keys itself, and sends the result to the plugin as go-cty msgpack (see
//! [`super::cty`]). Two rules matter when writing one:
//! - an `Attr` type is an HCL type expression (`string`, `number`, `bool`, `any`, `list(string)`,
//!   `object({Host = string})`); one bad type string makes the client refuse the whole schema;
//! - a default is `Default { primary, default: Literal }` whose literal is HCL expression text:
//!   `"\"nats://...\""` for a string, `15` for a number.

use super::proto::hclspec::{self, spec::Block as S, Spec};

/// An optional attribute of the given HCL type. Inside an [`object`] the key names it.
pub fn attr(hcl_type: &str) -> Spec {
    Spec {
        block: Some(S::Attr(hclspec::Attr {
            name: String::new(),
            r#type: hcl_type.to_owned(),
            required: false,
        })),
    }
}

/// A required attribute of the given HCL type: the client refuses a block without it.
pub fn required(hcl_type: &str) -> Spec {
    Spec {
        block: Some(S::Attr(hclspec::Attr {
            name: String::new(),
            r#type: hcl_type.to_owned(),
            required: true,
        })),
    }
}

/// An optional attribute with a default, `literal` being HCL expression text.
pub fn with_default(hcl_type: &str, literal: &str) -> Spec {
    Spec {
        block: Some(S::Default(Box::new(hclspec::Default {
            primary: Some(Box::new(attr(hcl_type))),
            default: Some(Box::new(Spec {
                block: Some(S::Literal(hclspec::Literal {
                    value: literal.to_owned(),
                })),
            })),
        }))),
    }
}

/// An optional string attribute whose default is `text` (quoted and escaped for HCL here).
pub fn string_default(text: &str) -> Spec {
    with_default("string", &hcl_string_literal(text))
}

/// Zero or one nested block (`Name { ... }` in HCL, an object in JSON) read with `nested`; absent
/// is nil.
pub fn block(nested: Spec) -> Spec {
    Spec {
        block: Some(S::BlockValue(Box::new(hclspec::Block {
            name: String::new(),
            required: false,
            nested: Some(Box::new(nested)),
        }))),
    }
}

/// Any number of nested blocks (an array of objects in JSON), each read with `nested`.
pub fn block_list(nested: Spec) -> Spec {
    Spec {
        block: Some(S::BlockList(Box::new(hclspec::BlockList {
            name: String::new(),
            min_items: 0,
            max_items: 0,
            nested: Some(Box::new(nested)),
        }))),
    }
}

/// An object of named specs: the root of a config schema. Each member's attribute or block name
/// is set to its key (the client would use the key for an empty name; spelling it out leaves
/// nothing to that rule).
pub fn object<'a>(members: impl IntoIterator<Item = (&'a str, Spec)>) -> Spec {
    Spec {
        block: Some(S::Object(hclspec::Object {
            attributes: members
                .into_iter()
                .map(|(name, mut spec)| {
                    name_member(&mut spec, name);
                    (name.to_owned(), spec)
                })
                .collect(),
        })),
    }
}

fn name_member(spec: &mut Spec, name: &str) {
    let slot = match &mut spec.block {
        Some(S::Attr(a)) => &mut a.name,
        Some(S::BlockValue(b)) => &mut b.name,
        Some(S::BlockList(b)) => &mut b.name,
        Some(S::BlockSet(b)) => &mut b.name,
        Some(S::BlockMap(b)) => &mut b.name,
        Some(S::BlockAttrs(b)) => &mut b.name,
        Some(S::Default(d)) => {
            if let Some(primary) = d.primary.as_deref_mut() {
                name_member(primary, name);
            }
            return;
        }
        _ => return,
    };
    if slot.is_empty() {
        name.clone_into(slot);
    }
}

/// `text` as an HCL string literal: quoted, with `\`, `"` and control characters escaped and
/// `${` / `%{` doubled so that no template sequence is read.
pub fn hcl_string_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' if chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_literals_are_hcl_text() {
        assert_eq!(hcl_string_literal("nats://h:4222"), "\"nats://h:4222\"");
        assert_eq!(hcl_string_literal("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(hcl_string_literal("${x}%{y}$z"), "\"$${x}%%{y}$z\"");
        assert_eq!(hcl_string_literal("\u{1}"), "\"\\u0001\"");
    }

    #[test]
    fn defaults_wrap_an_attr_and_a_literal() {
        let spec = string_default("x");
        let Some(S::Default(d)) = spec.block else {
            panic!("not a Default: {spec:?}");
        };
        let primary = d.primary.and_then(|p| p.block);
        assert!(matches!(primary, Some(S::Attr(a)) if a.r#type == "string" && !a.required));
        let literal = d.default.and_then(|p| p.block);
        assert!(matches!(literal, Some(S::Literal(l)) if l.value == "\"x\""));
    }

    #[test]
    fn object_members_are_named_by_their_keys() {
        let spec = object([
            ("a", attr("string")),
            ("d", string_default("x")),
            ("b", block(object([("Host", required("string"))]))),
            ("l", block_list(object([]))),
        ]);
        let Some(S::Object(o)) = spec.block else {
            panic!("not an Object");
        };
        assert!(matches!(&o.attributes["a"].block, Some(S::Attr(a)) if a.name == "a"));
        let Some(S::Default(d)) = &o.attributes["d"].block else {
            panic!("not a Default");
        };
        let primary = d.primary.as_ref().and_then(|p| p.block.as_ref());
        assert!(matches!(primary, Some(S::Attr(a)) if a.name == "d"));
        let Some(S::BlockValue(b)) = &o.attributes["b"].block else {
            panic!("not a Block");
        };
        assert_eq!(b.name, "b");
        let inner = b.nested.as_ref().and_then(|n| n.block.as_ref());
        let Some(S::Object(inner)) = inner else {
            panic!("the block holds no Object");
        };
        assert!(
            matches!(&inner.attributes["Host"].block, Some(S::Attr(a)) if a.name == "Host" && a.required)
        );
        assert!(matches!(&o.attributes["l"].block, Some(S::BlockList(b)) if b.name == "l"));
    }
}
