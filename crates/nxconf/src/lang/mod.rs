//! The Exec language: lexer, AST and parser/checker. The evaluator is in
//! [`crate::eval`].

pub mod ast;
pub(crate) mod lexer;
pub(crate) mod parser;
