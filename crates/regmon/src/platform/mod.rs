//! What the operating system adds: the request to stop, (Windows) the
//! account regmon runs as, and who may read and change what regmon writes.

#[cfg(windows)]
pub mod account;
pub mod perms;
pub mod stop;
