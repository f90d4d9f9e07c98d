//! Schema changes from the binlog: which tables a statement touches, whether the job replicates
//! them, and the statement rewritten for the target's names.
//!
//! A small tokenizer (comments, quoted identifiers and strings understood) finds the object names
//! of the statements that matter: CREATE/ALTER/DROP/RENAME/TRUNCATE TABLE, CREATE/DROP INDEX and
//! CREATE/ALTER/DROP DATABASE. Each table name is routed like the rows are and replaced by its
//! fully qualified target name, so the statement runs right whatever the applier's default schema.
//! Anything else (grants, procedures, views) is not replicated.

use super::routing::{Route, Routing};
use crate::change::Ddl;
use crate::mysql::quote;
use std::ops::Range;

/// What a statement does, as far as replication cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DdlKind {
    /// CREATE DATABASE / SCHEMA.
    CreateDatabase,
    /// ALTER DATABASE / SCHEMA.
    AlterDatabase,
    /// DROP DATABASE / SCHEMA.
    DropDatabase,
    /// CREATE TABLE.
    CreateTable,
    /// ALTER TABLE.
    AlterTable,
    /// DROP TABLE.
    DropTable,
    /// RENAME TABLE.
    RenameTable,
    /// TRUNCATE TABLE.
    TruncateTable,
    /// CREATE INDEX.
    CreateIndex,
    /// DROP INDEX.
    DropIndex,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Punct(char),
    Other,
}

#[derive(Debug, Clone)]
struct Tok {
    token: Token,
    span: Range<usize>,
}

fn tokenize(sql: &str) -> Vec<Tok> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'#' => i = sql[i..].find('\n').map_or(bytes.len(), |n| i + n),
            b'-' if sql[i..].starts_with("-- ") => {
                i = sql[i..].find('\n').map_or(bytes.len(), |n| i + n)
            }
            b'/' if sql[i..].starts_with("/*") => {
                // Versioned comments (/*!40100 ... */) hold SQL; their words are kept.
                if sql[i..].starts_with("/*!") {
                    i += 3;
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                } else {
                    i = sql[i + 2..]
                        .find("*/")
                        .map_or(bytes.len(), |n| i + 2 + n + 2);
                }
            }
            b'*' if sql[i..].starts_with("*/") => i += 2,
            b'`' => {
                let mut name = String::new();
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == b'`' {
                        if bytes.get(i + 1) == Some(&b'`') {
                            name.push('`');
                            i += 2;
                            continue;
                        }
                        i += 1;
                        break;
                    }
                    let ch = sql[i..].chars().next().unwrap_or('\0');
                    name.push(ch);
                    i += ch.len_utf8();
                }
                out.push(Tok {
                    token: Token::Quoted(name),
                    span: start..i,
                });
            }
            b'\'' | b'"' => {
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if bytes[i] == c {
                        if bytes.get(i + 1) == Some(&c) {
                            i += 2;
                            continue;
                        }
                        i += 1;
                        break;
                    }
                    i += 1;
                }
                out.push(Tok {
                    token: Token::Other,
                    span: start..i.min(bytes.len()),
                });
            }
            c if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80 => {
                while i < bytes.len() {
                    let b = bytes[i];
                    if b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80 {
                        i += 1;
                    } else {
                        break;
                    }
                }
                out.push(Tok {
                    token: Token::Word(sql[start..i].to_owned()),
                    span: start..i,
                });
            }
            _ => {
                let ch = sql[i..].chars().next().unwrap_or('\0');
                i += ch.len_utf8().max(1);
                out.push(Tok {
                    token: Token::Punct(ch),
                    span: start..i,
                });
            }
        }
    }
    out
}

/// A name in the statement: `[schema.]name`, and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NameRef {
    schema: Option<String>,
    name: String,
    span: Range<usize>,
}

struct Parser<'a> {
    toks: &'a [Tok],
    at: usize,
}

impl Parser<'_> {
    fn word_is(&self, word: &str) -> bool {
        matches!(self.toks.get(self.at), Some(Tok { token: Token::Word(w), .. }) if w.eq_ignore_ascii_case(word))
    }

    fn eat(&mut self, word: &str) -> bool {
        let yes = self.word_is(word);
        if yes {
            self.at += 1;
        }
        yes
    }

    fn eat_all(&mut self, words: &[&str]) -> bool {
        let save = self.at;
        for w in words {
            if !self.eat(w) {
                self.at = save;
                return false;
            }
        }
        true
    }

    fn ident(&mut self) -> Option<(String, Range<usize>)> {
        let tok = self.toks.get(self.at)?;
        let name = match &tok.token {
            Token::Word(w) | Token::Quoted(w) => w.clone(),
            _ => return None,
        };
        self.at += 1;
        Some((name, tok.span.clone()))
    }

    fn name(&mut self) -> Option<NameRef> {
        let (first, span) = self.ident()?;
        if matches!(
            self.toks.get(self.at),
            Some(Tok {
                token: Token::Punct('.'),
                ..
            })
        ) {
            self.at += 1;
            let (second, end) = self.ident()?;
            return Some(NameRef {
                schema: Some(first),
                name: second,
                span: span.start..end.end,
            });
        }
        Some(NameRef {
            schema: None,
            name: first,
            span,
        })
    }

    fn punct(&mut self, c: char) -> bool {
        let yes =
            matches!(self.toks.get(self.at), Some(Tok { token: Token::Punct(p), .. }) if *p == c);
        if yes {
            self.at += 1;
        }
        yes
    }
}

/// A statement's kind and the names it refers to.
#[derive(Debug)]
struct Parsed {
    kind: DdlKind,
    /// Table names (for table statements) or the database name (for database statements). For
    /// RENAME TABLE: from, to, from, to...; for ALTER TABLE: the table, then its new name when it
    /// has a RENAME TO clause; for CREATE TABLE: the table, then the one it is LIKE.
    names: Vec<NameRef>,
}

/// The `RENAME [TO|AS] name` clause among an ALTER TABLE's clauses (not RENAME COLUMN/INDEX/KEY,
/// and not inside parentheses), if any.
fn alter_rename(p: &mut Parser<'_>) -> Option<NameRef> {
    let mut depth = 0usize;
    while p.at < p.toks.len() {
        if p.punct('(') {
            depth += 1;
        } else if p.punct(')') {
            depth = depth.saturating_sub(1);
        } else if depth == 0 && p.eat("RENAME") {
            if p.word_is("COLUMN") || p.word_is("INDEX") || p.word_is("KEY") {
                continue;
            }
            let _ = p.eat("TO") || p.eat("AS");
            return p.name();
        } else {
            p.at += 1;
        }
    }
    None
}

fn parse(sql: &str) -> Option<Parsed> {
    let toks = tokenize(sql);
    let mut p = Parser { toks: &toks, at: 0 };
    let database = |p: &mut Parser| p.eat("DATABASE") || p.eat("SCHEMA");
    if p.eat("CREATE") {
        p.eat_all(&["OR", "REPLACE"]);
        if database(&mut p) {
            p.eat_all(&["IF", "NOT", "EXISTS"]);
            return Some(Parsed {
                kind: DdlKind::CreateDatabase,
                names: vec![p.name()?],
            });
        }
        if p.word_is("TEMPORARY") {
            return None;
        }
        if p.eat("TABLE") {
            p.eat_all(&["IF", "NOT", "EXISTS"]);
            let mut names = vec![p.name()?];
            // CREATE TABLE a LIKE b / (LIKE b)
            p.punct('(');
            if p.eat("LIKE") {
                names.push(p.name()?);
            }
            return Some(Parsed {
                kind: DdlKind::CreateTable,
                names,
            });
        }
        let _ = p.eat("UNIQUE") || p.eat("FULLTEXT") || p.eat("SPATIAL");
        if p.eat("INDEX") {
            p.eat_all(&["IF", "NOT", "EXISTS"]);
            p.ident()?;
            if !p.eat("ON") {
                return None;
            }
            return Some(Parsed {
                kind: DdlKind::CreateIndex,
                names: vec![p.name()?],
            });
        }
        return None;
    }
    if p.eat("ALTER") {
        if database(&mut p) {
            return Some(Parsed {
                kind: DdlKind::AlterDatabase,
                names: p.name().into_iter().collect(),
            });
        }
        p.eat("ONLINE");
        p.eat("IGNORE");
        if p.eat("TABLE") {
            p.eat_all(&["IF", "EXISTS"]);
            let mut names = vec![p.name()?];
            names.extend(alter_rename(&mut p));
            return Some(Parsed {
                kind: DdlKind::AlterTable,
                names,
            });
        }
        return None;
    }
    if p.eat("DROP") {
        if database(&mut p) {
            p.eat_all(&["IF", "EXISTS"]);
            return Some(Parsed {
                kind: DdlKind::DropDatabase,
                names: vec![p.name()?],
            });
        }
        if p.word_is("TEMPORARY") {
            return None;
        }
        if p.eat("TABLE") {
            p.eat_all(&["IF", "EXISTS"]);
            let mut names = vec![p.name()?];
            while p.punct(',') {
                names.push(p.name()?);
            }
            return Some(Parsed {
                kind: DdlKind::DropTable,
                names,
            });
        }
        if p.eat("INDEX") {
            p.eat_all(&["IF", "EXISTS"]);
            p.ident()?;
            if !p.eat("ON") {
                return None;
            }
            return Some(Parsed {
                kind: DdlKind::DropIndex,
                names: vec![p.name()?],
            });
        }
        return None;
    }
    if p.eat("RENAME") {
        if !p.eat("TABLE") {
            return None;
        }
        let mut names = Vec::new();
        loop {
            names.push(p.name()?);
            if !p.eat("TO") {
                return None;
            }
            names.push(p.name()?);
            if !p.punct(',') {
                break;
            }
        }
        return Some(Parsed {
            kind: DdlKind::RenameTable,
            names,
        });
    }
    if p.eat("TRUNCATE") {
        p.eat("TABLE");
        return Some(Parsed {
            kind: DdlKind::TruncateTable,
            names: vec![p.name()?],
        });
    }
    None
}

/// What to do with a statement from the binlog.
#[derive(Debug, PartialEq, Eq)]
pub enum DdlAction {
    /// Run this on the target.
    Apply(DdlKind, Ddl),
    /// The statement brings tables into the job that the target does not have (a rename from,
    /// or a `CREATE TABLE ... LIKE`, a table the job does not replicate): run what is left of it
    /// (if anything) and copy these source tables (`schema`, `table`) as they are now.
    ApplyAndCopy(DdlKind, Option<Ddl>, Vec<(String, String)>),
    /// Not replicated: it touches nothing the job replicates, or is not a schema change we follow.
    Skip,
    /// It touches replicated and unreplicated tables in a way that cannot be split.
    Unsupported(String),
}

/// Routes and rewrites one statement run in default schema `default_schema`.
pub fn route(sql: &str, default_schema: &str, routing: &Routing) -> DdlAction {
    let Some(parsed) = parse(sql) else {
        return DdlAction::Skip;
    };
    let schema_of = |n: &NameRef| {
        n.schema
            .clone()
            .unwrap_or_else(|| default_schema.to_owned())
    };
    match parsed.kind {
        DdlKind::CreateDatabase | DdlKind::AlterDatabase | DdlKind::DropDatabase => {
            let name = match parsed.names.first() {
                Some(n) => n.name.clone(),
                None => default_schema.to_owned(),
            };
            let Some(target) = routing.schema(&name) else {
                return DdlAction::Skip;
            };
            let mut statement = sql.to_owned();
            if let Some(n) = parsed.names.first() {
                statement.replace_range(n.span.clone(), &quote::ident(&target));
            }
            DdlAction::Apply(
                parsed.kind,
                Ddl {
                    schema: None,
                    statement,
                    tables: Vec::new(),
                },
            )
        }
        DdlKind::RenameTable => renames(sql, parsed.kind, &parsed.names, default_schema, routing),
        DdlKind::AlterTable if parsed.names.len() == 2 => {
            renames(sql, parsed.kind, &parsed.names, default_schema, routing)
        }
        DdlKind::CreateTable if parsed.names.len() == 2 => {
            let (table, like) = (&parsed.names[0], &parsed.names[1]);
            if routing.route(&schema_of(table), &table.name).is_none() {
                return DdlAction::Skip;
            }
            if routing.route(&schema_of(like), &like.name).is_some() {
                return rewrite(sql, parsed.kind, &parsed.names, default_schema, routing);
            }
            // LIKE a table the target does not have: copy the new table instead.
            DdlAction::ApplyAndCopy(
                parsed.kind,
                None,
                vec![(schema_of(table), table.name.clone())],
            )
        }
        kind => rewrite(sql, kind, &parsed.names, default_schema, routing),
    }
}

/// Every name of `names` replaced by its fully qualified target name; a DROP TABLE of
/// replicated and unreplicated tables drops the replicated ones.
fn rewrite(
    sql: &str,
    kind: DdlKind,
    names: &[NameRef],
    default_schema: &str,
    routing: &Routing,
) -> DdlAction {
    let schema_of = |n: &NameRef| {
        n.schema
            .clone()
            .unwrap_or_else(|| default_schema.to_owned())
    };
    let target_default = routing.schema(default_schema);
    let routes: Vec<Option<Route>> = names
        .iter()
        .map(|n| routing.route(&schema_of(n), &n.name))
        .collect();
    let routed = routes.iter().filter(|r| r.is_some()).count();
    let tables: Vec<String> = routes.iter().flatten().map(Route::qualified).collect();
    if routed == 0 {
        // A table created under a name the job replicates is routed by its name alone.
        return DdlAction::Skip;
    }
    if routed != routes.len() {
        if kind == DdlKind::DropTable {
            // Drop only the replicated tables.
            let names: Vec<String> = routes
                .iter()
                .flatten()
                .map(|r| quote::table(&r.schema, &r.table))
                .collect();
            let if_exists = sql.to_ascii_uppercase().contains("IF EXISTS");
            return DdlAction::Apply(
                kind,
                Ddl {
                    schema: target_default,
                    statement: format!(
                        "DROP TABLE {}{}",
                        if if_exists { "IF EXISTS " } else { "" },
                        names.join(", ")
                    ),
                    tables,
                },
            );
        }
        return DdlAction::Unsupported(format!(
            "{sql:?} involves both replicated and unreplicated tables"
        ));
    }
    let replacements = names
        .iter()
        .zip(routes.iter().flatten())
        .map(|(n, r)| (n.span.clone(), quote::table(&r.schema, &r.table)))
        .collect();
    DdlAction::Apply(
        kind,
        Ddl {
            schema: target_default,
            statement: replace_spans(sql, replacements),
            tables,
        },
    )
}

fn replace_spans(sql: &str, mut replacements: Vec<(Range<usize>, String)>) -> String {
    let mut statement = sql.to_owned();
    replacements.sort_by_key(|(span, _)| std::cmp::Reverse(span.start));
    for (span, text) in replacements {
        statement.replace_range(span, &text);
    }
    statement
}

/// RENAME TABLE (pairs of from, to) or ALTER TABLE ... RENAME TO (one pair, other clauses
/// applying to `from`), where the names may cross the job's set of tables:
/// - both replicated: renamed on the target;
/// - out of the set: renamed on the target too, so its rows stay there under the new name (in
///   the target schema of the new name's schema, else of the old one's); it is not replicated any
///   more;
/// - into the set: the target does not have the table; its pair is left out and the table is
///   copied from the source (definition and rows) right after the statement, so the target ends
///   as the source is, as after an online schema change's swap;
/// - neither: left out.
fn renames(
    sql: &str,
    kind: DdlKind,
    names: &[NameRef],
    default_schema: &str,
    routing: &Routing,
) -> DdlAction {
    let source = |n: &NameRef| {
        (
            n.schema
                .clone()
                .unwrap_or_else(|| default_schema.to_owned()),
            n.name.clone(),
        )
    };
    let is_alter = kind == DdlKind::AlterTable;
    // Source names moved onto the target by an earlier pair of this statement.
    let mut on_target: Vec<((String, String), (String, String))> = Vec::new();
    let mut kept: Vec<(String, String)> = Vec::new();
    let mut tables = Vec::new();
    let mut copy = Vec::new();
    for pair in names.chunks(2) {
        let [from, to] = pair else { break };
        let (from_src, to_src) = (source(from), source(to));
        let from_target = routing
            .route(&from_src.0, &from_src.1)
            .map(|r| (r.schema, r.table))
            .or_else(|| {
                on_target
                    .iter()
                    .find(|(s, _)| s == &from_src)
                    .map(|(_, t)| t.clone())
            });
        let to_route = routing.route(&to_src.0, &to_src.1);
        match (from_target, to_route) {
            (Some(f), Some(t)) => {
                tables.push(format!("{}.{}", f.0, f.1));
                tables.push(t.qualified());
                on_target.retain(|(s, _)| s != &from_src);
                kept.push((quote::table(&f.0, &f.1), quote::table(&t.schema, &t.table)));
            }
            (Some(f), None) => {
                let schema = routing.schema(&to_src.0).unwrap_or_else(|| f.0.clone());
                let t = (schema, to_src.1.clone());
                tables.push(format!("{}.{}", f.0, f.1));
                on_target.retain(|(s, _)| s != &from_src);
                on_target.push((to_src.clone(), t.clone()));
                kept.push((quote::table(&f.0, &f.1), quote::table(&t.0, &t.1)));
            }
            (None, Some(_)) => copy.push(to_src),
            (None, None) => {}
        }
    }
    let statement = if kept.is_empty() {
        None
    } else if is_alter {
        // The one pair: the statement's own names replaced.
        let replacements = names
            .iter()
            .zip([kept[0].0.clone(), kept[0].1.clone()])
            .map(|(n, text)| (n.span.clone(), text))
            .collect();
        Some(replace_spans(sql, replacements))
    } else {
        let pairs: Vec<String> = kept.iter().map(|(f, t)| format!("{f} TO {t}")).collect();
        Some(format!("RENAME TABLE {}", pairs.join(", ")))
    };
    let ddl = statement.map(|statement| Ddl {
        schema: routing.schema(default_schema),
        statement,
        tables,
    });
    match (ddl, copy.is_empty()) {
        (Some(ddl), true) => DdlAction::Apply(kind, ddl),
        (None, true) => DdlAction::Skip,
        (ddl, false) => DdlAction::ApplyAndCopy(kind, ddl, copy),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routing(do_db: &str) -> Routing {
        let job = format!(
            r#"{{"Name": "t", "Tasks": [
              {{"Type": "Src", "Config": {{"ReplicateDoDb": {do_db},
                "ConnectionConfig": {{"Host": "h", "Port": 1, "User": "u"}}}}}},
              {{"Type": "Dest", "Config": {{"ConnectionConfig": {{"Host": "h", "Port": 2, "User": "u"}}}}}}]}}"#
        );
        Routing::new(&jobs::parse_job(&job).expect("valid").spec.src.extract)
    }

    fn applied(action: DdlAction) -> (DdlKind, String) {
        match action {
            DdlAction::Apply(kind, ddl) => (kind, ddl.statement),
            other => panic!("expected Apply, got {other:?}"),
        }
    }

    #[test]
    fn tables_are_renamed_and_qualified() {
        let r = routing(r#"[{"TableSchema": "src", "TableSchemaRename": "dst"}]"#);
        assert_eq!(
            applied(route("ALTER TABLE t1 ADD COLUMN c INT", "src", &r)),
            (
                DdlKind::AlterTable,
                "ALTER TABLE `dst`.`t1` ADD COLUMN c INT".into()
            )
        );
        assert_eq!(
            applied(route(
                "CREATE TABLE IF NOT EXISTS `src`.`a``b` (id int primary key) /* note */",
                "other",
                &r
            )),
            (
                DdlKind::CreateTable,
                "CREATE TABLE IF NOT EXISTS `dst`.`a``b` (id int primary key) /* note */".into()
            )
        );
        assert_eq!(
            applied(route("RENAME TABLE t1 TO t2, src.t3 TO t4", "src", &r)).1,
            "RENAME TABLE `dst`.`t1` TO `dst`.`t2`, `dst`.`t3` TO `dst`.`t4`"
        );
        assert_eq!(
            applied(route("create database src character set utf8mb4", "x", &r)),
            (
                DdlKind::CreateDatabase,
                "create database `dst` character set utf8mb4".into()
            )
        );
    }

    #[test]
    fn unreplicated_tables_are_skipped_or_dropped_apart() {
        let r = routing(r#"[{"TableSchema": "s", "Tables": [{"TableName": "a"}]}]"#);
        assert_eq!(route("ALTER TABLE b ADD c INT", "s", &r), DdlAction::Skip);
        assert_eq!(route("GRANT ALL ON *.* TO x", "s", &r), DdlAction::Skip);
        assert_eq!(
            applied(route(
                "DROP TABLE IF EXISTS a, b /* generated by server */",
                "s",
                &r
            ))
            .1,
            "DROP TABLE IF EXISTS `s`.`a`"
        );
        // Out of the job: renamed on the target too, where its rows stay.
        assert_eq!(
            applied(route("RENAME TABLE a TO b", "s", &r)).1,
            "RENAME TABLE `s`.`a` TO `s`.`b`"
        );
        // Into the job (an online schema change's swap): the new `a` is copied, the old one
        // renamed away on the target; a pair of unreplicated names is left out.
        assert_eq!(
            route("RENAME TABLE a TO a_old, a_new TO a, x TO y", "s", &r),
            DdlAction::ApplyAndCopy(
                DdlKind::RenameTable,
                Some(Ddl {
                    schema: Some("s".into()),
                    statement: "RENAME TABLE `s`.`a` TO `s`.`a_old`".into(),
                    tables: vec!["s.a".into()],
                }),
                vec![("s".into(), "a".into())]
            )
        );
        // A swap through a temporary name stays a rename on the target.
        assert_eq!(
            applied(route("RENAME TABLE a TO tmp, tmp TO a", "s", &r)).1,
            "RENAME TABLE `s`.`a` TO `s`.`tmp`, `s`.`tmp` TO `s`.`a`"
        );
        assert_eq!(
            applied(route(
                "ALTER TABLE a ADD COLUMN z INT, RENAME TO gone",
                "s",
                &r
            ))
            .1,
            "ALTER TABLE `s`.`a` ADD COLUMN z INT, RENAME TO `s`.`gone`"
        );
        assert_eq!(
            route("ALTER TABLE x ADD COLUMN z INT, RENAME TO a", "s", &r),
            DdlAction::ApplyAndCopy(DdlKind::AlterTable, None, vec![("s".into(), "a".into())])
        );
        assert_eq!(
            route("ALTER TABLE a RENAME COLUMN v TO w", "s", &r),
            DdlAction::Apply(
                DdlKind::AlterTable,
                Ddl {
                    schema: Some("s".into()),
                    statement: "ALTER TABLE `s`.`a` RENAME COLUMN v TO w".into(),
                    tables: vec!["s.a".into()],
                }
            )
        );
        assert_eq!(
            route("CREATE TABLE a LIKE outside", "s", &r),
            DdlAction::ApplyAndCopy(DdlKind::CreateTable, None, vec![("s".into(), "a".into())])
        );
        assert_eq!(route("CREATE TABLE b LIKE a", "s", &r), DdlAction::Skip);
        assert_eq!(
            route("CREATE TEMPORARY TABLE a (x int)", "s", &r),
            DdlAction::Skip
        );
    }

    #[test]
    fn strings_and_comments_do_not_confuse_names() {
        let r = routing("[]");
        assert_eq!(
            applied(route(
                "-- c\nALTER TABLE `t` COMMENT 'DROP TABLE x', ADD d INT",
                "s",
                &r
            ))
            .1,
            "-- c\nALTER TABLE `s`.`t` COMMENT 'DROP TABLE x', ADD d INT"
        );
        assert_eq!(
            applied(route("TRUNCATE t", "s", &r)),
            (DdlKind::TruncateTable, "TRUNCATE `s`.`t`".into())
        );
    }
}
