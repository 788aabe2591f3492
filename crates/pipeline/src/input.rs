//! Reading event files.
//!
//! A file holds JSON lines (each line an event or a Segment batch body), a JSON
//! array of events, or one batch body (`{"batch": [...], "writeKey": ...,
//! "sentAt": ...}`), optionally gzip-compressed (detected by its magic bytes,
//! not its name). `-` is standard input. Each event comes out with the line it
//! started on, so a refusal can say where to look.

use flate2::read::MultiGzDecoder;
use ps_spec::batch::{merge_shared, shared_fields};
use ps_spec::tape::{Doc, JsonRef, Kind};
use serde_json::{Map, Value as Json};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

/// One event as read, before validation.
#[derive(Debug)]
pub struct RawEvent {
    /// The line it starts on (1-based), for refusals' places.
    pub line: u64,
    /// The parsed event, or why its text is not JSON.
    pub payload: Result<Doc, String>,
    /// The event's text as read, when `payload` is not it (a batch's shared
    /// fields were merged in).
    pub raw: Option<String>,
    /// `writeKey` of the enclosing batch body.
    pub batch_write_key: Option<String>,
    /// `sentAt` of the enclosing batch body.
    pub batch_sent_at: Option<String>,
}

/// Opens `path` (or stdin for `-`), undoing gzip when present.
pub fn open(path: &str) -> io::Result<Box<dyn BufRead + Send>> {
    let inner: Box<dyn Read + Send> = if path == "-" {
        Box::new(io::stdin())
    } else {
        Box::new(File::open(Path::new(path))?)
    };
    let mut buf = BufReader::with_capacity(1 << 20, inner);
    let head = buf.fill_buf()?;
    if head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b {
        Ok(Box::new(BufReader::with_capacity(
            1 << 20,
            MultiGzDecoder::new(buf),
        )))
    } else {
        Ok(Box::new(buf))
    }
}

/// Calls `f` for every line of `path` (decompressed), without parsing: the
/// read stage of the benchmark.
pub fn read_lines(path: &str, mut f: impl FnMut(&str)) -> io::Result<()> {
    let mut r = open(path)?;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        f(line.trim_end());
    }
}

/// Streams the events of one input, calling `f` for each in file order.
/// `bytes` is told how many input bytes were consumed so far (for progress).
pub fn read_events(
    mut reader: impl BufRead,
    mut f: impl FnMut(RawEvent),
    mut bytes: impl FnMut(u64),
) -> io::Result<()> {
    // Peek at the first non-blank byte: `[` means one JSON array.
    let first = loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(i) => {
                let b = buf[i];
                reader.consume(i);
                break b;
            }
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    };
    if first == b'[' {
        let mut text = String::new();
        reader.read_to_string(&mut text)?;
        bytes(text.len() as u64);
        document(text, 1, &mut f);
        return Ok(());
    }
    let mut line_no = 0u64;
    let mut line = String::with_capacity(4096);
    let mut pending: Option<(u64, String)> = None;
    // Only a document that starts pretty-printed may span lines; in JSON lines a
    // broken line must not swallow the valid lines after it.
    let mut first_content = true;
    loop {
        line.clear();
        let n = reader.read_line(&mut line)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        bytes(n as u64);
        if let Some((start, acc)) = pending.as_mut() {
            // Inside a pretty-printed document: gather lines until it parses.
            acc.push_str(&line);
            match Doc::parse(std::mem::take(acc)) {
                Ok(doc) => {
                    let start = *start;
                    pending = None;
                    emit(doc, start, &mut f);
                }
                Err((_, back)) => *acc = back,
            }
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        let may_span = std::mem::take(&mut first_content);
        // The line becomes the event's text (the next line gets a new buffer).
        let text = std::mem::replace(&mut line, String::with_capacity(4096));
        match Doc::parse(text) {
            Ok(doc) => emit(doc, line_no, &mut f),
            Err((e, back)) if may_span && e.is_eof() && back.trim_start().starts_with('{') => {
                pending = Some((line_no, back));
            }
            Err((e, _)) => f(RawEvent {
                line: line_no,
                payload: Err(e.into_message()),
                raw: None,
                batch_write_key: None,
                batch_sent_at: None,
            }),
        }
    }
    if let Some((start, acc)) = pending {
        let err = match Doc::parse(acc) {
            Err((e, _)) => e.into_message(),
            Ok(_) => "incomplete JSON".to_owned(),
        };
        f(RawEvent {
            line: start,
            payload: Err(err),
            raw: None,
            batch_write_key: None,
            batch_sent_at: None,
        });
    }
    Ok(())
}

fn document(text: String, line: u64, f: &mut impl FnMut(RawEvent)) {
    match Doc::parse(text) {
        Ok(doc) => emit(doc, line, f),
        Err((e, _)) => f(RawEvent {
            line,
            payload: Err(e.into_message()),
            raw: None,
            batch_write_key: None,
            batch_sent_at: None,
        }),
    }
}

/// One parsed JSON value: an event, an array of events, or a batch body.
fn emit(doc: Doc, line: u64, f: &mut impl FnMut(RawEvent)) {
    let root = doc.root();
    // Elements of an array or a batch become documents of their own; a
    // batch's `context` and `integrations` are merged into each
    // (`ps_spec::batch`), as the HTTP edge does.
    let each = |items: JsonRef<'_>,
                key: Option<String>,
                sent: Option<String>,
                shared: &Map<String, Json>,
                f: &mut dyn FnMut(RawEvent)| {
        for item in items.elements() {
            let merged = match item.to_map() {
                Some(mut event) if !shared.is_empty() => {
                    merge_shared(&mut event, shared);
                    Some(Json::Object(event).to_string())
                }
                _ => None,
            };
            let (text, raw) = match merged {
                // The original text stays the event's bytes (message ids
                // derived from them do not change).
                Some(text) => (text, Some(item.raw().to_owned())),
                None => (item.raw().to_owned(), None),
            };
            let payload = Doc::parse(text).map_err(|(e, _)| e.into_message());
            f(RawEvent {
                line,
                payload,
                raw,
                batch_write_key: key.clone(),
                batch_sent_at: sent.clone(),
            });
        }
    };
    if matches!(root.kind(), Kind::Array) {
        each(root, None, None, &Map::new(), f);
        return;
    }
    if let Some(batch) = root
        .get("batch")
        .filter(|b| matches!(b.kind(), Kind::Array))
    {
        let text = |k: &str| root.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let shared = shared_fields(|k| root.get(k).map(|v| v.to_json()));
        each(batch, text("writeKey"), text("sentAt"), &shared, f);
        return;
    }
    f(RawEvent {
        line,
        payload: Ok(doc),
        raw: None,
        batch_write_key: None,
        batch_sent_at: None,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(text: &str) -> Vec<(u64, Result<Doc, String>, Option<String>)> {
        let mut out = Vec::new();
        let reader: Box<dyn BufRead + Send> = Box::new(io::Cursor::new(text.as_bytes().to_vec()));
        read_events(
            reader,
            |e| out.push((e.line, e.payload, e.batch_write_key)),
            |_| {},
        )
        .unwrap();
        out
    }

    #[test]
    fn formats() {
        let lines = collect("{\"a\":1}\n\n{bad\n{\"b\":2}\n");
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].0, 1);
        assert!(lines[1].1.is_err());
        assert_eq!(lines[2].0, 4);
        let arr = collect(" [ {\"a\":1}, {\"a\":2} ]");
        assert_eq!(arr.len(), 2);
        let batch = collect("{\"writeKey\":\"k\",\"batch\":[{\"a\":1},{\"a\":2}]}");
        assert_eq!(batch.len(), 2);
        assert_eq!(batch[1].2.as_deref(), Some("k"));
        let pretty = collect("{\n  \"batch\": [\n {\"a\": 1}\n ]\n}\n{\"c\":3}\n");
        assert_eq!(pretty.len(), 2);
        assert_eq!(pretty[1].0, 6);
        // A truncated line in the middle costs only itself.
        let broken = collect("{\"a\":1}\n{\"b\":\n{\"c\":3}\n");
        assert_eq!(broken.len(), 3);
        assert!(broken[1].1.is_err() && broken[2].1.is_ok());
    }
}
