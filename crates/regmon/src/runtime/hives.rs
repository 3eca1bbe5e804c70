//! Users' hives on the live registry: `HKU\<SID>` (and `HKU\<SID>_Classes`)
//! are loaded at logon and unloaded at logoff, services' profiles
//! (`S-1-5-18/19/20`) with their services. A hive that unloads between two
//! scans is a state change, not a deletion: its values keep their baseline
//! (no DELETE), one `HIVE_OFFLINE` event says so, and when it is loaded
//! again one `HIVE_ONLINE` event, then only real changes.
//!
//! "Previously loaded" is what the baseline holds: a key `HKU\X` with rows
//! below it. `HKU`'s subkeys are listed before and after the scan: a hive
//! in both listings was scanned whole; one in neither is offline; one in
//! only one of them came or went during the scan, so its baseline is kept
//! for this scan and the next decides. Which hives are offline is kept in
//! the baseline's meta (`hives-offline`), so a restart while a hive is
//! unloaded does not repeat its event. A hive that is listed but cannot
//! be read (access denied) is not offline: the scan warns about it and
//! keeps its baseline, as for any key it cannot read.

// Only the live registry (Windows) and the tests list hives.
#![cfg_attr(not(any(windows, test)), allow(dead_code))]

use super::{Queue, RunError, Runtime};
use crate::config::Scope;
use crate::model::Snapshot;
use crate::path::ident;
use crate::path::pattern::{same_name, Root};
use crate::source::classes_sid;
use std::collections::BTreeSet;

/// The baseline meta row listing the hives known offline, one per line.
const OFFLINE_META: &str = "hives-offline";

/// What the registry tells about `HKU`: the hives loaded now, and a
/// profile's folder (the live registry's, or a test's).
pub(crate) trait Users {
    fn loaded(&self) -> Result<Vec<String>, String>;
    fn profile_path(&self, sid: &str) -> Option<String>;
}

#[cfg(windows)]
struct LiveUsers;

#[cfg(windows)]
impl Users for LiveUsers {
    fn loaded(&self) -> Result<Vec<String>, String> {
        crate::source::live::hives::loaded()
    }
    fn profile_path(&self, sid: &str) -> Option<String> {
        crate::source::live::hives::profile_path(sid)
    }
}

#[cfg(test)]
thread_local! {
    /// A test's stand-in for the registry's list of hives.
    pub(crate) static FAKE: std::cell::RefCell<Option<Box<dyn Users>>> =
        const { std::cell::RefCell::new(None) };
}

/// A hive's state change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Transition {
    Offline(String),
    Online(String),
}

/// What a scan's listings mean for the baseline's hives.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Decision {
    /// Keys (`HKU\X` identities) whose rows must be kept: not scanned whole.
    pub unavailable: Vec<Vec<u8>>,
    pub transitions: Vec<Transition>,
    /// The hives offline after this scan (to keep in the baseline).
    pub offline: BTreeSet<String>,
}

/// Whether `name` is in a listing (None: the listing failed).
fn listed(list: Option<&[String]>, name: &str) -> Option<bool> {
    list.map(|l| l.iter().any(|n| same_name(n, name)))
}

/// Decides, for each key `HKU\X` with rows in the baseline (`known`, their
/// identities), whether it was scanned whole (loaded before and after the
/// scan), is offline (in neither listing) or unknown (in one, or a listing
/// failed); `relevant` says which hives the scan's patterns reach (the
/// others are left as they are); `offline`: the hives known offline before.
pub(crate) fn decide(
    known: &[Vec<u8>],
    relevant: impl Fn(&str) -> bool,
    skip: impl Fn(&str) -> bool,
    before: Option<&[String]>,
    after: Option<&[String]>,
    offline: &BTreeSet<String>,
) -> Decision {
    let mut d = Decision::default();
    for id in known {
        let Some(name) = hive_name(id) else {
            continue;
        };
        if skip(&name) {
            // Not scanned at all (ExcludeClasses): kept, silently.
            d.unavailable.push(id.clone());
            continue;
        }
        let was_offline = offline.contains(&name);
        if !relevant(&name) {
            if was_offline {
                d.offline.insert(name);
            }
            continue;
        }
        let (b, a) = (listed(before, &name), listed(after, &name));
        if b == Some(true) && a == Some(true) {
            if was_offline {
                d.transitions.push(Transition::Online(name));
            }
            continue;
        }
        d.unavailable.push(id.clone());
        if b == Some(false) && a == Some(false) && !was_offline {
            d.transitions.push(Transition::Offline(name.clone()));
            d.offline.insert(name);
        } else if was_offline {
            d.offline.insert(name);
        }
    }
    d
}

/// The hive name of a key identity `HKU\X` (as stored).
fn hive_name(id: &[u8]) -> Option<String> {
    let p = ident::parse(id)?;
    match &p.keys[..] {
        [_, name] => Some(ident::display_name(name).into_owned()),
        _ => None,
    }
}

/// Whether a hive name is a user's classes hive (`<SID>_Classes`).
fn is_classes(name: &str) -> bool {
    classes_sid(name).is_some()
}

/// Whether `scope` reads users' hives on the live registry: some pattern
/// under `HKU` goes below it.
fn watches_users(scope: &Scope) -> bool {
    let live = scope.source == crate::source::Source::Live;
    (live || cfg!(test))
        && scope
            .patterns
            .iter()
            .any(|p| p.root == Root::Hku && !p.keys.is_empty())
}

/// Whether some pattern of `scope` reaches the hive `name`.
fn reaches(scope: &Scope, name: &str) -> bool {
    scope
        .patterns
        .iter()
        .any(|p| p.root == Root::Hku && p.keys.first().is_some_and(|g| g.matches(name)))
}

impl Runtime {
    /// The scan of input `i` (of `scope`, its whole scope or a region of
    /// it), with users' hives followed as they are loaded and unloaded:
    /// the offline ones are marked unavailable in the snapshot (their
    /// baseline is kept) and their `HIVE_OFFLINE` / `HIVE_ONLINE` events
    /// queued. `rebuild`: the baseline is being built anew (nothing is
    /// offline in it).
    pub(super) fn snapshot_following_hives(
        &mut self,
        i: usize,
        scope: &Scope,
        hint: usize,
        rebuild: bool,
    ) -> Result<Snapshot, RunError> {
        if !watches_users(scope) {
            return Ok(self.take_snapshot(scope, hint));
        }
        #[cfg(test)]
        if let Some(users) = FAKE.with(|f| f.borrow_mut().take()) {
            let r = self.follow(i, scope, hint, rebuild, users.as_ref());
            FAKE.with(|f| *f.borrow_mut() = Some(users));
            return r;
        }
        #[cfg(windows)]
        if scope.source == crate::source::Source::Live {
            return self.follow(i, scope, hint, rebuild, &LiveUsers);
        }
        // Hives are listed on the live registry only.
        #[cfg(not(any(windows, test)))]
        let _ = (i, rebuild);
        Ok(self.take_snapshot(scope, hint))
    }

    fn follow(
        &mut self,
        i: usize,
        scope: &Scope,
        hint: usize,
        rebuild: bool,
        users: &dyn Users,
    ) -> Result<Snapshot, RunError> {
        let name = self.inputs[i].name.clone();
        let before = users.loaded();
        let mut snap = self.take_snapshot(scope, hint);
        let after = users.loaded();
        if let Err(e) = before.as_ref().and(after.as_ref()) {
            tracing::warn!(input = %name, "cannot list the loaded user hives: {e}; the baseline of every user's hive is kept for this scan");
        }
        let stored = self.baseline(i)?.meta(OFFLINE_META)?;
        if rebuild {
            // A new baseline holds nothing of the hives that are offline.
            if stored.is_some() {
                self.baseline(i)?.set_meta(OFFLINE_META, None)?;
            }
            return Ok(snap);
        }
        let offline: BTreeSet<String> = stored
            .as_deref()
            .unwrap_or("")
            .lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        let known = self.baseline(i)?.child_keys(&ident::key_id(&["HKU"]))?;
        let d = decide(
            &known,
            |h| reaches(scope, h),
            |h| scope.exclude_classes && is_classes(h),
            before.as_deref().ok(),
            after.as_deref().ok(),
            &offline,
        );
        snap.unreadable.extend(d.unavailable);
        let mut events = Vec::new();
        for t in &d.transitions {
            let (kind, hive) = match t {
                Transition::Offline(h) => ("HIVE_OFFLINE", h),
                Transition::Online(h) => ("HIVE_ONLINE", h),
            };
            let key = format!("HKU\\{hive}");
            let sid = classes_sid(hive).unwrap_or(hive);
            let mut fields: Vec<(&str, nxconf::Value)> =
                vec![("RegistryKeyName", key.clone().into())];
            let mut who = String::new();
            if sid.starts_with("S-") {
                fields.push(("UserSID", sid.to_string().into()));
                if let Some(p) = users.profile_path(sid) {
                    let user = p.rsplit(['\\', '/']).next().unwrap_or(&p).to_string();
                    who = format!(" (profile {p})");
                    fields.push(("ProfilePath", p.clone().into()));
                    if !user.is_empty() {
                        fields.push(("UserName", user.into()));
                    }
                }
            }
            let message = match t {
                Transition::Offline(_) => format!(
                    "hive {key}{who} is no longer loaded (logoff, or its service stopped): \
                     its values keep their baseline and are compared again when it is loaded"
                ),
                Transition::Online(_) => format!(
                    "hive {key}{who} is loaded again: its values are compared with their baseline from this scan on"
                ),
            };
            tracing::info!(input = %name, "{message}");
            events.extend(self.render_notice_with(i, kind, &message, &fields));
        }
        if !events.is_empty() {
            let dropped = self.baseline(i)?.queue(&events)?;
            self.warn_dropped(Queue::Input(i), dropped);
        }
        // After the events: a crash between the two repeats an event
        // rather than losing it.
        let text: String = d.offline.iter().map(|h| format!("{h}\n")).collect();
        let text = (!text.is_empty()).then_some(text);
        if text != stored {
            self.baseline(i)?.set_meta(OFFLINE_META, text.as_deref())?;
        }
        Ok(snap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(hive: &str) -> Vec<u8> {
        ident::key_id(&["HKU", hive])
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_hive_in_neither_listing_goes_offline_once() {
        let known = [id("S-1-5-21-1"), id("S-1-5-18")];
        let loaded = names(&[".DEFAULT", "S-1-5-18"]);
        let d = decide(
            &known,
            |_| true,
            |_| false,
            Some(&loaded[..]),
            Some(&loaded[..]),
            &set(&[]),
        );
        assert_eq!(d.unavailable, vec![id("S-1-5-21-1")]);
        assert_eq!(
            d.transitions,
            vec![Transition::Offline("S-1-5-21-1".into())]
        );
        assert_eq!(d.offline, set(&["S-1-5-21-1"]));
        // The next scan: still offline, no second event.
        let d = decide(
            &known,
            |_| true,
            |_| false,
            Some(&loaded[..]),
            Some(&loaded[..]),
            &d.offline,
        );
        assert_eq!(d.unavailable, vec![id("S-1-5-21-1")]);
        assert!(d.transitions.is_empty());
        assert_eq!(d.offline, set(&["S-1-5-21-1"]));
    }

    #[test]
    fn a_hive_loaded_again_is_online_once_and_compared() {
        let known = [id("S-1-5-21-1")];
        let loaded = names(&["s-1-5-21-1"]);
        let d = decide(
            &known,
            |_| true,
            |_| false,
            Some(&loaded[..]),
            Some(&loaded[..]),
            &set(&["S-1-5-21-1"]),
        );
        assert!(d.unavailable.is_empty());
        assert_eq!(d.transitions, vec![Transition::Online("S-1-5-21-1".into())]);
        assert!(d.offline.is_empty());
    }

    #[test]
    fn a_hive_that_comes_or_goes_mid_scan_is_kept_and_decided_later() {
        let known = [id("A"), id("B")];
        let (with_a, with_b) = (names(&["A"]), names(&["B"]));
        let d = decide(
            &known,
            |_| true,
            |_| false,
            Some(&with_a[..]),
            Some(&with_b[..]),
            &set(&["B"]),
        );
        assert_eq!(d.unavailable, vec![id("A"), id("B")]);
        assert!(d.transitions.is_empty());
        assert_eq!(d.offline, set(&["B"]));
    }

    #[test]
    fn a_failed_listing_keeps_every_hive_and_changes_no_state() {
        let known = [id("A"), id("B")];
        let d = decide(
            &known,
            |_| true,
            |_| false,
            None,
            Some(&names(&[])[..]),
            &set(&["B"]),
        );
        assert_eq!(d.unavailable, vec![id("A"), id("B")]);
        assert!(d.transitions.is_empty());
        assert_eq!(d.offline, set(&["B"]));
    }

    #[test]
    fn hives_outside_the_scan_and_gone_hives_are_left_alone() {
        // B is offline but this (region) scan does not reach it; C left
        // the baseline (a rebuild): forgotten.
        let known = [id("A"), id("B")];
        let d = decide(
            &known,
            |h| h == "A",
            |_| false,
            Some(&names(&["A"])[..]),
            Some(&names(&["A"])[..]),
            &set(&["B", "C"]),
        );
        assert!(d.unavailable.is_empty());
        assert!(d.transitions.is_empty());
        assert_eq!(d.offline, set(&["B"]));
    }

    #[test]
    fn excluded_classes_hives_are_kept_silently() {
        let known = [id("S-1-5-21-1_Classes")];
        let d = decide(
            &known,
            |_| true,
            is_classes,
            Some(&names(&[])[..]),
            Some(&names(&[])[..]),
            &set(&[]),
        );
        assert_eq!(d.unavailable, vec![id("S-1-5-21-1_Classes")]);
        assert!(d.transitions.is_empty());
        assert_eq!(classes_sid("S-1-5-21-1_CLASSES"), Some("S-1-5-21-1"));
        assert_eq!(classes_sid("_Classes"), None);
        assert_eq!(classes_sid("S-1-5-18"), None);
    }

    /// The runtime's whole path, on a hive file mounted at a user's place
    /// and a stand-in for the registry's list of loaded hives.
    mod runtime {
        use super::super::{Runtime, Users, FAKE};
        use hive::write::{to_bytes, KeyNode, WriteOptions};
        use hive::ValueType;
        use std::path::Path;
        use std::sync::{Arc, Mutex};

        struct Fake(Arc<Mutex<Vec<String>>>);

        impl Users for Fake {
            fn loaded(&self) -> Result<Vec<String>, String> {
                Ok(self.0.lock().unwrap().clone())
            }
            fn profile_path(&self, sid: &str) -> Option<String> {
                (sid == "S-1-5-21-1").then(|| r"C:\Users\alice".to_string())
            }
        }

        const SID: &str = "S-1-5-21-1";

        fn write_hive(path: &Path, a: Option<u32>) {
            let mut root = KeyNode::new("ROOT");
            if let Some(a) = a {
                root = root.with_subkey(
                    KeyNode::new("Software").with_subkey(
                        KeyNode::new("Test")
                            .with_value("A", ValueType::DWORD, a.to_le_bytes().to_vec())
                            .with_value("B", ValueType::DWORD, 2u32.to_le_bytes().to_vec()),
                    ),
                );
            }
            std::fs::write(path, to_bytes(&root, &WriteOptions::default())).unwrap();
        }

        fn runtime(dir: &Path) -> Runtime {
            let conf = dir.join("r.conf");
            std::fs::write(
                &conf,
                format!(
                    "<Input r>\nModule im_regmon\nRegValue 'HKU\\*\\Software\\Test\\*'\n\
                     RegValue 'HKU\\*\\Software\\Other\\*'\nHiveFile 'HKU\\{SID}' 'h.hive'\n\
                     ScanInterval 0\n</Input>\n<Extension json>\nModule xm_json\n</Extension>\n\
                     <Output o>\nModule om_file\nFile '{}'\nExec to_json();\n</Output>\n",
                    dir.join("out.log").display()
                ),
            )
            .unwrap();
            Runtime::new(nxconf::load(&conf).unwrap()).unwrap()
        }

        /// The events of out.log, emptied. `NO_MATCH` notices (the
        /// `Other` pattern matches nothing at the first scan; a pattern
        /// whose values all went does too) are runtime::coverage's
        /// business, tested there: left out here.
        fn take(dir: &Path) -> Vec<serde_json::Value> {
            let p = dir.join("out.log");
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            std::fs::write(&p, "").unwrap();
            text.lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .filter(|e| e["EventType"] != "NO_MATCH")
                .collect()
        }

        fn kinds(events: &[serde_json::Value]) -> Vec<String> {
            events
                .iter()
                .map(|e| {
                    let name = e
                        .get("RegistryValueName")
                        .or_else(|| e.get("RegistryKeyName"))
                        .and_then(|v| v.as_str())
                        .unwrap_or("");
                    format!("{} {name}", e["EventType"].as_str().unwrap())
                })
                .collect()
        }

        #[test]
        fn an_unloaded_hive_keeps_its_baseline_and_says_so_once() {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            let hive = d.join("h.hive");
            let loaded = Arc::new(Mutex::new(vec![".DEFAULT".to_string(), SID.to_string()]));
            FAKE.with(|f| *f.borrow_mut() = Some(Box::new(Fake(loaded.clone()))));
            write_hive(&hive, Some(1));
            let mut rt = runtime(d);
            rt.scan(0).unwrap();
            assert!(take(d).is_empty());

            // Logoff: the hive is gone from HKU and its keys with it.
            write_hive(&hive, None);
            loaded.lock().unwrap().retain(|h| h != SID);
            rt.scan(0).unwrap();
            let ev = take(d);
            assert_eq!(kinds(&ev), [format!("HIVE_OFFLINE HKU\\{SID}")]);
            assert_eq!(ev[0]["UserSID"], SID);
            assert_eq!(ev[0]["UserName"], "alice");
            assert_eq!(ev[0]["ProfilePath"], r"C:\Users\alice");
            assert!(ev[0]["Message"]
                .as_str()
                .unwrap()
                .contains("no longer loaded"));
            rt.scan(0).unwrap();
            assert!(take(d).is_empty());
            // A restart while it is offline does not say it again.
            drop(rt);
            let mut rt = runtime(d);
            rt.scan(0).unwrap();
            assert!(take(d).is_empty());

            // Logon, nothing changed: one HIVE_ONLINE, nothing else.
            write_hive(&hive, Some(1));
            loaded.lock().unwrap().push(SID.to_string());
            rt.scan(0).unwrap();
            assert_eq!(kinds(&take(d)), [format!("HIVE_ONLINE HKU\\{SID}")]);
            rt.scan(0).unwrap();
            assert!(take(d).is_empty());

            // Off again, then back with one value changed: exactly that.
            write_hive(&hive, None);
            loaded.lock().unwrap().retain(|h| h != SID);
            rt.scan(0).unwrap();
            assert_eq!(kinds(&take(d)), [format!("HIVE_OFFLINE HKU\\{SID}")]);
            write_hive(&hive, Some(7));
            loaded.lock().unwrap().push(SID.to_string());
            rt.scan(0).unwrap();
            assert_eq!(
                kinds(&take(d)),
                [
                    format!("HIVE_ONLINE HKU\\{SID}"),
                    format!("CHANGE HKU\\{SID}\\Software\\Test\\A")
                ]
            );

            // Gone without leaving HKU's list (keys deleted while loaded):
            // ordinary DELETEs.
            write_hive(&hive, None);
            rt.scan(0).unwrap();
            assert_eq!(
                kinds(&take(d)),
                [
                    format!("DELETE HKU\\{SID}\\Software\\Test\\A"),
                    format!("DELETE HKU\\{SID}\\Software\\Test\\B")
                ]
            );
            FAKE.with(|f| *f.borrow_mut() = None);
        }
    }
}
