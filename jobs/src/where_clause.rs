//! A table's `Where` filter: parsed once (with sqlparser's MySQL dialect) into a small expression
//! tree that both the snapshot and the binlog evaluate the same way, so the two phases can never
//! disagree about which rows belong to the job.
//!
//! Supported: column names, numbers, strings, NULL, TRUE/FALSE; `= <> != < <= > >= <=>`;
//! `+ - * / %`; `AND OR XOR NOT`; `IS [NOT] NULL`, `IS [NOT] TRUE/FALSE`; `[NOT] IN (...)`;
//! `[NOT] BETWEEN`; `[NOT] LIKE` (with `ESCAPE`); and the functions `LOWER`, `UPPER`, `LCASE`,
//! `UCASE`, `LENGTH`, `CHAR_LENGTH`, `ABS`, `CONCAT`. Anything else is rejected when the job is
//! read, with the construct named.

use serde::{Deserialize, Serialize};
use sqlparser::ast::{self, BinaryOperator, Expr, UnaryOperator};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;

/// A parsed `Where` expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WhereExpr {
    /// A column of the table, by name.
    Column(String),
    /// A constant.
    Literal(Literal),
    /// `NOT e`.
    Not(Box<WhereExpr>),
    /// `-e`.
    Negate(Box<WhereExpr>),
    /// A binary operation.
    Binary(Box<WhereExpr>, BinOp, Box<WhereExpr>),
    /// `e IS [NOT] NULL`.
    IsNull(Box<WhereExpr>, bool),
    /// `e IS [NOT] TRUE` (`bool` = negated) ...
    IsTrue(Box<WhereExpr>, bool),
    /// ... and `e IS [NOT] FALSE`.
    IsFalse(Box<WhereExpr>, bool),
    /// `e [NOT] IN (list)`.
    InList(Box<WhereExpr>, Vec<WhereExpr>, bool),
    /// `e [NOT] BETWEEN low AND high`.
    Between(Box<WhereExpr>, Box<WhereExpr>, Box<WhereExpr>, bool),
    /// `e [NOT] LIKE pattern [ESCAPE c]`.
    Like(Box<WhereExpr>, Box<WhereExpr>, char, bool),
    /// A function call.
    Call(Func, Vec<WhereExpr>),
}

/// A constant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Literal {
    /// NULL.
    Null,
    /// A number as written (`5`, `-1.25`, `1e3`).
    Number(String),
    /// A string.
    Text(String),
    /// TRUE / FALSE.
    Bool(bool),
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BinOp {
    /// `=`
    Eq,
    /// `<>`, `!=`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
    /// `<=>`
    NullSafeEq,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `AND`
    And,
    /// `OR`
    Or,
    /// `XOR`
    Xor,
}

/// Supported functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Func {
    /// `LOWER`, `LCASE`
    Lower,
    /// `UPPER`, `UCASE`
    Upper,
    /// `LENGTH` (bytes)
    Length,
    /// `CHAR_LENGTH`, `CHARACTER_LENGTH` (characters)
    CharLength,
    /// `ABS`
    Abs,
    /// `CONCAT`
    Concat,
}

/// Parses a `Where` filter.
///
/// # Errors
/// The parser's message, or the unsupported construct.
pub fn parse(text: &str) -> Result<WhereExpr, String> {
    let dialect = MySqlDialect {};
    let mut parser = Parser::new(&dialect)
        .try_with_sql(text)
        .map_err(|e| e.to_string())?;
    let expr = parser.parse_expr().map_err(|e| e.to_string())?;
    let rest = parser.peek_token();
    if rest.token != sqlparser::tokenizer::Token::EOF {
        return Err(format!("unexpected {} after the condition", rest.token));
    }
    convert(&expr)
}

fn boxed(expr: &Expr) -> Result<Box<WhereExpr>, String> {
    convert(expr).map(Box::new)
}

fn convert(expr: &Expr) -> Result<WhereExpr, String> {
    Ok(match expr {
        Expr::Identifier(ident) => WhereExpr::Column(ident.value.clone()),
        Expr::CompoundIdentifier(parts) => match parts.last() {
            Some(ident) => WhereExpr::Column(ident.value.clone()),
            None => return Err("an empty name".into()),
        },
        Expr::Value(value) => WhereExpr::Literal(match &value.value {
            ast::Value::Null => Literal::Null,
            ast::Value::Boolean(b) => Literal::Bool(*b),
            ast::Value::Number(n, _) => Literal::Number(n.to_string()),
            ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => {
                Literal::Text(s.clone())
            }
            other => return Err(format!("the literal {other} is not supported")),
        }),
        Expr::Nested(inner) => convert(inner)?,
        Expr::UnaryOp { op, expr } => match op {
            UnaryOperator::Not => WhereExpr::Not(boxed(expr)?),
            UnaryOperator::Minus => WhereExpr::Negate(boxed(expr)?),
            UnaryOperator::Plus => convert(expr)?,
            other => return Err(format!("the operator {other} is not supported")),
        },
        Expr::BinaryOp { left, op, right } => {
            let op = match op {
                BinaryOperator::Eq => BinOp::Eq,
                BinaryOperator::NotEq => BinOp::NotEq,
                BinaryOperator::Lt => BinOp::Lt,
                BinaryOperator::LtEq => BinOp::LtEq,
                BinaryOperator::Gt => BinOp::Gt,
                BinaryOperator::GtEq => BinOp::GtEq,
                BinaryOperator::Spaceship => BinOp::NullSafeEq,
                BinaryOperator::Plus => BinOp::Add,
                BinaryOperator::Minus => BinOp::Sub,
                BinaryOperator::Multiply => BinOp::Mul,
                BinaryOperator::Divide => BinOp::Div,
                BinaryOperator::Modulo => BinOp::Mod,
                BinaryOperator::And => BinOp::And,
                BinaryOperator::Or => BinOp::Or,
                BinaryOperator::Xor => BinOp::Xor,
                other => return Err(format!("the operator {other} is not supported")),
            };
            WhereExpr::Binary(boxed(left)?, op, boxed(right)?)
        }
        Expr::IsNull(e) => WhereExpr::IsNull(boxed(e)?, false),
        Expr::IsNotNull(e) => WhereExpr::IsNull(boxed(e)?, true),
        Expr::IsTrue(e) => WhereExpr::IsTrue(boxed(e)?, false),
        Expr::IsNotTrue(e) => WhereExpr::IsTrue(boxed(e)?, true),
        Expr::IsFalse(e) => WhereExpr::IsFalse(boxed(e)?, false),
        Expr::IsNotFalse(e) => WhereExpr::IsFalse(boxed(e)?, true),
        Expr::In {
            expr,
            target: ast::InTarget::List(list),
            negated,
            ..
        } => WhereExpr::InList(
            boxed(expr)?,
            list.iter().map(convert).collect::<Result<_, _>>()?,
            *negated,
        ),
        Expr::Between {
            expr,
            negated,
            low,
            high,
        } => WhereExpr::Between(boxed(expr)?, boxed(low)?, boxed(high)?, *negated),
        Expr::Like {
            negated,
            any: false,
            expr,
            pattern,
            escape_char,
        } => {
            let escape = match escape_char.as_deref() {
                None => '\\',
                Some(Expr::Value(v)) => match &v.value {
                    ast::Value::SingleQuotedString(s) if s.chars().count() == 1 => {
                        s.chars().next().unwrap_or('\\')
                    }
                    _ => return Err("ESCAPE takes one character".into()),
                },
                Some(_) => return Err("ESCAPE takes one character".into()),
            };
            WhereExpr::Like(boxed(expr)?, boxed(pattern)?, escape, *negated)
        }
        Expr::Function(function) => {
            let name = function.name.to_string().to_ascii_lowercase();
            let func = match name.as_str() {
                "lower" | "lcase" => Func::Lower,
                "upper" | "ucase" => Func::Upper,
                "length" | "octet_length" => Func::Length,
                "char_length" | "character_length" => Func::CharLength,
                "abs" => Func::Abs,
                "concat" => Func::Concat,
                _ => return Err(format!("the function {name} is not supported")),
            };
            let args = match &function.args {
                ast::FunctionArguments::List(list) => list
                    .args
                    .iter()
                    .map(|arg| match arg {
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => convert(e),
                        other => Err(format!("the argument {other} is not supported")),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                ast::FunctionArguments::None => Vec::new(),
                ast::FunctionArguments::Subquery(_) => {
                    return Err("subqueries are not supported".into())
                }
            };
            let arity_ok = match func {
                Func::Concat => !args.is_empty(),
                _ => args.len() == 1,
            };
            if !arity_ok {
                return Err(format!(
                    "{name} takes {} argument(s)",
                    if func == Func::Concat {
                        "1 or more"
                    } else {
                        "1"
                    }
                ));
            }
            WhereExpr::Call(func, args)
        }
        other => return Err(format!("{other} is not supported in a Where filter")),
    })
}

impl WhereExpr {
    /// The columns the expression refers to.
    pub fn columns(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.visit(&mut |e| {
            if let WhereExpr::Column(name) = e {
                out.push(name.as_str());
            }
        });
        out
    }

    fn visit<'a>(&'a self, f: &mut impl FnMut(&'a WhereExpr)) {
        f(self);
        match self {
            WhereExpr::Column(_) | WhereExpr::Literal(_) => {}
            WhereExpr::Not(e)
            | WhereExpr::Negate(e)
            | WhereExpr::IsNull(e, _)
            | WhereExpr::IsTrue(e, _)
            | WhereExpr::IsFalse(e, _) => e.visit(f),
            WhereExpr::Binary(a, _, b) | WhereExpr::Like(a, b, _, _) => {
                a.visit(f);
                b.visit(f);
            }
            WhereExpr::InList(e, list, _) => {
                e.visit(f);
                list.iter().for_each(|x| x.visit(f));
            }
            WhereExpr::Between(a, b, c, _) => {
                a.visit(f);
                b.visit(f);
                c.visit(f);
            }
            WhereExpr::Call(_, args) => args.iter().for_each(|x| x.visit(f)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtle_examples_parse() {
        assert_eq!(
            parse("a<5").unwrap(),
            WhereExpr::Binary(
                Box::new(WhereExpr::Column("a".into())),
                BinOp::Lt,
                Box::new(WhereExpr::Literal(Literal::Number("5".into())))
            )
        );
        let e = parse("`id` >= 5 AND name LIKE 'a%' OR x IN (1, 2) AND y IS NOT NULL").unwrap();
        assert_eq!(e.columns(), vec!["id", "name", "x", "y"]);
        assert!(parse("lower(name) = 'abc' AND id BETWEEN 1 AND 10").is_ok());
    }

    #[test]
    fn unsupported_constructs_are_named() {
        assert_eq!(
            parse("id IN (SELECT id FROM t)").unwrap_err(),
            "id IN (SELECT id FROM t) is not supported in a Where filter"
        );
        assert_eq!(
            parse("sleep(5) = 0").unwrap_err(),
            "the function sleep is not supported"
        );
        assert!(parse("a < ").is_err());
        assert!(parse("a < 5 b")
            .unwrap_err()
            .contains("after the condition"));
    }
}
