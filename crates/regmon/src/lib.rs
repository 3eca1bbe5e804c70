//! regmon: a registry integrity monitor that runs NXLog's `im_regmon`
//! configurations. The monitor is built as stages, in the order data flows
//! through them; each module uses only the ones before it (and the shared
//! `model` and `path`):
//!
//! 1. [`config`]: what an input watches (its [`config::Scope`]), from the
//!    `im_regmon` block that `nxconf` parsed.
//! 2. [`source`]: where keys come from: hive files ([`source::hive`]) or the
//!    live registry on Windows (`source::live`), behind one trait,
//!    [`source::RegKey`].
//! 3. [`scan`]: the values the scope covers, digested, in identity order.
//! 4. [`baseline`]: the durable state (SQLite): compared with a scan, it
//!    gives the changes; it also holds the outbox of events to deliver.
//! 5. [`event`]: a change as an event record (NXLog's fields, then ours).
//! 6. Exec and routes ([`runtime`]): the input's and outputs' Exec code
//!    (`nxconf`), then the routes to outputs.
//! 7. [`output`]: where events go (`om_file`), through one trait,
//!    [`output::Output`].
//!
//! [`runtime`] drives them: schedules, scans, commits, delivery.
//! Shared by all: [`model`] (entries, snapshots, changes, digests) and
//! [`path`] (registry names, identities, patterns, regions). [`platform`]
//! holds what the operating system adds (stop requests, the account).

pub mod baseline;
pub mod config;
pub mod event;
pub mod model;
pub mod output;
pub mod path;
pub mod platform;
pub mod runtime;
pub mod scan;
pub mod source;
