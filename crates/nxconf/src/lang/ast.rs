//! The compiled form of Exec code. Every statement keeps its configuration
//! location so run-time errors can name the line.

use crate::diag::Location;
use crate::value::{Type, Value};
use regex::Regex;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct Expr {
    pub kind: ExprKind,
    /// Statically known result type (`Unknown` for fields).
    pub ty: Type,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    Not,
    Neg,
    Defined,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Or,
    Xor,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "or",
            BinOp::Xor => "xor",
            BinOp::And => "and",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
        }
    }
}

/// Built-in functions (return a value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    Hostname,
    HostnameFqdn,
    Now,
    Lc,
    Uc,
    Substr,
    Size,
    String,
    Integer,
    Strftime,
    Type,
    Parsedate,
    Replace,
    Datetime,
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Dayofweek,
    ToJson,
}

/// Procedures (statements with effects).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Proc {
    ToJson,
    ParseJson,
    Delete,
    RenameField,
    Drop,
    Log(crate::LogLevel),
    /// A procedure the host implements (e.g. im_regmon's start_scan()),
    /// with the module instance it belongs to.
    Host {
        instance: String,
        module: String,
        name: String,
    },
}

#[derive(Clone, Debug)]
pub struct RegexLit {
    pub regex: Regex,
    /// Source text as written between the slashes, for messages.
    pub source: String,
}

#[derive(Clone, Debug)]
pub enum ExprKind {
    Lit(Value),
    Field(String),
    Capture(usize),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Match {
        negate: bool,
        lhs: Box<Expr>,
        re: Arc<RegexLit>,
    },
    Subst {
        field: String,
        re: Arc<RegexLit>,
        replacement: String,
        global: bool,
    },
    In {
        negate: bool,
        lhs: Box<Expr>,
        list: Vec<Expr>,
    },
    Call(Func, Vec<Expr>),
}

#[derive(Clone, Debug)]
pub enum Stmt {
    Assign {
        field: String,
        value: Expr,
        loc: Location,
    },
    Call {
        proc: Proc,
        args: Vec<Expr>,
        loc: Location,
    },
    If {
        cond: Expr,
        then: Box<Stmt>,
        otherwise: Option<Box<Stmt>>,
        loc: Location,
    },
    Block(Vec<Stmt>),
    Empty,
}

impl Expr {
    /// True when the expression reads no event data and calls nothing
    /// environment-dependent, so it can be evaluated at load time.
    pub fn is_constant(&self) -> bool {
        match &self.kind {
            ExprKind::Lit(_) => true,
            ExprKind::Field(_) | ExprKind::Capture(_) | ExprKind::Subst { .. } => false,
            ExprKind::Unary(_, e) => e.is_constant(),
            ExprKind::Binary(_, a, b) => a.is_constant() && b.is_constant(),
            ExprKind::Match { lhs, .. } => lhs.is_constant(),
            ExprKind::In { lhs, list, .. } => {
                lhs.is_constant() && list.iter().all(Expr::is_constant)
            }
            ExprKind::Call(f, args) => {
                !matches!(
                    f,
                    Func::Hostname | Func::HostnameFqdn | Func::Now | Func::ToJson
                ) && args.iter().all(Expr::is_constant)
            }
        }
    }

    /// Whether evaluating this may set fields (regex named captures, s///).
    pub fn may_write(&self) -> bool {
        match &self.kind {
            ExprKind::Lit(_) | ExprKind::Field(_) | ExprKind::Capture(_) => false,
            ExprKind::Subst { .. } | ExprKind::Match { .. } => true,
            ExprKind::Unary(_, e) => e.may_write(),
            ExprKind::Binary(_, a, b) => a.may_write() || b.may_write(),
            ExprKind::In { lhs, list, .. } => lhs.may_write() || list.iter().any(Expr::may_write),
            ExprKind::Call(_, args) => args.iter().any(Expr::may_write),
        }
    }
}
