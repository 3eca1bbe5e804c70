//! Registry path patterns (`RegValue`, `Exclude`): a root, key components and
//! a value-name component, each with `*` and `?` wildcards, matched
//! case-insensitively. Backslash always separates, never escapes.

use std::fmt;

/// The predefined root keys, by their short names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Root {
    Hklm,
    Hkcu,
    Hku,
    Hkcr,
    Hkcc,
}

impl Root {
    pub fn parse(s: &str) -> Option<Root> {
        Some(match s.to_ascii_uppercase().as_str() {
            "HKLM" | "HKEY_LOCAL_MACHINE" => Root::Hklm,
            "HKCU" | "HKEY_CURRENT_USER" => Root::Hkcu,
            "HKU" | "HKEY_USERS" => Root::Hku,
            "HKCR" | "HKEY_CLASSES_ROOT" => Root::Hkcr,
            "HKCC" | "HKEY_CURRENT_CONFIG" => Root::Hkcc,
            _ => return None,
        })
    }

    pub fn short(self) -> &'static str {
        match self {
            Root::Hklm => "HKLM",
            Root::Hkcu => "HKCU",
            Root::Hku => "HKU",
            Root::Hkcr => "HKCR",
            Root::Hkcc => "HKCC",
        }
    }
}

impl fmt::Display for Root {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short())
    }
}

/// Case-insensitive equality of two names, as Windows compares them: UTF-16
/// code unit by code unit, each upper-cased alone (the hive crate's rule,
/// the one rule for names everywhere in regmon).
pub use hive::same_name_str as same_name;

const STAR: u16 = b'*' as u16;
const QUESTION: u16 = b'?' as u16;

/// One path component: literal text or a glob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    /// Upper-cased pattern code units (UTF-16, as names compare).
    chars: Vec<u16>,
    text: String,
    /// A name taken as is: `*` and `?` in it are plain characters.
    exact: bool,
}

impl Glob {
    pub fn new(text: &str) -> Glob {
        Glob {
            chars: hive::upcase_str(text),
            text: text.to_string(),
            exact: false,
        }
    }

    /// A component matching exactly `name` (case-insensitive), whatever
    /// characters it holds: a key name as stored may contain `*` or `?`.
    pub fn literal(name: &str) -> Glob {
        Glob {
            exact: true,
            ..Glob::new(name)
        }
    }

    pub fn is_literal(&self) -> bool {
        self.exact || !self.chars.iter().any(|&c| c == STAR || c == QUESTION)
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Case-insensitive match of the whole of `s`.
    pub fn matches(&self, s: &str) -> bool {
        // `*` alone is the common case (every value): no work at all.
        if self.chars.len() == 1 && self.chars[0] == STAR && !self.exact {
            return true;
        }
        if self.is_literal() && s.is_ascii() && self.text.is_ascii() {
            return s.eq_ignore_ascii_case(&self.text);
        }
        if self.exact {
            return self
                .chars
                .iter()
                .copied()
                .eq(s.encode_utf16().map(hive::upcase_unit));
        }
        let s: Vec<u16> = hive::upcase_str(s);
        glob_match(&self.chars, &s)
    }
}

/// Iterative wildcard match with single-star backtracking: linear-ish, no
/// recursion, so hostile patterns cannot blow the stack.
fn glob_match(p: &[u16], s: &[u16]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == QUESTION || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == STAR {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == STAR)
}

/// A parsed `RegValue` / `Exclude` pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    pub root: Root,
    /// Key components below the root.
    pub keys: Vec<Glob>,
    /// The value-name component (the last one).
    pub value: Glob,
    pub text: String,
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, String> {
        let parts: Vec<&str> = text.split('\\').collect();
        let root = Root::parse(parts[0]).ok_or_else(|| {
            format!(
                "'{text}': the path must start with HKLM, HKCU, HKU, HKCR or HKCC \
                 (or HKEY_LOCAL_MACHINE, HKEY_CURRENT_USER, HKEY_USERS, HKEY_CLASSES_ROOT, HKEY_CURRENT_CONFIG)"
            )
        })?;
        if parts.len() < 2 {
            return Err(format!(
                "'{text}': no value component (write e.g. '{}\\Software\\*')",
                parts[0]
            ));
        }
        let (value, keys) = parts[1..].split_last().expect("two parts at least");
        if let Some(i) = keys.iter().position(|k| k.is_empty()) {
            return Err(format!("'{text}': empty key name in component {}", i + 2));
        }
        Ok(Pattern {
            root,
            keys: keys.iter().map(|k| Glob::new(k)).collect(),
            value: Glob::new(value),
            text: text.to_string(),
        })
    }

    /// Whether the value-name glob matches `name` ("" is the default value,
    /// also matched by a literal `(Default)`).
    pub fn matches_value_name(&self, name: &str) -> bool {
        self.value.matches(name)
            || (name.is_empty() && self.value.text().eq_ignore_ascii_case("(Default)"))
    }
}

/// An `Exclude` list: a pattern matching a full value path excludes that
/// value; one matching a key path excludes the key's whole subtree.
#[derive(Clone, Debug, Default)]
pub struct Excludes {
    pats: Vec<(Root, Vec<Glob>)>,
}

impl Excludes {
    /// How many rules there are.
    pub fn len(&self) -> usize {
        self.pats.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pats.is_empty()
    }
}

impl Excludes {
    pub fn new(patterns: &[Pattern]) -> Excludes {
        Excludes {
            pats: patterns
                .iter()
                .map(|p| {
                    let mut comps = p.keys.clone();
                    comps.push(p.value.clone());
                    (p.root, comps)
                })
                .collect(),
        }
    }

    /// Whether the key at `path` (components below `root`) is excluded with
    /// its subtree: some pattern matches the key path or one of its ancestors.
    pub fn excludes_key(&self, root: Root, path: &[String]) -> bool {
        self.key_rule(root, path).is_some()
    }

    /// The first rule (its index, in configuration order) that excludes
    /// the key at `path` with its subtree.
    pub fn key_rule(&self, root: Root, path: &[String]) -> Option<usize> {
        self.pats.iter().position(|(r, comps)| {
            *r == root
                && comps.len() <= path.len()
                && comps.iter().zip(path).all(|(g, s)| g.matches(s))
        })
    }

    /// Whether the value `name` of the key at `path` is excluded (the key
    /// itself being excluded is checked separately, once per key).
    pub fn excludes_value(&self, root: Root, path: &[String], name: &str) -> bool {
        self.value_rule(root, path, name).is_some()
    }

    /// The first rule (its index) that excludes the value `name` of the
    /// key at `path`.
    pub fn value_rule(&self, root: Root, path: &[String], name: &str) -> Option<usize> {
        if self.pats.is_empty() {
            return None;
        }
        let shown = if name.is_empty() { "(Default)" } else { name };
        self.pats.iter().position(|(r, comps)| {
            *r == root
                && comps.len() == path.len() + 1
                && comps[..path.len()]
                    .iter()
                    .zip(path)
                    .all(|(g, s)| g.matches(s))
                && {
                    let last = &comps[path.len()];
                    last.matches(name) || last.matches(shown)
                }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One rule for names (Windows': UTF-16 code units upper-cased one by
    /// one) in patterns, excludes, regions and lookups, non-ASCII included.
    #[test]
    fn names_compare_as_windows_compares_them() {
        for (a, b) in [
            ("Ä", "ä"),
            ("ΣΟΦΊΑ", "σοφία"),
            ("ЖУРНАЛ", "журнал"),
            ("Größe", "GRÖSSE"),
        ] {
            let same = a != "Größe";
            assert_eq!(same_name(a, b), same, "{a} {b}");
            assert_eq!(Glob::new(a).matches(b), same, "{a} {b}");
            assert_eq!(Glob::literal(a).matches(b), same, "{a} {b}");
        }
        // ß has no one-unit upper case: "Größe" is not "GRÖSSE" (Windows
        // agrees), but is "GRÖßE".
        assert!(same_name("Größe", "GRÖßE"));
        assert!(Glob::new("gr?ße*").matches("GRÖßE-X"));
        assert!(Glob::new("*ЖУР*").matches("мой журнал"));
        let p = Pattern::parse(r"HKLM\Software\Ä*\σ?").unwrap();
        assert!(p.keys[1].matches("äpfel") && p.value.matches("ΣΩ"));
        let ex = Excludes::new(&[Pattern::parse(r"HKLM\Software\ÄPFEL").unwrap()]);
        assert!(ex.excludes_key(Root::Hklm, &["software".into(), "äpfel".into()]));
    }

    #[test]
    fn globs() {
        let g = Glob::new("Po*c?es");
        assert!(g.matches("policies"));
        assert!(g.matches("POLICIES"));
        assert!(!g.matches("Policy"));
        assert!(Glob::new("*").matches(""));
        assert!(Glob::new("a*b*c").matches("aXXbYYc"));
        assert!(!Glob::new("a*b*c").matches("aXXbYY"));
        assert!(!Glob::new("*").is_literal());
        assert!(Glob::new("é*").matches("ÉTÉ"));
    }

    #[test]
    fn parse_patterns() {
        let p = Pattern::parse("HKLM\\Software\\Policies\\*").unwrap();
        assert_eq!(p.root, Root::Hklm);
        assert_eq!(p.keys.len(), 2);
        assert!(p.matches_value_name(""));
        let p = Pattern::parse("HKEY_LOCAL_MACHINE\\X\\(Default)").unwrap();
        assert!(p.matches_value_name(""));
        assert!(!p.matches_value_name("x"));
        assert!(Pattern::parse("HKXX\\a")
            .unwrap_err()
            .contains("must start with"));
        assert!(Pattern::parse("HKLM")
            .unwrap_err()
            .contains("no value component"));
        assert!(Pattern::parse("HKLM\\a\\\\b")
            .unwrap_err()
            .contains("empty key"));
    }

    #[test]
    fn excludes() {
        let ex = Excludes::new(&[
            Pattern::parse("HKLM\\Software\\Program Groups\\*").unwrap(),
            Pattern::parse("HKLM\\Software\\X\\Secret").unwrap(),
        ]);
        let p = |s: &str| s.split('\\').map(String::from).collect::<Vec<_>>();
        assert!(ex.excludes_key(Root::Hklm, &p("Software\\Program Groups\\Sub")));
        assert!(ex.excludes_key(Root::Hklm, &p("Software\\Program Groups\\Sub\\Deeper")));
        assert!(!ex.excludes_key(Root::Hklm, &p("Software\\Program Groups")));
        assert!(ex.excludes_value(Root::Hklm, &p("Software\\Program Groups"), "v"));
        assert!(ex.excludes_value(Root::Hklm, &p("Software\\X"), "secret"));
        assert!(!ex.excludes_value(Root::Hklm, &p("Software\\X"), "other"));
        assert!(!ex.excludes_key(Root::Hkcu, &p("Software\\Program Groups\\Sub")));
    }
}
