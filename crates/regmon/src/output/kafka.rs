//! om_kafka: each event's bytes produced as one record's value to one
//! partition of a topic, through rskafka (pure Rust) on a current-thread
//! tokio runtime the output owns: `send` blocks on it for a bounded time.
//!
//! An event is done when the partition leader acknowledged the produce
//! request with acks=all (every in-sync replica has it). A produce whose
//! response was lost is sent again: at least once, like HTTP.

use super::{Output, OutputError, Sent, Sink, StreamSink};
use nxconf::om_kafka::{Compression, OmKafka};
use nxconf::{Module, ModuleSettings};
use rskafka::client::error::{Error as KafkaError, ProtocolError};
use rskafka::client::partition::{
    Compression as KafkaCompression, PartitionClient, UnknownTopicHandling,
};
use rskafka::client::ClientBuilder;
use rskafka::record::Record as KafkaRecord;
use rskafka::BackoffConfig;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Bytes a record adds to a produce request besides its value (header,
/// varints, timestamp delta): for sizing requests below `message.max.bytes`.
const RECORD_OVERHEAD: usize = 64;

/// The om_kafka output, if `m` is one.
pub fn build(m: &Module) -> Option<Box<dyn Output>> {
    let ModuleSettings::OmKafka(cfg) = &m.settings else {
        return None;
    };
    Some(Box::new(KafkaOutput {
        name: m.name.clone(),
        cfg: cfg.clone(),
        rt: None,
        partition: None,
    }))
}

struct KafkaOutput {
    name: String,
    cfg: OmKafka,
    /// Made at the first send (a runtime costs a thread-local and a timer).
    rt: Option<tokio::runtime::Runtime>,
    /// The connection to the partition's leader; dropped after an error
    /// and made again at the next send.
    partition: Option<PartitionClient>,
}

/// Why one produce request failed.
enum Fail {
    /// The broker refused the records for good (too large).
    TooLarge(String),
    /// Anything else: retried after a backoff.
    Retry(String),
}

impl KafkaOutput {
    fn err(&self, what: String) -> OutputError {
        OutputError {
            output: self.name.clone(),
            what,
            source: None,
        }
    }

    /// How many of `events` go in the next produce request: up to
    /// `message.max.bytes`, at least one.
    fn batch_len(&self, events: &[&[u8]]) -> usize {
        let mut size = 0;
        let mut n = 0;
        for e in events {
            size += e.len() + RECORD_OVERHEAD;
            if n > 0 && size > self.cfg.max_bytes {
                break;
            }
            n += 1;
        }
        n
    }
}

/// Connects to the brokers and the topic's partition leader. rskafka
/// retries connection errors itself: bounded here by the request timeout.
async fn connect(cfg: &OmKafka) -> Result<PartitionClient, String> {
    let backoff = BackoffConfig {
        init_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
        base: 2.0,
        deadline: Some(cfg.request_timeout),
    };
    let client = ClientBuilder::new(cfg.brokers.clone())
        .client_id(cfg.client_id.as_str())
        .backoff_config(backoff)
        .build()
        .await
        .map_err(|e| format!("cannot reach the brokers {}: {e}", cfg.brokers.join(",")))?;
    client
        .partition_client(
            cfg.topic.as_str(),
            cfg.partition,
            UnknownTopicHandling::Error,
        )
        .await
        .map_err(|e| {
            format!(
                "cannot reach partition {} of topic '{}' (does the topic exist?): {e}",
                cfg.partition, cfg.topic
            )
        })
}

/// Produces `events` in one request; Ok once the leader acknowledged.
async fn produce(
    p: &PartitionClient,
    events: &[&[u8]],
    compression: Compression,
    timeout: Duration,
) -> Result<(), Fail> {
    let now = rskafka::chrono::Utc::now();
    let records = events
        .iter()
        .map(|e| KafkaRecord {
            key: None,
            value: Some(e.to_vec()),
            headers: BTreeMap::new(),
            timestamp: now,
        })
        .collect();
    let compression = match compression {
        Compression::None => KafkaCompression::NoCompression,
        Compression::Gzip => KafkaCompression::Gzip,
    };
    match tokio::time::timeout(timeout, p.produce(records, compression)).await {
        Err(_) => Err(Fail::Retry(format!(
            "no acknowledgement within {} ms (request.timeout.ms)",
            timeout.as_millis()
        ))),
        Ok(Ok(_offsets)) => Ok(()),
        Ok(Err(KafkaError::ServerError {
            protocol_error: e @ (ProtocolError::MessageTooLarge | ProtocolError::RecordListTooLarge),
            ..
        })) => Err(Fail::TooLarge(format!(
            "the broker refused the record: {e} (message.max.bytes of the topic)"
        ))),
        Ok(Err(e)) => Err(Fail::Retry(format!("produce failed: {e}"))),
    }
}

impl Output for KafkaOutput {
    fn name(&self) -> &str {
        &self.name
    }

    fn sink(&mut self) -> Sink<'_> {
        Sink::Stream(self)
    }

    fn flush(&mut self) {
        self.partition = None;
    }

    fn close_idle(&mut self) {
        self.partition = None;
    }
}

impl StreamSink for KafkaOutput {
    fn send(&mut self, events: &[&[u8]]) -> Sent {
        let mut sent = Sent::default();
        if self.rt.is_none() {
            match tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .enable_time()
                .build()
            {
                Ok(rt) => self.rt = Some(rt),
                Err(e) => {
                    sent.error = Some(OutputError {
                        output: self.name.clone(),
                        what: "cannot start the Kafka client's runtime".into(),
                        source: Some(e),
                    });
                    return sent;
                }
            }
        }
        let Some(rt) = self.rt.as_ref() else {
            return sent;
        };
        // Requests of up to message.max.bytes: (first event, count).
        let mut queue = VecDeque::new();
        let mut at = 0;
        while at < events.len() {
            let n = self.batch_len(&events[at..]);
            queue.push_back((at, n));
            at += n;
        }
        let start = Instant::now();
        let budget = self.cfg.message_timeout;
        let cfg = &self.cfg;
        let slot = &mut self.partition;
        let mut error: Option<String> = None;
        while let Some((at, n)) = queue.pop_front() {
            let left = budget.saturating_sub(start.elapsed());
            if left.is_zero() {
                // Time is up: the rest waits for the next attempt.
                break;
            }
            let batch = &events[at..at + n];
            let r = rt.block_on(async {
                tokio::time::timeout(left, async {
                    if slot.is_none() {
                        *slot = Some(connect(cfg).await.map_err(Fail::Retry)?);
                    }
                    let Some(p) = slot.as_ref() else {
                        return Err(Fail::Retry("not connected".into()));
                    };
                    produce(p, batch, cfg.compression, cfg.request_timeout.min(left)).await
                })
                .await
                .unwrap_or_else(|_| {
                    Err(Fail::Retry(format!(
                        "no acknowledgement within {} ms (message.timeout.ms)",
                        budget.as_millis()
                    )))
                })
            });
            match r {
                Ok(()) => sent.done = at + n,
                Err(Fail::TooLarge(_)) if n > 1 => {
                    // Which record is too large: send them one by one.
                    for k in (0..n).rev() {
                        queue.push_front((at + k, 1));
                    }
                }
                Err(Fail::TooLarge(why)) => {
                    sent.rejected.push((at, why));
                    sent.done = at + 1;
                }
                Err(Fail::Retry(why)) => {
                    *slot = None;
                    error = Some(why);
                    break;
                }
            }
        }
        if sent.done < events.len() && error.is_none() {
            error = Some(format!(
                "{} events not acknowledged within {} ms (message.timeout.ms)",
                events.len() - sent.done,
                budget.as_millis()
            ));
        }
        sent.error = error.map(|w| self.err(w));
        sent
    }
}
