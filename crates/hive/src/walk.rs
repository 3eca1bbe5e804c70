//! A whole-tree walk that survives hostile hives: each key is visited at most
//! once (a bitmap over cell offsets catches cycles), the stack is explicit (no
//! recursion to overflow), and a broken entry is reported while its siblings
//! are still walked.

use crate::error::{Error, ErrorKind};
use crate::key::{Key, Subkeys};

/// What [`walk`] reports: each key with the chain of keys from the root to
/// it, or a problem found at the end of a chain.
pub enum Step<'c, 'a> {
    Key(&'c [Key<'a>]),
    Warning(&'c [Key<'a>], Error),
}

/// Walks the tree below `root` (included) depth-first, in subkey-list order.
pub fn walk<'a>(root: Key<'a>, bins_len: usize, mut f: impl FnMut(Step<'_, 'a>)) {
    let mut seen = BitSet::new(bins_len / 8 + 1);
    seen.insert(root.offset() as usize / 8);
    let mut chain = vec![root];
    f(Step::Key(&chain));
    let mut stack: Vec<Subkeys<'a>> = Vec::new();
    match root.subkeys() {
        Ok(s) => stack.push(s),
        Err(e) => {
            f(Step::Warning(&chain, e));
            return;
        }
    }
    while let Some(top) = stack.last_mut() {
        match top.next() {
            None => {
                stack.pop();
                chain.pop();
            }
            Some(Err(e)) => f(Step::Warning(&chain, e)),
            Some(Ok(k)) => {
                if !seen.insert(k.offset() as usize / 8) {
                    f(Step::Warning(
                        &chain,
                        Error::at(ErrorKind::Cycle, k.file_offset()),
                    ));
                    continue;
                }
                chain.push(k);
                f(Step::Key(&chain));
                match k.subkeys() {
                    Ok(s) => stack.push(s),
                    Err(e) => {
                        f(Step::Warning(&chain, e));
                        chain.pop();
                    }
                }
            }
        }
    }
}

/// The path of a chain from the root: names joined by `\`, root excluded.
pub fn path_lossy(chain: &[Key<'_>]) -> String {
    let mut s = String::new();
    for (i, k) in chain.iter().skip(1).enumerate() {
        if i > 0 {
            s.push('\\');
        }
        s.push_str(&k.name().to_string_lossy());
    }
    s
}

struct BitSet {
    words: Vec<u64>,
}

impl BitSet {
    fn new(bits: usize) -> Self {
        BitSet {
            words: vec![0; bits.div_ceil(64)],
        }
    }

    /// Sets bit `i`; false if it was already set (or out of range).
    fn insert(&mut self, i: usize) -> bool {
        let Some(w) = self.words.get_mut(i / 64) else {
            return false;
        };
        let m = 1u64 << (i % 64);
        let fresh = *w & m == 0;
        *w |= m;
        fresh
    }
}
