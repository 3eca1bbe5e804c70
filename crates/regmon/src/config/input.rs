//! An `im_regmon` block as a [`Scope`]: its patterns checked, its hive
//! mounts checked against each other, and the canonical texts that tell a
//! baseline whether it still fits (see the baseline's rebuild rules).

use super::{Capture, Schema, Scope};
use crate::path::pattern::{same_name, Excludes, Pattern};
use crate::source::{Mount, Source};
use nxconf::Module;
use std::path::Path;

/// `MaxDataSize` when not given: bytes of data kept per value with `ReportData`.
const DEFAULT_MAX_DATA_SIZE: u64 = 4096;

/// What [`scope_of`] finds for an input.
pub struct ScopeOf {
    pub scope: Scope,
    pub scope_key: String,
    pub data_key: String,
    pub schema: Schema,
}

/// An input's scope, the canonical texts of its scope and data settings
/// (for detecting changes), and its event schema.
pub fn scope_of(
    m: &Module,
    rm: &nxconf::ImRegmon,
    config_dir: &Path,
) -> Result<ScopeOf, Vec<String>> {
    let mut errors = Vec::new();
    let at = |loc: &nxconf::Location, msg: String| format!("{}:{}: {msg}", loc.file, loc.line);
    let mut patterns = Vec::new();
    for p in &rm.reg_values {
        match Pattern::parse(&p.pattern) {
            Ok(x) => patterns.push(x),
            Err(e) => errors.push(at(&p.location, format!("RegValue {e}"))),
        }
    }
    let mut excludes = Vec::new();
    for p in &rm.excludes {
        match Pattern::parse(&p.pattern) {
            Ok(x) => excludes.push(x),
            Err(e) => errors.push(at(&p.location, format!("Exclude {e}"))),
        }
    }
    let mut never = Vec::new();
    for p in &rm.no_data_for {
        match Pattern::parse(&p.pattern) {
            Ok(x) => never.push(x),
            Err(e) => errors.push(at(&p.location, format!("NoDataFor {e}"))),
        }
    }
    let schema = match rm.schema.as_deref().map(Schema::parse) {
        None => Schema::Nxlog,
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            errors.push(at(&m.location, format!("input '{}': {e}", m.name)));
            Schema::Nxlog
        }
    };
    let capture = rm.report_data.then(|| Capture {
        max: rm.max_data_size.unwrap_or(DEFAULT_MAX_DATA_SIZE) as usize,
        never: Excludes::new(&never),
    });
    let mut mounts: Vec<Mount> = Vec::new();
    let mut mount_lines: Vec<&nxconf::Location> = Vec::new();
    for h in &rm.hive_files {
        let file = config_dir.join(&h.path);
        match Mount::parse(&h.key, file, !h.no_logs) {
            Ok(x) => {
                // Two hives at one place, or one inside another: one of them
                // would hide (part of) the other.
                for (other, loc) in mounts.iter().zip(&mount_lines) {
                    // Mount points match case-insensitively, as keys do.
                    let n = other.keys.len().min(x.keys.len());
                    let shared = other.root == x.root
                        && (0..n).all(|i| same_name(&other.keys[i], &x.keys[i]));
                    let clash = match (shared, other.keys.len() == x.keys.len()) {
                        (false, _) => None,
                        (true, true) => Some("the same key as"),
                        (true, false) => Some("a key nested with"),
                    };
                    if let Some(how) = clash {
                        errors.push(at(
                            &h.location,
                            format!(
                                "HiveFile '{}' is mounted at {how} HiveFile '{}' at {}:{}; \
                                 each hive needs its own key, neither inside another",
                                x.display(),
                                other.display(),
                                loc.file,
                                loc.line
                            ),
                        ));
                    }
                }
                mounts.push(x);
                mount_lines.push(&h.location);
            }
            Err(e) => errors.push(at(&h.location, e)),
        }
    }
    if mounts.is_empty() && !cfg!(windows) {
        errors.push(at(
            &m.location,
            format!(
                "input '{}' has no HiveFile: the live registry can only be read on Windows; \
                 map hive files with e.g. HiveFile 'HKLM\\SOFTWARE' '/mnt/win/Windows/System32/config/SOFTWARE'",
                m.name
            ),
        ));
    }
    for p in &patterns {
        if !mounts.is_empty() && !mounts.iter().any(|mt| mt.root == p.root) {
            tracing::warn!(
                "input '{}': RegValue '{}' is under no HiveFile mapping; it matches nothing",
                m.name,
                p.text
            );
        }
    }
    crate::path::pattern::note_recursive(&m.name, &patterns, rm.recursive);
    if !errors.is_empty() {
        return Err(errors);
    }
    // One line per setting, `kind:text`, lists sorted and without repeats
    // (a repeated line watches nothing more). Baselines written before
    // these texts were split keep this exact form (see baseline's v1_scope).
    let mut key_parts: Vec<String> = Vec::new();
    let mut pats: Vec<String> = patterns
        .iter()
        .map(|p| format!("value:{}", upper(&p.text)))
        .collect();
    pats.sort();
    pats.dedup();
    key_parts.extend(pats);
    let mut ex: Vec<String> = excludes
        .iter()
        .map(|p| format!("exclude:{}", upper(&p.text)))
        .collect();
    ex.sort();
    ex.dedup();
    key_parts.extend(ex);
    let mut mt: Vec<String> = mounts
        .iter()
        .map(|m| {
            format!(
                "hive:{}={}:{}",
                upper(&m.display()),
                m.file.display(),
                m.use_logs
            )
        })
        .collect();
    mt.sort();
    key_parts.extend(mt);
    key_parts.push(format!("recursive:{}", rm.recursive));
    // `both` only when set: older baselines keep their scope text.
    if rm.both_views {
        key_parts.push("64bit:both".to_string());
    } else {
        key_parts.push(format!("64bit:{}", rm.view_64bit));
    }
    key_parts.push(format!("digest:{}", rm.digest.config_name()));
    // What the baseline keeps beside digests.
    let mut data_parts: Vec<String> = Vec::new();
    if let Some(c) = &capture {
        let mut nd: Vec<String> = never
            .iter()
            .map(|p| format!("nodata:{}", upper(&p.text)))
            .collect();
        nd.sort();
        nd.dedup();
        data_parts.push(format!("data:{}", c.max));
        data_parts.extend(nd);
    }
    Ok(ScopeOf {
        scope: Scope {
            patterns,
            excludes: Excludes::new(&excludes),
            recursive: rm.recursive,
            view64: rm.view_64bit,
            both_views: rm.both_views,
            user: None,
            exclude_classes: rm.exclude_classes,
            digest: rm.digest,
            // The one place the source is decided: HiveFile lines or none.
            source: if mounts.is_empty() {
                Source::Live
            } else {
                Source::Hives(mounts)
            },
            capture,
            key_events: rm.key_events,
        },
        scope_key: key_parts.join("\n"),
        data_key: data_parts.join("\n"),
        schema,
    })
}

/// A name or pattern upper-cased as names compare (see
/// [`crate::path::pattern::same_name`]): two texts that match the same
/// names have the same canonical text.
fn upper(s: &str) -> String {
    String::from_utf16_lossy(&hive::upcase_str(s))
}
