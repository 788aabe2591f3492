//! Segment files: their names, listing them, and the active one the writer
//! appends to ([`Segment`]).

use crate::error::{Error, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Suffix of segment files.
const SEGMENT_EXT: &str = "seg";

/// The path of segment `id` in `dir`: `<id, 20 digits>.seg`.
pub fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.{SEGMENT_EXT}"))
}

/// The ids of the segment files in `dir`, ascending.
pub fn list_segments(dir: &Path) -> Result<Vec<u64>> {
    let mut ids = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(stem) = name.strip_suffix(&format!(".{SEGMENT_EXT}")) {
            if let Ok(id) = stem.parse::<u64>() {
                ids.push(id);
            }
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Makes a new directory entry durable: a file created and fsynced is not
/// guaranteed to survive a power cut until its directory is synced too.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// The active segment the writer appends to.
#[derive(Debug)]
pub struct Segment {
    /// Its id.
    pub id: u64,
    /// The file, open for writing at its end.
    pub file: File,
    /// Bytes appended so far (the file's length).
    pub len: u64,
    path: PathBuf,
}

/// A group of records a segment could not take.
#[derive(Debug)]
pub struct AppendError {
    /// Why.
    pub error: Error,
    /// The segment was cut back to its length before the group: nothing of
    /// the group is in the file, so appending may go on once the cause (a
    /// full disk) is gone. False when even cutting back failed.
    pub cut_back: bool,
}

impl Segment {
    /// Creates segment `id` (empty) and makes its directory entry durable.
    pub fn create(dir: &Path, id: u64) -> Result<Segment> {
        let path = segment_path(dir, id);
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        sync_dir(dir)?;
        Ok(Segment {
            id,
            file,
            len: 0,
            path,
        })
    }

    /// Appends framed records. On error the segment is cut back to where it
    /// was, so a failed group leaves no half-written frame before the next;
    /// [`AppendError::cut_back`] says whether that worked.
    pub fn append(&mut self, parts: &[&[u8]]) -> std::result::Result<(), AppendError> {
        let mut written = 0u64;
        let res = (|| -> io::Result<()> {
            for p in parts {
                self.file.write_all(p)?;
                written += p.len() as u64;
            }
            Ok(())
        })();
        match res {
            Ok(()) => {
                self.len += written;
                Ok(())
            }
            Err(e) => {
                let cut_back = self.file.set_len(self.len).is_ok()
                    && self.file.seek(SeekFrom::Start(self.len)).is_ok();
                Err(AppendError {
                    error: Error::io(&self.path, e),
                    cut_back,
                })
            }
        }
    }

    /// `fdatasync`: the appended bytes survive a crash of the process or the
    /// machine once this returns.
    pub fn sync(&self) -> Result<()> {
        self.file.sync_data().map_err(|e| Error::io(&self.path, e))
    }
}
