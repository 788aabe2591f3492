//! Counters for the sync summary.

use std::collections::BTreeMap;
use std::fmt;

/// How many refusals of one reason to keep with their location.
const EXAMPLES: usize = 5;

/// One refused event's location and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalExample {
    /// Where the event was (`file:line`, `http`, …).
    pub origin: String,
    /// Why it was refused.
    pub message: String,
}

/// What a sync did. Adding two of them (`merge`) gives the total of two runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Events read.
    pub read: u64,
    /// Events landed.
    pub landed: u64,
    /// Events skipped because their message id had landed before.
    pub duplicates: u64,
    /// Refusals by reason code: count and the first few examples.
    pub refused: BTreeMap<String, (u64, Vec<RefusalExample>)>,
    /// Profiles created.
    pub profiles_created: u64,
    /// Profile merges.
    pub merges: u64,
    /// Profiles whose computed traits or audiences changed (one
    /// `profile_traits_updates` row each).
    pub computed_changes: u64,
    /// Profiles whose computed values were re-evaluated (touched by an
    /// event or a merge, or due at a tick).
    pub computed_evaluated: u64,
    /// Identity conflicts (demotions) by rule.
    pub conflicts: BTreeMap<String, u64>,
    /// Rows landed per table.
    pub rows: BTreeMap<String, u64>,
    /// Keys or events dropped by the schema rules, by reason.
    pub dropped: BTreeMap<String, u64>,
    /// Values stored as NULL because they did not fit their column, by `table.column`.
    pub type_conflicts: BTreeMap<String, u64>,
    /// Identifier types first seen in `context.externalIds`.
    pub new_identifier_types: Vec<String>,
    /// Batches committed.
    pub batches: u64,
}

impl SyncStats {
    /// Refusals of every reason.
    pub fn refused_total(&self) -> u64 {
        self.refused.values().map(|(n, _)| n).sum()
    }

    /// Counts one refusal of reason `code`, keeping the first few examples.
    pub fn refuse(&mut self, code: &str, origin: String, message: String) {
        let e = self.refused.entry(code.to_owned()).or_default();
        e.0 += 1;
        if e.1.len() < EXAMPLES {
            e.1.push(RefusalExample { origin, message });
        }
    }

    /// Adds the counters of `o` to these.
    pub fn merge(&mut self, o: &SyncStats) {
        self.read += o.read;
        self.landed += o.landed;
        self.duplicates += o.duplicates;
        for (k, (n, ex)) in &o.refused {
            let e = self.refused.entry(k.clone()).or_default();
            e.0 += n;
            for x in ex {
                if e.1.len() < EXAMPLES {
                    e.1.push(x.clone());
                }
            }
        }
        self.profiles_created += o.profiles_created;
        self.merges += o.merges;
        self.computed_changes += o.computed_changes;
        self.computed_evaluated += o.computed_evaluated;
        add_all(&mut self.conflicts, &o.conflicts);
        add_all(&mut self.rows, &o.rows);
        add_all(&mut self.dropped, &o.dropped);
        add_all(&mut self.type_conflicts, &o.type_conflicts);
        self.new_identifier_types
            .extend(o.new_identifier_types.iter().cloned());
        self.batches += o.batches;
    }
}

fn add_all(a: &mut BTreeMap<String, u64>, b: &BTreeMap<String, u64>) {
    for (k, v) in b {
        *a.entry(k.clone()).or_default() += v;
    }
}

impl fmt::Display for SyncStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "events: {} read, {} landed, {} duplicates skipped, {} refused",
            self.read,
            self.landed,
            self.duplicates,
            self.refused_total()
        )?;
        for (code, (n, examples)) in &self.refused {
            writeln!(f, "  refused {code}: {n}")?;
            for e in examples {
                writeln!(f, "    {}: {}", e.origin, e.message)?;
            }
        }
        writeln!(
            f,
            "profiles: {} created, {} merges",
            self.profiles_created, self.merges
        )?;
        if self.computed_changes > 0 {
            writeln!(f, "computed: {} profile changes", self.computed_changes)?;
        }
        if !self.conflicts.is_empty() {
            let c: Vec<String> = self
                .conflicts
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            writeln!(f, "identity conflicts: {}", c.join(", "))?;
        }
        if !self.new_identifier_types.is_empty() {
            writeln!(
                f,
                "new identifier types from context.externalIds: {}",
                self.new_identifier_types.join(", ")
            )?;
        }
        if !self.dropped.is_empty() {
            let c: Vec<String> = self
                .dropped
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            writeln!(f, "dropped by schema rules: {}", c.join(", "))?;
        }
        if !self.type_conflicts.is_empty() {
            writeln!(f, "values stored as NULL (type did not fit the column):")?;
            for (k, v) in &self.type_conflicts {
                writeln!(f, "  {k}: {v}")?;
            }
        }
        writeln!(f, "rows landed:")?;
        for (k, v) in &self.rows {
            writeln!(f, "  {k}: {v}")?;
        }
        Ok(())
    }
}
