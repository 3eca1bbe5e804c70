//! What the operating system adds: the request to stop, (Windows) the
//! account regmon runs as, who may read and change what regmon writes, and
//! background priority for scans.

#[cfg(windows)]
pub mod account;
pub mod perms;
pub mod priority;
pub mod stop;
