//! Deterministic sample hives built with our own writer: the ~1,000,000-value
//! benchmark hive (`--make-big`) and small fuzzing seeds (`--make-seeds`).
//!
//! The big hive follows the mix that `shared/tools/make-big-hive.py`
//! describes (a SOFTWARE-like tree, heavy-tailed fan-out with a few wide
//! GUID-named keys, 0..100 values per key, realistic names and types, ~3 %
//! non-ASCII names, a few dozen big-data values), drawn from a seeded
//! SplitMix64 so the same seed gives the same bytes.

use hive::write::{to_bytes, KeyNode, ListFormat, ValueNode, WriteOptions};
use hive::{ValueType, BIG_DATA_SEGMENT};
use std::collections::HashSet;

/// SplitMix64: small, fast and fully deterministic.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() - 1)]
    }

    /// Pareto with shape `alpha` and scale 1.
    pub fn pareto(&mut self, alpha: f64) -> f64 {
        (1.0 - self.f64()).powf(-1.0 / alpha)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

const WORDS: &[&str] = &[
    "Microsoft",
    "Windows",
    "CurrentVersion",
    "Explorer",
    "Shell",
    "Extensions",
    "Policies",
    "Settings",
    "Services",
    "Parameters",
    "Setup",
    "Installer",
    "Components",
    "Features",
    "Drivers",
    "Profiles",
    "Classes",
    "Interface",
    "TypeLib",
    "Control",
    "Panel",
    "Desktop",
    "Network",
    "Security",
    "Providers",
    "Handlers",
    "Associations",
    "Capabilities",
    "FileExts",
    "Uninstall",
    "Run",
    "Update",
    "Media",
    "Player",
    "Audio",
    "Video",
    "Display",
    "Fonts",
    "Print",
    "Spooler",
    "Office",
    "Common",
    "Internet",
    "Cache",
    "Cookies",
    "History",
    "Search",
    "Indexer",
    "Defender",
    "Firewall",
    "Rules",
    "Telemetry",
    "Diagnostics",
    "Tasks",
    "Schedule",
    "Tracing",
    "Performance",
    "Counters",
    "Language",
    "Keyboard",
    "Input",
    "Locale",
    "Time",
    "Zones",
    "Power",
    "Schemes",
    "Device",
    "Metadata",
    "Store",
    "Package",
    "Repository",
    "Families",
    "Applications",
    "Manifest",
    "Storage",
    "Volume",
    "Backup",
    "Restore",
    "Sync",
    "Cloud",
    "Account",
    "Identity",
    "Credential",
    "Vault",
    "Certificates",
    "Crypto",
    "Protect",
    "Defaults",
    "Options",
    "Preferences",
    "Config",
    "Data",
    "Plugins",
    "Addins",
    "Modules",
    "Library",
    "Runtime",
    "Framework",
    "Version",
    "Assembly",
    "Native",
    "Images",
    "Catalog",
    "Event",
    "Log",
    "Channels",
    "Publishers",
    "Auth",
    "Logon",
    "Notifications",
    "Accessibility",
    "Speech",
    "Voice",
    "Recognition",
    "Ink",
    "Touch",
    "Pen",
    "Camera",
    "Bluetooth",
    "Wireless",
    "Mobile",
    "Broadband",
    "Proxy",
    "Server",
    "Client",
    "Remote",
    "Assistance",
    "Terminal",
    "Console",
    "Command",
    "Processor",
    "Environment",
    "System",
    "Hardware",
    "Profile",
];
const VENDORS: &[&str] = &[
    "Adobe",
    "Apple",
    "Google",
    "Mozilla",
    "Intel",
    "NVIDIA",
    "Realtek",
    "Oracle",
    "VMware",
    "Python",
    "Git",
    "7-Zip",
    "Dell",
    "HP",
    "Lenovo",
    "Logitech",
    "Corsair",
    "Valve",
    "Zoom",
    "Citrix",
    "Cisco",
    "Autodesk",
    "JetBrains",
    "Docker",
    "Notepad++",
    "VideoLAN",
    "WinRAR",
];
const NONASCII: &[&str] = &[
    "Größe",
    "Éditeur",
    "Préférences",
    "Überwachung",
    "Configuración",
    "Dispositivos",
    "Ñandú",
    "Ærø",
    "Programmes",
    "Paramètres",
    "Système",
    "Sécurité",
    "Программы",
    "Настройки",
    "Параметры",
    "設定",
    "アプリケーション",
    "系统",
    "설정",
    "Ωmega",
    "Ελληνικά",
    "ąęłńś",
    "Čeština",
    "Şirket",
];
const EXTS: &[&str] = &[
    "dll", "exe", "sys", "ocx", "cpl", "mui", "drv", "tlb", "ax", "ini", "xml", "json", "dat",
    "bin", "log", "cfg",
];
const DIRS: &[&str] = &[
    "C:\\Windows\\System32",
    "C:\\Windows\\SysWOW64",
    "C:\\Program Files",
    "C:\\Program Files (x86)",
    "C:\\ProgramData",
    "%SystemRoot%\\System32",
    "%ProgramFiles%",
    "%ProgramFiles(x86)%",
    "%CommonProgramFiles%",
    "%windir%",
];

/// Shape and size of a generated tree.
#[derive(Clone, Debug)]
pub struct Params {
    pub seed: u64,
    /// Keys in all, the root included.
    pub keys: usize,
    pub max_depth: usize,
    pub max_fanout: usize,
    /// Values larger than one big-data segment (16 KB - 256 KB).
    pub big: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            seed: 1,
            keys: 300_000,
            max_depth: 12,
            max_fanout: 600,
            big: 48,
        }
    }
}

struct Gen {
    r: Rng,
    big_left: usize,
    keys_left: usize,
}

impl Gen {
    fn guid(&mut self) -> String {
        let a = self.r.next_u64();
        let b = self.r.next_u64();
        format!(
            "{{{:08X}-{:04X}-{:04X}-{:04X}-{:012X}}}",
            a >> 32,
            (a >> 16) & 0xFFFF,
            a & 0xFFFF,
            b >> 48,
            b & 0xFFFF_FFFF_FFFF
        )
    }

    fn words(&mut self, n: usize, sep: &str) -> String {
        let mut s = String::new();
        for i in 0..n {
            if i > 0 {
                s.push_str(sep);
            }
            s.push_str(self.r.pick::<&str>(WORDS));
        }
        s
    }

    fn word_name(&mut self, lo: usize, hi: usize) -> String {
        if self.r.f64() < 0.03 {
            let mut s = self.r.pick(NONASCII).to_string();
            let sep = *self.r.pick(&[" ", "", "_"]);
            for _ in 0..self.r.range(0, 2) {
                s.push_str(sep);
                s.push_str(self.r.pick::<&str>(WORDS));
            }
            return s;
        }
        let n = self.r.range(lo, hi);
        let mut s = self.words(n, "");
        let x = self.r.f64();
        if x < 0.10 {
            s += &self.r.range(0, 99).to_string();
        } else if x < 0.15 {
            s += &format!(".{}.{}", self.r.range(1, 20), self.r.range(0, 9));
        } else if x < 0.18 {
            s = format!("{} {s}", self.r.pick(VENDORS));
        } else if x < 0.19 {
            let n = self.r.range(6, 12);
            s = self.words(n, " ");
        }
        s
    }

    fn key_name(&mut self, wide: bool) -> String {
        if wide && self.r.f64() < 0.6 {
            return self.guid();
        }
        if self.r.f64() < 0.02 {
            return format!(".{}{}", self.r.pick(EXTS), self.r.range(0, 999));
        }
        self.word_name(1, 3)
    }

    fn value_name(&mut self) -> String {
        if self.r.f64() < 0.05 {
            return self.guid();
        }
        self.word_name(1, 3)
    }

    fn text(&mut self) -> String {
        let x = self.r.f64();
        if x < 0.30 {
            let d = *self.r.pick(DIRS);
            let a = self.word_name(1, 2);
            let b = self.word_name(1, 1);
            format!("{d}\\{a}\\{b}.{}", self.r.pick(EXTS))
        } else if x < 0.45 {
            format!(
                "{}.{}.{}.{}",
                self.r.range(1, 20),
                self.r.range(0, 9),
                self.r.range(0, 30000),
                self.r.range(0, 9999)
            )
        } else if x < 0.55 {
            self.guid()
        } else if x < 0.58 {
            String::new()
        } else if x < 0.59 {
            let n = self.r.range(20, 200);
            self.words(n, " ")
        } else if x < 0.62 {
            let n = self.r.range(1, 6);
            (0..n)
                .map(|_| *self.r.pick(NONASCII))
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            let n = self.r.range(1, 8);
            self.words(n, " ")
        }
    }

    fn value(&mut self) -> (ValueType, Vec<u8>) {
        let x = self.r.f64();
        if x < 0.46 {
            let t = self.text();
            return (ValueType::SZ, sz(&t));
        }
        if x < 0.72 {
            let v = if self.r.f64() < 0.5 {
                *self.r.pick(&[0u32, 1, 1, 2, 3, u32::MAX])
            } else {
                self.r.next_u64() as u32
            };
            return (ValueType::DWORD, v.to_le_bytes().to_vec());
        }
        if x < 0.82 {
            let y = self.r.f64();
            let n = if y < 0.40 {
                self.r.range(1, 16)
            } else if y < 0.85 {
                self.r.range(17, 256)
            } else if y < 0.99 {
                self.r.range(257, 4096)
            } else {
                self.r.range(4097, 16000)
            };
            return (ValueType::BINARY, self.r.bytes(n));
        }
        if x < 0.89 {
            let d = *self.r.pick(&DIRS[5..]);
            let n = self.word_name(1, 2);
            let s = format!("{d}\\{n}.{}", self.r.pick(EXTS));
            return (ValueType::EXPAND_SZ, sz(&s));
        }
        if x < 0.95 {
            let n = self.r.range(1, 10);
            let items: Vec<String> = (0..n)
                .map(|_| {
                    let t = self.text();
                    if t.is_empty() {
                        "x".into()
                    } else {
                        t
                    }
                })
                .collect();
            return (ValueType::MULTI_SZ, multi_sz(&items));
        }
        (ValueType::QWORD, self.r.next_u64().to_le_bytes().to_vec())
    }

    fn big_value(&mut self) -> (ValueType, Vec<u8>) {
        let n = self.r.range(BIG_DATA_SEGMENT + 1, 256 * 1024);
        let x = self.r.f64();
        if x < 0.75 {
            return (ValueType::BINARY, self.r.bytes(n));
        }
        let s = self.words(n / 14, " ");
        if x < 0.9 {
            return (ValueType::SZ, sz(&s));
        }
        let parts: Vec<String> = s.split(' ').map(String::from).collect();
        (ValueType::MULTI_SZ, multi_sz(&parts))
    }

    fn nvalues(&mut self) -> usize {
        let x = self.r.f64();
        match x {
            x if x < 0.35 => 0,
            x if x < 0.63 => 1,
            x if x < 0.80 => self.r.range(2, 3),
            x if x < 0.92 => self.r.range(4, 8),
            x if x < 0.99 => self.r.range(9, 30),
            _ => self.r.range(31, 100),
        }
    }

    fn fill_values(&mut self, k: &mut KeyNode) {
        let mut seen = HashSet::new();
        for _ in 0..self.nvalues() {
            let name = if k.values.is_empty() && self.r.f64() < 0.25 {
                String::new()
            } else {
                self.value_name()
            };
            if !seen.insert(name.to_lowercase()) {
                continue;
            }
            let (t, d) = self.value();
            k.values.push(value(&name, t, d));
        }
        // Spread the big values evenly over the keys, in walk order.
        if self.big_left > 0 && self.r.range(0, self.keys_left.max(1) - 1) < self.big_left {
            self.big_left -= 1;
            let (t, d) = self.big_value();
            k.values
                .push(value(&format!("BigData{}", self.big_left), t, d));
        }
        self.keys_left = self.keys_left.saturating_sub(1);
    }

    /// Builds a key with a subtree of `budget` keys (itself included).
    fn build(&mut self, name: String, budget: usize, depth: usize, p: &Params) -> KeyNode {
        let mut k = KeyNode::new(&name);
        k.last_written = 133_000_000_000_000_000 + self.r.range(0, 1 << 40) as u64;
        if depth > 0 {
            self.fill_values(&mut k);
        }
        let rem = budget - 1;
        if rem == 0 || depth >= p.max_depth {
            return k;
        }
        // Effective capacity of a subtree one level down (as in make-big-hive.py).
        let cap = subtree_cap(depth + 1, p);
        let want = if depth == 0 {
            rem.min(40)
        } else if rem > 2000 && self.r.f64() < 0.06 {
            self.r.range(300, p.max_fanout)
        } else {
            (self.r.pareto(1.1) * 2.2) as usize
        };
        let need = rem.div_ceil(cap);
        let f = need.max(want.min(p.max_fanout).min(rem)).clamp(1, rem);
        let extra = rem - f;
        let w: Vec<f64> = (0..f).map(|_| self.r.pareto(1.0)).collect();
        let sw: f64 = w.iter().sum();
        let mut b: Vec<usize> = w
            .iter()
            .map(|x| 1 + (extra as f64 * x / sw) as usize)
            .collect();
        let mut left = rem.saturating_sub(b.iter().sum());
        let mut over = 0;
        for x in &mut b {
            if *x > cap {
                over += *x - cap;
                *x = cap;
            }
        }
        left += over;
        let mut i = 0;
        while left > 0 && i < 4 * f + left {
            let j = (i * 7919) % f;
            if b[j] < cap {
                let t = left.min(cap - b[j]);
                b[j] += t;
                left -= t;
            }
            i += 1;
        }
        let wide = f >= 300;
        let mut names = HashSet::new();
        for cb in b {
            let mut nm = self.key_name(wide);
            while !names.insert(nm.to_lowercase()) {
                nm = format!("{nm} ({})", self.r.range(2, 9999));
            }
            let child = self.build(nm, cb, depth + 1, p);
            k.subkeys.push(child);
        }
        k
    }
}

fn subtree_cap(depth: usize, p: &Params) -> usize {
    let mut cap = 1usize;
    for d in (depth..p.max_depth).rev() {
        let by_k = 3.6f64.powi((p.max_depth - d) as i32) as usize + 1;
        cap = (1 + p.max_fanout.saturating_mul(cap)).min(by_k);
    }
    cap
}

fn value(name: &str, t: ValueType, data: Vec<u8>) -> ValueNode {
    ValueNode {
        name: name.encode_utf16().collect(),
        value_type: t,
        data,
    }
}

fn sz(s: &str) -> Vec<u8> {
    s.encode_utf16()
        .chain([0])
        .flat_map(|u| u.to_le_bytes())
        .collect()
}

fn multi_sz(items: &[String]) -> Vec<u8> {
    let mut v: Vec<u8> = Vec::new();
    for it in items {
        v.extend(sz(it));
    }
    v.extend([0, 0]);
    v
}

/// The tree of a generated hive.
pub fn tree(p: &Params) -> KeyNode {
    let mut g = Gen {
        r: Rng::new(p.seed),
        big_left: p.big,
        keys_left: p.keys,
    };
    let mut root = g.build("ROOT".into(), p.keys, 0, p);
    root.last_written = 133_000_000_000_000_000;
    root
}

/// The bytes of a generated hive (format 1.5, `lh` lists, as Windows writes).
pub fn hive_bytes(p: &Params) -> Vec<u8> {
    to_bytes(
        &tree(p),
        &WriteOptions {
            timestamp: 133_000_000_000_000_000,
            file_name: "\\??\\C:\\bench\\BIG".into(),
            ..Default::default()
        },
    )
}

/// Small hives for fuzzing seeds: every list format, `ri` roots, big data,
/// class names, non-ASCII and unpaired-surrogate names, an empty hive, and
/// format 1.3 (no big data).
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let small = |seed, keys, big| Params {
        seed,
        keys,
        max_depth: 6,
        max_fanout: 40,
        big,
    };
    for (i, fmt) in [ListFormat::Lh, ListFormat::Lf, ListFormat::Li]
        .into_iter()
        .enumerate()
    {
        let mut t = tree(&small(10 + i as u64, 60, 1));
        t.key_mut("Classy").class = Some("SomeClass".encode_utf16().collect());
        let wide = t.key_mut("Wide");
        for j in 0..12 {
            wide.subkeys.push(KeyNode::new(&format!("w{j:02}")));
        }
        for max_leaf in [1012, 4] {
            let opts = WriteOptions {
                list_format: fmt,
                max_leaf,
                ..Default::default()
            };
            out.push((format!("gen-{fmt:?}-leaf{max_leaf}"), to_bytes(&t, &opts)));
        }
    }
    let mut odd = KeyNode::new("R");
    let mut k = KeyNode::new("x");
    k.name = vec![0x41, 0xD800, 0x42];
    k.values.push(ValueNode {
        name: vec![0xDC00],
        value_type: ValueType(0x1234_5678),
        data: vec![1, 2, 3],
    });
    k.values.push(value("e", ValueType::NONE, vec![]));
    k.values
        .push(value("d", ValueType::DWORD, vec![1, 0, 0, 0]));
    k.values
        .push(value("exact", ValueType::BINARY, vec![7; BIG_DATA_SEGMENT]));
    k.values.push(value(
        "big",
        ValueType::BINARY,
        vec![9; 2 * BIG_DATA_SEGMENT + 5],
    ));
    odd.subkeys.push(k);
    out.push(("gen-odd".into(), to_bytes(&odd, &WriteOptions::default())));
    out.push((
        "gen-odd-v13".into(),
        to_bytes(
            &odd,
            &WriteOptions {
                minor: 3,
                ..Default::default()
            },
        ),
    ));
    out.push((
        "gen-empty".into(),
        to_bytes(&KeyNode::new("E"), &WriteOptions::default()),
    ));
    out.push(("gen-mix".into(), hive_bytes(&small(99, 300, 2))));
    out
}
