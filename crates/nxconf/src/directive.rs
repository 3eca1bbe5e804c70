//! A directive as written, and the readings of its value every module and
//! the globals share: boolean, integer (K/M/G), constant string, string
//! expression.

use crate::diag::{Diagnostic, Location};
use crate::eval::{CollectingContext, Program, StringExpr};
use crate::lang::ast::{Expr, ExprKind};
use crate::lang::parser::{parse_expression, ExecSource};
use crate::lang::scope::ExecScope;
use crate::record::Record;
use crate::value::{Type, Value};

/// A directive as written: name and raw value (defines substituted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive {
    pub name: String,
    pub value: String,
    pub location: Location,
    /// The configuration line, for messages.
    pub line_text: String,
}

impl Directive {
    /// An error about this directive, quoting its line.
    pub(crate) fn err(&self, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::new(&self.location, &self.line_text, msg)
    }
    /// TRUE/FALSE/YES/NO/1/0, any case.
    pub fn as_bool(&self) -> Result<bool, Diagnostic> {
        parse_bool(&self.value).ok_or_else(|| {
            self.err(format!(
                "invalid value '{}' for {}: expected a boolean (TRUE, FALSE, YES, NO, 1 or 0)",
                self.value, self.name
            ))
        })
    }
    /// An integer, with optional K/M/G (1024-based) suffix.
    pub fn as_integer(&self) -> Result<i64, Diagnostic> {
        parse_int(&self.value).ok_or_else(|| {
            self.err(format!(
                "invalid value '{}' for {}: expected an integer (K, M, G suffixes allowed)",
                self.value, self.name
            ))
        })
    }
}

/// TRUE/FALSE/YES/NO/1/0 in any case.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_uppercase().as_str() {
        "TRUE" | "YES" | "1" => Some(true),
        "FALSE" | "NO" | "0" => Some(false),
        _ => None,
    }
}

/// Decimal integer with an optional K, M or G suffix (1024-based).
pub fn parse_int(s: &str) -> Option<i64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 1024),
        'm' | 'M' => (&s[..s.len() - 1], 1024 * 1024),
        'g' | 'G' => (&s[..s.len() - 1], 1024 * 1024 * 1024),
        _ => (s, 1),
    };
    num.trim().parse::<i64>().ok()?.checked_mul(mult)
}

fn value_source(d: &Directive) -> ExecSource {
    let mut s = ExecSource::default();
    let col = d.line_text.find(&d.value).map_or(1, |i| i + 1);
    s.push(&d.value, d.location.clone(), &d.line_text, col);
    s
}

/// Directive values that begin like an expression (a quote, `$`, or a
/// function call) are compiled as one; anything else is a literal string,
/// as older NXLog configurations write paths unquoted.
fn looks_like_expression(v: &str) -> bool {
    let v = v.trim_start();
    if v.starts_with(['\'', '"', '$', '(']) {
        return true;
    }
    let ident_len = v
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(v.len());
    ident_len > 0 && v[ident_len..].trim_start().starts_with('(')
}

/// A directive value that must be a constant string. `constants` is the
/// scope such values compile in (`modules::constant_scope()`): passed in
/// because only the module table can build a scope.
pub(crate) fn constant_string(d: &Directive, constants: &ExecScope) -> Result<String, Diagnostic> {
    if d.value.is_empty() {
        return Err(d.err(format!("{} needs a value", d.name)));
    }
    if !looks_like_expression(&d.value) {
        return Ok(d.value.clone());
    }
    let e = parse_expression(&value_source(d), constants)?;
    if !e.is_constant() {
        return Err(d.err(format!(
            "{} must be a constant string expression (it cannot use event fields)",
            d.name
        )));
    }
    let prog = Program::from_parts(Vec::new(), constants);
    let s = StringExpr {
        expr: e,
        text: d.value.clone(),
        constant: None,
        program: prog,
    };
    let mut ctx = CollectingContext::default();
    s.eval(&Record::new(), &mut ctx)
        .map_err(|m| d.err(format!("invalid value for {}: {m}", d.name)))
}

/// A directive value that is a string expression, which may read event
/// fields (om_file's File); computed once when it reads none.
pub(crate) fn string_expr(d: &Directive, scope: &ExecScope) -> Result<StringExpr, Diagnostic> {
    if d.value.is_empty() {
        return Err(d.err(format!("{} needs a value", d.name)));
    }
    let prog = Program::from_parts(Vec::new(), scope);
    if !looks_like_expression(&d.value) {
        return Ok(StringExpr {
            expr: Expr::new(ExprKind::Lit(Value::String(d.value.clone())), Type::String),
            text: d.value.clone(),
            constant: Some(d.value.clone()),
            program: prog,
        });
    }
    let e = parse_expression(&value_source(d), scope)?;
    if !matches!(e.ty, Type::String | Type::Unknown) {
        return Err(d.err(format!(
            "{} must be a string expression, found {}",
            d.name,
            e.ty.name()
        )));
    }
    let mut s = StringExpr {
        expr: e,
        text: d.value.clone(),
        constant: None,
        program: prog,
    };
    if s.expr.is_constant() {
        let mut ctx = CollectingContext::default();
        let v = s
            .eval(&Record::new(), &mut ctx)
            .map_err(|m| d.err(format!("invalid value for {}: {m}", d.name)))?;
        s.constant = Some(v);
    }
    Ok(s)
}
