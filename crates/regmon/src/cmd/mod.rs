//! Subcommands of the `regmon` binary.
pub mod hive;
