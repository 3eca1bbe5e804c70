//! What the operating system adds: the request to stop, and (Windows) the
//! account regmon runs as.

#[cfg(windows)]
pub mod account;
pub mod stop;
