//! Replaying event files into a space: a reader thread parses, this
//! thread admits events into batches, a landing thread commits the batch
//! before while the next one is built.

use crate::commit::{Landed, Prepared};
use crate::error::{Error, Result};
use crate::input::{open, read_events, RawEvent};
use crate::space::{Origin, Space};
use crate::stats::SyncStats;
use ps_spec::time::{now_micros, parse_timestamp};
use ps_spec::Arrival;
use ps_warehouse::Warehouse;
use std::io::{self, BufRead, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Events travel from the reader thread in chunks: one channel operation per
/// chunk, not per event; a few chunks in flight bound the memory.
const CHUNK: usize = 512;
const CHUNKS_IN_FLIGHT: usize = 8;

/// How much the reader thread lowers its priority (nice). A sync's
/// critical path is the landing thread: the warehouse takes longer to load
/// a batch than the main thread takes to build the next one, and the reader
/// thread only has to stay ahead of the main thread. With the three
/// competing for two cores, the kernel gave each two thirds of one; lowered,
/// the reader fills the gaps instead (BENCHMARKS.md has the figures).
const READER_NICE: i32 = 10;

/// Lowers the calling thread's priority by [`READER_NICE`], where threads
/// have their own (Linux); anywhere else, nothing. A failure changes nothing
/// but the speed, so it is ignored.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    {
        let tid = rustix::thread::gettid();
        if let Ok(nice) = rustix::process::getpriority_process(Some(tid)) {
            let _ = rustix::process::setpriority_process(Some(tid), (nice + READER_NICE).min(19));
        }
    }
}

/// A reader that fails once `stop` is set, so a reader thread whose consumer
/// has given up stops reading instead of parsing the rest of the file.
struct Stoppable<'a> {
    inner: Box<dyn BufRead + Send>,
    stop: &'a AtomicBool,
}

impl Stoppable<'_> {
    fn check(&self) -> io::Result<()> {
        if self.stop.load(Ordering::Relaxed) {
            Err(io::Error::other("reading stopped: the sync failed"))
        } else {
            Ok(())
        }
    }
}

impl Read for Stoppable<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.check()?;
        self.inner.read(buf)
    }
}

impl BufRead for Stoppable<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.check()?;
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.inner.consume(n)
    }
}

/// How a file sync runs.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Events per warehouse transaction. Larger batches load faster; each
    /// committed batch survives a crash of the run.
    pub batch_events: usize,
    /// Source id for events that carry no write key.
    pub default_source: Option<String>,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            batch_events: 100_000,
            default_source: None,
        }
    }
}

/// Progress of a sync, for progress bars.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Which of the files is being read (0-based).
    pub file_index: usize,
    /// Bytes read from it so far (after decompression).
    pub bytes: u64,
    /// Events read from all files so far.
    pub events: u64,
}

/// Replays `files` in order into the space, committing every
/// `opts.batch_events` events. Returns the summed statistics.
pub fn sync_files(
    wh: &mut dyn Warehouse,
    space: &mut Space,
    files: &[String],
    opts: &SyncOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<SyncStats> {
    let default_source = match &opts.default_source {
        None => None,
        Some(id) => Some(
            space
                .config()
                .source_by_id(id)
                .ok_or_else(|| Error::Config {
                    setting: "--source".into(),
                    message: format!("no source with id {id:?} in the config"),
                })?,
        ),
    };
    let mut total = SyncStats::default();
    let dialect = wh.dialect().clone();
    let mut prog = Progress::default();
    std::thread::scope(|scope| {
        // One batch lands on its own thread while the next is built here
        // (and the reader thread parses the one after): loading is mostly
        // waiting on the warehouse, which then overlaps our CPU work.
        let mut lander = Lander {
            scope,
            wh: Some(wh),
            inflight: None,
        };
        let mut batch = space.begin_batch(now_micros());
        for (fi, path) in files.iter().enumerate() {
            prog.file_index = fi;
            let reader = open(path).map_err(|e| Error::Input {
                path: PathBuf::from(path),
                source: e,
            })?;
            let mut place = String::new();
            let name = if path == "-" { "stdin" } else { path.as_str() };
            let bytes_read = AtomicU64::new(0);
            let stop = AtomicBool::new(false);
            let mut failure: Option<Error> = None;
            // Decompression and JSON parsing run on a second thread, so they
            // overlap validation, identity, rows and loading on this one.
            let read = std::thread::scope(|inner| {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<RawEvent>>(CHUNKS_IN_FLIGHT);
                let (stop, bytes_read) = (&stop, &bytes_read);
                let reader_thread = inner.spawn(move || {
                    lower_this_threads_priority();
                    let mut chunk = Vec::with_capacity(CHUNK);
                    let stoppable = Stoppable {
                        inner: reader,
                        stop,
                    };
                    let r = read_events(
                        stoppable,
                        |raw| {
                            chunk.push(raw);
                            if chunk.len() == CHUNK {
                                let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                                if tx.send(full).is_err() {
                                    stop.store(true, Ordering::Relaxed);
                                }
                            }
                        },
                        |n| {
                            bytes_read.fetch_add(n, Ordering::Relaxed);
                        },
                    );
                    if !chunk.is_empty() {
                        let _ = tx.send(chunk);
                    }
                    r
                });
                'chunks: for chunk in rx.iter() {
                    for raw in chunk {
                        place.clear();
                        place.push_str(name);
                        place.push(':');
                        place.push_str(&raw.line.to_string());
                        let arrival = Arrival {
                            batch_sent_at: raw.batch_sent_at.as_deref().and_then(parse_timestamp),
                            ..Arrival::default()
                        };
                        let origin = Origin {
                            place: &place,
                            default_source,
                            batch_write_key: raw.batch_write_key.as_deref(),
                        };
                        let bytes = raw.raw.as_deref().map(str::as_bytes);
                        let _ = space.add(&mut batch, raw.payload, bytes, origin, arrival);
                        prog.events += 1;
                        if batch.len() >= opts.batch_events {
                            let full =
                                std::mem::replace(&mut batch, space.begin_batch(now_micros()));
                            let prepared = space.prepare(&dialect, full);
                            if let Err(e) = lander.land(space, &mut total, Some(prepared)) {
                                failure = Some(e);
                                break 'chunks;
                            }
                            prog.bytes = bytes_read.load(Ordering::Relaxed);
                            progress(prog);
                        }
                    }
                }
                // On a failure the reader must not go on through the whole file.
                stop.store(true, Ordering::Relaxed);
                drop(rx);
                reader_thread
                    .join()
                    .expect("the reader thread does not panic")
            });
            if let Some(e) = failure.take() {
                return Err(e);
            }
            read.map_err(|e| Error::Input {
                path: PathBuf::from(path),
                source: e,
            })?;
            prog.bytes = bytes_read.load(Ordering::Relaxed);
            progress(prog);
        }
        let last = (!batch.is_empty() || (total.batches == 0 && lander.inflight.is_none()))
            .then(|| space.prepare(&dialect, batch));
        lander.land(space, &mut total, last)?;
        lander.land(space, &mut total, None)?;
        Ok(total)
    })
}

/// What a landing thread gives back: the warehouse and how the landing went.
type LandResult<'env> = (&'env mut dyn Warehouse, Result<Landed>);

/// The warehouse, or the thread that has it while a batch lands.
struct Lander<'scope, 'env> {
    scope: &'scope std::thread::Scope<'scope, 'env>,
    wh: Option<&'env mut dyn Warehouse>,
    inflight: Option<std::thread::ScopedJoinHandle<'scope, LandResult<'env>>>,
}

impl<'scope, 'env> Lander<'scope, 'env> {
    /// Waits for the batch in flight (accounting for it), then starts
    /// landing `prepared`, if any.
    fn land(
        &mut self,
        space: &mut Space,
        total: &mut SyncStats,
        prepared: Option<Prepared>,
    ) -> Result<()> {
        if let Some(h) = self.inflight.take() {
            let (wh, landed) = h.join().expect("the landing thread does not panic");
            self.wh = Some(wh);
            let landed = landed?;
            space.account(&landed);
            total.merge(&landed.stats);
        }
        if let Some(p) = prepared {
            let wh = self.wh.take().expect("no landing in flight");
            self.inflight = Some(self.scope.spawn(move || {
                let r = p.land(&mut *wh);
                (wh, r)
            }));
        }
        Ok(())
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The reader's priority drops by `READER_NICE` (capped at 19, the
    /// lowest), for its thread only: the thread that started it keeps its own.
    #[test]
    fn the_reader_thread_alone_runs_at_a_lower_priority() {
        let nice = || rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
        let before = nice();
        let reader = std::thread::spawn(move || {
            lower_this_threads_priority();
            nice()
        })
        .join()
        .unwrap();
        assert_eq!(reader, (before + READER_NICE).min(19));
        assert_eq!(nice(), before);
    }
}
