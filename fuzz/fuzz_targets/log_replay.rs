//! Transaction-log replay on arbitrary bytes: a primary hive and up to two
//! logs (LOG1, LOG2) as regmon reads them before a scan, then the replayed
//! image opened and its root walked as a scan would. Replay must not panic,
//! hang or allocate without bound.
//!
//! Input layout: 4 bytes little-endian length of the primary, 4 bytes length
//! of LOG1 (both clamped to what is there), then the primary, LOG1, and the
//! rest is LOG2. seed.sh builds seeds from real hives with their logs.

#![no_main]

use hive::replay::{replay, LogFile};
use hive::{walk, Hive};
use libfuzzer_sys::fuzz_target;

fn le32(d: &[u8], at: usize) -> usize {
    d.get(at..at + 4)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let body = &data[8..];
    let n0 = le32(data, 0).min(body.len());
    let (primary, rest) = body.split_at(n0);
    let n1 = le32(data, 4).min(rest.len());
    let (log1, log2) = rest.split_at(n1);
    let mut logs = Vec::new();
    if !log1.is_empty() {
        logs.push(LogFile {
            name: "fuzz.LOG1".into(),
            data: log1,
        });
    }
    if !log2.is_empty() {
        logs.push(LogFile {
            name: "fuzz.LOG2".into(),
            data: log2,
        });
    }
    let Ok(r) = replay(primary, &logs) else {
        return;
    };
    let _ = r.changed();
    let _ = format!("{:?}", r.report);
    // What a scan does next with the image.
    let Ok(h) = Hive::new(&r.data) else { return };
    let Ok(root) = h.root() else { return };
    let mut keys = 0usize;
    walk(root, h.cells().bins_len(), |_| keys += 1);
});
