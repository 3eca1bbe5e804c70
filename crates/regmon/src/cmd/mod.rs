//! Subcommands of the `regmon` binary.
pub mod diff;
pub mod edit;
pub mod hive;
pub mod run;
