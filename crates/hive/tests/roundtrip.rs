//! Writer -> reader round trips and hostile-input checks on written hives.

mod common;
use common::utf16z;
use hive::write::{to_bytes, KeyNode, ListFormat, ValueNode, WriteOptions};
use hive::{walk, Hive, Key, Step, ValueType};

fn sample() -> KeyNode {
    let big: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut root = KeyNode::new("ROOT");
    let pol = root.key_mut("Software\\Policies");
    pol.last_written = 133_000_000_000_000_000;
    pol.set_value("", ValueType::SZ, utf16z("default"));
    pol.set_value("Dword", ValueType::DWORD, 7u32.to_le_bytes().to_vec());
    pol.set_value("Qword", ValueType::QWORD, 9u64.to_le_bytes().to_vec());
    pol.set_value("Big", ValueType::BINARY, big);
    pol.set_value("Exact", ValueType::BINARY, vec![1; 16344]);
    pol.set_value("Empty", ValueType::NONE, vec![]);
    pol.set_value("Odd", ValueType(0x1234_5678), vec![1, 2, 3]);
    pol.set_value("Ключ", ValueType::MULTI_SZ, utf16z("a\0b\0"));
    pol.key_mut("Sub")
        .set_value("x", ValueType::SZ, utf16z("y"));
    let wide = root.key_mut("Wide");
    for i in (0..2500).rev() {
        wide.subkeys.push(KeyNode::new(&format!("k{i:05}")));
    }
    root
}

fn read_back(bytes: &[u8]) -> KeyNode {
    let hive = Hive::new(bytes).unwrap();
    assert!(!hive.is_dirty());
    assert!(hive.warnings().is_empty(), "{:?}", hive.warnings());
    KeyNode::from_key(&hive.root().unwrap()).unwrap()
}

fn sorted(mut k: KeyNode) -> KeyNode {
    k.subkeys = k.subkeys.into_iter().map(sorted).collect();
    k.subkeys.sort_by_key(|s| s.name_lossy().to_uppercase());
    k
}

#[test]
fn every_list_format_round_trips() {
    let tree = sample();
    for fmt in [ListFormat::Li, ListFormat::Lf, ListFormat::Lh] {
        for max_leaf in [3, 1012] {
            let opts = WriteOptions {
                list_format: fmt,
                max_leaf,
                ..Default::default()
            };
            let back = read_back(&to_bytes(&tree, &opts));
            assert_eq!(back, sorted(tree.clone()), "{fmt:?} {max_leaf}");
        }
    }
}

#[test]
fn lookup_is_case_insensitive_through_ri() {
    let bytes = to_bytes(
        &sample(),
        &WriteOptions {
            max_leaf: 100,
            ..Default::default()
        },
    );
    let hive = Hive::new(&bytes).unwrap();
    let wide = hive.root().unwrap().subkey("WIDE").unwrap().unwrap();
    for i in [0, 99, 100, 1234, 2499] {
        let k = wide.subkey(&format!("K{i:05}")).unwrap().unwrap();
        assert_eq!(k.name().to_string_lossy(), format!("k{i:05}"));
    }
    assert!(wide.subkey("k02500").unwrap().is_none());
    assert_eq!(wide.subkeys().unwrap().count(), 2500);
    let pol = hive
        .root()
        .unwrap()
        .subkey("software")
        .unwrap()
        .unwrap()
        .subkey("POLICIES")
        .unwrap()
        .unwrap();
    assert_eq!(pol.last_written(), 133_000_000_000_000_000);
    let v = pol.value("qWORD").unwrap().unwrap();
    assert_eq!(v.value_type(), ValueType::QWORD);
    assert_eq!(&*v.data().unwrap(), &9u64.to_le_bytes());
    assert!(v.data().is_ok());
    let def = pol.value("").unwrap().unwrap();
    assert!(def.name().is_empty());
    assert!(pol.security_descriptor().unwrap().is_some());
}

#[test]
fn big_data_is_segmented_and_reassembled() {
    let bytes = to_bytes(&sample(), &WriteOptions::default());
    let hive = Hive::new(&bytes).unwrap();
    let pol = find(&hive, "Software\\Policies");
    let big = pol.value("Big").unwrap().unwrap();
    assert_eq!(big.data_size(), 100_000);
    let d = big.data().unwrap();
    assert!(matches!(d, std::borrow::Cow::Owned(_)));
    assert!(d
        .iter()
        .enumerate()
        .all(|(i, &b)| b == (i as u32 * 7 % 251) as u8));
    let exact = pol.value("Exact").unwrap().unwrap();
    assert!(matches!(
        exact.data().unwrap(),
        std::borrow::Cow::Borrowed(_)
    ));
}

#[test]
fn unpaired_surrogates_round_trip() {
    let mut root = KeyNode::new("R");
    let mut k = KeyNode::new("x");
    k.name = vec![0x41, 0xD800, 0x42];
    k.values.push(ValueNode {
        name: vec![0xDC00],
        value_type: ValueType::SZ,
        data: vec![],
    });
    root.subkeys.push(k.clone());
    let back = read_back(&to_bytes(&root, &WriteOptions::default()));
    assert_eq!(back.subkeys[0].name, k.name);
    assert_eq!(back.subkeys[0].values[0].name, vec![0xDC00]);
}

fn find<'a>(hive: &Hive<'a>, path: &str) -> Key<'a> {
    let mut k = hive.root().unwrap();
    for p in path.split('\\') {
        k = k.subkey(p).unwrap().unwrap();
    }
    k
}

fn count(bytes: &[u8]) -> (usize, usize, usize) {
    let Ok(hive) = Hive::new(bytes) else {
        return (0, 0, 1);
    };
    let Ok(root) = hive.root() else {
        return (0, 0, 1);
    };
    let (mut keys, mut values, mut warnings) = (0, 0, 0);
    walk(root, hive.cells().bins_len(), |s| match s {
        Step::Key(chain) => {
            keys += 1;
            if let Ok(vs) = chain.last().unwrap().values() {
                for v in vs {
                    match v.and_then(|v| v.data().map(|_| ())) {
                        Ok(()) => values += 1,
                        Err(_) => warnings += 1,
                    }
                }
            }
        }
        Step::Warning(..) => warnings += 1,
    });
    (keys, values, warnings)
}

/// Patches the subkey-list offset of the key at `path` to point at `target`.
fn patch_list(bytes: &mut [u8], path: &str, target: u32) {
    let off = {
        let hive = Hive::new(bytes).unwrap();
        find(&hive, path).file_offset() as usize
    };
    bytes[off + 4 + 28..off + 4 + 32].copy_from_slice(&target.to_le_bytes());
}

#[test]
fn a_cycle_is_reported_once_and_the_walk_ends() {
    let mut root = KeyNode::new("R");
    root.key_mut("A\\B\\C");
    root.key_mut("Z")
        .set_value("v", ValueType::DWORD, vec![1, 0, 0, 0]);
    let mut bytes = to_bytes(&root, &WriteOptions::default());
    // Point C's subkey list at the root's list: a cycle through the whole tree.
    let root_list = {
        let hive = Hive::new(&bytes).unwrap();
        let r = hive.root().unwrap();
        let at = r.file_offset() as usize + 4 + 28;
        u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
    };
    patch_list(&mut bytes, "A\\B\\C", root_list);
    let c_off = {
        let hive = Hive::new(&bytes).unwrap();
        find(&hive, "A\\B\\C").file_offset() as usize
    };
    bytes[c_off + 4 + 20..c_off + 4 + 24].copy_from_slice(&2u32.to_le_bytes());
    let (keys, values, warnings) = count(&bytes);
    assert_eq!((keys, values), (5, 1));
    assert!(warnings >= 2);
}

#[test]
fn a_bad_subkey_does_not_hide_its_siblings() {
    let mut root = KeyNode::new("R");
    for n in ["a", "b", "c"] {
        root.key_mut(n)
            .set_value("v", ValueType::DWORD, vec![1, 0, 0, 0]);
    }
    let mut bytes = to_bytes(&root, &WriteOptions::default());
    let b = {
        let hive = Hive::new(&bytes).unwrap();
        find(&hive, "b").file_offset() as usize
    };
    bytes[b + 4..b + 6].copy_from_slice(b"XX");
    let (keys, values, warnings) = count(&bytes);
    assert_eq!((keys, values, warnings), (3, 2, 1));
}

#[test]
fn every_truncation_and_every_byte_flip_is_safe() {
    let mut root = KeyNode::new("R");
    let k = root.key_mut("Software\\Run");
    k.set_value("a", ValueType::SZ, utf16z("hello"));
    k.set_value("big", ValueType::BINARY, vec![3; 40_000]);
    let bytes = to_bytes(&root, &WriteOptions::default());
    for len in (0..bytes.len()).step_by(97) {
        count(&bytes[..len]);
    }
    // Flip every byte of the first two pages of cells to hostile values.
    for i in 4096..bytes.len().min(4096 + 8192) {
        for v in [0x00, 0xFF, 0x7F, 0x80] {
            let mut b = bytes.clone();
            b[i] = v;
            count(&b);
        }
    }
}

#[test]
fn hostile_counts_do_not_allocate() {
    let mut root = KeyNode::new("R");
    root.key_mut("k")
        .set_value("v", ValueType::BINARY, vec![1; 20_000]);
    let mut bytes = to_bytes(&root, &WriteOptions::default());
    let hive = Hive::new(&bytes).unwrap();
    let k = find(&hive, "k");
    let v = k.value("v").unwrap().unwrap();
    let vk = v.file_offset() as usize + 4;
    // Claim 2 GiB of data in a big-data value.
    bytes[vk + 4..vk + 8].copy_from_slice(&0x7FFF_FFF0u32.to_le_bytes());
    let hive = Hive::new(&bytes).unwrap();
    let v = find(&hive, "k").value("v").unwrap().unwrap();
    assert!(v.data().is_err());
}
