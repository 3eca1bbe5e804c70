//! What each `RegValue` pattern matched, scan after scan: a log line per
//! pattern when that is news (the first scan since start, a count that
//! changed by half or more), and a warning with a `NO_MATCH` event when a
//! pattern matches nothing (at the first scan since start, or when its
//! count falls to zero), once per transition; an INFO line when it matches
//! again. A pattern whose way passes through a key that could not be read
//! (a failed mount, a damaged key) is not judged at that scan: the failure
//! is reported already, and its count is unknown, not zero.
//!
//! Also used by `--explain` ([`hint`], [`bytes`]).

use crate::config::Scope;
use crate::model::{Coverage, Snapshot};
use crate::path::ident;
use crate::path::pattern::{same_name, Pattern, Root};

/// Patterns up to which the first scan logs one INFO line each; an input
/// with more gets one summary line (per-pattern lines at DEBUG), so 50
/// patterns scanned every 10 s do not flood the log.
pub(crate) const FULL_LINES: usize = 8;

/// The event type of the warning that a pattern matches nothing.
pub const NO_MATCH: &str = "NO_MATCH";

/// The counts one input's patterns had at the last scan that knew them.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// None before the first whole scan since start; per pattern, None
    /// while its count was never known (under an unreadable key).
    last: Option<Vec<Option<Counts>>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Counts {
    keys: u64,
    values: u64,
}

/// How loud a line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
    Debug,
    Info,
    Warn,
}

/// A pattern that matches nothing: what the log and the event say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NoMatch {
    pub(crate) message: String,
    pub(crate) pattern: String,
    /// `file:line` of the RegValue.
    pub(crate) location: Option<String>,
    pub(crate) nearest: Option<String>,
    /// The values it matched at the scan before, when it fell to zero.
    pub(crate) before: Option<u64>,
}

/// What one scan's coverage says: log lines, and the notices to queue.
#[derive(Debug, Default)]
pub(crate) struct Verdict {
    pub(crate) lines: Vec<(Level, String)>,
    pub(crate) no_match: Vec<NoMatch>,
}

impl Seen {
    /// Judges a whole scan's coverage against the counts kept from the
    /// scan before, and keeps the new ones. `locations`: each pattern's
    /// `file:line`. A snapshot without per-pattern counts changes nothing.
    pub(crate) fn judge(
        &mut self,
        scope: &Scope,
        snap: &Snapshot,
        locations: &[Option<String>],
    ) -> Verdict {
        let mut v = Verdict::default();
        let n = scope.patterns.len();
        if snap.coverage.len() != n {
            return v;
        }
        let first = self.last.is_none();
        let mut last = self.last.take().unwrap_or_else(|| vec![None; n]);
        last.resize(n, None);
        // Many patterns: the first scan's per-pattern lines go to DEBUG,
        // one summary line to INFO.
        let quiet_first = first && n > FULL_LINES;
        for (k, (p, c)) in scope.patterns.iter().zip(&snap.coverage).enumerate() {
            let at = locations.get(k).cloned().flatten();
            let name = match &at {
                Some(l) => format!("RegValue '{}' ({l})", p.text),
                None => format!("RegValue '{}'", p.text),
            };
            let now = Counts {
                keys: c.keys,
                values: c.values,
            };
            if c.carried > 0 {
                // `Incremental`: the carried keys' values were not read, so
                // the count is partial; judged at the next full read, against
                // the counts kept from the last one.
                v.lines.push((
                    Level::Debug,
                    format!(
                        "{name}: matched {} keys ({} carried unread: Incremental), {} values read",
                        c.keys, c.carried, c.values
                    ),
                ));
                continue;
            }
            if c.values == 0 && unknown(p, snap) {
                v.lines.push((
                    Level::Debug,
                    format!(
                        "{name}: not counted at this scan (a key on its way could not be read)"
                    ),
                ));
                continue;
            }
            let matched = format!(
                "matched {} keys, {} values ({})",
                c.keys,
                c.values,
                bytes(c.bytes)
            );
            match (last[k], c.values) {
                (Some(before), 0) if before.values == 0 => v
                    .lines
                    .push((Level::Debug, format!("{name} still matches nothing"))),
                (before, 0) => {
                    let why = explain_zero(scope, p, c);
                    let (message, before) = match before {
                        Some(b) => (
                            format!(
                                "{name} matches nothing now ({} values at the scan before): {why}",
                                b.values
                            ),
                            Some(b.values),
                        ),
                        None => (format!("{name} matches nothing: {why}"), None),
                    };
                    v.lines.push((Level::Warn, message.clone()));
                    v.no_match.push(NoMatch {
                        message,
                        pattern: p.text.clone(),
                        location: at,
                        nearest: c.nearest.clone(),
                        before,
                    });
                }
                (Some(before), _) if before.values == 0 => v
                    .lines
                    .push((Level::Info, format!("{name} matches again: {matched}"))),
                (None, _) => v.lines.push((
                    if quiet_first {
                        Level::Debug
                    } else {
                        Level::Info
                    },
                    format!("{name} {matched}"),
                )),
                (Some(before), _) => {
                    let level = if notable(before, now) {
                        Level::Info
                    } else {
                        Level::Debug
                    };
                    v.lines.push((
                        level,
                        format!(
                            "{name} {matched}; {} keys, {} values at the scan before",
                            before.keys, before.values
                        ),
                    ));
                }
            }
            last[k] = Some(now);
        }
        if quiet_first {
            let sum = |f: fn(&Coverage) -> u64| snap.coverage.iter().map(f).sum::<u64>();
            let zero = snap.coverage.iter().filter(|c| c.values == 0).count();
            v.lines.push((
                Level::Info,
                format!(
                    "{n} RegValue patterns matched {} keys, {} values ({}) in all; {zero} match nothing \
                     (one line per pattern at LogLevel DEBUG)",
                    sum(|c| c.keys),
                    sum(|c| c.values),
                    bytes(sum(|c| c.bytes))
                ),
            ));
        }
        self.last = Some(last);
        v
    }
}

/// Whether a count changed enough for an INFO line: by half of the
/// earlier one or more (keys or values).
fn notable(before: Counts, now: Counts) -> bool {
    let far = |a: u64, b: u64| a.abs_diff(b).saturating_mul(2) >= a.max(1);
    far(before.values, now.values) || far(before.keys, now.keys)
}

/// Whether a key that could not be read lies on the way of `p` (at, above
/// or below the keys it names): its count is then unknown.
pub fn unknown(p: &Pattern, snap: &Snapshot) -> bool {
    snap.unreadable.iter().any(|id| {
        let Some(parts) = ident::parse(id) else {
            return false;
        };
        let mut comps = parts.keys.iter();
        match comps.next() {
            Some(r) if same_name(&ident::display_name(r), p.root.short()) => {}
            _ => return false,
        }
        for (g, c) in p.keys.iter().zip(comps) {
            if g.text() == "**" {
                return true;
            }
            if !g.matches(&ident::display_name(c)) {
                return false;
            }
        }
        true
    })
}

/// Why a pattern that matches nothing does: its nearest existing key and
/// a hint.
pub fn explain_zero(scope: &Scope, p: &Pattern, c: &Coverage) -> String {
    let mut s = match &c.nearest {
        Some(n) => format!("nearest existing key {n}"),
        None => "no key on its way exists".to_string(),
    };
    if let Some(h) = hint(scope, p, c) {
        s.push_str("; ");
        s.push_str(&h);
    }
    s
}

/// A likely reason a pattern matches nothing, where one can be told: a
/// root no hive file provides, `CurrentControlSet` that could not be
/// resolved, a key that exists without a matching value, or the first
/// component no subkey matches (a typo?).
pub fn hint(scope: &Scope, p: &Pattern, c: &Coverage) -> Option<String> {
    let mounts = scope.mounts();
    // HKCR, HKCC and HKCU may be built from other mounts (merged classes,
    // CurrentControlSet, User): only the plain roots are judged by mounts.
    let plain = matches!(p.root, Root::Hklm | Root::Hku);
    if !mounts.is_empty() && plain {
        let on_way = |m: &crate::source::Mount| {
            m.root == p.root
                && m.keys
                    .iter()
                    .zip(&p.keys)
                    .all(|(k, g)| g.text() == "**" || g.matches(k))
        };
        if !mounts.iter().any(on_way) {
            let list: Vec<String> = mounts.iter().map(|m| m.display()).collect();
            return Some(format!(
                "no HiveFile is mounted on its way (mounted: {})",
                list.join(", ")
            ));
        }
    }
    let nearest = c.nearest.as_deref()?;
    // Components below the root.
    let depth = nearest.split('\\').count().saturating_sub(1);
    let through_any = p.keys.iter().take(depth + 1).any(|g| g.text() == "**");
    let ccs = p
        .keys
        .iter()
        .position(|g| same_name(g.text(), "CurrentControlSet"));
    if p.root == Root::Hklm && ccs.is_some_and(|i| i == depth) {
        return Some(if mounts.is_empty() {
            "CurrentControlSet is not there".to_string()
        } else {
            format!(
                "offline, CurrentControlSet is resolved through {nearest}\\Select (Current, else Default): \
                 check that it names an existing ControlSet00N"
            )
        });
    }
    if through_any {
        return None;
    }
    match p.keys.get(depth) {
        None => {
            let also = if scope.excludes.is_empty() {
                ""
            } else {
                " (or an Exclude removes them)"
            };
            Some(format!(
                "the key exists but no value matches '{}'{also}",
                p.value.text()
            ))
        }
        Some(g) => {
            let typo = if g.is_literal() { " (a typo?)" } else { "" };
            Some(format!(
                "no subkey of {nearest} matches '{}'{typo}",
                g.text()
            ))
        }
    }
}

/// A byte count for people: `512 bytes`, `3.4 KiB`, `1.2 MiB`, `2.0 GiB`.
pub fn bytes(n: u64) -> String {
    const K: f64 = 1024.0;
    let f = n as f64;
    if n < 1024 {
        format!("{n} bytes")
    } else if f < K * K {
        format!("{:.1} KiB", f / K)
    } else if f < K * K * K {
        format!("{:.1} MiB", f / (K * K))
    } else {
        format!("{:.1} GiB", f / (K * K * K))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(patterns: &[&str]) -> Scope {
        Scope::for_test(patterns, false)
    }

    fn cov(keys: u64, values: u64, nearest: Option<&str>) -> Coverage {
        Coverage {
            keys,
            values,
            bytes: values * 4,
            carried: 0,
            sample: Vec::new(),
            nearest: nearest.map(String::from),
        }
    }

    fn snap(c: Vec<Coverage>) -> Snapshot {
        Snapshot {
            coverage: c,
            ..Snapshot::default()
        }
    }

    fn levels(v: &Verdict) -> Vec<Level> {
        v.lines.iter().map(|l| l.0).collect()
    }

    #[test]
    fn one_warning_per_transition_and_a_line_when_it_recovers() {
        let s = scope(&[r"HKLM\SOFTWARE\Micrsoft\*"]);
        let loc = [Some("r.conf:3".to_string())];
        let mut seen = Seen::default();
        let zero = snap(vec![cov(0, 0, Some(r"HKLM\SOFTWARE"))]);
        let v = seen.judge(&s, &zero, &loc);
        assert_eq!(levels(&v), [Level::Warn]);
        assert_eq!(
            v.no_match[0].message,
            r"RegValue 'HKLM\SOFTWARE\Micrsoft\*' (r.conf:3) matches nothing: nearest existing key HKLM\SOFTWARE; no subkey of HKLM\SOFTWARE matches 'Micrsoft' (a typo?)"
        );
        // Still nothing: no second warning.
        let v = seen.judge(&s, &zero, &loc);
        assert_eq!(levels(&v), [Level::Debug]);
        assert!(v.no_match.is_empty());
        let v = seen.judge(
            &s,
            &snap(vec![cov(1, 3, Some(r"HKLM\SOFTWARE\Micrsoft"))]),
            &loc,
        );
        assert_eq!(levels(&v), [Level::Info]);
        assert!(v.lines[0]
            .1
            .contains("matches again: matched 1 keys, 3 values"));
        // Steady: DEBUG; a big change: INFO; down to zero: a warning.
        let v = seen.judge(&s, &snap(vec![cov(1, 4, None)]), &loc);
        assert_eq!(levels(&v), [Level::Debug]);
        let v = seen.judge(&s, &snap(vec![cov(1, 40, None)]), &loc);
        assert_eq!(levels(&v), [Level::Info]);
        let v = seen.judge(&s, &zero, &loc);
        assert_eq!(levels(&v), [Level::Warn]);
        assert_eq!(v.no_match[0].before, Some(40));
        assert!(v.no_match[0]
            .message
            .contains("matches nothing now (40 values at the scan before)"));
    }

    #[test]
    fn a_pattern_under_an_unreadable_key_is_not_judged() {
        let s = scope(&[r"HKLM\SOFTWARE\Microsoft\*", r"HKLM\SYSTEM\x\*"]);
        let mut seen = Seen::default();
        let mut sn = snap(vec![cov(0, 0, None), cov(0, 0, Some(r"HKLM\SYSTEM"))]);
        sn.unreadable
            .push(ident::key_id(&["HKLM".as_bytes(), "software".as_bytes()]));
        let v = seen.judge(&s, &sn, &[None, None]);
        assert_eq!(levels(&v), [Level::Debug, Level::Warn]);
        assert_eq!(v.no_match.len(), 1);
        assert_eq!(v.no_match[0].pattern, r"HKLM\SYSTEM\x\*");
        // Readable again and empty: now it is news (never known before).
        let v = seen.judge(
            &s,
            &snap(vec![cov(0, 0, Some("HKLM")), cov(0, 0, None)]),
            &[None, None],
        );
        assert_eq!(levels(&v), [Level::Warn, Level::Debug]);
    }

    #[test]
    fn many_patterns_log_one_summary_line_at_first() {
        let pats: Vec<String> = (0..20).map(|i| format!(r"HKLM\SOFTWARE\K{i}\*")).collect();
        let refs: Vec<&str> = pats.iter().map(String::as_str).collect();
        let s = scope(&refs);
        let mut seen = Seen::default();
        let v = seen.judge(&s, &snap(vec![cov(1, 2, None); 20]), &[]);
        let info: Vec<&String> = v
            .lines
            .iter()
            .filter(|l| l.0 != Level::Debug)
            .map(|l| &l.1)
            .collect();
        assert_eq!(
            info,
            ["20 RegValue patterns matched 20 keys, 40 values (160 bytes) in all; 0 match nothing (one line per pattern at LogLevel DEBUG)"]
        );
    }

    #[test]
    fn hints() {
        let s = scope(&[r"HKLM\SOFTWARE\Run\Foo"]);
        let h = |c: &Coverage| hint(&s, &s.patterns[0], c);
        assert_eq!(
            h(&cov(0, 0, Some(r"HKLM\SOFTWARE\Run"))).as_deref(),
            Some("the key exists but no value matches 'Foo'")
        );
        let s = scope(&[r"HKLM\SYSTEM\CurrentControlSet\Services\*\ImagePath"]);
        assert!(hint(&s, &s.patterns[0], &cov(0, 0, Some(r"HKLM\SYSTEM")))
            .unwrap()
            .starts_with("CurrentControlSet is not there"));
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024 + 1), "3.0 MiB");
    }
}
