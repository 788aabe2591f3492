//! The table contract: every table the product lands, its columns and types.
//!
//! This is the one place that knows table and column names. Warehouses map it
//! to their dialect ([`crate::Dialect`]); the pipeline fills rows in the
//! column order given here; materialization reads it to write its SQL. Event
//! tables and `profile_traits*` also grow columns at run time; [`Catalog`]
//! tracks what each table holds now, and the rule that columns are only ever
//! added, never dropped or retyped.

use hashbrown::HashMap;
use ps_spec::{ColumnType, Value};

use ColumnType::{Bigint as B, Timestamp as T, Varchar as V};

/// A column of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its type.
    pub ty: ColumnType,
}

/// A table's name and columns, in table order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    /// The table's name.
    pub name: String,
    /// Its columns, in table order.
    pub columns: Vec<Column>,
}

impl TableSchema {
    /// A table named `name` with columns `cols`.
    pub fn new(name: &str, cols: &[(&str, ColumnType)]) -> TableSchema {
        TableSchema {
            name: name.to_owned(),
            columns: cols
                .iter()
                .map(|(n, t)| Column {
                    name: (*n).to_owned(),
                    ty: *t,
                })
                .collect(),
        }
    }

    /// The position of column `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

/// Landed profile tables.
pub const ID_GRAPH_UPDATES: &str = "id_graph_updates";
/// Landed identifier rows: which profile holds each identifier, and since when.
pub const EXTERNAL_ID_MAPPING_UPDATES: &str = "external_id_mapping_updates";
/// Landed trait rows: a profile's traits after each change.
pub const PROFILE_TRAITS_UPDATES: &str = "profile_traits_updates";
/// Identifiers refused by a limit or cap (SPEC §3): the demotions.
pub const IDENTITY_CONFLICTS: &str = "identity_conflicts";
/// Events refused by validation, with where they were and why.
pub const REJECTED_EVENTS: &str = "rejected_events";
/// Materialized tables.
pub const ID_GRAPH: &str = "id_graph";
/// Each identifier's current profile (materialized).
pub const EXTERNAL_ID_MAPPING: &str = "external_id_mapping";
/// Each profile's current traits (materialized).
pub const PROFILE_TRAITS: &str = "profile_traits";
/// Internal tables: the identity engine's state, sync metadata, dedupe keys,
/// compute state and suppressions.
pub const STATE_PROFILES: &str = "_ps_profiles";
/// Sync metadata: sequence, engine counters, checkpoints.
pub const STATE_META: &str = "_ps_meta";
/// The dedupe keys (128-bit hashes of message ids and of refused payloads)
/// of everything that landed, packed: a restart reads a few megabytes instead
/// of every event table's ids.
pub const STATE_SEEN: &str = "_ps_seen";
/// Privacy (SPEC §8): every request, user-facing, and the identifiers
/// currently suppressed.
pub const REGULATIONS: &str = "regulations";
/// Computed traits' state (issue 19), a log: rows per profile (`k`, its
/// number), each with the values last emitted and the facts its
/// definitions read that the profile gained since its previous row, as
/// JSON (`ps_pipeline::compute_state`).
pub const STATE_COMPUTE: &str = "_ps_compute";
/// Identifiers currently suppressed.
pub const STATE_SUPPRESSIONS: &str = "_ps_suppressions";
/// Where spaces from before `_ps_seen` kept the dedupe keys of events deleted
/// by privacy requests; read once when such a space's keys move to
/// `_ps_seen`, no longer created or written.
pub const STATE_FORGOTTEN: &str = "_ps_forgotten";

/// The provenance columns every landed profile table carries (SPEC §4).
pub const COMMON: [(&str, ColumnType); 10] = [
    ("seq", B),
    ("uuid_ts", T),
    ("timestamp", T),
    ("received_at", T),
    ("triggering_event_id", V),
    ("triggering_event_type", V),
    ("triggering_event_name", V),
    ("triggering_event_source_id", V),
    ("triggering_event_source_name", V),
    ("triggering_event_source_slug", V),
];

fn with_common(name: &str, head: &[(&str, ColumnType)]) -> TableSchema {
    let cols: Vec<(&str, ColumnType)> = head.iter().copied().chain(COMMON).collect();
    TableSchema::new(name, &cols)
}

/// The fixed part of table `name`, if it is one of [`fixed_tables`].
pub fn fixed_table(name: &str) -> Option<TableSchema> {
    fixed_tables().into_iter().find(|t| t.name == name)
}

/// The fixed part of every table the product creates, in creation order.
/// `profile_traits_updates` and `profile_traits` get trait columns appended.
pub fn fixed_tables() -> Vec<TableSchema> {
    vec![
        with_common(
            ID_GRAPH_UPDATES,
            &[("id", V), ("segment_id", V), ("canonical_segment_id", V)],
        ),
        with_common(
            EXTERNAL_ID_MAPPING_UPDATES,
            &[
                ("id", V),
                ("segment_id", V),
                ("external_id_type", V),
                ("external_id_value", V),
                ("external_id_hash", V),
            ],
        ),
        with_common(PROFILE_TRAITS_UPDATES, &[("id", V), ("segment_id", V)]),
        TableSchema::new(
            IDENTITY_CONFLICTS,
            &[
                ("id", V),
                ("seq", B),
                ("uuid_ts", T),
                ("timestamp", T),
                ("event_id", V),
                ("event_type", V),
                ("event_source_id", V),
                ("external_id_type", V),
                ("external_id_value", V),
                ("rule", V),
                ("segment_ids", V),
            ],
        ),
        TableSchema::new(
            REJECTED_EVENTS,
            &[
                ("received_at", T),
                ("uuid_ts", T),
                ("source_id", V),
                ("origin", V),
                ("reason_code", V),
                ("reason", V),
                ("payload", V),
            ],
        ),
        TableSchema::new(
            ID_GRAPH,
            &[
                ("segment_id", V),
                ("canonical_segment_id", V),
                ("timestamp", T),
                ("seq", B),
                ("uuid_ts", T),
            ],
        ),
        TableSchema::new(
            EXTERNAL_ID_MAPPING,
            &[
                ("canonical_segment_id", V),
                ("external_id_type", V),
                ("external_id_value", V),
                ("external_id_hash", V),
                ("timestamp", T),
                ("uuid_ts", T),
            ],
        ),
        TableSchema::new(
            PROFILE_TRAITS,
            &[("canonical_segment_id", V), ("merged_to", V)],
        ),
        // The identity engine's state: chunk c holds the binary snapshot
        // (base64) of profiles c*64 .. c*64+63 (`ps_pipeline::state`).
        TableSchema::new(STATE_PROFILES, &[("chunk", B), ("state", V)]),
        TableSchema::new(STATE_META, &[("key", V), ("value", V)]),
        // One row per commit (compacted at start-up): the 16-byte keys it
        // added, concatenated, base64 (`ps_pipeline::state::seen`).
        TableSchema::new(STATE_SEEN, &[("batch", B), ("keys", V)]),
        TableSchema::new(STATE_COMPUTE, &[("k", V), ("state", V)]),
        TableSchema::new(
            REGULATIONS,
            &[
                ("id", V),
                ("type", V),
                ("subject", V),
                ("status", V),
                ("requested_at", T),
                ("finished_at", T),
                ("rows_deleted", V),
                ("message", V),
            ],
        ),
        TableSchema::new(
            STATE_SUPPRESSIONS,
            &[
                ("regulation_id", V),
                ("external_id_type", V),
                ("external_id_value", V),
            ],
        ),
    ]
}

/// Declares [`Col`]: the names of the fixed tables' columns.
macro_rules! columns {
    ($($variant:ident = $name:literal),* $(,)?) => {
        /// A column of a fixed table, by name: rows of the fixed tables are
        /// built by naming their cells ([`Row::set`]), never by position, so
        /// a column added to a table in [`fixed_tables`] needs no other
        /// change to the row order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Col {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
        }

        impl Col {
            /// Every column name, in declaration order.
            pub const ALL: &'static [Col] = &[$(Col::$variant),*];

            /// The column's name in the tables.
            pub fn name(self) -> &'static str {
                match self {
                    $(Col::$variant => $name,)*
                }
            }
        }
    };
}

columns! {
    Id = "id",
    SegmentId = "segment_id",
    CanonicalSegmentId = "canonical_segment_id",
    ExternalIdType = "external_id_type",
    ExternalIdValue = "external_id_value",
    ExternalIdHash = "external_id_hash",
    Seq = "seq",
    UuidTs = "uuid_ts",
    Timestamp = "timestamp",
    ReceivedAt = "received_at",
    TriggeringEventId = "triggering_event_id",
    TriggeringEventType = "triggering_event_type",
    TriggeringEventName = "triggering_event_name",
    TriggeringEventSourceId = "triggering_event_source_id",
    TriggeringEventSourceName = "triggering_event_source_name",
    TriggeringEventSourceSlug = "triggering_event_source_slug",
    EventId = "event_id",
    EventType = "event_type",
    EventSourceId = "event_source_id",
    Rule = "rule",
    SegmentIds = "segment_ids",
    SourceId = "source_id",
    Origin = "origin",
    ReasonCode = "reason_code",
    Reason = "reason",
    Payload = "payload",
    MergedTo = "merged_to",
    Chunk = "chunk",
    State = "state",
    Key = "key",
    Value = "value",
    K = "k",
    Batch = "batch",
    Keys = "keys",
    Type = "type",
    Subject = "subject",
    Status = "status",
    RequestedAt = "requested_at",
    FinishedAt = "finished_at",
    RowsDeleted = "rows_deleted",
    Message = "message",
    RegulationId = "regulation_id",
}

/// Where each [`Col`] sits in one fixed table: resolved from the contract
/// once per table, so building a row costs an array index per cell.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// Position by `Col as usize`; [`Layout::ABSENT`] where the table has no
    /// such column.
    pos: [u8; Col::ALL.len()],
    /// The table's fixed columns.
    width: u8,
}

impl Layout {
    const ABSENT: u8 = u8::MAX;

    /// The layout of fixed table `table` (one of [`fixed_tables`]).
    ///
    /// # Panics
    /// If `table` is not a fixed table.
    pub fn of(table: &str) -> Layout {
        let t = fixed_table(table).unwrap_or_else(|| panic!("{table} is not a fixed table"));
        let mut pos = [Layout::ABSENT; Col::ALL.len()];
        for (i, c) in t.columns.iter().enumerate() {
            if let Some(col) = Col::ALL.iter().find(|col| col.name() == c.name) {
                pos[*col as usize] = u8::try_from(i).expect("fixed tables are narrow");
            }
        }
        Layout {
            pos,
            width: u8::try_from(t.columns.len()).expect("fixed tables are narrow"),
        }
    }

    /// The position of `col` in the table, if it has it.
    pub fn position(&self, col: Col) -> Option<usize> {
        let p = self.pos[col as usize];
        (p != Layout::ABSENT).then_some(usize::from(p))
    }

    /// A row of this table, every cell NULL.
    pub fn row(&self) -> Row {
        Row {
            layout: *self,
            cells: vec![Value::Null; usize::from(self.width)],
        }
    }
}

/// A row of a fixed table being built by column name ([`Layout::row`]).
#[derive(Debug, Clone)]
pub struct Row {
    layout: Layout,
    cells: Vec<Value>,
}

impl Row {
    /// Sets the cell of `col`.
    ///
    /// # Panics
    /// If the table has no column `col`.
    pub fn set(&mut self, col: Col, value: Value) -> &mut Row {
        let pos = self
            .layout
            .position(col)
            .unwrap_or_else(|| panic!("the table has no column {}", col.name()));
        self.cells[pos] = value;
        self
    }

    /// Sets the cell at `pos`, a column added at run time (after the fixed
    /// ones: trait columns), growing the row with NULLs up to it.
    pub fn set_at(&mut self, pos: usize, value: Value) {
        if self.cells.len() <= pos {
            self.cells.resize(pos + 1, Value::Null);
        }
        self.cells[pos] = value;
    }

    /// The cells, in table order (a row shorter than its table reads NULL
    /// in the columns past its end: [`crate::Warehouse::append`]).
    pub fn into_cells(self) -> Vec<Value> {
        self.cells
    }
}

/// Columns a row-store warehouse (PostgreSQL) indexes. The incremental
/// materialization (`ps-materialize`) reads a transaction's landed rows by
/// `seq` and the current-state rows they change by segment, canonical id
/// and hash: with the indexes, a sync of a thousand events reads a
/// thousand profiles' rows, not whole tables. The Profile API (issue 20)
/// reads a profile's landed rows by `segment_id`, and its identifiers and
/// segments by its canonical id.
pub const LOOKUP_INDEXES: [(&str, &str); 11] = [
    (ID_GRAPH_UPDATES, "seq"),
    (EXTERNAL_ID_MAPPING_UPDATES, "seq"),
    (PROFILE_TRAITS_UPDATES, "seq"),
    (ID_GRAPH_UPDATES, "segment_id"),
    (EXTERNAL_ID_MAPPING_UPDATES, "segment_id"),
    (PROFILE_TRAITS_UPDATES, "segment_id"),
    (ID_GRAPH, "segment_id"),
    (EXTERNAL_ID_MAPPING, "external_id_hash"),
    (PROFILE_TRAITS, "canonical_segment_id"),
    (EXTERNAL_ID_MAPPING, "canonical_segment_id"),
    (ID_GRAPH, "canonical_segment_id"),
];

/// The [`LOOKUP_INDEXES`] a columnar warehouse (DuckDB) creates too: the
/// Profile API's point lookups, an identifier's hash and then its profile's
/// row. Zone maps cannot prune random hashes, so without them each lookup
/// scans both tables; the others serve set-at-a-time reads, where DuckDB's
/// scans are fast and an ART index would only slow every append and delete.
pub const POINT_INDEXES: [(&str, &str); 2] = [
    (EXTERNAL_ID_MAPPING, "external_id_hash"),
    (PROFILE_TRAITS, "canonical_segment_id"),
];

/// Columns holding one large text per row (the engine state's and compute
/// state's logs: base64 snapshots and JSON). A columnar warehouse (DuckDB)
/// stores them with zstd: its default analysis of such strings costs more
/// time at each checkpoint and gives a larger file (BENCHMARKS.md, "State
/// columns with zstd").
pub const LARGE_TEXT: [(&str, &str); 2] = [(STATE_PROFILES, "state"), (STATE_COMPUTE, "state")];

/// Names a trait may not take in the profile tables because a fixed column
/// already has it; such traits are dropped and counted.
pub fn reserved_trait_names() -> Vec<&'static str> {
    let mut v: Vec<&str> = COMMON.iter().map(|(n, _)| *n).collect();
    v.extend(["id", "segment_id", "canonical_segment_id", "merged_to"]);
    v
}

/// Standard columns of the event tables (SPEC §5), per table.
pub fn event_standard_columns(table: &str) -> &'static [(&'static str, ColumnType)] {
    const COMMON: [(&str, ColumnType); 10] = [
        ("id", V),
        ("segment_id", V),
        ("event_source_id", V),
        ("anonymous_id", V),
        ("user_id", V),
        ("received_at", T),
        ("sent_at", T),
        ("timestamp", T),
        ("original_timestamp", T),
        ("uuid_ts", T),
    ];
    const fn with<const N: usize, const M: usize>(
        extra: [(&'static str, ColumnType); M],
    ) -> [(&'static str, ColumnType); N] {
        let mut out = [("", V); N];
        let mut i = 0;
        while i < 10 {
            out[i] = COMMON[i];
            i += 1;
        }
        while i < N {
            out[i] = extra[i - 10];
            i += 1;
        }
        out
    }
    const IDENTIFIES: [(&str, ColumnType); 10] = with::<10, 0>([]);
    const PAGES: [(&str, ColumnType); 12] = with::<12, 2>([("name", V), ("category", V)]);
    const GROUPS: [(&str, ColumnType); 11] = with::<11, 1>([("group_id", V)]);
    const ALIASES: [(&str, ColumnType); 11] = with::<11, 1>([("previous_id", V)]);
    const TRACKS: [(&str, ColumnType); 12] = with::<12, 2>([("event", V), ("event_text", V)]);
    match table {
        "pages" | "screens" => &PAGES,
        "groups" => &GROUPS,
        "aliases" => &ALIASES,
        "identifies" => &IDENTIFIES,
        // tracks and every per-event table
        _ => &TRACKS,
    }
}

/// Names an event-table property or trait may not take: every standard column
/// of any event table. Such keys are dropped and counted.
pub fn reserved_event_columns() -> &'static [&'static str] {
    &[
        "id",
        "segment_id",
        "event_source_id",
        "anonymous_id",
        "user_id",
        "received_at",
        "sent_at",
        "timestamp",
        "original_timestamp",
        "uuid_ts",
        "event",
        "event_text",
        "name",
        "category",
        "group_id",
        "previous_id",
    ]
}

/// Event tables of the six calls.
pub const CALL_TABLES: [&str; 6] = [
    "identifies",
    "tracks",
    "pages",
    "screens",
    "groups",
    "aliases",
];

/// Whether a per-event track table may take this (snake-cased) name: not
/// empty, and not one of the product's own tables.
pub fn is_free_event_table_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('_')
        && !CALL_TABLES.contains(&name)
        && ![
            ID_GRAPH_UPDATES,
            EXTERNAL_ID_MAPPING_UPDATES,
            PROFILE_TRAITS_UPDATES,
            IDENTITY_CONFLICTS,
            REJECTED_EVENTS,
            ID_GRAPH,
            EXTERNAL_ID_MAPPING,
            PROFILE_TRAITS,
            "users",
            "accounts",
            "regulations",
        ]
        .contains(&name)
}

/// What each table of a schema holds now. Columns are only ever added.
///
/// Column positions are indexed by name: the pipeline looks up a column for
/// every leaf of every payload, and tables grow to hundreds of columns. A row
/// builder resolves its table once ([`Catalog::ensure_table`] gives a
/// [`TableId`]) and then only looks up column names: looking the table up by
/// name for every leaf showed in profiles of a sync (BENCHMARKS.md).
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    tables: Vec<TableSchema>,
    /// hashbrown's default hasher (foldhash): SipHash showed in profiles.
    by_name: HashMap<String, TableId>,
    columns: Vec<HashMap<String, usize>>,
}

/// A table of a [`Catalog`], valid for the catalog that gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TableId(u32);

impl TableId {
    /// A dense index (tables are numbered from 0 in the order the catalog
    /// learnt them), for per-table arrays.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A change [`Catalog`] made that the warehouse must apply before loading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ddl {
    /// A new table.
    CreateTable(TableSchema),
    /// A new column of an existing table.
    AddColumn {
        /// The table.
        table: String,
        /// The column it gets.
        column: Column,
    },
}

impl Catalog {
    /// The catalog of a schema holding `tables` ([`crate::Warehouse::describe`]).
    pub fn from_tables(tables: Vec<TableSchema>) -> Catalog {
        let mut c = Catalog::default();
        for t in tables {
            c.insert(t);
        }
        c
    }

    fn insert(&mut self, t: TableSchema) -> TableId {
        let id = TableId(u32::try_from(self.tables.len()).expect("fewer than 2^32 tables"));
        self.columns.push(
            t.columns
                .iter()
                .enumerate()
                .map(|(i, c)| (c.name.clone(), i))
                .collect(),
        );
        self.by_name.insert(t.name.clone(), id);
        self.tables.push(t);
        id
    }

    /// The id of `table`, if the catalog has it.
    pub fn id(&self, table: &str) -> Option<TableId> {
        self.by_name.get(table).copied()
    }

    /// The table `id` names.
    pub fn table(&self, id: TableId) -> &TableSchema {
        &self.tables[id.0 as usize]
    }

    /// The position of `column` in `table`.
    pub fn position(&self, table: &str, column: &str) -> Option<usize> {
        self.position_in(self.id(table)?, column)
    }

    /// The position of `column` in a table already resolved.
    pub fn position_in(&self, table: TableId, column: &str) -> Option<usize> {
        self.columns[table.0 as usize].get(column).copied()
    }

    /// The table named `table`.
    pub fn get(&self, table: &str) -> Option<&TableSchema> {
        Some(self.table(self.id(table)?))
    }

    /// Every table, by [`TableId::index`].
    pub fn tables_by_index(&self) -> &[TableSchema] {
        &self.tables
    }

    /// Every table, by name.
    pub fn tables(&self) -> impl Iterator<Item = &TableSchema> {
        let mut t: Vec<&TableSchema> = self.tables.iter().collect();
        t.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        t.into_iter()
    }

    /// Makes sure `table` exists with at least `cols`, recording the DDL.
    pub fn ensure_table(
        &mut self,
        table: &str,
        cols: &[(&str, ColumnType)],
        ddl: &mut Vec<Ddl>,
    ) -> TableId {
        match self.id(table) {
            Some(id) => id,
            None => {
                let t = TableSchema::new(table, cols);
                ddl.push(Ddl::CreateTable(t.clone()));
                self.insert(t)
            }
        }
    }

    /// The column's position and type, adding it with type `ty` if missing.
    /// The table must exist ([`Catalog::ensure_table`]).
    pub fn ensure_column(
        &mut self,
        table: &str,
        name: &str,
        ty: ColumnType,
        ddl: &mut Vec<Ddl>,
    ) -> (usize, ColumnType) {
        let id = self.id(table).expect("table ensured before its columns");
        self.ensure_column_in(id, name, ty, ddl)
    }

    /// [`Catalog::ensure_column`] of a table already resolved.
    pub fn ensure_column_in(
        &mut self,
        table: TableId,
        name: &str,
        ty: ColumnType,
        ddl: &mut Vec<Ddl>,
    ) -> (usize, ColumnType) {
        let idx = &mut self.columns[table.0 as usize];
        let t = &mut self.tables[table.0 as usize];
        if let Some(&i) = idx.get(name) {
            return (i, t.columns[i].ty);
        }
        idx.insert(name.to_owned(), t.columns.len());
        let column = Column {
            name: name.to_owned(),
            ty,
        };
        t.columns.push(column.clone());
        ddl.push(Ddl::AddColumn {
            table: t.name.clone(),
            column,
        });
        (t.columns.len() - 1, ty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every fixed column has a name rows can be built by, and each table's
    /// layout puts it where the table has it.
    #[test]
    fn every_fixed_column_has_a_col_at_its_position() {
        for t in fixed_tables() {
            let layout = Layout::of(&t.name);
            for (i, c) in t.columns.iter().enumerate() {
                let col = Col::ALL
                    .iter()
                    .find(|col| col.name() == c.name)
                    .unwrap_or_else(|| panic!("{}.{} has no Col", t.name, c.name));
                assert_eq!(layout.position(*col), Some(i), "{}.{}", t.name, c.name);
            }
            assert_eq!(layout.row().into_cells().len(), t.columns.len());
        }
    }
}
