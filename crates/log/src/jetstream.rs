//! The [`EventLog`] on NATS JetStream.
//!
//! - Events: one stream, [`STREAM`], subjects `ps.ev.<space>`, file
//!   storage, `replicas` copies, a duplicate window. A record is one
//!   message with `Nats-Msg-Id: <space>:<id>`, so a retried publish inside
//!   the window is stored once; the stream's sequence is the log's order,
//!   and a space's order is the order of its subject in it.
//! - Leases: a key-value bucket, [`LEASES`], whose entries expire after the
//!   lease's TTL (`max_age`). Taking a lease is `create` (only if the key is
//!   absent), renewing is `update` against the revision last seen (a
//!   compare-and-set), so two processes never both renew one lease. The
//!   revision the lease was created at is its fencing token: the bucket's
//!   revisions only rise, so a later holder's token is always greater.
//! - Reading: an ordered consumer (ephemeral, recreated by the client on a
//!   gap) filtered on the space's subject, from a start sequence.

use crate::error::{Error, Result};
use crate::lease::Lease;
use crate::{Entry, EventLog, LogFuture, LogReader, Record};
use async_nats::jetstream::consumer::pull::{Ordered, OrderedConfig};
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::kv::{CreateErrorKind, UpdateErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use async_nats::jetstream::{self, kv, stream};
use futures_util::StreamExt;
use ps_config::LogConfig;
use std::time::{Duration, Instant};

/// The stream every space's events go to.
pub const STREAM: &str = "PS_EVENTS";
/// The bucket holding one lease per space.
pub const LEASES: &str = "ps_leases";
/// How long setting up the stream and bucket keeps retrying: right after a
/// cluster starts, or during an election, JetStream has no leader for a
/// few seconds.
const SETUP_FOR: Duration = Duration::from_secs(30);

/// The subject of a space's events.
fn subject(space: &str) -> String {
    format!("ps.ev.{space}")
}

/// A space name must be one subject token and a valid key: the space names
/// profiles-sync accepts (SQL schema names) are.
fn check_space(space: &str) -> Result<()> {
    let ok = !space.is_empty()
        && space
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::Config {
            setting: "space".into(),
            message: "must be letters, digits, `_` or `-` to be used with [log]".into(),
        })
    }
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("{what}: {e}"))
}

/// A connection to a JetStream cluster ([`JetStream::connect`]).
#[derive(Clone)]
pub struct JetStream {
    js: jetstream::Context,
    leases: kv::Store,
    cfg: LogConfig,
}

impl std::fmt::Debug for JetStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStream")
            .field("servers", &self.cfg.servers)
            .finish()
    }
}

impl JetStream {
    /// The event stream, without asking the server for its info.
    async fn stream(&self) -> Result<stream::Stream<()>> {
        self.js
            .get_stream_no_info(STREAM)
            .await
            .map_err(|e| unavailable("open the event stream", e))
    }

    /// Connects (to any of the servers) and makes sure the stream and the
    /// lease bucket exist, retrying while the cluster has no leader. Must
    /// run on a tokio runtime, which then carries the connection.
    pub async fn connect(cfg: &LogConfig) -> Result<JetStream> {
        cfg.validate()?;
        let addrs = cfg
            .servers
            .iter()
            .map(|s| s.parse::<async_nats::ServerAddr>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Config {
                setting: "log.url".into(),
                message: e.to_string(),
            })?;
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(cfg.ack_timeout)
            .request_timeout(Some(cfg.ack_timeout))
            .connect(addrs)
            .await
            .map_err(|e| unavailable("cannot connect to log.url", e))?;
        let mut js = jetstream::new(client);
        js.set_timeout(cfg.ack_timeout);
        let deadline = Instant::now() + SETUP_FOR;
        let mut wait = Duration::from_millis(50);
        loop {
            match Self::setup(&js, cfg).await {
                Ok(leases) => {
                    return Ok(JetStream {
                        js,
                        leases,
                        cfg: cfg.clone(),
                    })
                }
                Err(e @ Error::Unavailable(_)) if Instant::now() < deadline => {
                    tracing::debug!(error = %e, "the log is not ready; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(1));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The stream and the lease bucket, created if missing.
    async fn setup(js: &jetstream::Context, cfg: &LogConfig) -> Result<kv::Store> {
        js.get_or_create_stream(stream::Config {
            name: STREAM.into(),
            subjects: vec!["ps.ev.>".into()],
            storage: stream::StorageType::File,
            num_replicas: cfg.replicas,
            duplicate_window: cfg.duplicate_window,
            max_age: cfg.max_age,
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable("cannot set up the event stream", e))?;
        // The bucket's stream is made here as `create_key_value` would make
        // it: that call first reads the account's info, whose answer from a
        // 2.9 server this client version cannot parse.
        js.get_or_create_stream(stream::Config {
            name: format!("KV_{LEASES}"),
            subjects: vec![format!("$KV.{LEASES}.>")],
            max_messages_per_subject: 1,
            max_age: cfg.lease_ttl,
            storage: stream::StorageType::File,
            num_replicas: cfg.replicas,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable("cannot set up the lease bucket", e))?;
        let store = js
            .get_key_value(LEASES)
            .await
            .map_err(|e| unavailable("cannot open the lease bucket", e))?;
        let ttl = store
            .status()
            .await
            .map_err(|e| unavailable("cannot read the lease bucket", e))?
            .max_age();
        if ttl != cfg.lease_ttl {
            return Err(Error::Config {
                setting: "log.lease_ttl".into(),
                message: format!(
                    "the log's lease bucket was made with {ttl:?}; every resolver must use the same"
                ),
            });
        }
        Ok(store)
    }
}

impl EventLog for JetStream {
    fn publish<'a>(&'a self, space: &'a str, records: Vec<Record>) -> LogFuture<'a, ()> {
        Box::pin(async move {
            check_space(space)?;
            let subject = subject(space);
            // Every publish is sent before the first acknowledgement is
            // awaited: one round trip for the batch, not one per event.
            let mut acks = Vec::with_capacity(records.len());
            for r in records {
                let p = PublishMessage::build()
                    .payload(r.body)
                    .message_id(format!("{space}:{}", r.id));
                let ack = self
                    .js
                    .send_publish(subject.clone(), p)
                    .await
                    .map_err(|e| unavailable("publish", e))?;
                acks.push(ack);
            }
            for ack in acks {
                ack.await.map_err(|e| unavailable("publish", e))?;
            }
            Ok(())
        })
    }

    fn reader<'a>(&'a self, space: &'a str, after: u64) -> LogFuture<'a, Box<dyn LogReader>> {
        Box::pin(async move {
            check_space(space)?;
            let stream = self.stream().await?;
            let consumer = stream
                .create_consumer(OrderedConfig {
                    filter_subject: subject(space),
                    deliver_policy: DeliverPolicy::ByStartSequence {
                        start_sequence: after + 1,
                    },
                    ..Default::default()
                })
                .await
                .map_err(|e| unavailable("read the event stream", e))?;
            let messages = consumer
                .messages()
                .await
                .map_err(|e| unavailable("read the event stream", e))?;
            Ok(Box::new(JsReader { messages }) as Box<dyn LogReader>)
        })
    }

    fn last_seq<'a>(&'a self, space: &'a str) -> LogFuture<'a, u64> {
        Box::pin(async move {
            check_space(space)?;
            let stream = self.stream().await?;
            match stream
                .get_last_raw_message_by_subject(&subject(space))
                .await
            {
                Ok(m) => Ok(m.sequence),
                Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(0),
                Err(e) => Err(unavailable("read the event stream's last message", e)),
            }
        })
    }

    fn acquire<'a>(&'a self, space: &'a str, holder: &'a str) -> LogFuture<'a, Option<Lease>> {
        Box::pin(async move {
            check_space(space)?;
            match self
                .leases
                .create(space, bytes::Bytes::copy_from_slice(holder.as_bytes()))
                .await
            {
                Ok(rev) => Ok(Some(Lease {
                    space: space.to_owned(),
                    holder: holder.to_owned(),
                    token: rev,
                    revision: rev,
                })),
                Err(e) if e.kind() == CreateErrorKind::AlreadyExists => Ok(None),
                Err(e) => Err(unavailable("take the lease", e)),
            }
        })
    }

    fn renew<'a>(&'a self, lease: &'a mut Lease) -> LogFuture<'a, ()> {
        Box::pin(async move {
            let value = bytes::Bytes::copy_from_slice(lease.holder.as_bytes());
            match self
                .leases
                .update(&lease.space, value, lease.revision)
                .await
            {
                Ok(rev) => {
                    lease.revision = rev;
                    Ok(())
                }
                Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => {
                    // A renewal whose answer was lost may have landed: the
                    // lease is still ours if the key holds our name, written
                    // after we took it.
                    let entry = self
                        .leases
                        .entry(lease.space.as_str())
                        .await
                        .map_err(|e| unavailable("read the lease", e))?;
                    match entry {
                        Some(en)
                            if en.operation == kv::Operation::Put
                                && en.value == lease.holder.as_bytes()
                                && en.revision > lease.token =>
                        {
                            lease.revision = en.revision;
                            Ok(())
                        }
                        _ => Err(Error::LeaseLost {
                            space: lease.space.clone(),
                        }),
                    }
                }
                Err(e) => Err(unavailable("renew the lease", e)),
            }
        })
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> LogFuture<'a, ()> {
        Box::pin(async move {
            self.leases
                .delete_expect_revision(&lease.space, Some(lease.revision))
                .await
                .map_err(|e| unavailable("release the lease", e))
        })
    }

    fn lease_ttl(&self) -> Duration {
        self.cfg.lease_ttl
    }
}

/// An ordered consumer's messages.
struct JsReader {
    messages: Ordered,
}

impl std::fmt::Debug for JsReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsReader").finish_non_exhaustive()
    }
}

impl LogReader for JsReader {
    fn next(&mut self, max: usize, wait: Duration) -> LogFuture<'_, Vec<Entry>> {
        Box::pin(async move {
            let mut out = Vec::new();
            let mut wait = wait;
            while out.len() < max {
                match tokio::time::timeout(wait, self.messages.next()).await {
                    Err(_) => break,
                    Ok(None) => return Err(Error::Unavailable("the log's reader ended".into())),
                    Ok(Some(Err(e))) => return Err(unavailable("read the event stream", e)),
                    Ok(Some(Ok(m))) => {
                        let seq = m
                            .info()
                            .map_err(|e| unavailable("read the event stream", e))?
                            .stream_sequence;
                        out.push(Entry {
                            seq,
                            body: m.message.payload.clone(),
                        });
                        // What is already buffered follows at once; a short
                        // wait more catches a burst still arriving.
                        wait = Duration::from_millis(20);
                    }
                }
            }
            Ok(out)
        })
    }
}
