//! A batch: the rows of the events added since the last commit, and the
//! changes (DDL, dedupe keys, checkpoints, privacy deletes) that land with
//! them.

use crate::stats::SyncStats;
use ps_spec::Value;
use ps_warehouse::contract::{Ddl, TableId};
use ps_warehouse::RowBuffer;
use std::collections::BTreeMap;

/// Rows waiting to be committed, with the changes they need.
#[derive(Debug, Default)]
pub struct Batch {
    pub(crate) load_time: i64,
    pub(crate) ddl: Vec<Ddl>,
    pub(crate) rows: BTreeMap<String, Vec<Vec<Value>>>,
    /// The event tables' rows, column by column, by `TableId::index`.
    pub(crate) buffers: Vec<RowBuffer>,
    /// The `seq` of the batch's first row of a table the materialized
    /// tables are built from (`ps_materialize::Scope::Since`).
    pub(crate) first_seq: Option<i64>,
    /// What the batch's events did so far, reported when it commits.
    pub stats: SyncStats,
    pub(crate) events: usize,
    pub(crate) checkpoints: Vec<(String, String)>,
    /// Statements run first in the commit's transaction (privacy deletes).
    pub(crate) statements: Vec<String>,
    /// Dedupe keys this batch added to `Space::seen`, persisted with it.
    pub(crate) new_keys: Vec<u128>,
    /// The lease token the commit is fenced by ([`Batch::set_fence`]).
    pub(crate) fence: Option<u64>,
}

impl Batch {
    /// Events accepted into this batch so far.
    pub fn len(&self) -> usize {
        self.events
    }

    /// Whether the batch holds nothing to land (no events, rows or buffered cells).
    pub fn is_empty(&self) -> bool {
        self.events == 0 && self.rows.is_empty() && self.buffers.iter().all(RowBuffer::is_empty)
    }

    /// The batch's load time (`uuid_ts` of its rows, µs since the epoch).
    pub fn load_time(&self) -> i64 {
        self.load_time
    }

    /// Records an input position (an inbox offset, say) that commits in the
    /// same transaction as the batch's rows: after a crash, the stored
    /// checkpoint and the landed rows always agree. Read back with
    /// [`Space::checkpoint`](crate::space::Space::checkpoint). Keys must not start with `_`.
    pub fn set_checkpoint(&mut self, key: &str, value: String) {
        assert!(
            !key.starts_with('_'),
            "checkpoint keys starting with _ are reserved"
        );
        let key = format!("cp:{key}");
        self.checkpoints.retain(|(k, _)| *k != key);
        self.checkpoints.push((key, value));
    }

    /// Fences the batch's commit by a lease token: the transaction fails
    /// with `ErrorKind::Fenced` (nothing lands) if a commit with a greater
    /// token has landed ([`ps_warehouse::fence`]), and records this token
    /// otherwise. Set by writers that hold a lease (`profiles-sync resolve`).
    pub fn set_fence(&mut self, token: u64) {
        self.fence = Some(token);
    }

    /// A row of `seq` lands in a table the materialized tables are built
    /// from (`Space::common`).
    pub(crate) fn materialize_from(&mut self, seq: i64) {
        self.first_seq.get_or_insert(seq);
    }

    pub(crate) fn buffer(&mut self, table: TableId) -> &mut RowBuffer {
        let i = table.index();
        if self.buffers.len() <= i {
            self.buffers.resize_with(i + 1, RowBuffer::new);
        }
        &mut self.buffers[i]
    }

    pub(crate) fn push(&mut self, table: &str, row: Vec<Value>) {
        match self.rows.get_mut(table) {
            Some(v) => v.push(row),
            None => {
                self.rows.insert(table.to_owned(), vec![row]);
            }
        }
    }
}
