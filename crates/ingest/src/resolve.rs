//! `profiles-sync resolve`: lands a space's events from the replicated log
//! (`[log]`), one active resolver per space.
//!
//! ```text
//! compete for the lease ─▶ fencing commit (token) ─▶ open the space from the warehouse
//!   ─▶ read the log after the checkpoint ─▶ Space::add ─▶ commit rows + checkpoint, fenced
//!   ─▶ … until the lease is lost or a commit is fenced ─▶ step down, compete again
//! ```
//!
//! - **One writer per space.** Resolvers compete for the space's lease
//!   ([`ps_log::EventLog::acquire`]); a task renews it every third of its
//!   TTL. Before each commit the holder checks that its last renewal is
//!   still inside the TTL, and steps down otherwise.
//! - **Fenced commits.** A holder paused between that check and its commit
//!   (a stop signal, a long pause, a partition) must not land after a newer
//!   holder: every batch carries the lease's token ([`Batch::set_fence`]),
//!   and the warehouse refuses a commit whose token is older than the one
//!   last committed. A new holder first commits its token alone
//!   ([`ps_warehouse::fence_commit`]), so nothing an older holder still
//!   tries lands after that, and only then opens the space: the state it
//!   restores is final.
//! - **Exactly once.** The log position (`cp:log`, the stream sequence of
//!   the last event) commits in the same transaction as the rows, as the
//!   inbox position does under serve; a new holder replays from it.
//!   Events published twice (a client retry after a 503, a lost
//!   acknowledgement) are dropped by the log's duplicate window and, past
//!   it, by the space's messageId dedupe.

use crate::inbox::Record;
use crate::sync::add_records;
use ps_log::{EventLog, Lease, LogReader};
use ps_pipeline::{Batch, Driver, EventSource, Landed, Space, SpaceConfig};
use ps_warehouse::Warehouse;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The checkpoint key of the log position.
pub const LOG_CHECKPOINT: &str = "log";

/// What `resolve` needs.
#[derive(Debug, Clone)]
pub struct ResolveOptions {
    /// The space (its sources and identity settings).
    pub space: SpaceConfig,
    /// Where the rows land: a PostgreSQL URL.
    pub warehouse_url: String,
    /// `[log]`.
    pub log: ps_log::LogConfig,
    /// Most events per warehouse transaction.
    pub batch_events: usize,
    /// This resolver's name in the lease and in logs.
    pub holder: String,
}

/// What a resolver did, reported when it stops.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolveSummary {
    /// Times it took the lease.
    pub terms: u64,
    /// Commits it made.
    pub commits: u64,
    /// Events it read from the log.
    pub events_read: u64,
}

/// How long a read waits for the first event of a batch.
const READ_WAIT: Duration = Duration::from_millis(200);

/// Why a term ended.
enum StepDown {
    /// The lease lapsed or was taken (renewals failed or came too late);
    /// with the error that ended the term once it had, if one did (a
    /// holder paused inside a commit finds its session ended by the new
    /// holder).
    LeaseLost(Option<String>),
    /// A newer holder's commit refused ours.
    Fenced,
    /// Anything else (warehouse, log): the space may be ahead of the
    /// warehouse, so the term ends and the next one starts afresh.
    Failed(String),
    /// Asked to stop.
    Stop,
}

/// Runs a resolver until `stop` is set: competes for the lease, lands the
/// log while it holds it, steps down when it loses it or is fenced, and
/// competes again.
pub fn run(opts: &ResolveOptions, stop: &AtomicBool) -> crate::Result<ResolveSummary> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("ps-resolve-log")
        .enable_all()
        .build()
        .map_err(|e| crate::IngestError::Runtime(format!("cannot start the async runtime: {e}")))?;
    // The log's client needs the runtime's handle outside `block_on` too
    // (dropping a reader, say).
    let _guard = rt.enter();
    let js = rt
        .block_on(ps_log::JetStream::connect(&opts.log))
        .map_err(|e| crate::IngestError::Runtime(format!("cannot use the event log: {e}")))?;
    let log: Arc<dyn EventLog> = Arc::new(js);
    let space = opts.space.space.clone();
    let ttl = log.lease_ttl();
    let mut summary = ResolveSummary::default();
    let mut waiting_logged = false;
    while !stop.load(Ordering::SeqCst) {
        let lease = match rt.block_on(log.acquire(&space, &opts.holder)) {
            Ok(Some(l)) => l,
            Ok(None) => {
                if !waiting_logged {
                    tracing::info!(space = %space, "another resolver holds the lease; standing by");
                    waiting_logged = true;
                }
                std::thread::sleep(ttl / 10);
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot take the lease; retrying");
                std::thread::sleep(ttl / 10);
                continue;
            }
        };
        waiting_logged = false;
        summary.terms += 1;
        tracing::info!(space = %space, token = lease.token, "took the lease");
        let renewal = Renewal::start(&rt, log.clone(), lease.clone());
        let why = term(
            opts,
            &rt,
            log.as_ref(),
            &lease,
            &renewal,
            stop,
            &mut summary,
        );
        renewal.stop();
        match why {
            StepDown::Stop => {
                let _ = rt.block_on(log.release(&renewal.lease()));
                break;
            }
            StepDown::LeaseLost(e) => tracing::warn!(
                space = %space, token = lease.token, error = e.as_deref(),
                "lost the lease (not renewed in time); stepping down without committing"
            ),
            StepDown::Fenced => tracing::warn!(
                space = %space, token = lease.token,
                "fenced: a newer resolver has committed; stepping down without committing"
            ),
            StepDown::Failed(e) => {
                tracing::error!(space = %space, error = %e, "resolving failed; giving the lease up");
                let _ = rt.block_on(log.release(&renewal.lease()));
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
    Ok(summary)
}

/// One term as the lease holder.
fn term(
    opts: &ResolveOptions,
    rt: &tokio::runtime::Runtime,
    log: &dyn EventLog,
    lease: &Lease,
    renewal: &Renewal,
    stop: &AtomicBool,
    summary: &mut ResolveSummary,
) -> StepDown {
    let failed = |e: &dyn std::fmt::Display| {
        if renewal.valid() {
            StepDown::Failed(e.to_string())
        } else {
            StepDown::LeaseLost(Some(e.to_string()))
        }
    };
    let classify = |e: ps_pipeline::Error| {
        if guarded_lost(&e) {
            StepDown::LeaseLost(None)
        } else if e.is_fenced() {
            StepDown::Fenced
        } else {
            failed(&e)
        }
    };
    let schema = opts.space.space.clone();
    let mut wh = match ps_warehouse::open(&opts.warehouse_url) {
        Ok(w) => w,
        Err(e) => return failed(&e),
    };
    // An older holder paused inside a commit (a stop signal, a VM freeze)
    // holds the space's fence lock, and its tables' locks, for as long as
    // it is paused: opening the space would wait for it. Its transaction
    // is doomed (its lease has lapsed), so its session is ended instead.
    match ps_warehouse::end_older_holders(wh.as_mut(), &schema, renewal.ttl / 5) {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            space = %schema, sessions = n,
            "ended the warehouse sessions of an older lease holder paused inside a commit"
        ),
        Err(e) => tracing::warn!(
            space = %schema, error = %e,
            "cannot end the warehouse sessions of an older lease holder; waiting for them"
        ),
    }
    // The space's tables exist once it was opened; the fencing commit
    // writes into its `_ps_meta`, and the state is read only after it.
    if let Err(e) = Space::open(wh.as_mut(), opts.space.clone()) {
        return classify(e);
    }
    if let Err(e) = ps_warehouse::fence_commit(wh.as_mut(), &schema, lease.token) {
        return classify(e.into());
    }
    let mut space = match Space::open(wh.as_mut(), opts.space.clone()) {
        Ok(s) => s,
        Err(e) => return classify(e),
    };
    let position = |space: &Space| {
        space
            .checkpoint(LOG_CHECKPOINT)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let after = position(&space);
    tracing::info!(space = %schema, after, "resolving from the log");
    let reader = match open_reader(rt, log, &schema, after, renewal, stop) {
        Ok(r) => r,
        Err(why) => return why,
    };
    let mut source = LogSource {
        rt,
        reader,
        token: lease.token,
        read: 0,
    };
    let driver = Driver {
        batch_events: opts.batch_events,
        commit_events: opts.batch_events,
    };
    let mut guarded = Guarded {
        inner: wh.as_mut(),
        renewal,
    };
    let mut quiet_since = Instant::now();
    loop {
        if stop.load(Ordering::SeqCst) {
            return StepDown::Stop;
        }
        if !renewal.valid() {
            return StepDown::LeaseLost(None);
        }
        match driver.step(&mut guarded, &mut space, &mut source) {
            Ok(Some(stats)) => {
                quiet_since = Instant::now();
                summary.commits += 1;
                summary.events_read += stats.read;
                tracing::info!(
                    token = lease.token,
                    events = stats.read,
                    landed = stats.landed,
                    duplicates = stats.duplicates,
                    position = space.checkpoint(LOG_CHECKPOINT).unwrap_or(""),
                    "landed"
                );
            }
            // Nothing to read for a while: a reader whose consumer was on a
            // log node that died gives nothing (the client notices only
            // after two missed heartbeats, 30 s, while this holder keeps
            // the lease), so the log is asked whether it has more.
            Ok(None) if quiet_since.elapsed() >= STALL_CHECK => {
                quiet_since = Instant::now();
                let at = position(&space);
                match rt.block_on(log.last_seq(&schema)) {
                    Ok(last) if last > at => {
                        tracing::warn!(
                            space = %schema, position = at, last,
                            "the log's reader gives nothing though the log has more; reading again"
                        );
                        source.reader = match open_reader(rt, log, &schema, at, renewal, stop) {
                            Ok(r) => r,
                            Err(why) => return why,
                        };
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "cannot read the log's last sequence"),
                }
            }
            Ok(None) => {}
            Err(e) => return classify(e),
        }
    }
}

/// How long a holder's reader may give nothing before the holder asks the
/// log whether it has more ([`EventLog::last_seq`]).
const STALL_CHECK: Duration = Duration::from_secs(2);

/// A reader of the space's log after `after`, retried while the lease
/// holds: making one fails for a while after a log node died (its
/// consumer's placement may pick that node, and the request times out), and
/// ending the term for it would only hand the same retry to another
/// resolver after a restore.
fn open_reader(
    rt: &tokio::runtime::Runtime,
    log: &dyn EventLog,
    schema: &str,
    after: u64,
    renewal: &Renewal,
    stop: &AtomicBool,
) -> Result<Box<dyn LogReader>, StepDown> {
    loop {
        if stop.load(Ordering::SeqCst) {
            return Err(StepDown::Stop);
        }
        match rt.block_on(log.reader(schema, after)) {
            Ok(r) => return Ok(r),
            Err(e) if !renewal.valid() => return Err(StepDown::LeaseLost(Some(e.to_string()))),
            Err(e) => {
                tracing::warn!(space = %schema, error = %e, "cannot read the log; retrying");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Whether the error is [`Guarded`]'s refusal to commit without a lease.
fn guarded_lost(e: &ps_pipeline::Error) -> bool {
    matches!(e, ps_pipeline::Error::Warehouse(w) if w.kind() == ps_warehouse::ErrorKind::Fenced
        && w.to_string().contains(LAPSED))
}

/// The text of [`Guarded`]'s refusal.
const LAPSED: &str = "the lease was not renewed within its TTL";

/// The warehouse, refusing to commit once the lease's last renewal is older
/// than its TTL: the check right before the commit, the fence inside it.
struct Guarded<'a> {
    inner: &'a mut dyn Warehouse,
    renewal: &'a Renewal,
}

impl Warehouse for Guarded<'_> {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    fn dialect(&self) -> &ps_warehouse::Dialect {
        self.inner.dialect()
    }
    fn describe(&mut self, schema: &str) -> ps_warehouse::Result<Vec<ps_warehouse::TableSchema>> {
        self.inner.describe(schema)
    }
    fn begin(&mut self) -> ps_warehouse::Result<()> {
        self.inner.begin()
    }
    fn commit(&mut self) -> ps_warehouse::Result<()> {
        if !self.renewal.valid() {
            let _ = self.inner.rollback();
            return Err(ps_warehouse::Error::new(
                ps_warehouse::ErrorKind::Fenced,
                LAPSED,
            ));
        }
        self.inner.commit()
    }
    fn rollback(&mut self) -> ps_warehouse::Result<()> {
        self.inner.rollback()
    }
    fn execute(&mut self, sql: &str) -> ps_warehouse::Result<()> {
        self.inner.execute(sql)
    }
    fn for_each_row(
        &mut self,
        sql: &str,
        f: &mut dyn FnMut(Vec<ps_spec::Value>),
    ) -> ps_warehouse::Result<()> {
        self.inner.for_each_row(sql, f)
    }
    fn append(
        &mut self,
        schema: &str,
        table: &ps_warehouse::TableSchema,
        rows: &[Vec<ps_spec::Value>],
    ) -> ps_warehouse::Result<()> {
        self.inner.append(schema, table, rows)
    }
    fn append_buffer(
        &mut self,
        schema: &str,
        table: &ps_warehouse::TableSchema,
        rows: &ps_warehouse::RowBuffer,
    ) -> ps_warehouse::Result<()> {
        self.inner.append_buffer(schema, table, rows)
    }
    fn read_only(&mut self) -> ps_warehouse::Result<ps_warehouse::ReadOnly> {
        self.inner.read_only()
    }
}

/// The log as an [`EventSource`]: a batch is the events after the last
/// one read, its checkpoint the sequence of its last event, and its commit
/// is fenced by the lease's token.
struct LogSource<'a> {
    rt: &'a tokio::runtime::Runtime,
    reader: Box<dyn LogReader>,
    token: u64,
    read: u64,
}

impl EventSource for LogSource<'_> {
    fn fill(
        &mut self,
        space: &mut Space,
        batch: &mut Batch,
        room: usize,
    ) -> ps_pipeline::Result<bool> {
        let entries = self
            .rt
            .block_on(self.reader.next(room.max(1), READ_WAIT))
            .map_err(|e| ps_pipeline::Error::Source(e.to_string()))?;
        let Some(last) = entries.last().map(|e| e.seq) else {
            return Ok(false);
        };
        let mut records = Vec::with_capacity(entries.len());
        for e in &entries {
            match Record::decode(&e.body) {
                Ok(r) => records.push(r),
                Err(why) => {
                    return Err(ps_pipeline::Error::Source(format!(
                        "log message {} is not an event record: {why}",
                        e.seq
                    )))
                }
            }
        }
        add_records(space, batch, &records);
        batch.set_checkpoint(LOG_CHECKPOINT, last.to_string());
        batch.set_fence(self.token);
        self.read += entries.len() as u64;
        Ok(entries.len() >= room)
    }

    fn landed(&mut self, _landed: &Landed) -> ps_pipeline::Result<()> {
        Ok(())
    }
}

/// The task renewing a held lease every third of its TTL. The lease is
/// valid while its last successful renewal (timed from when it was sent) is
/// younger than the TTL less a margin for clock rates; a definite loss ends
/// it at once.
struct Renewal {
    state: Arc<Mutex<(Lease, Instant)>>,
    lost: Arc<AtomicBool>,
    ttl: Duration,
    task: tokio::task::JoinHandle<()>,
}

impl Renewal {
    fn start(rt: &tokio::runtime::Runtime, log: Arc<dyn EventLog>, lease: Lease) -> Renewal {
        let ttl = log.lease_ttl();
        let state = Arc::new(Mutex::new((lease, Instant::now())));
        let lost = Arc::new(AtomicBool::new(false));
        let task = {
            let (state, lost) = (state.clone(), lost.clone());
            rt.spawn(async move {
                loop {
                    tokio::time::sleep(ttl / 3).await;
                    let mut lease = state.lock().expect("lease lock").0.clone();
                    let sent = Instant::now();
                    match log.renew(&mut lease).await {
                        Ok(()) => *state.lock().expect("lease lock") = (lease, sent),
                        Err(ps_log::Error::LeaseLost { .. }) => {
                            lost.store(true, Ordering::SeqCst);
                            return;
                        }
                        Err(e) => tracing::warn!(error = %e, "cannot renew the lease; retrying"),
                    }
                }
            })
        };
        Renewal {
            state,
            lost,
            ttl,
            task,
        }
    }

    /// Whether the lease still holds, as far as this process can tell.
    fn valid(&self) -> bool {
        let renewed = self.state.lock().expect("lease lock").1;
        !self.lost.load(Ordering::SeqCst) && renewed.elapsed() < self.ttl - self.ttl / 5
    }

    fn lease(&self) -> Lease {
        self.state.lock().expect("lease lock").0.clone()
    }

    fn stop(&self) {
        self.task.abort();
    }
}
