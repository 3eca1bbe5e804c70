//! `HKCR` offline: the merged view Windows builds of `HKLM\SOFTWARE\Classes`
//! and the user's classes (`HKU\<SID>_Classes`).
//!
//! Windows' rule: a key that exists in the user's classes takes its values
//! from there (the machine's copy is hidden); the subkeys are the union of
//! both, merged the same way at every level. This file holds the rule;
//! [`super::hive`] applies it to hive keys.

use super::Children;
use std::collections::HashMap;

/// One child of a merged key: its name (the user's spelling when the user
/// has it), the user's key and the machine's (at least one is there).
pub type Pair<T> = (String, Option<T>, Option<T>);

/// The children of a merged key from the user's and the machine's lists:
/// each name once (names compare as Windows compares them), the user's
/// first in their order, then the machine's own. Entries that could not be
/// read stay errors.
pub fn union<T>(user: Children<T>, machine: Children<T>) -> Vec<Result<Pair<T>, String>> {
    let mut out: Vec<Result<Pair<T>, String>> = Vec::with_capacity(user.len() + machine.len());
    let mut at: HashMap<Vec<u16>, usize> = HashMap::with_capacity(user.len());
    for r in user {
        match r {
            Ok((n, k)) => {
                at.insert(hive::upcase_str(&n), out.len());
                out.push(Ok((n, Some(k), None)));
            }
            Err(e) => out.push(Err(e)),
        }
    }
    for r in machine {
        match r {
            Ok((n, k)) => match at.get(&hive::upcase_str(&n)) {
                Some(&i) => {
                    if let Some(Ok((_, _, m))) = out.get_mut(i) {
                        *m = Some(k);
                    }
                }
                None => out.push(Ok((n, None, Some(k)))),
            },
            Err(e) => out.push(Err(e)),
        }
    }
    out
}

/// The identity of a key present on both sides, from the two sides'
/// identities (mount index, cell offset): stable from scan to scan, and
/// distinct from every one-sided key's (mount indices are small).
pub fn both_identity(user: (usize, u64), machine: (usize, u64)) -> (usize, u64) {
    let mounts = (user.0 & 0xffff) << 16 | (machine.0 & 0xffff);
    (
        usize::MAX - mounts,
        (user.1 << 32) | (machine.1 & 0xffff_ffff),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(names: &[&str]) -> Children<u32> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| Ok((n.to_string(), i as u32)))
            .collect()
    }

    #[test]
    fn the_union_pairs_names_case_insensitively_and_keeps_errors() {
        let mut machine = list(&[".txt", "CLSID", "txtfile"]);
        machine.push(Err("broken".into()));
        let got = union(list(&[".TXT", "MyApp"]), machine);
        let shown: Vec<String> = got
            .iter()
            .map(|r| match r {
                Ok((n, u, m)) => format!("{n}:{u:?}:{m:?}"),
                Err(e) => e.clone(),
            })
            .collect();
        assert_eq!(
            shown,
            [
                ".TXT:Some(0):Some(0)",
                "MyApp:Some(1):None",
                "CLSID:None:Some(1)",
                "txtfile:None:Some(2)",
                "broken"
            ]
        );
    }

    #[test]
    fn identities_of_merged_keys_differ_from_one_sided_ones() {
        let a = both_identity((3, 0x20), (1, 0x40));
        assert_ne!(a, both_identity((1, 0x20), (3, 0x40)));
        assert_ne!(a, both_identity((3, 0x40), (1, 0x20)));
        assert!(a.0 > usize::MAX / 2);
    }
}
