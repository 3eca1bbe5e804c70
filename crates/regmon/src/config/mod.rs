//! What an input watches, as its configuration says: the [`Scope`] (patterns,
//! excludes, recursion, view, digest, the [`Source`] and what data to keep),
//! built from an `im_regmon` block by [`input::scope_of`].

pub mod input;

use crate::model::digest::DigestAlgorithm;
use crate::path::pattern::{Excludes, Pattern};
use crate::path::region::Region;
use crate::source::{Mount, Source};

/// What data a scan keeps beside the digests (`ReportData`).
#[derive(Clone, Debug)]
pub struct Capture {
    /// Bytes kept per value (`MaxDataSize`).
    pub max: usize,
    /// `NoDataFor`: values whose data is never kept (secrets).
    pub never: Excludes,
}

/// How hard a scan may push (`ScanRate`, `LowPriority`); neither changes
/// what a scan finds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pace {
    /// `ScanRate N`: at most N values read per second.
    pub rate: Option<u64>,
    /// `LowPriority TRUE`: background CPU and I/O priority while scanning.
    pub low_priority: bool,
}

/// What an input scans.
#[derive(Clone, Debug)]
pub struct Scope {
    pub patterns: Vec<Pattern>,
    pub excludes: Excludes,
    pub recursive: bool,
    /// `64BitView`: false reads the 32-bit view (WOW64 redirection).
    pub view64: bool,
    /// `64BitView BOTH`: the 32-bit view is scanned too (`view64` is true).
    pub both_views: bool,
    /// `User`: the SID whose hives `HKCU` and the user part of `HKCR` are,
    /// offline (an image or hive files mounted under `HKU\<SID>`).
    pub user: Option<String>,
    /// `ExcludeClasses TRUE`: `HKU\*_Classes` is not scanned.
    pub exclude_classes: bool,
    pub digest: DigestAlgorithm,
    /// Hive files or the live registry.
    pub source: Source,
    /// `ReportData TRUE`: keep data for `$Value` / `$PrevValue`.
    pub capture: Option<Capture>,
    /// `KeyEvents TRUE`: also list the keys in scope.
    pub key_events: bool,
    /// `Incremental TRUE`: a key whose last-write time, value count and
    /// subkey count equal the baseline's may keep its values unread (see
    /// [`crate::model::KeyStats`]); set per scan by the runtime, which turns
    /// it off for the full rehashes.
    pub incremental: bool,
    /// `ScanRate` / `LowPriority`.
    pub pace: Pace,
    /// The baseline's key stats for this scan (`Incremental`, not a full
    /// rehash); None: every key's values are read.
    pub hints: Option<std::sync::Arc<crate::model::KeyHints>>,
}

#[cfg(test)]
impl Scope {
    /// A live-registry scope of `patterns` with defaults (SHA-1, 64-bit view).
    pub fn for_test(patterns: &[&str], recursive: bool) -> Scope {
        Scope {
            patterns: patterns
                .iter()
                .map(|p| Pattern::parse(p).unwrap())
                .collect(),
            excludes: Excludes::default(),
            recursive,
            view64: true,
            both_views: false,
            user: None,
            exclude_classes: false,
            digest: DigestAlgorithm::parse("sha1").unwrap(),
            source: Source::Live,
            capture: None,
            key_events: false,
            incremental: false,
            pace: Pace::default(),
            hints: None,
        }
    }
}

impl Scope {
    /// The scope narrowed to `regions`: patterns whose key components are
    /// pinned to each region's key, so a scan walks only there. Where
    /// `Recursive` reaches is spelled out in the narrowed patterns (see
    /// [`Region::narrow`]); excludes and everything else stay as they are.
    /// A region that is not a subtree is the key's own values.
    /// Scanning the result yields the whole scope's values inside the
    /// regions (callers still filter by [`Region::contains_value`], which
    /// also drops anything a pinned name would match as a glob).
    pub fn within(&self, regions: &[Region]) -> Scope {
        let mut patterns: Vec<Pattern> = Vec::new();
        for r in regions {
            for p in &self.patterns {
                for q in r.narrow(p, self.recursive) {
                    if !patterns.contains(&q) {
                        patterns.push(q);
                    }
                }
            }
        }
        Scope {
            patterns,
            ..self.clone()
        }
    }
}

impl Scope {
    /// The hive mounts (none for the live registry).
    pub fn mounts(&self) -> &[Mount] {
        self.source.mounts()
    }
}

/// The event schema of an input (`Schema`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schema {
    /// NXLog's fields only (plus regmon's additions).
    Nxlog,
    /// Also Elastic Common Schema fields, nested in JSON.
    Ecs,
}

impl Schema {
    pub fn parse(s: &str) -> Result<Schema, String> {
        match s.to_ascii_lowercase().as_str() {
            "nxlog" => Ok(Schema::Nxlog),
            "ecs" => Ok(Schema::Ecs),
            _ => Err(format!("unsupported Schema '{s}' (supported: nxlog, ecs)")),
        }
    }
}
