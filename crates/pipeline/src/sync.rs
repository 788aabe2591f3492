//! Replaying event files into a space.

use crate::error::{Error, Result};
use crate::input::{open, read_events};
use crate::space::{Origin, Space};
use crate::stats::SyncStats;
use ps_spec::time::{now_micros, parse_timestamp};
use ps_spec::Arrival;
use ps_warehouse::Warehouse;
use std::path::PathBuf;

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
            batch_events: 200_000,
            default_source: None,
        }
    }
}

/// Progress of a sync, for progress bars.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub file_index: usize,
    pub bytes: u64,
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
    let mut batch = space.begin_batch(now_micros());
    let mut failure: Option<Error> = None;
    let mut prog = Progress::default();
    for (fi, path) in files.iter().enumerate() {
        prog.file_index = fi;
        let reader = open(path).map_err(|e| Error::Input {
            path: PathBuf::from(path),
            source: e,
        })?;
        let mut place = String::new();
        let name = if path == "-" { "stdin" } else { path.as_str() };
        let bytes_read = std::cell::Cell::new(0u64);
        let read = read_events(
            reader,
            |raw| {
                if failure.is_some() {
                    return;
                }
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
                let _ = space.add(&mut batch, raw.payload, None, origin, arrival);
                prog.events += 1;
                if batch.len() >= opts.batch_events {
                    let full = std::mem::replace(&mut batch, space.begin_batch(now_micros()));
                    match space.commit(wh, full) {
                        Ok(s) => total.merge(&s),
                        Err(e) => failure = Some(e),
                    }
                    prog.bytes = bytes_read.get();
                    progress(prog);
                }
            },
            |n| bytes_read.set(bytes_read.get() + n),
        );
        if let Some(e) = failure.take() {
            return Err(e);
        }
        read.map_err(|e| Error::Input {
            path: PathBuf::from(path),
            source: e,
        })?;
        prog.bytes = bytes_read.get();
        progress(prog);
    }
    if !batch.is_empty() || total.batches == 0 {
        total.merge(&space.commit(wh, batch)?);
    }
    Ok(total)
}
