//! Registry names and paths: how names compare ([`pattern::same_name`],
//! Windows' rule), the identity of a key or value ([`ident`]), the
//! `RegValue` / `Exclude` patterns ([`pattern`]) and regions of a scope
//! ([`region`]).

pub mod ident;
pub mod pattern;
pub mod region;
