//! `Realtime`: RegNotifyChangeKeyValue on the literal prefix of each
//! pattern; a notification names the region of the scope to rescan.

use super::*;
use crate::config::Scope;
use crate::path::region::Region;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use windows_sys::Win32::Foundation::ERROR_KEY_DELETED;

/// Where to listen: a key path (the literal prefix of a pattern) and
/// whether changes anywhere below it matter; a notification there names
/// that region for rescanning.
type Point = Region;

pub(crate) fn watch_points(scope: &Scope) -> Vec<Point> {
    let mut pts: Vec<Point> = Vec::new();
    for p in &scope.patterns {
        let lit = p.keys.iter().take_while(|g| g.is_literal()).count();
        let path: Vec<String> = p.keys[..lit].iter().map(|g| g.text().to_string()).collect();
        pts.push(Point {
            root: p.root,
            path,
            subtree: scope.recursive || lit < p.keys.len(),
        });
    }
    let covers = |a: &Point, b: &Point| {
        a.root == b.root
            && a.path.len() <= b.path.len()
            && a.path
                .iter()
                .zip(&b.path)
                .all(|(x, y)| crate::path::pattern::same_name(x, y))
            && (a.subtree || a.path.len() == b.path.len())
            && (a.subtree || !b.subtree)
    };
    let mut out: Vec<Point> = Vec::new();
    for (i, p) in pts.iter().enumerate() {
        let dominated = pts
            .iter()
            .enumerate()
            .any(|(j, q)| j != i && covers(q, p) && (!covers(p, q) || j < i));
        if !dominated {
            out.push(p.clone());
        }
    }
    out
}

struct Event(HANDLE);

// SAFETY: an event handle may be used from any thread.
unsafe impl Send for Event {}
// SAFETY: SetEvent / WaitForMultipleObjects are thread-safe on one handle.
unsafe impl Sync for Event {}

impl Event {
    fn new() -> Result<Event, String> {
        // SAFETY: no security attributes, auto-reset, not signalled, unnamed.
        let h = unsafe { CreateEventW(std::ptr::null(), 0, 0, std::ptr::null()) };
        if h.is_null() {
            Err(format!("CreateEventW: {}", std::io::Error::last_os_error()))
        } else {
            Ok(Event(h))
        }
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        // SAFETY: the handle came from CreateEventW and is closed once.
        unsafe { CloseHandle(self.0) };
    }
}

/// Running notifications for one input; dropping it stops them.
pub struct Watcher {
    stop: Arc<Event>,
    threads: Vec<JoinHandle<()>>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // SAFETY: the event handle is alive (held by `self.stop`).
        unsafe { SetEvent(self.stop.0) };
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A point's registration: the key listened on, and how.
struct Armed {
    key: Handle,
    /// The point's own key (false: an ancestor, waiting for it to appear).
    exact: bool,
}

/// Opens the deepest existing key along the point's path and registers for
/// changes of it (its subtree when the point needs it, or when only an
/// ancestor exists: the key may be created later).
fn arm(p: &Point, sam: u32, event: &Event) -> Result<Armed, String> {
    let mut depth = p.path.len();
    // Inside a user's hive, the handle is also queried (is the key still
    // there, or was its hive unloaded?).
    let query = if p.root == Root::Hku && !p.path.is_empty() {
        KEY_QUERY_VALUE
    } else {
        0
    };
    loop {
        let sub = wide(&p.path[..depth].join("\\"));
        match open(predefined(p.root), &sub, KEY_NOTIFY | query | sam) {
            Ok(k) => {
                let exact = depth == p.path.len();
                let subtree = p.subtree || !exact;
                // SAFETY: `k` is an open key with KEY_NOTIFY; `event` is a
                // live event handle; the registration lasts while the key
                // handle is open and this thread lives.
                let rc = unsafe {
                    RegNotifyChangeKeyValue(
                        k.0,
                        i32::from(subtree),
                        REG_NOTIFY_CHANGE_NAME | REG_NOTIFY_CHANGE_LAST_SET,
                        event.0,
                        1,
                    )
                };
                if rc != ERROR_SUCCESS {
                    return Err(format!("RegNotifyChangeKeyValue: {}", describe(rc)));
                }
                return Ok(Armed { key: k, exact });
            }
            Err(rc) if depth == 0 => {
                return Err(format!("cannot open {}: {}", p.root.short(), describe(rc)));
            }
            Err(_) => depth -= 1,
        }
    }
}

fn point_name(p: &Point) -> String {
    let mut s = p.root.short().to_string();
    for c in &p.path {
        s.push('\\');
        s.push_str(c);
    }
    s
}

type Notify = Arc<Mutex<Box<dyn Fn(Region) + Send>>>;

/// One thread's share of the points (at most 63: WaitForMultipleObjects
/// takes 64 handles, one is the stop event).
fn watch_thread(
    points: Vec<Point>,
    sam: u32,
    stop: Arc<Event>,
    notify: Notify,
    ready: mpsc::Sender<Result<(), String>>,
) {
    let mut events = Vec::new();
    for _ in &points {
        match Event::new() {
            Ok(e) => events.push(e),
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        }
    }
    let mut armed: Vec<Option<Armed>> = Vec::new();
    let mut errors = Vec::new();
    for (p, e) in points.iter().zip(&events) {
        match arm(p, sam, e) {
            Ok(a) => armed.push(Some(a)),
            Err(err) => {
                errors.push(format!("{}: {err}", point_name(p)));
                armed.push(None);
            }
        }
    }
    if armed.iter().all(Option::is_none) {
        let _ = ready.send(Err(errors.join("; ")));
        return;
    }
    for e in &errors {
        tracing::warn!("Realtime: {e}; retrying every 2 s, periodic scans go on");
    }
    let _ = ready.send(Ok(()));
    let mut handles: Vec<HANDLE> = vec![stop.0];
    handles.extend(events.iter().map(|e| e.0));
    // Points inside a user's hive (`HKU\<SID>\...`): the hive may be
    // unloaded under the registration (logoff), leaving a handle to a
    // deleted key that never fires again; checked on the timer.
    let in_hive: Vec<bool> = points
        .iter()
        .map(|p| p.root == Root::Hku && !p.path.is_empty())
        .collect();
    loop {
        // Unarmed points, or points waiting on an ancestor, are retried
        // on a timer as well as on events.
        let waiting = armed.iter().any(|a| a.as_ref().is_none_or(|a| !a.exact));
        let timeout = if waiting || in_hive.contains(&true) {
            2000
        } else {
            u32::MAX
        };
        // SAFETY: `handles` holds live event handles (at most 64).
        let r =
            unsafe { WaitForMultipleObjects(handles.len() as u32, handles.as_ptr(), 0, timeout) };
        if r == WAIT_OBJECT_0 {
            return;
        }
        let mut changed = Vec::new();
        if r == WAIT_TIMEOUT {
            // Re-arm the points that were waiting; a point whose key now
            // exists counts as a change (it was created).
            for (i, p) in points.iter().enumerate() {
                let was = armed[i].as_ref().map(|a| a.exact);
                if was == Some(true) {
                    // A key that is gone (its hive unloaded): watched
                    // through an ancestor until it is back, and its region
                    // rescanned now (the scan sees the hive offline).
                    let gone = in_hive[i]
                        && armed[i]
                            .as_ref()
                            .is_some_and(|a| query_info(a.key.0) == Err(ERROR_KEY_DELETED));
                    if gone {
                        armed[i] = None;
                        armed[i] = arm(p, sam, &events[i]).ok();
                        changed.push(i);
                    }
                    continue;
                }
                armed[i] = None;
                armed[i] = arm(p, sam, &events[i]).ok();
                let now = armed[i].as_ref().map(|a| a.exact);
                if now == Some(true) && was != Some(true) {
                    changed.push(i);
                }
            }
        } else {
            let i = r.wrapping_sub(WAIT_OBJECT_0 + 1) as usize;
            if i >= points.len() {
                // WAIT_FAILED or an abandoned wait: do not spin.
                std::thread::sleep(std::time::Duration::from_millis(500));
                continue;
            }
            // Re-register first, then report: a change after this point
            // signals again, so none is lost between scan and re-arm.
            armed[i] = None;
            armed[i] = arm(&points[i], sam, &events[i]).ok();
            changed.push(i);
        }
        if let Ok(f) = notify.lock() {
            for &i in &changed {
                f(points[i].clone());
            }
        }
    }
}

/// Calls `notify` with the region (within about a second) when anything
/// under a key that `scope` monitors changes: `RegNotifyChangeKeyValue` on
/// the literal prefix of each pattern, with its subtree when `Recursive` is
/// on or the pattern has wildcard key components. The API tells that
/// something changed there, not what: the caller rescans that region, and
/// periodic scans stay the source of truth. A monitored key that does not exist yet is watched through its
/// nearest existing ancestor (subtree), so its creation is noticed.
pub fn watch(scope: &Scope, notify: impl Fn(Region) + Send + 'static) -> Result<Watcher, String> {
    let points = watch_points(scope);
    if points.is_empty() {
        return Err("no registry key to watch".to_string());
    }
    let sam = view_bits(scope.view64);
    let stop = Arc::new(Event::new()?);
    let notify: Notify = Arc::new(Mutex::new(Box::new(notify)));
    let mut w = Watcher {
        stop: stop.clone(),
        threads: Vec::new(),
    };
    let (tx, rx) = mpsc::channel();
    let chunks: Vec<Vec<Point>> = points.chunks(63).map(<[Point]>::to_vec).collect();
    let n = chunks.len();
    for chunk in chunks {
        let (stop, notify, tx) = (stop.clone(), notify.clone(), tx.clone());
        let t = std::thread::Builder::new()
            .name("regmon-realtime".into())
            .spawn(move || watch_thread(chunk, sam, stop, notify, tx))
            .map_err(|e| format!("cannot start the Realtime thread: {e}"))?;
        w.threads.push(t);
    }
    let mut errors = Vec::new();
    for _ in 0..n {
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.push(e),
            Err(_) => errors.push("Realtime thread ended".to_string()),
        }
    }
    if errors.len() == n {
        return Err(errors.join("; "));
    }
    for e in errors {
        tracing::warn!("Realtime: {e}");
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(pats: &[&str], recursive: bool) -> Scope {
        Scope::for_test(pats, recursive)
    }

    #[test]
    fn points_dedup() {
        let s = scope(
            &[
                "HKLM\\Software\\Policies\\*",
                "HKLM\\Software\\*\\Run\\*",
                "HKCU\\X\\a",
                "HKCU\\x\\b",
            ],
            false,
        );
        let pts = watch_points(&s);
        assert_eq!(pts.len(), 2, "{pts:?}");
        assert_eq!(pts[0].path, vec!["Software"]);
        assert!(pts[0].subtree);
        assert_eq!(pts[1].root, Root::Hkcu);
        assert!(!pts[1].subtree);
    }
}
