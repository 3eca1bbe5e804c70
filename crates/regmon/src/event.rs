//! Turning a change into an event record: the im_regmon field set, in
//! NXLog's order, with `$raw_event` in its default `Key=Value` form.

use crate::baseline::Change;
use crate::digest::{hex, DigestAlgorithm};
use chrono::{DateTime, Utc};
use nxconf::Record;

/// What every event of one input shares.
pub struct Source<'a> {
    pub hostname: &'a str,
    pub module_name: &'a str,
    pub digest: DigestAlgorithm,
}

/// The event for one change, observed at `now`.
pub fn record(change: &Change, src: &Source<'_>, now: DateTime<Utc>) -> Record {
    let (kind, old, new) = match change {
        Change::New(e) => ("NEW", None, Some(e)),
        Change::Changed { old, new } => ("CHANGE", Some(old), Some(new)),
        Change::Delete(e) => ("DELETE", Some(e), None),
    };
    let mut r = Record::new();
    r.set("EventTime", now);
    r.set("Hostname", src.hostname);
    r.set("EventType", kind);
    r.set("RegistryValueName", change.path());
    if let Some(o) = old {
        r.set("PrevValueSize", o.size as i64);
    }
    if let Some(n) = new {
        r.set("ValueSize", n.size as i64);
    }
    r.set("DigestName", src.digest.canonical_name());
    if let Some(o) = old {
        r.set("PrevDigest", hex(&o.digest));
    }
    if let Some(n) = new {
        r.set("Digest", hex(&n.digest));
    }
    r.set("Severity", "WARNING");
    r.set("SeverityValue", 3i64);
    r.set("EventReceivedTime", now);
    r.set("SourceModuleName", src.module_name);
    r.set("SourceModuleType", "im_regmon");
    let raw = r.to_raw_event_kv();
    r.set("raw_event", raw);
    r
}

/// The short host name (before the first dot), as NXLog's `$Hostname`.
pub fn short_hostname() -> String {
    let h = gethostname::gethostname().to_string_lossy().into_owned();
    h.split('.').next().unwrap_or_default().to_string()
}
