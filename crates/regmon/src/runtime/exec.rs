//! Exec's view of the host (logging, module procedures: start_scan(),
//! reopen(), rotate_to(), file_cycle()) and the Schedule blocks.

use crate::runtime::input::{Input, OutputSlot};
use chrono::Local;
use nxconf::{Config, ExecContext, LogLevel, ProcedureCall};
use std::sync::atomic::Ordering;

/// Exec's view of the host: logging, start_scan() for im_regmon, reopen()
/// and rotate_to() for om_file, file_cycle() for xm_fileop.
pub(crate) struct Ctx<'a> {
    pub(crate) inputs: &'a [Input],
    pub(crate) outputs: &'a [OutputSlot],
    pub(crate) host: &'a str,
}

impl ExecContext for Ctx<'_> {
    fn log(&mut self, level: LogLevel, module: &str, message: &str) {
        match level {
            LogLevel::Debug => tracing::debug!(module, "{message}"),
            LogLevel::Info => tracing::info!(module, "{message}"),
            LogLevel::Warning => tracing::warn!(module, "{message}"),
            _ => tracing::error!(module, "{message}"),
        }
    }

    fn call_procedure(&mut self, call: &ProcedureCall<'_>) -> Option<Result<(), String>> {
        let module = call.module.to_ascii_lowercase();
        match (module.as_str(), call.name) {
            ("im_regmon", "start_scan") => {
                let input = self
                    .inputs
                    .iter()
                    .find(|i| i.name.eq_ignore_ascii_case(call.instance))?;
                // Returns at once; at most one more scan is queued however often it is called.
                input.requested.store(true, Ordering::SeqCst);
                Some(Ok(()))
            }
            (m, _) if m.starts_with("om_") => {
                let out = self
                    .outputs
                    .iter()
                    .find(|o| o.name.eq_ignore_ascii_case(call.instance))?;
                let Ok(mut sink) = out.sink.try_borrow_mut() else {
                    return Some(Err(format!("{}() cannot run here", call.name)));
                };
                sink.procedure(call.name, call.args)
            }
            ("xm_fileop", "file_cycle") => {
                let path = match call.args.first() {
                    Some(nxconf::Value::String(s)) => s.clone(),
                    _ => return Some(Err("file_cycle() expects a file name (a string)".into())),
                };
                let max = match call.args.get(1) {
                    None => None,
                    Some(nxconf::Value::Integer(n)) if *n >= 0 => Some(*n as u64),
                    Some(v) => {
                        return Some(Err(format!(
                            "file_cycle(): the second argument must be a count of files, not {v:?}"
                        )))
                    }
                };
                let r = crate::output::file::file_cycle(&path, max);
                // A cycled file we hold open is closed now, not at the next batch.
                for o in self.outputs {
                    if let Ok(mut sink) = o.sink.try_borrow_mut() {
                        sink.forget(&path);
                    }
                }
                Some(r)
            }
            _ => None,
        }
    }

    fn hostname(&self) -> String {
        self.host.to_string()
    }
}

/// The Schedule blocks of every module, with their next due times.
pub(crate) struct Schedules {
    /// Each schedule (owned: the loop also needs the runtime mutably), its
    /// next due time, and whether it is `@startup` (runs once).
    items: Vec<(nxconf::Schedule, Option<chrono::NaiveDateTime>, bool)>,
}

impl Schedules {
    pub(crate) fn new(config: &Config) -> Schedules {
        let now = Local::now().naive_local();
        let mut items = Vec::new();
        for m in &config.modules {
            for s in &m.schedules {
                let (next, startup) = match (&s.when, &s.every) {
                    (Some(nxconf::schedule::When::Startup), _) => (Some(now), true),
                    (Some(nxconf::schedule::When::Cron(c)), _) => (c.next_after(now), false),
                    (None, Some(every)) => {
                        let first = s.first.unwrap_or_else(|| {
                            now + chrono::Duration::from_std(*every).unwrap_or_default()
                        });
                        (Some(first), false)
                    }
                    (None, None) => (None, false),
                };
                items.push((s.clone(), next, startup));
            }
        }
        Schedules { items }
    }

    /// The schedules due now, advanced to their next time.
    pub(crate) fn due(&mut self) -> Vec<nxconf::Program> {
        let now = Local::now().naive_local();
        let mut out = Vec::new();
        for (s, next, startup) in &mut self.items {
            let Some(t) = *next else { continue };
            if t > now {
                continue;
            }
            out.push(s.exec.clone());
            *next = if *startup {
                None
            } else if let Some(nxconf::schedule::When::Cron(c)) = &s.when {
                c.next_after(now)
            } else if let Some(every) = s.every {
                // Skip missed runs rather than bursting after a pause.
                let step = chrono::Duration::from_std(every).unwrap_or_default();
                let mut n = t + step;
                while n <= now && step > chrono::Duration::zero() {
                    n += step;
                }
                Some(n)
            } else {
                None
            };
        }
        out
    }
}
