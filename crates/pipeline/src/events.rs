//! An event to its rows: one in its call table and, for a track, one in its
//! own table, written cell by cell into the batch's column buffers, with
//! columns added to the catalog as new keys arrive. This is the hot path of
//! a sync: no allocation per cell, a table resolved once per row.

use crate::batch::Batch;
use crate::config::Source;
use crate::space::Space;
use ps_spec::flatten::for_each_doc_leaf;
use ps_spec::naming::snake_case;
use ps_spec::tape::JsonRef;
use ps_spec::{Cell, Event, EventType};
use ps_warehouse::contract::{self as c, TableId};

impl Space {
    /// The event's row in its call table and, for a track, in its own
    /// table. `context` is walked once for both rows: it is most of an
    /// event's leaves. The rows are written straight into the batch's
    /// column buffers (`ps_warehouse::rows`), cell by cell.
    pub(crate) fn event_rows(
        &mut self,
        batch: &mut Batch,
        ev: &Event,
        seg: Option<&str>,
        src: &Source,
    ) {
        let mut tables: [Option<TableId>; 2] = [None, None];
        tables[0] = Some(self.start_row(batch, ev.kind.table(), ev, seg, src));
        if ev.kind == EventType::Track {
            let own = snake_case(ev.event.as_deref().unwrap_or_default());
            if c::is_free_event_table_name(&own) {
                tables[1] = Some(self.start_row(batch, &own, ev, seg, src));
            } else {
                *batch
                    .stats
                    .dropped
                    .entry("event_table_name_refused".into())
                    .or_default() += 1;
            }
        }
        let mut scratch = std::mem::take(&mut self.scratch_text);
        if let Some(ctx) = ev.context_ref() {
            for_each_doc_leaf(ctx, "context", |name, leaf| {
                let cell = Cell::from_ref(leaf, &mut scratch);
                for tid in tables.iter().flatten() {
                    let _ = self.put_cell(batch, *tid, name, cell);
                }
            });
        }
        // A track's properties go to its own table only (`tracks` holds the
        // call's common columns), every other call's body to its table.
        let body_table = match ev.kind {
            EventType::Track => tables[1],
            _ => tables[0],
        };
        if let (Some(tid), Some(b)) = (body_table, ev.body_ref()) {
            self.put_body(batch, tid, b, &mut scratch);
        }
        self.scratch_text = scratch;
        for tid in tables.into_iter().flatten() {
            batch.buffer(tid).end_row();
            let t = self.catalog.table(tid).name.as_str();
            match batch.stats.rows.get_mut(t) {
                Some(n) => *n += 1,
                None => {
                    batch.stats.rows.insert(t.to_owned(), 1);
                }
            }
        }
    }

    /// Starts a row of `table` with its standard columns filled.
    pub(crate) fn start_row(
        &mut self,
        batch: &mut Batch,
        table: &str,
        ev: &Event,
        seg: Option<&str>,
        src: &Source,
    ) -> TableId {
        let std = c::event_standard_columns(table);
        let tid = self.catalog.ensure_table(table, std, &mut batch.ddl);
        fn s(v: Option<&str>) -> Cell<'_> {
            v.map_or(Cell::Null, Cell::Str)
        }
        let ts = |v: Option<i64>| v.map_or(Cell::Null, Cell::Ts);
        let own_name;
        let mut cells = [Cell::Null; 13];
        cells[..10].copy_from_slice(&[
            Cell::Str(&ev.message_id),
            s(seg),
            Cell::Str(&src.id),
            s(ev.anonymous_id.as_deref()),
            s(ev.user_id.as_deref()),
            Cell::Ts(ev.received_at),
            ts(ev.sent_at),
            Cell::Ts(ev.timestamp),
            ts(ev.original_timestamp),
            Cell::Ts(batch.load_time),
        ]);
        let n = match table {
            "pages" | "screens" => {
                cells[10] = s(ev.name.as_deref());
                cells[11] = s(ev.category.as_deref());
                12
            }
            "groups" => {
                cells[10] = s(ev.group_id.as_deref());
                11
            }
            "aliases" => {
                cells[10] = s(ev.previous_id.as_deref());
                11
            }
            "identifies" => 10,
            _ => {
                let name = ev.event.as_deref().unwrap_or_default();
                own_name = snake_case(name);
                cells[10] = Cell::Str(&own_name);
                cells[11] = Cell::Str(name);
                12
            }
        };
        debug_assert_eq!(n, std.len());
        let buf = batch.buffer(tid);
        for (i, (cell, (_, ty))) in cells[..n].iter().zip(std).enumerate() {
            buf.set(i, *ty, *cell);
        }
        tid
    }

    /// The payload's own fields (properties or traits), flattened into the
    /// row being built in `tid`.
    pub(crate) fn put_body(
        &mut self,
        batch: &mut Batch,
        tid: TableId,
        body: JsonRef<'_>,
        scratch: &mut String,
    ) {
        // Columns this body already wrote: a second key that names the same
        // column is a collision (last one wins, counted).
        let mut written = std::mem::take(&mut self.scratch_written);
        written.clear();
        for_each_doc_leaf(body, "", |name, leaf| {
            if name.is_empty() {
                *batch.stats.dropped.entry("empty_name".into()).or_default() += 1;
            } else if self.reserved_event.contains(name) {
                *batch
                    .stats
                    .dropped
                    .entry("reserved_column_name".into())
                    .or_default() += 1;
            } else if let Some(pos) = self.put_cell(batch, tid, name, Cell::from_ref(leaf, scratch))
            {
                if written.len() <= pos {
                    written.resize(pos + 1, false);
                }
                if std::mem::replace(&mut written[pos], true) {
                    *batch
                        .stats
                        .dropped
                        .entry("name_collision".into())
                        .or_default() += 1;
                }
            }
        });
        self.scratch_written = written;
    }

    /// Writes `cell` into column `name` of the row being built in `tid`,
    /// adding the column (typed by the cell) if it is new, and casting to
    /// the column's type if it is not. Returns the column's position.
    pub(crate) fn put_cell(
        &mut self,
        batch: &mut Batch,
        tid: TableId,
        name: &str,
        cell: Cell<'_>,
    ) -> Option<usize> {
        let Some(ty) = cell.column_type() else {
            // A null only matters for a column that already exists, where the
            // cell is NULL anyway — unless an earlier key of this payload filled it.
            let pos = self.catalog.position_in(tid, name)?;
            let have = self.catalog.table(tid).columns[pos].ty;
            batch.buffer(tid).set(pos, have, Cell::Null);
            return Some(pos);
        };
        let (pos, have) = self.catalog.ensure_column_in(tid, name, ty, &mut batch.ddl);
        let mut cast = String::new();
        let stored = match cell.cast(have, &mut cast) {
            Some(c) => c,
            None => {
                let t = &self.catalog.table(tid).name;
                *batch
                    .stats
                    .type_conflicts
                    .entry(format!("{t}.{name}"))
                    .or_default() += 1;
                Cell::Null
            }
        };
        batch.buffer(tid).set(pos, have, stored);
        Some(pos)
    }
}
