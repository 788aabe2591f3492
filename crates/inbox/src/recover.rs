//! Opening the inbox after a clean stop or a crash.

use crate::error::{Error, Result};
use crate::frame::scan;
use crate::segment::{list_segments, segment_path, sync_dir};
use crate::{Checkpoint, Position};
use std::fs::{self, File, OpenOptions};
use std::io::BufReader;
use std::path::Path;

/// File holding the inbox's id, written once when the inbox is created.
const ID_FILE: &str = "inbox.id";

/// What recovery found and decided.
#[derive(Debug, Clone)]
pub struct Recovered {
    /// The inbox's id (created with the inbox).
    pub inbox_id: String,
    /// Where the sync loop starts reading.
    pub start: Position,
    /// The segment the writer appends to next (new, empty).
    pub next_segment: u64,
    /// Records between `start` and the end of the inbox.
    pub pending_records: u64,
    /// Events in those records.
    pub pending_events: u64,
    /// Framed bytes of those records.
    pub pending_bytes: u64,
    /// Bytes cut off torn tails.
    pub truncated_bytes: u64,
}

/// Opens the inbox directory `dir` (creating it when missing) after a
/// clean stop or a crash: truncates torn tails (each segment keeps exactly
/// the frames [`scan`] hands over), deletes segments the warehouse has
/// landed, and decides where reading resumes. `checkpoint` is what the
/// warehouse committed last, in [`Checkpoint`]'s stored form.
pub fn recover(dir: &Path, checkpoint: Option<&str>) -> Result<Recovered> {
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        // The new entries (`inbox/` and usually the data dir holding it) must
        // survive a power cut too: sync their parents.
        let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
        for p in [
            parent,
            parent
                .and_then(Path::parent)
                .filter(|p| !p.as_os_str().is_empty()),
        ]
        .into_iter()
        .flatten()
        {
            sync_dir(p)?;
        }
    }
    let id_path = dir.join(ID_FILE);
    let inbox_id = match fs::read_to_string(&id_path) {
        Ok(s) if !s.trim().is_empty() => s.trim().to_owned(),
        Ok(_) | Err(_) => {
            // A new inbox: name it so a checkpoint from another inbox (a
            // wiped or different data dir) is recognised as foreign.
            let id = uuid::Uuid::new_v4().to_string();
            let tmp = dir.join("inbox.id.tmp");
            fs::write(&tmp, &id).map_err(|e| Error::io(&tmp, e))?;
            File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io(&tmp, e))?;
            fs::rename(&tmp, &id_path).map_err(|e| Error::io(&id_path, e))?;
            sync_dir(dir)?;
            id
        }
    };
    let cp = checkpoint.and_then(Checkpoint::parse);
    let landed = match &cp {
        Some(c) if c.inbox_id == inbox_id => Some(c.position),
        Some(c) => {
            tracing::warn!(
                checkpoint = %c, inbox = %inbox_id,
                "the warehouse's inbox checkpoint belongs to another inbox; replaying this one from its start \
                 (events already landed are skipped by messageId)"
            );
            None
        }
        None => None,
    };
    let ids = list_segments(dir)?;
    let mut out = Recovered {
        inbox_id,
        start: landed.unwrap_or(Position {
            segment: ids.first().copied().unwrap_or(1),
            offset: 0,
        }),
        next_segment: 1,
        pending_records: 0,
        pending_events: 0,
        pending_bytes: 0,
        truncated_bytes: 0,
    };
    let mut max_id = landed.map_or(0, |p| p.segment);
    for id in ids {
        max_id = max_id.max(id);
        let path = segment_path(dir, id);
        if id < out.start.segment {
            fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            continue;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let len = file.metadata().map_err(|e| Error::io(&path, e))?.len();
        let start = out.start;
        let mut r = BufReader::with_capacity(1 << 20, &mut file);
        let scanned = scan(&mut r, len, |at, rec, size| {
            if id > start.segment || at >= start.offset {
                out.pending_records += 1;
                out.pending_events += rec.entries.len() as u64;
                out.pending_bytes += size;
            }
        })
        .map_err(|e| Error::io(&path, e))?;
        drop(r);
        let at = scanned.end;
        if let Some(why) = scanned.torn {
            tracing::warn!(segment = %path.display(), at, dropped = len - at, "truncating a torn inbox tail ({why}); \
                 it holds no acknowledged event");
            file.set_len(at).map_err(|e| Error::io(&path, e))?;
            file.sync_all().map_err(|e| Error::io(&path, e))?;
            out.truncated_bytes += len - at;
        }
        if id == out.start.segment && out.start.offset > at {
            // The checkpoint lies past what survived (only possible if the
            // file was damaged outside our control); nothing there to replay.
            out.start.offset = at;
        }
    }
    out.next_segment = max_id + 1;
    Ok(out)
}
