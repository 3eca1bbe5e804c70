//! Subcommands of the `regmon` binary.
pub mod hive;
pub mod diff;
pub mod edit;
