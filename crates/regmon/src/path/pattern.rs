//! Registry path patterns (`RegValue`, `Exclude`): a root, key components and
//! a value-name component, each with `*` and `?` wildcards, matched
//! case-insensitively. Backslash always separates, never escapes. A whole
//! key component `**` (our extension) matches zero or more key levels; a
//! last component `**` means every value at any depth (`X\**` = `X\**\*`).
//!
//! Key paths with `**` match as a small automaton over key components
//! ([`KeyPath`]): the set of pattern positions a key path can be at is
//! carried down the tree, so matching costs (path length x pattern length)
//! at worst, never backtracking.

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
/// A key component matching zero or more key levels.
const ANY_DEPTH: &str = "**";

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

    /// The component `**`: zero or more key levels.
    pub fn any_depth() -> Glob {
        Glob::new(ANY_DEPTH)
    }

    /// Whether this is the component `**` (not a name holding it).
    pub fn is_any_depth(&self) -> bool {
        !self.exact && self.text == ANY_DEPTH
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
    /// Whether `Recursive TRUE` extends this pattern below its key path:
    /// only when the key path has no wildcard (NXLog's rule: "This
    /// directive only causes scanning under the given path"). False in a
    /// pattern narrowed to a region, whose reach is spelled out with `**`.
    pub recurses: bool,
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
        let Some((value, keys)) = parts[1..].split_last() else {
            return Err(format!("'{text}': no value component"));
        };
        if let Some(i) = keys.iter().position(|k| k.is_empty()) {
            return Err(format!("'{text}': empty key name in component {}", i + 2));
        }
        let mut globs: Vec<Glob> = Vec::with_capacity(keys.len() + 1);
        // A last `**` is every value at any depth: `X\**` = `X\**\*`.
        let (keys, value): (Vec<&str>, &str) = if *value == ANY_DEPTH {
            (keys.iter().copied().chain([ANY_DEPTH]).collect(), "*")
        } else {
            (keys.to_vec(), value)
        };
        for k in keys {
            // `**\**` is one `**`: fewer positions to carry, same matches.
            if k == ANY_DEPTH && globs.last().is_some_and(Glob::is_any_depth) {
                continue;
            }
            globs.push(Glob::new(k));
        }
        let recurses = globs.iter().all(Glob::is_literal);
        Ok(Pattern {
            root,
            keys: globs,
            value: Glob::new(value),
            text: text.to_string(),
            recurses,
        })
    }

    /// Whether a key component holds a wildcard (`*`, `?` or `**`).
    pub fn key_wildcards(&self) -> bool {
        !self.keys.iter().all(Glob::is_literal)
    }

    /// The key components a scan follows: with `Recursive TRUE` on a
    /// pattern it extends ([`Pattern::recurses`]), an implicit `**` before
    /// the value component (the value pattern in every subkey below).
    pub fn walked_keys(&self, recursive: bool) -> Vec<Glob> {
        let mut keys = self.keys.clone();
        if recursive && self.recurses && !keys.last().is_some_and(Glob::is_any_depth) {
            keys.push(Glob::any_depth());
        }
        keys
    }

    /// Whether the value-name glob matches `name` ("" is the default value,
    /// also matched by a literal `(Default)`).
    pub fn matches_value_name(&self, name: &str) -> bool {
        self.value.matches(name)
            || (name.is_empty() && self.value.text().eq_ignore_ascii_case("(Default)"))
    }
}

/// Tells, at load time, where `Recursive TRUE` does not reach: below key
/// components with wildcards (NXLog's rule), which users of older regmon
/// releases or other tools may expect.
pub fn note_recursive(input: &str, patterns: &[Pattern], recursive: bool) {
    if !recursive {
        return;
    }
    for p in patterns.iter().filter(|p| p.key_wildcards()) {
        tracing::info!(
            "input '{input}': RegValue '{}': Recursive does not reach below wildcard key \
             components (NXLog's rule); write `**` for any depth",
            p.text
        );
    }
}

/// A set of positions in a [`KeyPath`] (a bit set; one word for the
/// common short patterns).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum States {
    Small(u64),
    Big(Box<[u64]>),
}

impl States {
    fn empty(positions: usize) -> States {
        if positions <= 64 {
            States::Small(0)
        } else {
            States::Big(vec![0; positions.div_ceil(64)].into_boxed_slice())
        }
    }

    fn words(&self) -> &[u64] {
        match self {
            States::Small(w) => std::slice::from_ref(w),
            States::Big(b) => b,
        }
    }

    fn insert(&mut self, i: usize) {
        let w = match self {
            States::Small(w) => Some(w),
            States::Big(b) => b.get_mut(i / 64),
        };
        if let Some(w) = w {
            *w |= 1 << (i % 64);
        }
    }

    pub fn contains(&self, i: usize) -> bool {
        self.words()
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    pub fn is_empty(&self) -> bool {
        self.words().iter().all(|&w| w == 0)
    }

    /// The positions, in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words().iter().enumerate().flat_map(|(n, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                (w != 0).then(|| {
                    let b = w.trailing_zeros() as usize;
                    w &= w - 1;
                    n * 64 + b
                })
            })
        })
    }
}

/// Key components as an automaton: position `i` means "components before
/// `i` are matched"; position `len()` means the whole path is. A `**` at
/// `i` stays at `i` on any name and may also be skipped (zero levels).
#[derive(Clone, Debug)]
pub struct KeyPath {
    comps: Vec<Glob>,
    deep: Vec<bool>,
    /// Whether some component is `**` (otherwise a plain walk suffices).
    any_deep: bool,
}

impl KeyPath {
    pub fn new(comps: Vec<Glob>) -> KeyPath {
        let deep: Vec<bool> = comps.iter().map(Glob::is_any_depth).collect();
        KeyPath {
            any_deep: deep.iter().any(|&d| d),
            comps,
            deep,
        }
    }

    /// How many components.
    pub fn len(&self) -> usize {
        self.comps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.comps.is_empty()
    }

    pub fn comps(&self) -> &[Glob] {
        &self.comps
    }

    /// Whether component `i` is `**`.
    pub fn is_deep(&self, i: usize) -> bool {
        self.deep.get(i).copied().unwrap_or(false)
    }

    /// Where no name is matched yet.
    pub fn start(&self) -> States {
        let mut s = States::empty(self.len() + 1);
        s.insert(0);
        self.close(s)
    }

    /// Adds what `**` positions reach by matching zero levels.
    fn close(&self, mut s: States) -> States {
        if !self.any_deep {
            return s;
        }
        // Increasing order: a skip lands on a later position, seen next.
        for i in 0..self.len() {
            if self.deep[i] && s.contains(i) {
                s.insert(i + 1);
            }
        }
        s
    }

    /// The positions after one more key level named `name`.
    pub fn step(&self, s: &States, name: &str) -> States {
        let mut out = States::empty(self.len() + 1);
        for i in s.iter() {
            let Some(g) = self.comps.get(i) else {
                continue;
            };
            if self.deep[i] {
                out.insert(i);
            } else if g.matches(name) {
                out.insert(i + 1);
            }
        }
        self.close(out)
    }

    /// Whether the whole path is matched at `s`.
    pub fn accepts(&self, s: &States) -> bool {
        s.contains(self.len())
    }

    /// Whether some component is still to match at `s` (keys below matter).
    pub fn goes_on(&self, s: &States) -> bool {
        s.iter().next().is_some_and(|i| i < self.len())
    }

    /// The names the next level must have, when every component still to
    /// match at `s` is a literal name (children are then looked up by name,
    /// not listed); None when some is a wildcard or `**`.
    pub fn next_names(&self, s: &States) -> Option<Vec<&str>> {
        let mut names: Vec<&str> = Vec::new();
        for i in s.iter().filter(|&i| i < self.len()) {
            let g = &self.comps[i];
            if self.deep[i] || !g.is_literal() {
                return None;
            }
            if !names.iter().any(|n| same_name(n, g.text())) {
                names.push(g.text());
            }
        }
        Some(names)
    }

    /// Whether the path `names` is matched whole, or (`prefix`) some
    /// leading part of it is.
    fn matches(&self, names: &[String], prefix: bool) -> bool {
        let mut s = self.start();
        for n in names {
            s = self.step(&s, n);
            if s.is_empty() {
                return false;
            }
            if prefix && self.accepts(&s) {
                return true;
            }
        }
        self.accepts(&s)
    }
}

/// An `Exclude` list: a pattern matching a full value path excludes that
/// value; one matching a key path excludes the key's whole subtree.
#[derive(Clone, Debug, Default)]
pub struct Excludes {
    pats: Vec<Rule>,
}

/// One `Exclude` pattern: its components, the value's last, as a
/// [`KeyPath`] when it has `**` (a plain component-by-component walk
/// otherwise).
#[derive(Clone, Debug)]
struct Rule {
    root: Root,
    comps: Vec<Glob>,
    /// With `**`: all components, and those before the value's.
    deep: Option<(KeyPath, KeyPath)>,
}

impl Rule {
    /// Whether the rule's components match the key path `path` or one of
    /// its ancestors.
    fn cuts_key(&self, root: Root, path: &[String]) -> bool {
        if self.root != root {
            return false;
        }
        match &self.deep {
            Some((all, _)) => all.matches(path, true),
            None => {
                self.comps.len() <= path.len()
                    && self.comps.iter().zip(path).all(|(g, s)| g.matches(s))
            }
        }
    }

    /// Whether the rule matches value `name` (also shown as `shown`) of
    /// the key at `path`.
    fn cuts_value(&self, root: Root, path: &[String], name: &str, shown: &str) -> bool {
        let Some((last, keys)) = self.comps.split_last() else {
            return false;
        };
        if self.root != root || !(last.matches(name) || last.matches(shown)) {
            return false;
        }
        match &self.deep {
            Some((_, keys)) => keys.matches(path, false),
            None => keys.len() == path.len() && keys.iter().zip(path).all(|(g, s)| g.matches(s)),
        }
    }
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
                    let deep = comps
                        .iter()
                        .any(Glob::is_any_depth)
                        .then(|| (KeyPath::new(comps.clone()), KeyPath::new(p.keys.clone())));
                    Rule {
                        root: p.root,
                        comps,
                        deep,
                    }
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
        self.pats.iter().position(|r| r.cuts_key(root, path))
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
        self.pats
            .iter()
            .position(|r| r.cuts_value(root, path, name, shown))
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

    fn p(s: &str) -> Vec<String> {
        s.split('\\').map(String::from).collect()
    }

    /// Whether `pattern` (with `recursive`) covers value `name` of the key
    /// at `key` (below the root), as a scan decides it.
    fn covers(pattern: &str, recursive: bool, key: &str, name: &str) -> bool {
        let pat = Pattern::parse(pattern).unwrap();
        let kp = KeyPath::new(pat.walked_keys(recursive));
        let mut s = kp.start();
        for n in p(key) {
            s = kp.step(&s, &n);
        }
        kp.accepts(&s) && pat.matches_value_name(name)
    }

    #[test]
    fn any_depth_components() {
        let q = Pattern::parse(r"HKLM\A\**").unwrap();
        assert_eq!(q.keys.len(), 2);
        assert!(q.keys[1].is_any_depth() && q.value.text() == "*");
        assert!(!q.recurses && q.key_wildcards());
        // `**\**` is one `**`.
        assert_eq!(Pattern::parse(r"HKLM\**\**\v").unwrap().keys.len(), 1);
        // Inside a name it is a plain glob, one level.
        assert!(!Glob::new("a**b").is_any_depth() && Glob::new("a**b").matches("aXYb"));
        assert!(!Glob::literal("**").is_any_depth());

        // `X\**` = `X\**\*`: every value at any depth, X's own included.
        for key in [r"A", r"A\B", r"A\B\C\D"] {
            assert!(covers(r"HKLM\A\**", false, key, "v"), "{key}");
            assert!(covers(r"HKLM\A\**\*", false, key, "v"), "{key}");
        }
        assert!(!covers(r"HKLM\A\**", false, r"B", "v"));
        // `**` in the middle: zero or more levels.
        for key in [r"S\Run", r"S\M\W\Run"] {
            assert!(covers(r"HKLM\S\**\Run\v", false, key, "v"), "{key}");
        }
        assert!(!covers(r"HKLM\S\**\Run\v", false, r"S\Run\X", "v"));
        assert!(!covers(r"HKLM\S\**\Run\v", false, r"S\M", "v"));
        // Several `**`, and a glob between them.
        assert!(covers(r"HKLM\**\R?n\**\v*", false, r"a\Run\b\c", "v2"));
        assert!(covers(r"HKLM\**\R?n\**\v*", false, r"Run", "v"));
        assert!(!covers(r"HKLM\**\R?n\**\v*", false, r"a\Rn\b", "v"));
        // `*` and `?` are one level each.
        assert!(covers(r"HKLM\A\*\v", false, r"A\B", "v"));
        assert!(!covers(r"HKLM\A\*\v", false, r"A\B\C", "v"));
    }

    /// NXLog's reference on Recursive, example by example.
    #[test]
    fn recursive_follows_nxlog() {
        // "HKCU\test\value will match HKCU\test\subkey\value"
        assert!(covers(r"HKCU\test\value", true, r"test\subkey", "value"));
        assert!(covers(r"HKCU\test\value", true, r"test", "value"));
        assert!(!covers(r"HKCU\test\value", false, r"test\subkey", "value"));
        // "HKCU\test\value* will match HKCU\test\subkey\value2"
        assert!(covers(r"HKCU\test\value*", true, r"test\subkey", "value2"));
        // "HKCU\*\value will not match HKCU\test\subkey\value"
        assert!(!covers(r"HKCU\*\value", true, r"test\subkey", "value"));
        assert!(covers(r"HKCU\*\value", true, r"test", "value"));
        // `**` is the way to any depth.
        assert!(covers(r"HKCU\**\value", false, r"test\subkey", "value"));
        assert!(covers(r"HKCU\**\value", true, r"test\subkey", "value"));
        assert!(Pattern::parse(r"HKCU\test\value*").unwrap().recurses);
        assert!(!Pattern::parse(r"HKCU\*\value").unwrap().recurses);
    }

    #[test]
    fn states_beyond_one_word() {
        // A pattern longer than 64 positions uses the wide set.
        let long = format!(r"HKLM\{}\**\v", vec!["k"; 70].join("\\"));
        let path = vec!["k"; 70].join("\\");
        assert!(covers(&long, false, &format!(r"{path}\x\y"), "v"));
        assert!(covers(&long, false, &path, "v"));
        assert!(!covers(&long, false, &vec!["k"; 69].join("\\"), "v"));
    }

    /// Hostile patterns cost (path x pattern), not exponential time.
    #[test]
    fn many_any_depths_stay_cheap() {
        let pat = format!(r"HKLM\{}\z", vec!["**\\a"; 40].join("\\"));
        let key = format!(r"{}\b", vec!["a"; 499].join("\\"));
        let t = std::time::Instant::now();
        assert!(!covers(&pat, false, &key, "z"));
        let ex = Excludes::new(&[Pattern::parse(&pat).unwrap()]);
        assert!(!ex.excludes_key(Root::Hklm, &p(&key)));
        // Generous: exponential backtracking would take ages.
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn excludes_with_any_depth() {
        let ex = Excludes::new(&[
            Pattern::parse(r"HKLM\Software\**\Secret").unwrap(),
            Pattern::parse(r"HKLM\Software\Cache\**").unwrap(),
        ]);
        // A key named Secret at any depth, with its subtree.
        assert_eq!(ex.key_rule(Root::Hklm, &p(r"Software\Secret")), Some(0));
        assert_eq!(
            ex.key_rule(Root::Hklm, &p(r"Software\A\B\Secret\C")),
            Some(0)
        );
        assert_eq!(ex.key_rule(Root::Hklm, &p(r"Software\A\B")), None);
        assert_eq!(ex.key_rule(Root::Hklm, &p(r"Other\Secret")), None);
        // A value named Secret at any depth.
        assert_eq!(
            ex.value_rule(Root::Hklm, &p(r"Software\A\B"), "secret"),
            Some(0)
        );
        assert_eq!(
            ex.value_rule(Root::Hklm, &p(r"Software"), "Secret"),
            Some(0)
        );
        assert_eq!(ex.value_rule(Root::Hklm, &p(r"Other"), "Secret"), None);
        assert_eq!(ex.value_rule(Root::Hklm, &p(r"Software\A"), "other"), None);
        // `Cache\**`: Cache's own values and everything below.
        assert_eq!(
            ex.value_rule(Root::Hklm, &p(r"Software\Cache"), "x"),
            Some(1)
        );
        assert_eq!(
            ex.value_rule(Root::Hklm, &p(r"Software\Cache"), ""),
            Some(1)
        );
        assert_eq!(ex.key_rule(Root::Hklm, &p(r"Software\Cache\A\B")), Some(1));
        assert_eq!(ex.key_rule(Root::Hklm, &p(r"Software\Cache")), None);
        assert_eq!(ex.value_rule(Root::Hklm, &p(r"Software"), "Cache"), None);
        assert!(!ex.excludes_key(Root::Hkcu, &p(r"Software\Secret")));
    }
}
