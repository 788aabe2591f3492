//! One driver for every event source: it owns batching, the order of
//! commits and the hand-back to the source once a batch is in the warehouse.
//!
//! A source ([`EventSource`]) admits events into a [`Batch`] through
//! [`Space::add`] and, when it can resume from a position, records it with
//! [`Batch::set_checkpoint`], so the position commits in the same
//! transaction as the rows (exactly once). The driver lands the batch and
//! tells the source ([`EventSource::landed`]), which may then forget what the
//! batch held (serve deletes landed inbox segments).
//!
//! [`Driver::run`] goes to the end of a source, landing each batch on a
//! thread of its own while the next one fills (file replay). [`Driver::step`]
//! lands one batch and returns, so a caller can do other work between
//! batches (serve answers privacy requests there).

use crate::batch::Batch;
use crate::commit::{Landed, Pending, Prepared};
use crate::error::Result;
use crate::space::Space;
use crate::stats::SyncStats;
use ps_spec::time::now_micros;
use ps_warehouse::Warehouse;

/// Where a driver's events come from: files, serve's inbox, later a
/// replicated log.
pub trait EventSource {
    /// Admits events into `batch` through [`Space::add`] until it holds
    /// `room` events or the source has nothing more for now; sets the
    /// batch's checkpoint if the source can resume from one. `Ok(true)` when
    /// it stopped because the batch is full (more may follow at once).
    fn fill(&mut self, space: &mut Space, batch: &mut Batch, room: usize) -> Result<bool>;

    /// Everything the source gave before this batch's end is committed.
    fn landed(&mut self, landed: &Landed) -> Result<()>;
}

/// Batches a source's events and lands them in order.
#[derive(Debug, Clone, Copy)]
pub struct Driver {
    /// Events per batch: the unit the rows are built and handed to the
    /// warehouse in, so it bounds memory (two batches are held at once).
    pub batch_events: usize,
    /// Events per warehouse transaction in [`Driver::run`]: batches are
    /// added to one open transaction until it holds this many, then it
    /// commits ([`Pending`]). A source that can be replayed (a file) loses
    /// nothing to a crash but the work since the last commit, and each
    /// commit pays once for the engine state, the materialization and the
    /// warehouse's own commit work; [`Driver::step`] commits every batch.
    pub commit_events: usize,
}

impl Driver {
    /// Lands one batch, if the source has anything: its statistics, or
    /// `None` when it gave nothing. On an error the `Space` may be ahead of
    /// the warehouse: drop it and open it again.
    pub fn step(
        &self,
        wh: &mut dyn Warehouse,
        space: &mut Space,
        source: &mut dyn EventSource,
    ) -> Result<Option<SyncStats>> {
        let mut batch = space.begin_batch(now_micros());
        source.fill(space, &mut batch, self.batch_events)?;
        // No events: nothing to commit, unless a compute tick left profiles
        // to re-evaluate (windows aging out land as rows too).
        if batch.stats.read == 0 && batch.is_empty() && !space.compute_pending() {
            return Ok(None);
        }
        let d = wh.dialect().clone();
        let landed = space.prepare(&d, batch).land(wh)?;
        space.account(&landed);
        source.landed(&landed)?;
        Ok(Some(landed.stats))
    }

    /// Lands everything the source has, each batch on a landing thread
    /// while the next one fills, committing every
    /// [`commit_events`](Driver::commit_events) events and at the end, and
    /// at least one batch (so an empty input still commits the space's
    /// tables). Returns the summed statistics.
    pub fn run(
        &self,
        wh: &mut dyn Warehouse,
        space: &mut Space,
        source: &mut dyn EventSource,
    ) -> Result<SyncStats> {
        let dialect = wh.dialect().clone();
        std::thread::scope(|scope| {
            // Loading is mostly waiting on the warehouse, so it overlaps
            // the CPU work of filling the next batch.
            let mut lander = Lander {
                scope,
                wh: Some(wh),
                pending: Some(Pending::default()),
                inflight: None,
                total: SyncStats::default(),
            };
            // Events handed to the open transaction so far; `None` when
            // none is open. Whether a batch ends its transaction is decided
            // here, before it is prepared: only the last batch of a
            // transaction carries the state of the profiles changed in it.
            let mut open: Option<usize> = None;
            let mut first = true;
            loop {
                let mut batch = space.begin_batch(now_micros());
                let more = source.fill(space, &mut batch, self.batch_events)?;
                let empty = batch.stats.read == 0 && batch.is_empty();
                // The first batch always lands (an empty input still
                // commits the space's tables), and an open transaction is
                // closed by the last one, empty or not.
                if !empty || first || (!more && open.is_some()) {
                    let events = open.unwrap_or(0) + batch.len();
                    let commit = !more || events >= self.commit_events;
                    open = (!commit).then_some(events);
                    // With definitions the end of a transaction evaluates
                    // every profile it touched: it is prepared apart, while
                    // the last events land.
                    let apart = commit && space.computes() && !empty;
                    let prepared = if commit && !apart {
                        space.prepare(&dialect, batch)
                    } else {
                        space.prepare_part(&dialect, batch)
                    };
                    lander.land(space, source, Some((prepared, commit && !apart)))?;
                    if apart {
                        let end = space.prepare_end(&dialect);
                        lander.land(space, source, Some((end, true)))?;
                    }
                }
                first = false;
                if !more {
                    break;
                }
            }
            lander.land(space, source, None)?;
            Ok(lander.total)
        })
    }
}

/// What a landing thread gives back: the warehouse, the open transaction
/// and the batches it committed, if it committed.
type LandResult<'env> = (&'env mut dyn Warehouse, Pending, Result<Vec<Landed>>);

/// The warehouse and its open transaction, or the thread that has them
/// while a batch lands.
struct Lander<'scope, 'env> {
    scope: &'scope std::thread::Scope<'scope, 'env>,
    wh: Option<&'env mut dyn Warehouse>,
    pending: Option<Pending>,
    inflight: Option<std::thread::ScopedJoinHandle<'scope, LandResult<'env>>>,
    total: SyncStats,
}

impl<'scope, 'env> Lander<'scope, 'env> {
    /// Waits for the batch in flight (accounting for what it committed and
    /// telling the source), then starts landing the next batch, if any,
    /// and committing after it if it is the last of its transaction.
    fn land(
        &mut self,
        space: &mut Space,
        source: &mut dyn EventSource,
        next: Option<(Prepared, bool)>,
    ) -> Result<()> {
        if let Some(h) = self.inflight.take() {
            let (wh, pending, landed) = h.join().expect("the landing thread does not panic");
            self.wh = Some(wh);
            self.pending = Some(pending);
            for landed in landed? {
                space.account(&landed);
                self.total.merge(&landed.stats);
                source.landed(&landed)?;
            }
        }
        let Some((p, commit)) = next else {
            debug_assert!(
                !self.pending.as_ref().is_some_and(Pending::is_open),
                "the last batch commits"
            );
            return Ok(());
        };
        let wh = self.wh.take().expect("no landing in flight");
        let mut pending = self.pending.take().expect("no landing in flight");
        self.inflight = Some(self.scope.spawn(move || {
            let r = pending.add(&mut *wh, p).and_then(|()| {
                if commit {
                    pending.commit(&mut *wh)
                } else {
                    Ok(Vec::new())
                }
            });
            (wh, pending, r)
        }));
        Ok(())
    }
}
