//! The Exec language. The evaluator is in [`crate::eval`].
//!
//! | file | what it does |
//! |---|---|
//! | `lexer` | source text to tokens (literals, regexes, operators) |
//! | `ast` | statements and typed expressions |
//! | `scope` | what code may use where it is compiled: [`scope::ExecScope`], each module type's [`scope::ExecApi`] |
//! | `parser` | recursive descent with load-time name and type checks |

pub mod ast;
pub(crate) mod lexer;
pub(crate) mod parser;
pub mod scope;
