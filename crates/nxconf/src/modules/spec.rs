//! The vocabulary of the module table: module kinds, directive
//! descriptions, and [`Build`], what a module type's builder works with.
//! Kept apart from the table so each module's file can use it without
//! depending on the table that lists that module.

use crate::block::RawBlock;
use crate::diag::{Diagnostic, LogLevel, Note};
use crate::directive::{constant_string, string_expr, Directive};
use crate::eval::StringExpr;
use crate::lang::scope::ExecScope;

/// Where a module type is used: `<Input>`, `<Output>`, `<Extension>` or
/// `<Processor>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModuleKind {
    Extension,
    Input,
    Output,
    /// pm_buffer only: other processors would change events.
    Processor,
}

impl ModuleKind {
    pub fn block_name(self) -> &'static str {
        match self {
            ModuleKind::Extension => "Extension",
            ModuleKind::Input => "Input",
            ModuleKind::Output => "Output",
            ModuleKind::Processor => "Processor",
        }
    }
}

/// How a directive's value is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    /// TRUE/FALSE/YES/NO/1/0.
    Bool,
    /// A number with optional K/M/G suffix.
    Integer,
    /// A constant string (quoted expression or raw text).
    String,
    /// A string expression that may read event fields (evaluated per event).
    StringExpr,
    /// A DateFormat name or strftime format.
    DateFormat,
    /// One of a fixed set of words (Digest, OutputType).
    Word,
    /// Module-specific syntax, read by the builder (HiveFile).
    Special,
}

/// One directive a module type accepts.
#[derive(Clone, Copy, Debug)]
pub struct DirectiveSpec {
    pub name: &'static str,
    pub value: ValueType,
    /// The value when absent, as written in a configuration (`None`: no
    /// default, or required).
    pub default: Option<&'static str>,
    /// May be given more than once (patterns, mounts).
    pub repeatable: bool,
}

impl DirectiveSpec {
    /// A directive given at most once.
    pub const fn once(name: &'static str, value: ValueType, default: Option<&'static str>) -> Self {
        DirectiveSpec {
            name,
            value,
            default,
            repeatable: false,
        }
    }
    /// A directive that may be repeated (each occurrence adds one item).
    pub const fn many(name: &'static str, value: ValueType) -> Self {
        DirectiveSpec {
            name,
            value,
            default: None,
            repeatable: true,
        }
    }
}

/// What a builder turns into typed settings: the block (its directives
/// already checked against the type's list), the scopes values compile in,
/// and where problems go.
pub(crate) struct Build<'a> {
    pub block: &'a RawBlock,
    /// The instance's Exec scope (string expressions such as File).
    pub scope: &'a ExecScope,
    /// The scope of constant directive values.
    pub constants: &'a ExecScope,
    pub errors: &'a mut Vec<Diagnostic>,
    pub notes: &'a mut Vec<Note>,
}

impl<'a> Build<'a> {
    /// The first directive named `name` (any case).
    pub fn one(&self, name: &str) -> Option<&'a Directive> {
        let block: &'a RawBlock = self.block;
        block
            .directives
            .iter()
            .map(|d| &d.d)
            .find(|d| d.name.eq_ignore_ascii_case(name))
    }

    /// Every directive named `name`, in order.
    pub fn each(&self, name: &'a str) -> impl Iterator<Item = &'a Directive> + 'a {
        let block: &'a RawBlock = self.block;
        block
            .directives
            .iter()
            .map(|d| &d.d)
            .filter(move |d| d.name.eq_ignore_ascii_case(name))
    }

    /// The value, or `None` with the error recorded.
    pub fn keep<T>(&mut self, r: Result<T, Diagnostic>) -> Option<T> {
        r.map_err(|e| self.errors.push(e)).ok()
    }

    pub fn error(&mut self, d: &Directive, msg: impl Into<String>) {
        self.errors.push(d.err(msg));
    }

    /// An error about the block as a whole (a missing directive).
    pub fn block_error(&mut self, msg: impl Into<String>) {
        self.errors
            .push(Diagnostic::new(&self.block.loc, &self.block.raw, msg));
    }

    pub fn note(&mut self, d: &Directive, level: LogLevel, msg: impl Into<String>) {
        self.notes.push(Note {
            level,
            location: d.location.clone(),
            message: msg.into(),
        });
    }

    pub fn constant_string(&mut self, d: &Directive) -> Option<String> {
        let r = constant_string(d, self.constants);
        self.keep(r)
    }

    pub fn string_expr(&mut self, d: &Directive) -> Option<StringExpr> {
        let r = string_expr(d, self.scope);
        self.keep(r)
    }

    /// Set `slot` from boolean directive `name` when present and valid.
    pub fn bool_into(&mut self, name: &str, slot: &mut bool) {
        if let Some(d) = self.one(name) {
            if let Some(v) = self.keep(d.as_bool()) {
                *slot = v;
            }
        }
    }
}
