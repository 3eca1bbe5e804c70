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
    /// Height of this expression tree (a literal is 1). The parser refuses
    /// trees taller than its limit, so evaluating one cannot overflow the
    /// stack; it is computed from the children, so never walks the tree.
    pub(crate) height: u32,
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
    Dayofyear,
    Microsecond,
    Strptime,
    /// get_var(name): a module variable.
    GetVar,
    ToJson,
    // xm_fileop's functions (they read the file system, so never constant).
    FileExists,
    DirExists,
    FileSize,
    FileBasename,
    FileDirname,
    FileMtime,
    FileCtime,
    FileType,
    FileRead,
    FileInode,
    DirTempGet,
}

impl Func {
    /// Reads the environment (clock, host, files, the event): never folded
    /// at load time.
    pub fn is_environmental(self) -> bool {
        matches!(
            self,
            Func::Hostname
                | Func::HostnameFqdn
                | Func::Now
                | Func::ToJson
                | Func::GetVar
                | Func::FileExists
                | Func::DirExists
                | Func::FileSize
                | Func::FileMtime
                | Func::FileCtime
                | Func::FileType
                | Func::FileRead
                | Func::FileInode
                | Func::DirTempGet
        )
    }
}

/// An xm_rewrite instance as `instance->process()` applies it: its field
/// operations, then its own Exec.
#[derive(Clone, Debug)]
pub struct Rewrite {
    pub instance: String,
    pub fields: crate::extension::RewriteFields,
    pub exec: Vec<Stmt>,
}

/// Two calls of `process()` are equal when they name the same instance.
impl PartialEq for Rewrite {
    fn eq(&self, other: &Self) -> bool {
        self.instance == other.instance
    }
}
impl Eq for Rewrite {}

/// Procedures (statements with effects).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Proc {
    ToJson,
    ParseJson,
    Delete,
    RenameField,
    Drop,
    Log(crate::LogLevel),
    /// xm_syslog's to_syslog_bsd()/_ietf()/_snare(), with the settings of
    /// the xm_syslog instance it belongs to.
    Syslog {
        format: crate::syslog::SyslogFormat,
        options: crate::syslog::SyslogOptions,
    },
    /// xm_kvp's to_kvp() or xm_csv's to_csv(): `$raw_event` becomes the
    /// record formatted with that instance's settings.
    Format(Arc<crate::extension::Formatter>),
    /// xm_rewrite's `instance->process()`.
    Rewrite(Arc<Rewrite>),
    /// Module variables: create_var(name[, lifetime]), set_var(name,
    /// value), delete_var(name).
    CreateVar,
    SetVar,
    DeleteVar,
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
    /// A left-associative run of binary operators of one precedence level,
    /// `a + b - c + ...`: the same value as nested `Binary`s, but flat, so
    /// a 30,000-term chain is evaluated in a loop (and dropped) without
    /// recursion.
    Chain {
        first: Box<Expr>,
        rest: Vec<(BinOp, Expr)>,
    },
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
    /// to_kvp() / to_csv() as a function: the record formatted.
    Format(Arc<crate::extension::Formatter>),
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
    /// `if c1 s1 else if c2 s2 ... else s`: the `else if` arms are kept
    /// flat, so a long chain neither nests in the parser nor recurses when
    /// run or dropped.
    If {
        arms: Vec<IfArm>,
        otherwise: Option<Box<Stmt>>,
        loc: Location,
    },
    Block(Vec<Stmt>),
    Empty,
}

/// One `if COND STMT` arm of an if/else-if chain.
#[derive(Clone, Debug)]
pub struct IfArm {
    pub cond: Expr,
    pub then: Stmt,
    /// Where this arm's `if` is (an `else if` may be lines below the first).
    pub loc: Location,
}

impl Expr {
    /// An expression node; its height comes from its direct children.
    pub fn new(kind: ExprKind, ty: Type) -> Expr {
        let h = |e: &Expr| e.height;
        let below = match &kind {
            ExprKind::Lit(_)
            | ExprKind::Field(_)
            | ExprKind::Capture(_)
            | ExprKind::Subst { .. }
            | ExprKind::Format(_) => 0,
            ExprKind::Unary(_, e) => h(e),
            ExprKind::Binary(_, a, b) => h(a).max(h(b)),
            ExprKind::Chain { first, rest } => {
                rest.iter().map(|(_, e)| h(e)).fold(h(first), u32::max)
            }
            ExprKind::Match { lhs, .. } => h(lhs),
            ExprKind::In { lhs, list, .. } => list.iter().map(h).fold(h(lhs), u32::max),
            ExprKind::Call(_, args) => args.iter().map(h).max().unwrap_or(0),
        };
        Expr {
            kind,
            ty,
            height: below.saturating_add(1),
        }
    }

    /// The height of the expression tree (see [`Expr::new`]).
    pub fn height(&self) -> u32 {
        self.height
    }

    /// True when the expression reads no event data and calls nothing
    /// environment-dependent, so it can be evaluated at load time.
    pub fn is_constant(&self) -> bool {
        match &self.kind {
            ExprKind::Lit(_) => true,
            ExprKind::Field(_)
            | ExprKind::Capture(_)
            | ExprKind::Subst { .. }
            | ExprKind::Format(_) => false,
            ExprKind::Unary(_, e) => e.is_constant(),
            ExprKind::Binary(_, a, b) => a.is_constant() && b.is_constant(),
            ExprKind::Chain { first, rest } => {
                first.is_constant() && rest.iter().all(|(_, e)| e.is_constant())
            }
            ExprKind::Match { lhs, .. } => lhs.is_constant(),
            ExprKind::In { lhs, list, .. } => {
                lhs.is_constant() && list.iter().all(Expr::is_constant)
            }
            ExprKind::Call(f, args) => !f.is_environmental() && args.iter().all(Expr::is_constant),
        }
    }

    /// Whether evaluating this may set fields (regex named captures, s///).
    pub fn may_write(&self) -> bool {
        match &self.kind {
            ExprKind::Lit(_) | ExprKind::Field(_) | ExprKind::Capture(_) | ExprKind::Format(_) => {
                false
            }
            ExprKind::Subst { .. } | ExprKind::Match { .. } => true,
            ExprKind::Unary(_, e) => e.may_write(),
            ExprKind::Binary(_, a, b) => a.may_write() || b.may_write(),
            ExprKind::Chain { first, rest } => {
                first.may_write() || rest.iter().any(|(_, e)| e.may_write())
            }
            ExprKind::In { lhs, list, .. } => lhs.may_write() || list.iter().any(Expr::may_write),
            ExprKind::Call(_, args) => args.iter().any(Expr::may_write),
        }
    }
}
