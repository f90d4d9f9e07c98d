//! Evaluating a table's `Where` filter on a row, identically in the snapshot and the binlog.
//!
//! Semantics follow MySQL where it is cheap to: three-valued logic (a row passes only when the
//! condition is TRUE); numbers compare as numbers, and a string compared with a number is read as
//! a number; dates and times compare as dates and times, string literals included
//! (`d >= '2024-01-01'`); TIMESTAMP values are taken in UTC. Where it is not: strings compare and
//! LIKE matches byte for byte (case-sensitive, whatever the column's collation), and DECIMAL
//! values with a fraction are compared as doubles.
//!
//! An update is filtered on both images: a row that starts matching is inserted on the target,
//! one that stops matching is deleted, so the target always holds exactly the matching rows.

use crate::change::civil::civil_from_epoch;
use crate::change::{RowKind, Value};
use jobs::where_clause::{BinOp, Func, Literal, WhereExpr};
use std::cmp::Ordering;

/// A compiled filter for one table's rows.
#[derive(Debug, Clone)]
pub struct RowFilter {
    expr: WhereExpr,
    /// Column name → index in the source row, for every column the filter names.
    columns: Vec<(String, usize)>,
}

impl RowFilter {
    /// Compiles `text` for a table with `columns` (source column names, in row order).
    ///
    /// # Errors
    /// A filter that does not parse or names a column the table lacks.
    pub fn new(text: &str, columns: &[String]) -> Result<Self, String> {
        let expr = jobs::where_clause::parse(text)?;
        let mut resolved = Vec::new();
        for name in expr.columns() {
            let index = columns
                .iter()
                .position(|c| c.eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    format!("the Where filter names column {name}, which the table does not have")
                })?;
            resolved.push((name.to_owned(), index));
        }
        Ok(Self {
            expr,
            columns: resolved,
        })
    }

    /// The filter of a routed table, if its route has one.
    ///
    /// # Errors
    /// A definite error naming the table when the filter cannot be compiled for it.
    pub fn for_table(
        route: &crate::extractor::routing::Route,
        table: &crate::extractor::schema::TableSchema,
    ) -> Result<Option<Self>, crate::error::TaskError> {
        let Some(text) = route.where_clause.as_deref() else {
            return Ok(None);
        };
        let names: Vec<String> = table.columns.iter().map(|c| c.name.clone()).collect();
        Self::new(text, &names).map(Some).map_err(|why| {
            crate::error::TaskError::definite(
                format!("the Where filter of {}", table.qualified()),
                crate::error::DefiniteCause::BadConfig(why.to_string()),
            )
        })
    }

    /// Whether `row` (all source columns) passes.
    pub fn matches(&self, row: &[Value]) -> bool {
        truth(&self.eval(&self.expr, row)) == Some(true)
    }

    /// The change to apply on the target for a source change, or `None` if the target is
    /// unaffected.
    pub fn apply(&self, kind: RowKind) -> Option<RowKind> {
        match kind {
            RowKind::Insert(after) => self.matches(&after).then_some(RowKind::Insert(after)),
            RowKind::Delete(before) => self.matches(&before).then_some(RowKind::Delete(before)),
            RowKind::Update { before, after } => {
                match (self.matches(&before), self.matches(&after)) {
                    (true, true) => Some(RowKind::Update { before, after }),
                    (true, false) => Some(RowKind::Delete(before)),
                    (false, true) => Some(RowKind::Insert(after)),
                    (false, false) => None,
                }
            }
        }
    }

    fn column(&self, name: &str, row: &[Value]) -> V {
        self.columns
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, i)| row.get(*i))
            .map_or(V::Null, from_value)
    }

    fn eval(&self, expr: &WhereExpr, row: &[Value]) -> V {
        match expr {
            WhereExpr::Column(name) => self.column(name, row),
            WhereExpr::Literal(Literal::Null) => V::Null,
            WhereExpr::Literal(Literal::Bool(b)) => V::Int(i128::from(*b)),
            WhereExpr::Literal(Literal::Number(n)) => number_literal(n),
            WhereExpr::Literal(Literal::Text(t)) => V::Text(t.as_bytes().to_vec()),
            WhereExpr::Not(e) => bool_v(truth(&self.eval(e, row)).map(|b| !b)),
            WhereExpr::Negate(e) => match self.eval(e, row) {
                V::Null => V::Null,
                v => match to_number(&v) {
                    N::Int(i) => V::Int(-i),
                    N::Float(f) => V::Float(-f),
                },
            },
            WhereExpr::Binary(a, op, b) => self.binary(a, *op, b, row),
            WhereExpr::IsNull(e, negated) => {
                bool_v(Some(matches!(self.eval(e, row), V::Null) != *negated))
            }
            WhereExpr::IsTrue(e, negated) => {
                bool_v(Some((truth(&self.eval(e, row)) == Some(true)) != *negated))
            }
            WhereExpr::IsFalse(e, negated) => {
                bool_v(Some((truth(&self.eval(e, row)) == Some(false)) != *negated))
            }
            WhereExpr::InList(e, list, negated) => {
                let value = self.eval(e, row);
                if matches!(value, V::Null) {
                    return V::Null;
                }
                let mut saw_null = false;
                for item in list {
                    match compare(&value, &self.eval(item, row)) {
                        Some(Ordering::Equal) => return bool_v(Some(!negated)),
                        None => saw_null = true,
                        _ => {}
                    }
                }
                if saw_null {
                    V::Null
                } else {
                    bool_v(Some(*negated))
                }
            }
            WhereExpr::Between(e, low, high, negated) => {
                let value = self.eval(e, row);
                let ge = compare(&value, &self.eval(low, row)).map(|o| o != Ordering::Less);
                let le = compare(&value, &self.eval(high, row)).map(|o| o != Ordering::Greater);
                let inside = and(ge, le);
                bool_v(inside.map(|b| b != *negated))
            }
            WhereExpr::Like(e, pattern, escape, negated) => {
                match (self.eval(e, row), self.eval(pattern, row)) {
                    (V::Null, _) | (_, V::Null) => V::Null,
                    (value, pattern) => {
                        let hit = like(&to_text(&value), &to_text(&pattern), *escape);
                        bool_v(Some(hit != *negated))
                    }
                }
            }
            WhereExpr::Call(func, args) => {
                let values: Vec<V> = args.iter().map(|a| self.eval(a, row)).collect();
                call(*func, values)
            }
        }
    }

    fn binary(&self, a: &WhereExpr, op: BinOp, b: &WhereExpr, row: &[Value]) -> V {
        let (x, y) = (self.eval(a, row), self.eval(b, row));
        match op {
            BinOp::And => bool_v(and(truth(&x), truth(&y))),
            BinOp::Or => bool_v(match (truth(&x), truth(&y)) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            }),
            BinOp::Xor => bool_v(match (truth(&x), truth(&y)) {
                (Some(p), Some(q)) => Some(p != q),
                _ => None,
            }),
            BinOp::NullSafeEq => bool_v(Some(match (&x, &y) {
                (V::Null, V::Null) => true,
                (V::Null, _) | (_, V::Null) => false,
                _ => compare(&x, &y) == Some(Ordering::Equal),
            })),
            BinOp::Eq => bool_v(compare(&x, &y).map(|o| o == Ordering::Equal)),
            BinOp::NotEq => bool_v(compare(&x, &y).map(|o| o != Ordering::Equal)),
            BinOp::Lt => bool_v(compare(&x, &y).map(|o| o == Ordering::Less)),
            BinOp::LtEq => bool_v(compare(&x, &y).map(|o| o != Ordering::Greater)),
            BinOp::Gt => bool_v(compare(&x, &y).map(|o| o == Ordering::Greater)),
            BinOp::GtEq => bool_v(compare(&x, &y).map(|o| o != Ordering::Less)),
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod => {
                arithmetic(&x, op, &y)
            }
        }
    }
}

/// An evaluated value.
#[derive(Debug, Clone, PartialEq)]
enum V {
    Null,
    Int(i128),
    Float(f64),
    Text(Vec<u8>),
    /// A date/datetime/timestamp as a sortable key (see [`datetime_key`]).
    DateTime(i128),
    /// A time of day or duration, in microseconds.
    Time(i128),
}

enum N {
    Int(i128),
    Float(f64),
}

fn from_value(value: &Value) -> V {
    match value {
        Value::Null => V::Null,
        Value::Int(i) => V::Int(i128::from(*i)),
        Value::UInt(u) => V::Int(i128::from(*u)),
        Value::Float(f) => V::Float(f64::from(*f)),
        Value::Double(d) => V::Float(*d),
        Value::Decimal(text) => number_literal(text),
        Value::Bytes(b) => V::Text(b.clone()),
        Value::Date { year, month, day } => {
            V::DateTime(datetime_key(*year, *month, *day, 0, 0, 0, 0))
        }
        Value::DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micros,
        } => V::DateTime(datetime_key(
            *year, *month, *day, *hour, *minute, *second, *micros,
        )),
        Value::Timestamp { secs: 0, micros: 0 } => V::DateTime(0),
        Value::Timestamp { secs, micros } => {
            let (y, mo, d, h, mi, s) = civil_from_epoch(*secs);
            V::DateTime(datetime_key(y, mo, d, h, mi, s, *micros))
        }
        Value::Time {
            negative,
            hours,
            minutes,
            seconds,
            micros,
        } => {
            let us = ((i128::from(*hours) * 60 + i128::from(*minutes)) * 60 + i128::from(*seconds))
                * 1_000_000
                + i128::from(*micros);
            V::Time(if *negative { -us } else { us })
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn datetime_key(y: u16, mo: u8, d: u8, h: u8, mi: u8, s: u8, us: u32) -> i128 {
    let seconds =
        ((((i128::from(y) * 13 + i128::from(mo)) * 32 + i128::from(d)) * 24 + i128::from(h)) * 60
            + i128::from(mi))
            * 60
            + i128::from(s);
    seconds * 1_000_000 + i128::from(us)
}

/// `YYYY-MM-DD[ HH:MM:SS[.ffffff]]` as a datetime key.
fn parse_datetime(text: &[u8]) -> Option<i128> {
    let s = std::str::from_utf8(text).ok()?.trim();
    let (date, time) = match s.split_once([' ', 'T']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut parts = date.split('-');
    let y: u16 = parts.next()?.parse().ok()?;
    let mo: u8 = parts.next()?.parse().ok()?;
    let d: u8 = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    let (h, mi, sec, us) = match time {
        None => (0, 0, 0, 0),
        Some(t) => {
            let (hms, frac) = t.split_once('.').unwrap_or((t, ""));
            let mut p = hms.split(':');
            let h: u8 = p.next()?.parse().ok()?;
            let mi: u8 = p.next().unwrap_or("0").parse().ok()?;
            let sec: u8 = p.next().unwrap_or("0").parse().ok()?;
            let mut digits: String = frac.chars().take(6).collect();
            while digits.len() < 6 {
                digits.push('0');
            }
            (h, mi, sec, digits.parse().ok()?)
        }
    };
    Some(datetime_key(y, mo, d, h, mi, sec, us))
}

/// `[-]HH:MM:SS[.ffffff]` as microseconds.
fn parse_time(text: &[u8]) -> Option<i128> {
    let s = std::str::from_utf8(text).ok()?.trim();
    let (negative, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (hms, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut p = hms.split(':');
    let h: i128 = p.next()?.parse().ok()?;
    let m: i128 = p.next()?.parse().ok()?;
    let sec: i128 = p.next().unwrap_or("0").parse().ok()?;
    let mut digits: String = frac.chars().take(6).collect();
    while digits.len() < 6 {
        digits.push('0');
    }
    let us = ((h * 60 + m) * 60 + sec) * 1_000_000 + digits.parse::<i128>().ok()?;
    Some(if negative { -us } else { us })
}

fn number_literal(text: &str) -> V {
    match text.parse::<i128>() {
        Ok(i) => V::Int(i),
        Err(_) => text.parse::<f64>().map_or(V::Int(0), V::Float),
    }
}

/// MySQL's reading of a string as a number: its longest numeric prefix, else 0.
fn text_number(text: &[u8]) -> N {
    let s = String::from_utf8_lossy(text);
    let s = s.trim_start();
    let mut end = 0;
    let bytes = s.as_bytes();
    let mut seen_digit = false;
    let mut seen_dot = false;
    let mut seen_e = false;
    while end < bytes.len() {
        let c = bytes[end];
        let ok = c.is_ascii_digit()
            || (end == 0 && (c == b'-' || c == b'+'))
            || (c == b'.' && !seen_dot && !seen_e)
            || ((c == b'e' || c == b'E') && seen_digit && !seen_e)
            || ((c == b'-' || c == b'+') && end > 0 && matches!(bytes[end - 1], b'e' | b'E'));
        if !ok {
            break;
        }
        seen_digit |= c.is_ascii_digit();
        seen_dot |= c == b'.';
        seen_e |= c == b'e' || c == b'E';
        end += 1;
    }
    let prefix = &s[..end];
    if let Ok(i) = prefix.parse::<i128>() {
        return N::Int(i);
    }
    N::Float(prefix.parse::<f64>().unwrap_or(0.0))
}

fn to_number(v: &V) -> N {
    match v {
        V::Null => N::Int(0),
        V::Int(i) => N::Int(*i),
        V::Float(f) => N::Float(*f),
        V::Text(t) => text_number(t),
        V::DateTime(k) => N::Int(*k),
        V::Time(us) => N::Int(*us),
    }
}

fn to_text(v: &V) -> Vec<u8> {
    match v {
        V::Null => Vec::new(),
        V::Int(i) => i.to_string().into_bytes(),
        V::Float(f) => f.to_string().into_bytes(),
        V::Text(t) => t.clone(),
        V::DateTime(k) => k.to_string().into_bytes(),
        V::Time(us) => us.to_string().into_bytes(),
    }
}

fn as_f64(n: &N) -> f64 {
    match n {
        N::Int(i) => *i as f64,
        N::Float(f) => *f,
    }
}

fn compare_numbers(a: N, b: N) -> Option<Ordering> {
    match (a, b) {
        (N::Int(x), N::Int(y)) => Some(x.cmp(&y)),
        (x, y) => as_f64(&x).partial_cmp(&as_f64(&y)),
    }
}

fn compare(a: &V, b: &V) -> Option<Ordering> {
    match (a, b) {
        (V::Null, _) | (_, V::Null) => None,
        (V::Text(x), V::Text(y)) => Some(x.cmp(y)),
        (V::DateTime(x), V::DateTime(y)) | (V::Time(x), V::Time(y)) => Some(x.cmp(y)),
        (V::DateTime(x), V::Text(t)) => parse_datetime(t).map(|y| x.cmp(&y)),
        (V::Text(t), V::DateTime(y)) => parse_datetime(t).map(|x| x.cmp(y)),
        (V::Time(x), V::Text(t)) => parse_time(t).map(|y| x.cmp(&y)),
        (V::Text(t), V::Time(y)) => parse_time(t).map(|x| x.cmp(y)),
        (x, y) => compare_numbers(to_number(x), to_number(y)),
    }
}

fn truth(v: &V) -> Option<bool> {
    match v {
        V::Null => None,
        V::DateTime(_) | V::Time(_) => Some(true),
        other => Some(match to_number(other) {
            N::Int(i) => i != 0,
            N::Float(f) => f != 0.0,
        }),
    }
}

fn bool_v(b: Option<bool>) -> V {
    b.map_or(V::Null, |b| V::Int(i128::from(b)))
}

fn and(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

fn arithmetic(x: &V, op: BinOp, y: &V) -> V {
    if matches!(x, V::Null) || matches!(y, V::Null) {
        return V::Null;
    }
    let (a, b) = (to_number(x), to_number(y));
    if let (N::Int(p), N::Int(q)) = (&a, &b) {
        let exact = match op {
            BinOp::Add => p.checked_add(*q),
            BinOp::Sub => p.checked_sub(*q),
            BinOp::Mul => p.checked_mul(*q),
            BinOp::Mod if *q != 0 => Some(p % q),
            BinOp::Mod => return V::Null,
            _ => None,
        };
        if let Some(v) = exact {
            return V::Int(v);
        }
    }
    let (p, q) = (as_f64(&a), as_f64(&b));
    match op {
        BinOp::Add => V::Float(p + q),
        BinOp::Sub => V::Float(p - q),
        BinOp::Mul => V::Float(p * q),
        BinOp::Div if q == 0.0 => V::Null,
        BinOp::Div => V::Float(p / q),
        BinOp::Mod if q == 0.0 => V::Null,
        BinOp::Mod => V::Float(p % q),
        _ => V::Null,
    }
}

fn call(func: Func, args: Vec<V>) -> V {
    if args.iter().any(|a| matches!(a, V::Null)) {
        return V::Null;
    }
    let first = args.first().cloned().unwrap_or(V::Null);
    match func {
        Func::Lower | Func::Upper => {
            let text = to_text(&first);
            let out = match String::from_utf8(text) {
                Ok(s) if func == Func::Lower => s.to_lowercase().into_bytes(),
                Ok(s) => s.to_uppercase().into_bytes(),
                Err(e) if func == Func::Lower => e.into_bytes().to_ascii_lowercase(),
                Err(e) => e.into_bytes().to_ascii_uppercase(),
            };
            V::Text(out)
        }
        Func::Length => V::Int(to_text(&first).len() as i128),
        Func::CharLength => {
            V::Int(String::from_utf8_lossy(&to_text(&first)).chars().count() as i128)
        }
        Func::Abs => match to_number(&first) {
            N::Int(i) => V::Int(i.abs()),
            N::Float(f) => V::Float(f.abs()),
        },
        Func::Concat => V::Text(args.iter().flat_map(to_text).collect()),
    }
}

/// SQL LIKE, byte for byte: `%` any run, `_` one character (UTF-8 aware), `escape` quotes.
fn like(text: &[u8], pattern: &[u8], escape: char) -> bool {
    let text = String::from_utf8_lossy(text);
    let pattern = String::from_utf8_lossy(pattern);
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    // Iterative matcher with backtracking on the last '%'.
    let (mut ti, mut pi) = (0usize, 0usize);
    let (mut star_p, mut star_t) = (None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && p[pi] == escape && pi + 1 < p.len() {
            if p[pi + 1] == t[ti] {
                pi += 2;
                ti += 1;
                continue;
            }
        } else if pi < p.len() && p[pi] == '%' {
            star_p = Some(pi);
            star_t = ti;
            pi += 1;
            continue;
        } else if pi < p.len() && (p[pi] == '_' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
            continue;
        }
        match star_p {
            Some(sp) => {
                pi = sp + 1;
                star_t += 1;
                ti = star_t;
            }
            None => return false,
        }
    }
    while pi < p.len() && p[pi] == '%' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(text: &str) -> RowFilter {
        RowFilter::new(text, &["a".into(), "name".into(), "d".into(), "n".into()])
            .expect("compiles")
    }

    fn row(a: i64, name: &str, n: Option<i64>) -> Vec<Value> {
        vec![
            Value::Int(a),
            Value::Bytes(name.as_bytes().to_vec()),
            Value::DateTime {
                year: 2024,
                month: 3,
                day: 1,
                hour: 10,
                minute: 0,
                second: 0,
                micros: 0,
            },
            n.map_or(Value::Null, Value::Int),
        ]
    }

    #[test]
    fn comparisons_logic_and_nulls() {
        assert!(filter("a<5").matches(&row(4, "x", None)));
        assert!(!filter("a<5").matches(&row(5, "x", None)));
        assert!(
            !filter("n = 1").matches(&row(1, "x", None)),
            "NULL = 1 is not TRUE"
        );
        assert!(filter("n IS NULL OR n > 3").matches(&row(1, "x", None)));
        assert!(
            !filter("NOT (n > 3)").matches(&row(1, "x", None)),
            "NOT NULL is NULL"
        );
        assert!(filter("a IN (1, 2, 3) AND a BETWEEN 2 AND 2").matches(&row(2, "x", None)));
        assert!(filter("a NOT IN (1, 3)").matches(&row(2, "x", None)));
        assert!(!filter("a NOT IN (1, NULL)").matches(&row(2, "x", None)));
        assert!(filter("a % 2 = 0 AND a * 3 - 1 = 5").matches(&row(2, "x", None)));
        assert!(
            filter("a = '2'").matches(&row(2, "x", None)),
            "strings compare as numbers with numbers"
        );
    }

    #[test]
    fn strings_dates_and_like() {
        assert!(filter("name LIKE 'ab%'").matches(&row(1, "abc", None)));
        assert!(filter("name LIKE 'a_c'").matches(&row(1, "aéc", None)));
        assert!(
            !filter("name LIKE 'A%'").matches(&row(1, "abc", None)),
            "byte-wise, case-sensitive"
        );
        assert!(filter(r"name LIKE '50\%'").matches(&row(1, "50%", None)));
        assert!(
            filter("upper(name) = 'ABC' AND char_length(name) = 3").matches(&row(1, "abc", None))
        );
        assert!(
            filter("d >= '2024-03-01' AND d < '2024-03-01 10:00:01'").matches(&row(1, "x", None))
        );
        assert!(!filter("d > '2024-03-01 10:00:00'").matches(&row(1, "x", None)));
    }

    #[test]
    fn updates_move_rows_in_and_out_of_the_filtered_set() {
        let f = filter("a < 5");
        let (inside, outside) = (row(1, "x", None), row(9, "x", None));
        assert!(matches!(
            f.apply(RowKind::Update {
                before: inside.clone(),
                after: outside.clone()
            }),
            Some(RowKind::Delete(_))
        ));
        assert!(matches!(
            f.apply(RowKind::Update {
                before: outside.clone(),
                after: inside.clone()
            }),
            Some(RowKind::Insert(_))
        ));
        assert!(f.apply(RowKind::Insert(outside)).is_none());
        assert!(RowFilter::new("zz > 1", &["a".into()])
            .unwrap_err()
            .contains("column zz"));
    }
}
