//! Replaying event files into a space: event files as an
//! [`EventSource`] for the [`Driver`]. A reader thread per file parses;
//! the driver's thread admits events into batches while its landing thread
//! commits the batch before.

use crate::batch::Batch;
use crate::commit::Landed;
use crate::driver::{Driver, EventSource};
use crate::error::{Error, Result};
use crate::input::{open, read_events, RawEvent};
use crate::space::{Origin, Space};
use crate::stats::SyncStats;
use ps_spec::time::parse_timestamp;
use ps_spec::Arrival;
use ps_warehouse::Warehouse;
use std::io::{self, BufRead, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread::JoinHandle;

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

pub use ps_config::DEFAULT_COMMIT_EVENTS;

/// How a file sync runs.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Events per batch (rows built and handed to the warehouse at once):
    /// bounds memory, as two batches are held at once.
    pub batch_events: usize,
    /// Events per warehouse transaction (whole batches: a transaction
    /// holds at least one). Each commit survives a crash of the run; a
    /// rerun skips what landed (message-id dedupe) and redoes the rest.
    pub commit_events: usize,
    /// Source id for events that carry no write key.
    pub default_source: Option<String>,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            batch_events: 100_000,
            commit_events: DEFAULT_COMMIT_EVENTS,
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

/// Replays `files` in order into the space, in batches of
/// `opts.batch_events` events, committing every `opts.commit_events`. Returns the summed statistics.
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
    let mut source = FileSource {
        files,
        next: 0,
        reading: None,
        default_source,
        place: String::new(),
        progress,
        prog: Progress::default(),
    };
    Driver {
        batch_events: opts.batch_events,
        commit_events: opts.commit_events,
    }
    .run(wh, space, &mut source)
}

/// The file being read: its reader thread and the chunks it sends.
struct Reading {
    path: String,
    /// `stdin` or the path, for refusals' places.
    name: String,
    chunks: Receiver<Vec<RawEvent>>,
    chunk: std::vec::IntoIter<RawEvent>,
    thread: Option<JoinHandle<io::Result<()>>>,
    stop: Arc<AtomicBool>,
    bytes: Arc<AtomicU64>,
}

impl Reading {
    /// Starts the reader thread of `path`.
    fn start(path: &str) -> Result<Reading> {
        let reader = open(path).map_err(|e| Error::Input {
            path: PathBuf::from(path),
            source: e,
        })?;
        let (tx, chunks) = std::sync::mpsc::sync_channel::<Vec<RawEvent>>(CHUNKS_IN_FLIGHT);
        let stop = Arc::new(AtomicBool::new(false));
        let bytes = Arc::new(AtomicU64::new(0));
        // Decompression and JSON parsing run on a thread of their own, so
        // they overlap validation, identity and rows here, and landing on
        // the driver's landing thread.
        let thread = {
            let (stop, bytes) = (stop.clone(), bytes.clone());
            std::thread::spawn(move || {
                lower_this_threads_priority();
                let mut chunk = Vec::with_capacity(CHUNK);
                let stoppable = Stoppable {
                    inner: reader,
                    stop: &stop,
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
                        bytes.fetch_add(n, Ordering::Relaxed);
                    },
                );
                if !chunk.is_empty() {
                    let _ = tx.send(chunk);
                }
                r
            })
        };
        Ok(Reading {
            path: path.to_owned(),
            name: if path == "-" {
                "stdin".into()
            } else {
                path.to_owned()
            },
            chunks,
            chunk: Vec::new().into_iter(),
            thread: Some(thread),
            stop,
            bytes,
        })
    }

    /// The next event, `None` at the end of the file (an error if reading
    /// it failed).
    fn next(&mut self) -> Result<Option<RawEvent>> {
        loop {
            if let Some(raw) = self.chunk.next() {
                return Ok(Some(raw));
            }
            match self.chunks.recv() {
                Ok(chunk) => self.chunk = chunk.into_iter(),
                Err(_) => {
                    let read = match self.thread.take() {
                        Some(t) => t.join().expect("the reader thread does not panic"),
                        None => Ok(()),
                    };
                    return read.map(|()| None).map_err(|e| Error::Input {
                        path: PathBuf::from(&self.path),
                        source: e,
                    });
                }
            }
        }
    }
}

impl Drop for Reading {
    /// A reader whose consumer has given up (a failed sync) stops instead of
    /// parsing the rest of the file: it fails at its next read once `stop`
    /// is set, and draining the channel frees it if it waits to send.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        while self.chunks.try_recv().is_ok() {}
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Event files, in order, as an [`EventSource`]. It resumes through
/// message-id dedupe (a replayed event is skipped), so it sets no
/// checkpoint.
struct FileSource<'a> {
    files: &'a [String],
    /// The next file to open.
    next: usize,
    reading: Option<Reading>,
    default_source: Option<usize>,
    place: String,
    progress: &'a mut dyn FnMut(Progress),
    prog: Progress,
}

impl FileSource<'_> {
    /// The next event of the files, `None` after the last.
    fn next_event(&mut self) -> Result<Option<RawEvent>> {
        loop {
            if self.reading.is_none() {
                let Some(path) = self.files.get(self.next) else {
                    return Ok(None);
                };
                self.prog.file_index = self.next;
                self.next += 1;
                self.reading = Some(Reading::start(path)?);
            }
            let reading = self.reading.as_mut().expect("opened above");
            match reading.next()? {
                Some(raw) => return Ok(Some(raw)),
                None => {
                    self.prog.bytes = reading.bytes.load(Ordering::Relaxed);
                    (self.progress)(self.prog);
                    self.reading = None;
                }
            }
        }
    }
}

impl EventSource for FileSource<'_> {
    fn fill(&mut self, space: &mut Space, batch: &mut Batch, room: usize) -> Result<bool> {
        while batch.len() < room {
            let Some(raw) = self.next_event()? else {
                return Ok(false);
            };
            let name = self.reading.as_ref().map_or("", |r| r.name.as_str());
            self.place.clear();
            self.place.push_str(name);
            self.place.push(':');
            self.place.push_str(&raw.line.to_string());
            let arrival = Arrival {
                batch_sent_at: raw.batch_sent_at.as_deref().and_then(parse_timestamp),
                ..Arrival::default()
            };
            let origin = Origin {
                place: &self.place,
                default_source: self.default_source,
                batch_write_key: raw.batch_write_key.as_deref(),
            };
            let bytes = raw.raw.as_deref().map(str::as_bytes);
            let _ = space.add(batch, raw.payload, bytes, origin, arrival);
            self.prog.events += 1;
        }
        if let Some(r) = &self.reading {
            self.prog.bytes = r.bytes.load(Ordering::Relaxed);
        }
        (self.progress)(self.prog);
        Ok(true)
    }

    fn landed(&mut self, _landed: &Landed) -> Result<()> {
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
