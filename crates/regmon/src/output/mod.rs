//! Where events go. One file per output module; [`file`] is om_file.

pub mod file;
