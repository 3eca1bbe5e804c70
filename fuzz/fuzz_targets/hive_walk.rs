//! Open arbitrary bytes as a hive and do everything `regmon hive dump` does:
//! walk the whole tree, read every value's name, type and data (hashing it),
//! plus each key's class name, security descriptor, and a by-name lookup of
//! its first subkey. The reader must never panic, hang or run out of memory.

#![no_main]

use hive::{json_escape_units, walk, Hive, Step};
use libfuzzer_sys::fuzz_target;
use sha1::{Digest, Sha1};

fuzz_target!(|data: &[u8]| {
    let Ok(hive) = Hive::new(data) else {
        return;
    };
    let _ = hive.base_block().version();
    let _ = hive.is_dirty();
    let Ok(root) = hive.root() else {
        return;
    };
    let mut line = String::new();
    walk(root, hive.cells().bins_len(), |step| {
        let chain = match step {
            Step::Key(c) => c,
            Step::Warning(chain, e) => {
                let _ = hive::path_lossy(chain);
                let _ = e.to_string();
                return;
            }
        };
        let key = chain[chain.len() - 1];
        line.clear();
        for k in chain.iter().skip(1) {
            json_escape_units(k.name().units(), &mut line);
        }
        let _ = key.name().to_string_lossy();
        let _ = key.last_written();
        let _ = key.subkey_count();
        if let Ok(Some(class)) = key.class_name() {
            json_escape_units(class.units(), &mut line);
        }
        if let Ok(Some(sd)) = key.security_descriptor() {
            let _ = Sha1::digest(sd);
        }
        // Lookup by name through the (possibly damaged) sorted lists.
        if let Ok(mut subkeys) = key.subkeys() {
            if let Some(Ok(first)) = subkeys.next() {
                let name = first.name().to_string_lossy();
                let _ = key.subkey(&name);
            }
        }
        if let Ok(values) = key.values() {
            for v in values {
                let Ok(v) = v else { continue };
                json_escape_units(v.name().units(), &mut line);
                let _ = v.value_type().name();
                if let Ok(d) = v.data() {
                    let _ = Sha1::digest(&d);
                }
            }
        }
        // Also the case-insensitive value lookup, on the first value's name.
        if let Ok(mut values) = key.values() {
            if let Some(Ok(v)) = values.next() {
                let _ = key.value(&v.name().to_string_lossy());
            }
        }
    });
});
