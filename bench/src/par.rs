//! A whole-tree walk split across worker threads, built on the hive crate's
//! public API only. Each worker walks depth-first with its own stack; when a
//! worker runs dry it says so, and a busy one hands over the unvisited
//! siblings at the shallowest level of its stack (the biggest pieces of work
//! it holds), so the load stays even however lopsided the tree is. As in
//! `hive::walk`, a shared bitmap over cell offsets visits each key once, so
//! cyclic lists end.

use hive::{Key, Subkeys};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

/// Calls `visit` once for each key below `root` (included), on `threads`
/// threads; each thread has its own state from `init`. Returns the states
/// and the number of broken subkey entries or lists met.
pub fn walk_par<'a, S: Send>(
    root: Key<'a>,
    bins_len: usize,
    threads: usize,
    init: impl Fn() -> S + Sync,
    visit: impl Fn(&mut S, Key<'a>) + Sync,
) -> (Vec<S>, usize) {
    let seen: Vec<AtomicU64> = (0..(bins_len / 8 + 1).div_ceil(64))
        .map(|_| AtomicU64::new(0))
        .collect();
    let shared = Shared {
        seen,
        queue: Mutex::new(Queue {
            keys: vec![root],
            idle: 0,
            done: false,
        }),
        wake: Condvar::new(),
        hungry: AtomicBool::new(false),
        warnings: AtomicUsize::new(0),
        threads: threads.max(1),
    };
    let states = std::thread::scope(|s| {
        let handles: Vec<_> = (0..shared.threads)
            .map(|_| s.spawn(|| shared.worker(init(), &visit)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("walker thread panicked"))
            .collect()
    });
    (states, shared.warnings.load(Ordering::Relaxed))
}

struct Queue<'a> {
    keys: Vec<Key<'a>>,
    idle: usize,
    done: bool,
}

struct Shared<'a> {
    seen: Vec<AtomicU64>,
    queue: Mutex<Queue<'a>>,
    wake: Condvar,
    /// Set while a worker waits for work: a cheap flag that busy workers poll.
    hungry: AtomicBool,
    warnings: AtomicUsize,
    threads: usize,
}

impl<'a> Shared<'a> {
    fn first_visit(&self, k: &Key<'a>) -> bool {
        let i = k.offset() as usize / 8;
        let Some(w) = self.seen.get(i / 64) else {
            return false;
        };
        let m = 1u64 << (i % 64);
        w.fetch_or(m, Ordering::Relaxed) & m == 0
    }

    /// Blocks until there is work (Some) or every worker is idle (None).
    fn take(&self) -> Option<Key<'a>> {
        let mut q = self.queue.lock().unwrap();
        loop {
            if let Some(k) = q.keys.pop() {
                return Some(k);
            }
            if q.done {
                return None;
            }
            q.idle += 1;
            if q.idle == self.threads {
                q.done = true;
                self.wake.notify_all();
                return None;
            }
            self.hungry.store(true, Ordering::Relaxed);
            q = self.wake.wait(q).unwrap();
            q.idle -= 1;
        }
    }

    fn give(&self, keys: Vec<Key<'a>>) {
        let mut q = self.queue.lock().unwrap();
        q.keys.extend(keys);
        self.hungry.store(false, Ordering::Relaxed);
        self.wake.notify_all();
    }

    fn worker<S>(&self, mut state: S, visit: &impl Fn(&mut S, Key<'a>)) -> S {
        let mut stack: Vec<Subkeys<'a>> = Vec::new();
        while let Some(start) = self.take() {
            if !self.first_visit(&start) {
                continue;
            }
            self.enter(start, &mut state, visit, &mut stack);
            while let Some(top) = stack.last_mut() {
                match top.next() {
                    None => {
                        stack.pop();
                    }
                    Some(Err(_)) => {
                        self.warnings.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(Ok(k)) => {
                        if self.first_visit(&k) {
                            self.enter(k, &mut state, visit, &mut stack);
                        } else {
                            self.warnings.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                if self.hungry.load(Ordering::Relaxed) {
                    self.share(&mut stack);
                }
            }
        }
        state
    }

    fn enter<S>(
        &self,
        k: Key<'a>,
        state: &mut S,
        visit: &impl Fn(&mut S, Key<'a>),
        stack: &mut Vec<Subkeys<'a>>,
    ) {
        visit(state, k);
        match k.subkeys() {
            Ok(s) => stack.push(s),
            Err(_) => {
                self.warnings.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Hands the rest of the shallowest unfinished list to the queue.
    fn share(&self, stack: &mut [Subkeys<'a>]) {
        for it in stack.iter_mut() {
            let mut rest = Vec::new();
            for r in it.by_ref() {
                match r {
                    Ok(k) => rest.push(k),
                    Err(_) => {
                        self.warnings.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            if !rest.is_empty() {
                self.give(rest);
                return;
            }
        }
    }
}
