//! Scanning the live registry (Windows) on several threads: a recursive
//! scope is split at each monitored key into its own values and each
//! subkey's subtree, scanned side by side and merged in identity order.

use crate::config::Scope;
use crate::model::{Coverage, Snapshot};
use crate::path::pattern::Root;
use crate::path::region::Region;
use crate::platform::account::service_account;
use crate::source::live::{
    open, predefined, read_key, view_bits, watch::watch_points, wide, LiveKey,
};
use crate::source::VNode;
use std::sync::Once;
use windows_sys::Win32::System::Registry::{KEY_ENUMERATE_SUB_KEYS, KEY_QUERY_VALUE};

/// Scans `scope` over the live registry (an input with no `HiveFile`).
///
/// A recursive scope is split into parts (each monitored key's own values,
/// and each of its subkeys with its subtree) that worker threads scan side
/// by side: most of a scan is waiting for the registry (a system call on
/// Windows, a round trip to wineserver under Wine), and other threads'
/// requests proceed meanwhile. The parts' results are merged in path order.
pub fn scan_live(scope: &Scope) -> Snapshot {
    // One pace for the whole scan, its parts' threads included.
    let _pace = crate::scan::pace::Scan::begin(&scope.pace);
    if scope.both_views {
        return crate::scan::views::scan_live(scope);
    }
    let t = std::time::Instant::now();
    let workers = std::env::var("REGMON_LIVE_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
        .min(MAX_WORKERS);
    let snap = match split(scope) {
        Some(parts) if workers > 1 && parts.len() > 1 => {
            tracing::debug!(
                "live registry scan in {} parts on {workers} threads",
                parts.len()
            );
            scan_parts(&parts, scope.patterns.len(), workers)
        }
        _ => scan_one(scope),
    };
    tracing::debug!(
        "live registry scan: {} values in {:.3} s",
        snap.entries.len(),
        t.elapsed().as_secs_f64()
    );
    snap
}

/// Threads a live scan uses at most (`REGMON_LIVE_THREADS` may lower it;
/// the default is the number of cores).
const MAX_WORKERS: usize = 4;

/// One scan of `scope` on this thread.
fn scan_one(scope: &Scope) -> Snapshot {
    let mut snap = Snapshot::default();
    let mut roots: Vec<(Root, VNode<LiveKey>)> = Vec::new();
    // A walk that goes deep (Recursive or `**`) reads each key's subkeys
    // and values in one go.
    let deep = scope.recursive
        || scope
            .patterns
            .iter()
            .any(|p| p.keys.iter().any(|g| g.is_any_depth()));
    for p in &scope.patterns {
        if roots.iter().any(|(r, _)| *r == p.root) {
            continue;
        }
        let mut v = VNode::new(p.root.short());
        v.mount(
            &[],
            LiveKey::root(p.root, scope.view64, deep).skipping_classes(scope.exclude_classes),
        );
        roots.push((p.root, v));
    }
    crate::scan::scan_tree(scope, &roots, &mut snap);
    snap
}

/// One part of a split scan: a narrowed scope, and for each of its
/// patterns the indexes of the input's patterns it was narrowed from (so
/// the part's counts add up to each input pattern's coverage).
struct Part {
    scope: Scope,
    origins: Vec<Vec<usize>>,
}

impl Part {
    /// `scope` narrowed to `region` (then `edit`ed), with its origins.
    fn new(scope: &Scope, region: &Region, edit: impl FnOnce(&mut Scope)) -> Part {
        let mut part = scope.within(std::slice::from_ref(region));
        edit(&mut part);
        let mut origins = vec![Vec::new(); part.patterns.len()];
        for (k, p) in scope.patterns.iter().enumerate() {
            // A `**` may leave several ways to go on inside one region.
            for q in region.narrow(p, scope.recursive) {
                if let Some(j) = part.patterns.iter().position(|x| *x == q) {
                    if !origins[j].contains(&k) {
                        origins[j].push(k);
                    }
                }
            }
        }
        Part {
            scope: part,
            origins,
        }
    }
}

/// The parts of a recursive scope that together cover it: for each
/// monitored key (the literal prefix of a pattern), its own values and each
/// of its subkeys' subtrees. None when the scope is not recursive or a
/// monitored key cannot be listed (one scan then reports it as usual).
fn split(scope: &Scope) -> Option<Vec<Part>> {
    if !scope.recursive {
        return None;
    }
    let sam = KEY_QUERY_VALUE | KEY_ENUMERATE_SUB_KEYS | view_bits(scope.view64);
    let mut parts = Vec::new();
    for p in watch_points(scope) {
        let own = Part::new(
            scope,
            &Region {
                subtree: false,
                ..p.clone()
            },
            |s| s.recursive = false,
        );
        if !own.scope.patterns.is_empty() {
            parts.push(own);
        }
        let key = open(predefined(p.root), &wide(&p.path.join("\\")), sam).ok()?;
        // A consistent listing: a subkey missed here would not be scanned
        // at all, and its values would look deleted.
        let mut warnings = Vec::new();
        let (listed, _) = read_key(key.0, None, true, false, &mut |w| warnings.push(w)).ok()?;
        if !warnings.is_empty() {
            return None;
        }
        for sub in listed.subs.unwrap_or_default() {
            let mut path = p.path.clone();
            path.push(String::from_utf16(&sub.name).ok()?);
            let region = Region {
                root: p.root,
                path,
                subtree: true,
            };
            let part = Part::new(scope, &region, |_| {});
            if !part.scope.patterns.is_empty() {
                parts.push(part);
            }
        }
    }
    Some(parts)
}

/// Scans `parts` on `workers` threads, each taking the next part when done,
/// and merges the results as one scan of the whole (of `patterns`
/// patterns) would give them.
fn scan_parts(parts: &[Part], patterns: usize, workers: usize) -> Snapshot {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let next = &next;
    let shared = crate::scan::pace::current();
    let mut done: Vec<(usize, Snapshot)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let shared = shared.clone();
                s.spawn(move || {
                    let _pace = crate::scan::pace::Scan::join(shared);
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(part) = parts.get(i) else {
                            return mine;
                        };
                        mine.push((i, scan_one(&part.scope)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    // Parts in their order, so warnings read as a single scan's would.
    done.sort_by_key(|(i, _)| *i);
    let mut snap = Snapshot {
        coverage: vec![Coverage::default(); patterns],
        ..Snapshot::default()
    };
    for (i, p) in done {
        // Each part's counts go to the input's patterns it came from.
        if let Some(part) = parts.get(i) {
            for (c, from) in p.coverage.iter().zip(&part.origins) {
                for &k in from {
                    if let Some(into) = snap.coverage.get_mut(k) {
                        into.add(c);
                    }
                }
            }
        }
        crate::scan::merge_pruned(&mut snap.pruned, p.pruned);
        snap.entries.extend(p.entries);
        snap.keys.extend(p.keys);
        snap.key_items.extend(p.key_items);
        snap.unreadable.extend(p.unreadable);
        snap.warnings.extend(p.warnings);
        snap.notes.extend(p.notes);
        snap.failed_mounts.extend(p.failed_mounts);
    }
    snap.entries.sort_by(|a, b| a.id.cmp(&b.id));
    snap.entries.dedup_by(|a, b| a.id == b.id);
    snap.keys.sort_by(|a, b| a.id.cmp(&b.id));
    snap.keys.dedup_by(|a, b| a.id == b.id);
    snap.key_items.sort_by(|a, b| a.id.cmp(&b.id));
    snap.key_items.dedup_by(|a, b| a.id == b.id);
    snap
}

/// Warns once, at start, when an input watches HKCU from a service
/// account (whose own hive that is).
pub fn warn_hkcu_once(scope: &Scope) {
    static ONCE: Once = Once::new();
    if !scope.patterns.iter().any(|p| p.root == Root::Hkcu) {
        return;
    }
    ONCE.call_once(|| {
        if let Some(who) = service_account() {
            tracing::warn!(
                "regmon runs as {who}: HKCU is that account's own hive, not a logged-on user's; \
                 to watch a user's settings use HKU\\<user SID>\\... instead"
            );
        }
    });
}
