//! A region: the part of an input's scope below one key, which a `Realtime`
//! notification says changed. A rescan of regions scans only them and
//! compares only the baseline rows inside them; everything else keeps its
//! baseline untouched.

use crate::path::ident;
use crate::path::pattern::{same_name, Glob, KeyPath, Pattern, Root};
use std::fmt;

/// The values of key `root\path` (and, when `subtree`, of every key below
/// it) that the input's scope covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    pub root: Root,
    pub path: Vec<String>,
    pub subtree: bool,
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.root.short())?;
        for c in &self.path {
            write!(f, "\\{c}")?;
        }
        if self.subtree {
            f.write_str("\\...")?;
        }
        Ok(())
    }
}

impl Region {
    /// Whether the key with identity `key_id` lies in the region.
    pub fn contains_key(&self, key_id: &[u8]) -> bool {
        let Some(parts) = ident::parse(key_id) else {
            return false;
        };
        let mut parts = parts.keys.iter();
        if parts.next().map(|r| r.as_slice()) != Some(self.root.short().as_bytes()) {
            return false;
        }
        let mut n = 0;
        for c in parts {
            match self.path.get(n) {
                Some(want) if same_name(want, &ident::display_name(c)) => n += 1,
                Some(_) => return false,
                // Deeper than the region's key.
                None => return self.subtree,
            }
        }
        n == self.path.len()
    }

    /// Whether the value with identity `id` lies in the region.
    pub fn contains_value(&self, id: &[u8]) -> bool {
        self.contains_key(&id[..ident::key_len(id)])
    }

    /// Patterns covering together what `p` covers inside the region (see
    /// `Scope::within`): the region's key pinned by exact names, then
    /// what of `p` is still to match there. Recursion is spelled out (an
    /// explicit `**`) and the results do not recurse again, so a pattern
    /// that Recursive does not extend (wildcard key components) is not
    /// extended by narrowing either. A `**` may leave several ways to go on
    /// (e.g. `HKLM\**\Run\*` at `HKLM\Software\Run`: the region's own
    /// values, and every `Run` below): one pattern each.
    pub fn narrow(&self, p: &Pattern, recursive: bool) -> Vec<Pattern> {
        if p.root != self.root {
            return Vec::new();
        }
        let kp = KeyPath::new(p.walked_keys(recursive));
        let mut s = kp.start();
        for name in &self.path {
            s = kp.step(&s, name);
            if s.is_empty() {
                return Vec::new();
            }
        }
        let pinned = || self.path.iter().map(|k| Glob::literal(k));
        let make = |rest: &[Glob]| Pattern {
            root: p.root,
            keys: pinned().chain(rest.iter().cloned()).collect(),
            value: p.value.clone(),
            text: p.text.clone(),
            recurses: false,
        };
        if !self.subtree {
            // The region's own values only.
            return if kp.accepts(&s) {
                vec![make(&[])]
            } else {
                Vec::new()
            };
        }
        s.iter()
            // A position right after an active `**` is covered by it.
            .filter(|&i| !(i > 0 && kp.is_deep(i - 1) && s.contains(i - 1)))
            .map(|i| make(kp.comps().get(i..).unwrap_or_default()))
            .collect()
    }
}

/// Whether a value (its identity) lies in any of `regions`.
pub fn in_any(regions: &[Region], id: &[u8]) -> bool {
    regions.iter().any(|r| r.contains_value(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Scope;

    fn region(p: &str, subtree: bool) -> Region {
        let mut parts = p.split('\\');
        Region {
            root: Root::parse(parts.next().unwrap()).unwrap(),
            path: parts.map(String::from).collect(),
            subtree,
        }
    }

    fn scope(pats: &[&str], recursive: bool) -> Scope {
        Scope::for_test(pats, recursive)
    }

    fn texts(s: &Scope) -> Vec<String> {
        s.patterns
            .iter()
            .map(|p| {
                let mut t = p.root.short().to_string();
                for k in &p.keys {
                    t.push('\\');
                    t.push_str(k.text());
                }
                t.push('\\');
                t.push_str(p.value.text());
                t
            })
            .collect()
    }

    #[test]
    fn contains_is_case_insensitive_and_respects_subtree() {
        let k = |p: &str| ident::key_id(&p.split('\\').collect::<Vec<_>>());
        let r = region(r"HKLM\Software\Policies", false);
        assert!(r.contains_key(&k(r"HKLM\SOFTWARE\policies")));
        assert!(!r.contains_key(&k(r"HKLM\Software\Policies\Sub")));
        assert!(!r.contains_key(&k(r"HKLM\Software")));
        assert!(!r.contains_key(&k(r"HKCU\Software\Policies")));
        assert!(!r.contains_key(&k(r"HKLM\Software\PoliciesX")));
        let t = region(r"HKLM\Software\Policies", true);
        assert!(t.contains_key(&k(r"HKLM\Software\Policies\Sub\Deeper")));
        assert!(t.contains_key(&k(r"HKLM\Software\Policies")));
        assert!(!t.contains_key(&k(r"HKLM\Software\Other")));
        // The value name may hold backslashes: only the key part counts.
        let v = ident::value_id(&k(r"HKLM\Software\Policies"), b"a\\b");
        assert!(r.contains_value(&v));
        assert!(!region(r"HKLM\Software\Policies\a", false).contains_value(&v));
        assert!(region(r"HKLM\Ünï", false).contains_key(&k(r"HKLM\üNÏ")));
    }

    #[test]
    fn narrowing_pins_keys_to_the_region() {
        let s = scope(
            &[r"HKLM\Software\*\Run\*", r"HKLM\Software\Policies\*"],
            true,
        );
        let w = s.within(&[region(r"HKLM\Software\Microsoft", true)]);
        assert_eq!(texts(&w), [r"HKLM\Software\Microsoft\Run\*"]);
        let w = s.within(&[region(r"HKLM\Software\Policies\Sub", true)]);
        // Only the second pattern reaches there (by recursion, spelled out).
        assert_eq!(texts(&w), [r"HKLM\Software\Policies\Sub\**\*"]);
        // Recursive does not extend a pattern with wildcard key components
        // (NXLog's rule): nothing below `Run`, and the pinned pattern does
        // not recurse either.
        assert!(s
            .within(&[region(r"HKLM\Software\Microsoft\Run\Sub", true)])
            .patterns
            .is_empty());
        assert!(w.patterns.iter().all(|p| !p.recurses));
        // Not recursive: a key deeper than the pattern's is out of reach.
        let s = scope(&[r"HKLM\Software\Policies\*"], false);
        assert!(s
            .within(&[region(r"HKLM\Software\Policies\Sub", true)])
            .patterns
            .is_empty());
        assert_eq!(
            texts(&s.within(&[region(r"HKLM\Software\Policies", false)])),
            [r"HKLM\Software\Policies\*"]
        );
        // Another root or a non-matching component: nothing.
        assert!(s
            .within(&[region(r"HKCU\Software\Policies", false)])
            .patterns
            .is_empty());
        assert!(s
            .within(&[region(r"HKLM\Software\Other", false)])
            .patterns
            .is_empty());
    }

    #[test]
    fn narrowing_any_depth() {
        let s = scope(&[r"HKLM\Software\**\Run\*"], false);
        // Above the `**`: the rest of the pattern, pinned.
        assert_eq!(
            texts(&s.within(&[region(r"HKLM\Software", true)])),
            [r"HKLM\Software\**\Run\*"]
        );
        // Inside its reach: still any depth below.
        assert_eq!(
            texts(&s.within(&[region(r"HKLM\Software\Microsoft", true)])),
            [r"HKLM\Software\Microsoft\**\Run\*"]
        );
        // At a `Run`: its own values, and every `Run` below.
        assert_eq!(
            texts(&s.within(&[region(r"HKLM\Software\M\Run", true)])),
            [r"HKLM\Software\M\Run\**\Run\*", r"HKLM\Software\M\Run\*"]
        );
        // The key alone: only a `Run` has values there.
        assert_eq!(
            texts(&s.within(&[region(r"HKLM\Software\M\Run", false)])),
            [r"HKLM\Software\M\Run\*"]
        );
        assert!(s
            .within(&[region(r"HKLM\Software\M", false)])
            .patterns
            .is_empty());
        assert!(s.within(&[region(r"HKLM\Other", true)]).patterns.is_empty());
        // A last `**`: everything at and below the region.
        let s = scope(&[r"HKLM\Software\**"], true);
        assert_eq!(
            texts(&s.within(&[region(r"HKLM\Software\A\B", true)])),
            [r"HKLM\Software\A\B\**\*"]
        );
        assert_eq!(
            texts(&s.within(&[region(r"HKLM\Software\A\B", false)])),
            [r"HKLM\Software\A\B\*"]
        );
    }
}
