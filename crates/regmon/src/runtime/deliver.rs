//! Delivery: events leave the outbox for their outputs, page by page, in
//! order per output. An output that fails waits out a [`Backoff`] and its
//! later events wait with it (order is kept); events a receiver refused
//! for good go to the output's dead-letter file.

use super::exec::Ctx;
use super::input::OutputSlot;
use super::{Queue, RunError, Runtime};
use crate::baseline::outbox::Pending;
use crate::output::{Prepared, Sent, Sink};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// The meta key saying an outbox is past its WarnLimit.
const WARN_META: &str = "outbox_warn";

/// Outbox rows read at a time: memory stays flat however many are queued.
const PAGE: usize = 10_000;

/// Why a delivery runs: which outputs in a backoff it tries anyway.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// At start, after an earlier run: every output, resuming cut batches.
    Recover,
    /// After a scan: file outputs are tried (a scan is rare, and the user
    /// who fixed a folder expects the next scan to deliver); network
    /// outputs keep their backoff.
    Scan,
    /// The loop's retry: outputs whose backoff is over.
    Retry,
}

impl Runtime {
    /// The destination a queued event goes to under the current
    /// configuration: the output's target expression over the event's
    /// stored record, or, for an event queued by an earlier release (no
    /// record), the target it was queued for unless the target is constant.
    fn target_of(&self, slot: &OutputSlot, p: &Pending) -> Result<String, String> {
        let out = slot.sink.try_borrow().map_err(|e| e.to_string())?;
        if let Some(c) = out.constant_target() {
            return Ok(c.to_string());
        }
        let Some(bytes) = &p.record else {
            return Ok(p.target.clone());
        };
        let rec = crate::baseline::outbox::decode(bytes, &p.line)?;
        let mut ctx = Ctx {
            inputs: &self.inputs,
            outputs: &self.outputs,
            host: &self.host,
        };
        out.target(&rec, &mut ctx)
    }

    /// Delivers input `i`'s queued events and forgets those delivered.
    ///
    /// Events are grouped by (output, target). File groups are written in
    /// chunks of at most [`crate::output::TARGETS_PER_ROUND`] targets, so
    /// each chunk's files stay open from the rotation check to the write,
    /// and each chunk costs two transactions (start offsets before,
    /// confirmations after), not two per file. Stream groups are sent and
    /// what the transport took is forgotten.
    pub(super) fn deliver(&mut self, i: usize, attempt: Attempt) -> Result<(), RunError> {
        self.deliver_queue(Queue::Input(i), attempt)
    }

    /// Delivers queue `q`'s events (see [`Runtime::deliver`]); then says
    /// when its outbox crossed a pm_buffer's WarnLimit.
    pub(super) fn deliver_queue(&mut self, q: Queue, attempt: Attempt) -> Result<(), RunError> {
        let now = Instant::now();
        // Outputs not to try now (backing off, or failed in this delivery):
        // their later events wait too, so each output sees them in order.
        let mut blocked: Vec<bool> = self
            .outputs
            .iter()
            .map(|o| {
                let waiting = !o.backoff.borrow().ready(now);
                let file = matches!(o.sink.borrow_mut().sink(), Sink::File(_));
                waiting && (attempt == Attempt::Retry || (attempt == Attempt::Scan && !file))
            })
            .collect();
        let mut after = 0;
        let mut left = false;
        loop {
            let page = self.db(q)?.outbox().page(after, PAGE)?;
            let Some(last) = page.last() else { break };
            after = last.id;
            let full = page.len() == PAGE;
            left |= self.deliver_page(q, &page, attempt, &mut blocked)?;
            if !full {
                break;
            }
        }
        self.set_undelivered(q, left);
        if self.report_overflow(q)? {
            self.set_undelivered(q, true);
        }
        self.watch_warn_limit(q)
    }

    /// Says when queue `q`'s outbox crossed its pm_buffer's WarnLimit, once
    /// per crossing, also across restarts (the state is kept in the
    /// database's meta `outbox_warn`).
    fn watch_warn_limit(&mut self, q: Queue) -> Result<(), RunError> {
        if self.bound(q).warn.is_none() {
            return Ok(());
        }
        let db = self.db(q)?;
        let bytes = db.outbox().bytes()?;
        let over = db.meta(WARN_META)?.is_some();
        let name = self.queue_name(q).to_string();
        if let Some(now) = self.bound(q).watch(&name, bytes, over) {
            self.db(q)?.set_meta(WARN_META, now.then_some("1"))?;
        }
        Ok(())
    }

    /// Queues an OUTBOX_OVERFLOW event for each output that lost events to
    /// a full outbox, once there is room; true when one was queued.
    fn report_overflow(&mut self, q: Queue) -> Result<bool, RunError> {
        let b = self.db(q)?;
        let limit = b.outbox_limit();
        let lost = b.outbox().overflow(limit)?;
        if lost.is_empty() {
            return Ok(false);
        }
        let when = |t: i64| {
            chrono::DateTime::from_timestamp(t, 0)
                .map_or(nxconf::Value::Undef, nxconf::Value::DateTime)
        };
        let mut notices = Vec::new();
        let bound = self.bound(q).describe();
        let name = self.queue_name(q).to_string();
        for o in &lost {
            let message = format!(
                "{} events for output '{}' were dropped between {} and {}: the outbox of input '{name}' was full ({bound})",
                o.dropped,
                o.output,
                when(o.first).to_string_with(&self.config.globals.date_format, nxconf::Zone::Local).unwrap_or_default(),
                when(o.last).to_string_with(&self.config.globals.date_format, nxconf::Zone::Local).unwrap_or_default(),
            );
            tracing::warn!(input = %name, "{message}");
            let fields = [
                ("OutboxDropped", nxconf::Value::Integer(o.dropped as i64)),
                ("OutboxDroppedFirst", when(o.first)),
                ("OutboxDroppedLast", when(o.last)),
                ("OutboxMaxSize", nxconf::Value::Integer(limit as i64)),
            ];
            let rendered = match q {
                Queue::Input(i) => self.render_notice_with(i, "OUTBOX_OVERFLOW", &message, &fields),
                Queue::Internal(k) => self.render_internal_notice(k, &message, &fields),
            };
            notices.extend(
                rendered
                    .into_iter()
                    .filter(|e| e.output.eq_ignore_ascii_case(&o.output)),
            );
        }
        self.db(q)?.outbox().report_overflow(&lost, &notices)?;
        Ok(true)
    }

    /// One page of the outbox; true when some of it stays queued.
    fn deliver_page(
        &mut self,
        q: Queue,
        page: &[Pending],
        attempt: Attempt,
        blocked: &mut [bool],
    ) -> Result<bool, RunError> {
        // Group by (output, target), keeping order within each.
        let mut groups: BTreeMap<(usize, String), Vec<&Pending>> = BTreeMap::new();
        let mut done = Vec::new();
        let mut left = false;
        let mut unknown: BTreeMap<&str, usize> = BTreeMap::new();
        let mut failed: BTreeMap<(usize, String), usize> = BTreeMap::new();
        for p in page {
            let Some(o) = self
                .outputs
                .iter()
                .position(|o| o.name.eq_ignore_ascii_case(&p.output))
            else {
                *unknown.entry(&p.output).or_default() += 1;
                done.push(p.id);
                continue;
            };
            if blocked[o] {
                left = true;
                continue;
            }
            match self.target_of(&self.outputs[o], p) {
                Ok(t) => groups.entry((o, t)).or_default().push(p),
                Err(e) => {
                    left = true;
                    *failed.entry((o, e)).or_default() += 1
                }
            }
        }
        for (oname, n) in unknown {
            tracing::warn!("dropping {n} queued events for output '{oname}', which the configuration no longer has");
        }
        for ((o, e), n) in failed {
            blocked[o] = true;
            let wait = self.outputs[o]
                .backoff
                .borrow_mut()
                .failed(Instant::now(), crate::output::FILE_BACKOFF);
            tracing::error!(output = %self.outputs[o].name, "File expression failed: {e}; {n} events stay queued and are retried (next in {} s)", wait.as_secs());
        }
        let (files, streams): (Vec<_>, Vec<_>) = groups.into_iter().partition(|((o, _), _)| {
            matches!(self.outputs[*o].sink.borrow_mut().sink(), Sink::File(_))
        });
        let dead_dir = self.queue_path(q).parent().map(PathBuf::from);
        self.db(q)?;
        let outputs = &self.outputs;
        let db = match q {
            Queue::Input(i) => self.inputs[i].baseline.as_mut(),
            Queue::Internal(k) => self.internals[k].db.as_mut(),
        };
        let Some(outbox_db) = db else {
            return Ok(true);
        };
        for chunk in files.chunks(crate::output::TARGETS_PER_ROUND) {
            let mut plans = Vec::with_capacity(chunk.len());
            for ((o, target), rows) in chunk {
                let mut out = outputs[*o].sink.borrow_mut();
                let Sink::File(sink) = out.sink() else {
                    continue;
                };
                let lines: Vec<&[u8]> = rows.iter().map(|r| &r.line[..]).collect();
                let batch = sink.frame(sink.keep(&lines));
                // A delivery a crash cut short resumes where it stopped.
                let resume = match rows[0].resume {
                    Some(start)
                        if attempt == Attempt::Recover
                            && rows.iter().all(|r| r.resume == Some(start)) =>
                    {
                        Some(start)
                    }
                    _ => None,
                };
                plans.push((sink.prepare(target, &batch, resume), batch));
            }
            let ids: Vec<Vec<i64>> = chunk
                .iter()
                .map(|(_, rows)| rows.iter().map(|r| r.id).collect())
                .collect();
            let starts: Vec<(&[i64], u64)> = plans
                .iter()
                .zip(&ids)
                .filter_map(|((p, _), ids)| match p {
                    Ok(Prepared::Fresh(token)) => Some((&ids[..], *token)),
                    _ => None,
                })
                .collect();
            outbox_db.outbox().mark_resume(&starts)?;
            let mut written = Vec::new();
            for ((((o, target), rows), (plan, batch)), ids) in chunk.iter().zip(plans).zip(ids) {
                let mut out = outputs[*o].sink.borrow_mut();
                let Sink::File(sink) = out.sink() else {
                    continue;
                };
                let r = match plan {
                    Ok(Prepared::Resume(n)) => sink.write(target, &batch[n..], false),
                    Ok(Prepared::Fresh(_)) => sink.write(target, &batch, true),
                    Err(e) => Err(e),
                };
                drop(out);
                match r {
                    Ok(()) => {
                        outputs[*o].backoff.borrow_mut().succeeded();
                        written.extend(ids)
                    }
                    Err(e) => {
                        left = true;
                        let wait = outputs[*o]
                            .backoff
                            .borrow_mut()
                            .failed(Instant::now(), crate::output::FILE_BACKOFF);
                        tracing::error!(
                            "{e}; {} events stay queued and are retried (next in {} s, or at the next scan)",
                            rows.len(),
                            wait.as_secs()
                        )
                    }
                }
            }
            written.append(&mut done);
            outbox_db.outbox().delivered(&written)?;
        }
        for ((o, _), rows) in streams {
            let events: Vec<&[u8]> = rows.iter().map(|r| &r.line[..]).collect();
            let mut out = outputs[o].sink.borrow_mut();
            let Sink::Stream(sink) = out.sink() else {
                continue;
            };
            let max = sink.max_backoff();
            let Sent {
                done: n,
                rejected,
                error,
            } = sink.send(&events);
            drop(out);
            let n = n.min(rows.len());
            if !rejected.is_empty() {
                dead_letter(dead_dir.as_deref(), &outputs[o].name, &rows, &rejected);
            }
            done.extend(rows[..n].iter().map(|r| r.id));
            match error {
                Some(e) => {
                    left = true;
                    blocked[o] = true;
                    let wait = outputs[o].backoff.borrow_mut().failed(Instant::now(), max);
                    tracing::error!(
                        "{e}; {} events stay queued, reconnecting in {} seconds",
                        rows.len() - n,
                        wait.as_secs()
                    );
                }
                None if n < rows.len() => {
                    left = true;
                    blocked[o] = true;
                }
                None => outputs[o].backoff.borrow_mut().succeeded(),
            }
        }
        outbox_db.outbox().delivered(&done)?;
        Ok(left)
    }
}

/// Events a receiver refused for good: appended, one payload per line as
/// it would have been sent, to `<CacheDir>/<output>.deadletter` (so they
/// can be looked at and sent again by hand), each refusal logged.
fn dead_letter(
    dir: Option<&std::path::Path>,
    output: &str,
    rows: &[&Pending],
    rejected: &[(usize, String)],
) {
    let path = dir
        .unwrap_or(std::path::Path::new("."))
        .join(format!("{}.deadletter", super::input::sanitize(output)));
    let file =
        crate::platform::perms::open_private(&path, std::fs::OpenOptions::new().append(true));
    let mut file = match file {
        Ok(f) => Some(f),
        Err(e) => {
            tracing::error!(
                output,
                "cannot open dead-letter file {}: {e}",
                path.display()
            );
            None
        }
    };
    for (idx, why) in rejected {
        let Some(row) = rows.get(*idx) else { continue };
        let kept = file.as_mut().is_some_and(|f| {
            let mut line = row.line.clone();
            line.push(b'\n');
            f.write_all(&line).is_ok()
        });
        if kept {
            tracing::error!(
                output,
                "event refused by the receiver ({why}): moved to {}",
                path.display()
            );
        } else {
            tracing::error!(output, "event refused by the receiver ({why}) and lost: the dead-letter file {} cannot be written", path.display());
        }
    }
}
