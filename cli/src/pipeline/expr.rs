//! Filter expressions of pipeline transforms: comparisons of fields with literals (or other
//! fields), `is [not] null`, `and`, `or`, `not` and parentheses, with SQL's three-valued logic.
//!
//! ```text
//! amount >= 10 and (status = 'paid' or status = 'shipped') and note is not null
//! ```
//!
//! Expressions are type-checked against the schema when the pipeline is validated; a row is kept
//! when the expression is true (not false, not unknown).
//!
//! Chains of `and` and of `or` are kept flat (one node with all the terms), so a generated
//! filter of 50,000 `or` terms is parsed, evaluated and dropped without deep recursion. What
//! does nest, parentheses and `not`, is limited to [`MAX_NESTING`] levels: deeper input is
//! refused with an error instead of overflowing the stack.

use std::cmp::Ordering;
use std::fmt;

use weir_connector_api::row::{DataType, Row, Schema, Value};

use super::diag::hint;

mod columnar;

/// How many levels of parentheses and `not` an expression may nest. The parser, the evaluator,
/// `Clone` and `Drop` recurse once per level (and once per level of alternating `and`/`or`
/// under it), so this bounds their stack use; human-written filters nest a handful of levels.
pub const MAX_NESTING: usize = 100;

/// A problem in an expression, at a character offset of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError {
    /// 0-based character offset in the expression.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Int(i64),
    Float(f64),
    Str(String),
    True,
    False,
    Null,
    And,
    Or,
    Not,
    Is,
    Op(CmpOp),
    LParen,
    RParen,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=` or `==`
    Eq,
    /// `!=` or `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    fn holds(self, ordering: Ordering) -> bool {
        match self {
            CmpOp::Eq => ordering == Ordering::Equal,
            CmpOp::Ne => ordering != Ordering::Equal,
            CmpOp::Lt => ordering == Ordering::Less,
            CmpOp::Le => ordering != Ordering::Greater,
            CmpOp::Gt => ordering == Ordering::Greater,
            CmpOp::Ge => ordering != Ordering::Less,
        }
    }
}

/// An operand of a comparison.
#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Field(usize),
    Literal(Value),
}

/// A checked expression, ready to evaluate on rows of its schema.
///
/// Its depth is bounded: [`Expr::parse`] refuses more than [`MAX_NESTING`] levels of
/// parentheses and `not`, and chains of `and` / `or` are one node with all their terms.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Every term true (at least two terms).
    And(Vec<Expr>),
    /// Any term true (at least two terms).
    Or(Vec<Expr>),
    /// The opposite.
    Not(Box<Expr>),
    /// A comparison.
    Cmp(CmpOp, OperandRef, OperandRef),
    /// `field is null` (or `is not null` when negated).
    IsNull(usize, bool),
    /// A boolean field or literal.
    Bool(OperandRef),
}

/// An operand (opaque).
#[derive(Debug, Clone, PartialEq)]
pub struct OperandRef(Operand);

struct Parser<'a> {
    tokens: Vec<(Token, usize)>,
    pos: usize,
    schema: &'a Schema,
    end: usize,
    /// Levels of parentheses and `not` around the current position.
    depth: usize,
}

fn tokenize(text: &str) -> Result<Vec<(Token, usize)>, ExprError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let err = |offset: usize, message: String| ExprError { offset, message };
    while let Some(&c) = chars.get(i) {
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let next = chars.get(i + 1).copied();
        let token = match c {
            '(' => {
                i += 1;
                Token::LParen
            }
            ')' => {
                i += 1;
                Token::RParen
            }
            '=' => {
                i += if next == Some('=') { 2 } else { 1 };
                Token::Op(CmpOp::Eq)
            }
            '!' if next == Some('=') => {
                i += 2;
                Token::Op(CmpOp::Ne)
            }
            '<' => match next {
                Some('=') => {
                    i += 2;
                    Token::Op(CmpOp::Le)
                }
                Some('>') => {
                    i += 2;
                    Token::Op(CmpOp::Ne)
                }
                _ => {
                    i += 1;
                    Token::Op(CmpOp::Lt)
                }
            },
            '>' => {
                if next == Some('=') {
                    i += 2;
                    Token::Op(CmpOp::Ge)
                } else {
                    i += 1;
                    Token::Op(CmpOp::Gt)
                }
            }
            '\'' | '"' => {
                let quote = c;
                i += 1;
                let mut s = String::new();
                loop {
                    match chars.get(i) {
                        None => return Err(err(start, "unterminated string".into())),
                        Some(&q) if q == quote => {
                            if chars.get(i + 1) == Some(&quote) {
                                s.push(quote);
                                i += 2;
                            } else {
                                i += 1;
                                break;
                            }
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                Token::Str(s)
            }
            '`' => {
                i += 1;
                let mut s = String::new();
                loop {
                    match chars.get(i) {
                        None => return Err(err(start, "unterminated `quoted` field name".into())),
                        Some('`') => {
                            i += 1;
                            break;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                Token::Ident(s)
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '.') && next.is_some_and(|n| n.is_ascii_digit())) =>
            {
                i += 1;
                while chars
                    .get(i)
                    .is_some_and(|d| d.is_ascii_alphanumeric() || *d == '.' || *d == '_')
                    || (chars.get(i).is_some_and(|d| *d == '-' || *d == '+')
                        && chars.get(i - 1).is_some_and(|e| *e == 'e' || *e == 'E'))
                {
                    i += 1;
                }
                let text: String = chars[start..i].iter().filter(|c| **c != '_').collect();
                if let Ok(n) = text.parse::<i64>() {
                    Token::Int(n)
                } else if let Ok(x) = text.parse::<f64>() {
                    Token::Float(x)
                } else {
                    return Err(err(start, format!("`{text}` is not a number")));
                }
            }
            c if c.is_alphabetic() || c == '_' => {
                i += 1;
                while chars
                    .get(i)
                    .is_some_and(|d| d.is_alphanumeric() || *d == '_' || *d == '-')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                match word.to_ascii_lowercase().as_str() {
                    "and" => Token::And,
                    "or" => Token::Or,
                    "not" => Token::Not,
                    "is" => Token::Is,
                    "true" => Token::True,
                    "false" => Token::False,
                    "null" => Token::Null,
                    _ => Token::Ident(word),
                }
            }
            other => return Err(err(start, format!("unexpected character `{other}`"))),
        };
        tokens.push((token, start));
    }
    Ok(tokens)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Bool,
    Number,
    Text,
    Bytes,
    Null,
    /// A list, struct or map: not comparable.
    Nested,
}

fn ty_of(data_type: &DataType) -> Ty {
    match data_type {
        DataType::Boolean => Ty::Bool,
        DataType::String => Ty::Text,
        DataType::Bytes => Ty::Bytes,
        t if t.is_nested() => Ty::Nested,
        // Integers, floats, decimals, dates (days) and timestamps (their units).
        _ => Ty::Number,
    }
}

fn ty_name(ty: Ty) -> &'static str {
    match ty {
        Ty::Bool => "a boolean",
        Ty::Number => "a number",
        Ty::Text => "a string",
        Ty::Bytes => "bytes",
        Ty::Null => "null",
        Ty::Nested => "a list, struct or map",
    }
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(t, _)| t)
    }

    fn offset(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.end, |(_, o)| *o)
    }

    #[allow(clippy::unused_self)] // reads like the other parser steps
    fn error<T>(&self, offset: usize, message: impl Into<String>) -> Result<T, ExprError> {
        Err(ExprError {
            offset,
            message: message.into(),
        })
    }

    fn or(&mut self) -> Result<Expr, ExprError> {
        let mut terms = vec![self.and()?];
        while self.peek() == Some(&Token::Or) {
            self.pos += 1;
            terms.push(self.and()?);
        }
        Ok(junction(Junction::Or, terms))
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut terms = vec![self.not()?];
        while self.peek() == Some(&Token::And) {
            self.pos += 1;
            terms.push(self.not()?);
        }
        Ok(junction(Junction::And, terms))
    }

    /// Enters one more level of parentheses or `not` at the current token.
    fn nest(&mut self) -> Result<(), ExprError> {
        if self.depth >= MAX_NESTING {
            return self.error(
                self.offset(),
                format!(
                    "the expression nests more than {MAX_NESTING} levels of parentheses and \
                     `not`: flatten it (`not not x` is `x`, `a or (b or c)` is `a or b or c`)"
                ),
            );
        }
        self.depth += 1;
        Ok(())
    }

    fn not(&mut self) -> Result<Expr, ExprError> {
        // A run of `not`s is counted in a loop, not by recursion.
        let outer = self.depth;
        let mut nots = 0;
        while self.peek() == Some(&Token::Not) {
            self.nest()?;
            self.pos += 1;
            nots += 1;
        }
        let mut expr = self.comparison()?;
        for _ in 0..nots {
            expr = Expr::Not(Box::new(expr));
        }
        self.depth = outer;
        Ok(expr)
    }

    fn operand(&mut self) -> Result<(Operand, Ty, usize), ExprError> {
        let offset = self.offset();
        let Some((token, _)) = self.tokens.get(self.pos).cloned() else {
            return self.error(
                offset,
                "the expression ends too early: expected a field or a value",
            );
        };
        self.pos += 1;
        Ok(match token {
            Token::Ident(name) => match self.schema.index_of(&name) {
                Some(i) => {
                    let ty = self
                        .schema
                        .fields
                        .get(i)
                        .map_or(Ty::Null, |f| ty_of(&f.data_type));
                    (Operand::Field(i), ty, offset)
                }
                None => {
                    return self.error(
                        offset,
                        format!(
                            "unknown field `{name}`{}",
                            hint(&name, self.schema.fields.iter().map(|f| f.name.as_str()))
                        ),
                    )
                }
            },
            Token::Int(n) => (Operand::Literal(Value::Int64(n)), Ty::Number, offset),
            Token::Float(x) => (Operand::Literal(Value::Float64(x)), Ty::Number, offset),
            Token::Str(s) => (Operand::Literal(Value::String(s)), Ty::Text, offset),
            Token::True => (Operand::Literal(Value::Boolean(true)), Ty::Bool, offset),
            Token::False => (Operand::Literal(Value::Boolean(false)), Ty::Bool, offset),
            Token::Null => (Operand::Literal(Value::Null), Ty::Null, offset),
            other => {
                return self.error(
                    offset,
                    format!("expected a field or a value, found {}", describe(&other)),
                )
            }
        })
    }

    fn comparison(&mut self) -> Result<Expr, ExprError> {
        if self.peek() == Some(&Token::LParen) {
            let open = self.offset();
            self.nest()?;
            self.pos += 1;
            let inner = self.or()?;
            if self.peek() != Some(&Token::RParen) {
                return self.error(open, "unclosed parenthesis");
            }
            self.pos += 1;
            self.depth -= 1;
            return Ok(inner);
        }
        let (left, left_ty, left_at) = self.operand()?;
        match self.peek().cloned() {
            Some(Token::Op(op)) => {
                self.pos += 1;
                let (right, right_ty, right_at) = self.operand()?;
                if left_ty == Ty::Null || right_ty == Ty::Null {
                    let at = if left_ty == Ty::Null {
                        left_at
                    } else {
                        right_at
                    };
                    return self.error(
                        at,
                        "a comparison with null is never true: use `is null` or `is not null`",
                    );
                }
                if left_ty == Ty::Nested || right_ty == Ty::Nested {
                    let at = if left_ty == Ty::Nested {
                        left_at
                    } else {
                        right_at
                    };
                    return self.error(
                        at,
                        "lists, structs and maps cannot be compared: compare a scalar field, or \
                         test the field with `is null` / `is not null`",
                    );
                }
                if left_ty != right_ty {
                    return self.error(
                        right_at,
                        format!(
                            "cannot compare {} with {}",
                            ty_name(left_ty),
                            ty_name(right_ty)
                        ),
                    );
                }
                if left_ty == Ty::Bool && !matches!(op, CmpOp::Eq | CmpOp::Ne) {
                    return self.error(right_at, "booleans can only be compared with = and !=");
                }
                Ok(Expr::Cmp(op, OperandRef(left), OperandRef(right)))
            }
            Some(Token::Is) => {
                self.pos += 1;
                let negated = if self.peek() == Some(&Token::Not) {
                    self.pos += 1;
                    true
                } else {
                    false
                };
                if self.peek() != Some(&Token::Null) {
                    return self.error(self.offset(), "expected `null` after `is`");
                }
                self.pos += 1;
                match left {
                    Operand::Field(i) => Ok(Expr::IsNull(i, negated)),
                    Operand::Literal(_) => self.error(left_at, "`is null` applies to a field"),
                }
            }
            _ if left_ty == Ty::Bool => Ok(Expr::Bool(OperandRef(left))),
            _ => {
                let shown = self
                    .tokens
                    .iter()
                    .find(|(_, o)| *o == left_at)
                    .map_or_else(|| "it".to_owned(), |(t, _)| describe(t));
                self.error(
                    left_at,
                    format!(
                        "{shown} is not a condition: compare it with a value, e.g. `{} > 0`",
                        shown.trim_matches('`')
                    ),
                )
            }
        }
    }
}

/// Which chain a list of terms forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Junction {
    And,
    Or,
}

/// One term as itself, several as one `and` / `or` node. Terms that are chains of the same
/// kind (from parentheses) are merged in: `a or (b or c)` is one node of three terms.
fn junction(kind: Junction, terms: Vec<Expr>) -> Expr {
    let mut out = Vec::with_capacity(terms.len());
    for term in terms {
        match (kind, term) {
            (Junction::And, Expr::And(inner)) | (Junction::Or, Expr::Or(inner)) => {
                out.extend(inner);
            }
            (_, term) => out.push(term),
        }
    }
    match <[Expr; 1]>::try_from(out) {
        Ok([only]) => only,
        Err(terms) => match kind {
            Junction::And => Expr::And(terms),
            Junction::Or => Expr::Or(terms),
        },
    }
}

fn describe(token: &Token) -> String {
    match token {
        Token::Ident(s) => format!("`{s}`"),
        Token::Int(n) => format!("`{n}`"),
        Token::Float(x) => format!("`{x}`"),
        Token::Str(s) => format!("'{s}'"),
        Token::True => "`true`".into(),
        Token::False => "`false`".into(),
        Token::Null => "`null`".into(),
        Token::And => "`and`".into(),
        Token::Or => "`or`".into(),
        Token::Not => "`not`".into(),
        Token::Is => "`is`".into(),
        Token::Op(_) => "an operator".into(),
        Token::LParen => "`(`".into(),
        Token::RParen => "`)`".into(),
    }
}

impl Expr {
    /// Parses and type-checks `text` against `schema`.
    pub fn parse(text: &str, schema: &Schema) -> Result<Expr, ExprError> {
        let tokens = tokenize(text)?;
        if tokens.is_empty() {
            return Err(ExprError {
                offset: 0,
                message: "the expression is empty".into(),
            });
        }
        let mut parser = Parser {
            tokens,
            pos: 0,
            schema,
            end: text.chars().count(),
            depth: 0,
        };
        let expr = parser.or()?;
        if let Some((token, offset)) = parser.tokens.get(parser.pos) {
            return Err(ExprError {
                offset: *offset,
                message: format!(
                    "unexpected {} after a complete condition: join conditions with `and` or `or`",
                    describe(token)
                ),
            });
        }
        Ok(expr)
    }

    /// Whether the row satisfies the expression (unknown counts as not).
    pub fn matches(&self, row: &Row) -> bool {
        self.eval(row) == Some(true)
    }

    fn eval(&self, row: &Row) -> Option<bool> {
        match self {
            // Three-valued: false (true) decides, otherwise unknown wins over true (false).
            Expr::And(terms) => {
                let mut result = Some(true);
                for term in terms {
                    match term.eval(row) {
                        Some(false) => return Some(false),
                        None => result = None,
                        Some(true) => {}
                    }
                }
                result
            }
            Expr::Or(terms) => {
                let mut result = Some(false);
                for term in terms {
                    match term.eval(row) {
                        Some(true) => return Some(true),
                        None => result = None,
                        Some(false) => {}
                    }
                }
                result
            }
            Expr::Not(a) => a.eval(row).map(|b| !b),
            Expr::IsNull(i, negated) => {
                let null = matches!(row.get(*i), None | Some(Value::Null));
                Some(null != *negated)
            }
            Expr::Bool(op) => match value(&op.0, row) {
                Some(Value::Boolean(b)) => Some(*b),
                _ => None,
            },
            Expr::Cmp(op, a, b) => {
                let ordering = compare(value(&a.0, row)?, value(&b.0, row)?)?;
                Some(op.holds(ordering))
            }
        }
    }
}

fn value<'a>(operand: &'a Operand, row: &'a Row) -> Option<&'a Value> {
    let v = match operand {
        Operand::Field(i) => row.get(*i)?,
        Operand::Literal(v) => v,
    };
    if matches!(v, Value::Null) {
        None
    } else {
        Some(v)
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Int64(n) | Value::TimestampMillis(n) | Value::Timestamp(n, _) => Some(*n as f64),
        Value::Float64(x) => Some(*x),
        Value::Float32(x) => Some(f64::from(*x)),
        Value::UInt64(n) => Some(*n as f64),
        Value::Date32(d) => Some(f64::from(*d)),
        Value::Decimal128 { value, scale } => Some(*value as f64 / 10_f64.powi(i32::from(*scale))),
        _ => None,
    }
}

/// An exact number: an integer (of any width, a date's days, a timestamp's units) or a
/// decimal `(unscaled, scale)`; `None` for floats and non-numbers.
fn exact(v: &Value) -> Option<(i128, i8)> {
    Some(match v {
        Value::Int64(n) | Value::TimestampMillis(n) | Value::Timestamp(n, _) => ((*n).into(), 0),
        Value::UInt64(n) => ((*n).into(), 0),
        Value::Date32(d) => ((*d).into(), 0),
        Value::Decimal128 { value, scale } => (*value, *scale),
        _ => return None,
    })
}

/// Compares two exact numbers at the larger scale (`None` when rescaling overflows).
fn compare_exact((x, xs): (i128, i8), (y, ys): (i128, i8)) -> Option<Ordering> {
    let up = |v: i128, by: i16| -> Option<i128> {
        v.checked_mul(10_i128.checked_pow(u32::try_from(by).ok()?)?)
    };
    let scale = xs.max(ys);
    let x = up(x, i16::from(scale) - i16::from(xs))?;
    let y = up(y, i16::from(scale) - i16::from(ys))?;
    Some(x.cmp(&y))
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (exact(a), exact(b)) {
        if let Some(ordering) = compare_exact(x, y) {
            return Some(ordering);
        }
    }
    match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Boolean(x), Value::Boolean(y)) => Some(x.cmp(y)),
        (Value::Bytes(x), Value::Bytes(y)) => Some(x.cmp(y)),
        _ => number(a)?.partial_cmp(&number(b)?),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use weir_connector_api::row::Field;

    use super::*;

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("status", DataType::String, true),
            Field::new("amount", DataType::Float64, true),
            Field::new("vip", DataType::Boolean, true),
        ])
    }

    fn row(id: i64, status: Option<&str>, amount: Option<f64>, vip: bool) -> Row {
        Row::insert(vec![
            Value::Int64(id),
            status.map_or(Value::Null, |s| Value::String(s.into())),
            amount.map_or(Value::Null, Value::Float64),
            Value::Boolean(vip),
        ])
    }

    fn keeps(text: &str, r: &Row) -> bool {
        Expr::parse(text, &schema()).unwrap().matches(r)
    }

    #[test]
    fn evaluates_with_three_valued_logic() {
        let paid = row(1, Some("paid"), Some(12.5), false);
        let unknown = row(2, None, None, true);
        assert!(keeps("amount >= 10 and status = 'paid'", &paid));
        assert!(!keeps("amount >= 10 and status = 'paid'", &unknown));
        assert!(
            !keeps("not (amount >= 10)", &unknown),
            "unknown stays unknown"
        );
        assert!(keeps("vip or amount > 100", &unknown));
        assert!(keeps("status is null and amount is null", &unknown));
        assert!(keeps("status is not null", &paid));
        assert!(keeps("id <> 2 and id != 3 and id == 1", &paid));
        assert!(
            keeps("amount > 12", &paid),
            "float against an integer literal"
        );
        assert!(keeps("(id = 1 or id = 2) and not vip", &paid));
        assert!(keeps("`status` = \"paid\"", &paid));
    }

    #[test]
    fn reports_mistakes_with_their_offset() {
        let err = |text: &str| Expr::parse(text, &schema()).unwrap_err();
        assert_eq!(
            err("amount > 10 and stauts = 'x'"),
            ExprError {
                offset: 16,
                message: "unknown field `stauts`: did you mean `status`?".into()
            }
        );
        assert_eq!(
            err("status > 3").message,
            "cannot compare a string with a number"
        );
        assert_eq!(
            err("status = null").message,
            "a comparison with null is never true: use `is null` or `is not null`"
        );
        assert_eq!(err("(id = 1").message, "unclosed parenthesis");
        assert_eq!(err("id = 1 id = 2").offset, 7);
        assert_eq!(err("status = 'x").message, "unterminated string");
        assert_eq!(err("").message, "the expression is empty");
        assert_eq!(
            err("id = 1 and").message,
            "the expression ends too early: expected a field or a value"
        );
        assert_eq!(
            err("vip > true").message,
            "booleans can only be compared with = and !="
        );
        assert_eq!(err("id $ 3").message, "unexpected character `$`");
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_refused_not_a_stack_overflow() {
        let message = format!(
            "the expression nests more than {MAX_NESTING} levels of parentheses and `not`: \
             flatten it (`not not x` is `x`, `a or (b or c)` is `a or b or c`)"
        );
        let parens = |n: usize| format!("{}id = 1{}", "(".repeat(n), ")".repeat(n));
        let nots = |n: usize| format!("{}vip", "not ".repeat(n));
        for deep in [parens(10_000), nots(100_000), parens(MAX_NESTING + 1)] {
            let err = Expr::parse(&deep, &schema()).unwrap_err();
            assert_eq!(err.message, message);
        }
        // The error points at the first token past the limit.
        assert_eq!(
            Expr::parse(&parens(MAX_NESTING + 1), &schema())
                .unwrap_err()
                .offset,
            MAX_NESTING
        );
        // Mixed: `not (` counts two levels.
        let mixed = "not (".repeat(MAX_NESTING / 2) + "vip" + &")".repeat(MAX_NESTING / 2);
        let r = row(1, None, None, false);
        let vip = row(1, None, None, true);
        assert!(Expr::parse(&mixed, &schema()).unwrap().matches(&vip));
        let too_deep = format!("not ({mixed})");
        assert_eq!(
            Expr::parse(&too_deep, &schema()).unwrap_err().message,
            message
        );
        // Exactly at the limit it parses and evaluates.
        assert!(keeps(&parens(MAX_NESTING), &r));
        let not_vip = Expr::parse(&nots(MAX_NESTING), &schema()).unwrap();
        assert!(
            not_vip.matches(&vip) && !not_vip.matches(&r),
            "an even number of `not`s"
        );
        // Levels are counted along a path, not in total: many shallow groups are fine.
        let groups = vec!["(not vip)"; 3 * MAX_NESTING].join(" and ");
        assert!(keeps(&groups, &r));
    }

    #[test]
    fn long_chains_are_one_flat_node() {
        let terms: Vec<String> = (0..50_000).map(|i| format!("id = {i}")).collect();
        let chain = terms.join(" or ");
        let expr = Expr::parse(&chain, &schema()).unwrap();
        let Expr::Or(parsed) = &expr else {
            panic!("an `or` chain is one node: {expr:?}");
        };
        assert_eq!(parsed.len(), 50_000);
        assert!(expr.matches(&row(49_999, None, None, false)));
        assert!(expr.matches(&row(0, None, None, false)));
        assert!(!expr.matches(&row(50_000, None, None, false)));
        // The same for `and`, and a copy and its drop do not recurse per term either.
        let all = vec!["id >= 0"; 50_000].join(" and ");
        let expr = Expr::parse(&all, &schema()).unwrap();
        let copy = expr.clone();
        assert!(copy.matches(&row(3, None, None, false)));
        assert!(!copy.matches(&row(-3, None, None, false)));
        drop((expr, copy));
        // Parenthesized chains of the same kind merge; other kinds nest.
        assert_eq!(
            Expr::parse("id = 1 or (id = 2 or (id = 3))", &schema()).unwrap(),
            Expr::parse("id = 1 or id = 2 or id = 3", &schema()).unwrap()
        );
        let mixed = Expr::parse("id = 1 or id = 2 and vip", &schema()).unwrap();
        assert!(matches!(&mixed, Expr::Or(t) if t.len() == 2 && matches!(t[1], Expr::And(_))));
    }

    #[test]
    fn chains_keep_three_valued_logic() {
        let unknown = row(2, None, None, true);
        // One unknown term: `or` is true if another term is, else unknown (not kept).
        assert!(keeps("amount > 1 or id = 5 or vip", &unknown));
        assert!(!keeps("amount > 1 or id = 5 or id = 6", &unknown));
        assert!(
            keeps("not (amount > 1 and id = 5 and vip)", &unknown),
            "false decides"
        );
        assert!(
            !keeps("not (amount > 1 and id = 2 and vip)", &unknown),
            "unknown stays"
        );
        assert!(
            !keeps("not (amount > 1 or id = 5 or id = 6)", &unknown),
            "unknown stays"
        );
    }
}
