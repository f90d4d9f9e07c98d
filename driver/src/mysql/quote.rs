//! Quoting identifiers for SQL text. Values go into SQL text only as `literal` renders them.

/// `name` as a backquoted identifier, backquotes doubled.
pub fn ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('`');
    for c in name.chars() {
        if c == '`' {
            out.push('`');
        }
        out.push(c);
    }
    out.push('`');
    out
}

/// `schema`.`table`, both quoted.
pub fn table(schema: &str, table: &str) -> String {
    format!("{}.{}", ident(schema), ident(table))
}

/// `text` as a single-quoted SQL string literal (for the few places a literal is unavoidable, such
/// as `SHOW ... LIKE`); backslashes and quotes escaped.
pub fn string_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn backquotes_are_doubled() {
        assert_eq!(ident("a`b"), "`a``b`");
        assert_eq!(table("db", "t 1"), "`db`.`t 1`");
        assert_eq!(string_literal("it's \\"), "'it''s \\\\'");
    }

    proptest! {
        /// Unquoting (strip the outer quotes, undouble) gives the name back: no name can escape.
        #[test]
        fn quoting_round_trips(name in ".{0,40}") {
            let quoted = ident(&name);
            let inner = &quoted[1..quoted.len() - 1];
            prop_assert_eq!(inner.replace("``", "`"), name);
            prop_assert!(!inner.replace("``", "").contains('`'));
        }
    }
}
