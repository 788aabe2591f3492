//! Rows on their way to a warehouse, kept column by column.
//!
//! The event tables take almost every row a sync lands, and their rows are
//! wide (a track's own table has every `context_…` column and every property
//! any event of that name ever had) and mostly NULL. Keeping them as
//! `Vec<Value>` rows cost an allocation per row, one per string cell, a pass
//! to turn rows into columns for DuckDB, and as much again to free it all. A
//! [`RowBuffer`] instead appends each cell to its column's one buffer: string
//! bytes go into one growing `String` per column, and a column that a row
//! does not mention costs that row nothing until the column is read.
//!
//! A row is built in place: [`RowBuffer::set`] writes a cell of the current
//! row (a second write to the same cell replaces the first: a payload whose
//! keys collide keeps the last value), [`RowBuffer::end_row`] closes it.
//! Columns may appear in the middle of a batch (the catalog adds them as new
//! keys arrive): earlier rows read NULL there.

use crate::contract::TableSchema;
pub use ps_spec::Cell;
use ps_spec::{ColumnType, Value};

/// The cells of one column, in row order, up to the last row that wrote it.
#[derive(Debug, Clone)]
pub struct ColumnBuf {
    valid: Vec<bool>,
    data: Data,
}

/// Where each row's string ends in its column's bytes: 4 bytes a row while
/// the column holds less than [`NARROW_MAX`] bytes, 8 after: most columns
/// are short, and 8-byte ends were a large part of a batch's memory
/// (BENCHMARKS.md).
#[derive(Debug, Clone)]
enum Ends {
    Narrow(Vec<u32>),
    Wide(Vec<usize>),
}

/// The largest end [`Ends::Narrow`] holds (tiny in unit tests, so that they
/// cross over to [`Ends::Wide`]).
const NARROW_MAX: usize = if cfg!(test) { 100 } else { u32::MAX as usize };

impl Ends {
    fn push(&mut self, end: usize) {
        match self {
            Ends::Narrow(v) if end <= NARROW_MAX => v.push(end as u32),
            Ends::Narrow(v) => {
                let mut wide: Vec<usize> = Vec::with_capacity(v.capacity().max(v.len() + 1));
                wide.extend(v.iter().map(|&e| e as usize));
                wide.push(end);
                *self = Ends::Wide(wide);
            }
            Ends::Wide(v) => v.push(end),
        }
    }

    fn pop(&mut self) {
        match self {
            Ends::Narrow(v) => {
                v.pop();
            }
            Ends::Wide(v) => {
                v.pop();
            }
        }
    }

    fn len(&self) -> usize {
        match self {
            Ends::Narrow(v) => v.len(),
            Ends::Wide(v) => v.len(),
        }
    }

    /// The end of row `i` (`i < len`).
    fn at(&self, i: usize) -> usize {
        match self {
            Ends::Narrow(v) => v[i] as usize,
            Ends::Wide(v) => v[i],
        }
    }

    fn last(&self) -> usize {
        match self.len() {
            0 => 0,
            n => self.at(n - 1),
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Ends::Narrow(v) => v.capacity() * 4,
            Ends::Wide(v) => v.capacity() * 8,
        }
    }
}

#[derive(Debug, Clone)]
enum Data {
    /// Every string of the column back to back; `ends.at(i)` is where row
    /// `i`'s ends (a NULL's is empty).
    Str {
        bytes: String,
        ends: Ends,
    },
    /// Bigint and timestamp (microseconds).
    I64(Vec<i64>),
    F64(Vec<f64>),
    Bool(Vec<bool>),
}

impl ColumnBuf {
    fn new(ty: ColumnType) -> ColumnBuf {
        let data = match ty {
            ColumnType::Varchar => Data::Str {
                bytes: String::new(),
                ends: Ends::Narrow(Vec::new()),
            },
            ColumnType::Bigint | ColumnType::Timestamp => Data::I64(Vec::new()),
            ColumnType::Double => Data::F64(Vec::new()),
            ColumnType::Boolean => Data::Bool(Vec::new()),
        };
        ColumnBuf {
            valid: Vec::new(),
            data,
        }
    }

    /// Rows written so far (later rows are NULL).
    pub fn len(&self) -> usize {
        self.valid.len()
    }

    /// Whether no row wrote this column.
    pub fn is_empty(&self) -> bool {
        self.valid.is_empty()
    }

    fn push_null(&mut self) {
        self.valid.push(false);
        match &mut self.data {
            Data::Str { bytes, ends } => ends.push(bytes.len()),
            Data::I64(v) => v.push(0),
            Data::F64(v) => v.push(0.0),
            Data::Bool(v) => v.push(false),
        }
    }

    fn pop(&mut self) {
        self.valid.pop();
        match &mut self.data {
            Data::Str { bytes, ends } => {
                ends.pop();
                bytes.truncate(ends.last());
            }
            Data::I64(v) => {
                v.pop();
            }
            Data::F64(v) => {
                v.pop();
            }
            Data::Bool(v) => {
                v.pop();
            }
        }
    }

    /// Appends `cell`; a cell of another type than the column's is stored
    /// as NULL (callers cast first: see `ps_spec::Value::cast`).
    fn push(&mut self, cell: Cell<'_>) {
        let ok = match (&mut self.data, cell) {
            (Data::Str { bytes, ends }, Cell::Str(s)) => {
                bytes.push_str(s);
                ends.push(bytes.len());
                true
            }
            (Data::I64(v), Cell::Int(x) | Cell::Ts(x)) => {
                v.push(x);
                true
            }
            (Data::F64(v), Cell::Float(x)) => {
                v.push(x);
                true
            }
            (Data::Bool(v), Cell::Bool(x)) => {
                v.push(x);
                true
            }
            _ => false,
        };
        if ok {
            self.valid.push(true);
        } else {
            debug_assert!(matches!(cell, Cell::Null), "{cell:?} into {:?}", self.data);
            self.push_null();
        }
    }

    /// A string column's bytes, every row's back to back (`None` for
    /// another type); row `r`'s string ends at [`ColumnBuf::str_end`].
    pub fn str_bytes(&self) -> Option<&str> {
        match &self.data {
            Data::Str { bytes, .. } => Some(bytes),
            _ => None,
        }
    }

    /// Where row `r`'s string ends in [`ColumnBuf::str_bytes`] (`r` below
    /// [`ColumnBuf::len`]; 0 for another type).
    pub fn str_end(&self, r: usize) -> usize {
        match &self.data {
            Data::Str { ends, .. } => ends.at(r),
            _ => 0,
        }
    }

    /// Where row `r`'s string starts (`r` up to [`ColumnBuf::len`]: the
    /// start of the row after the last is the end of the bytes).
    pub fn str_start(&self, r: usize) -> usize {
        if r == 0 {
            0
        } else {
            self.str_end(r - 1)
        }
    }

    /// An integer or timestamp column's values, 0 where NULL (`None` for
    /// another type).
    pub fn i64s(&self) -> Option<&[i64]> {
        match &self.data {
            Data::I64(v) => Some(v),
            _ => None,
        }
    }

    /// A double column's values, 0 where NULL.
    pub fn f64s(&self) -> Option<&[f64]> {
        match &self.data {
            Data::F64(v) => Some(v),
            _ => None,
        }
    }

    /// A boolean column's values, false where NULL.
    pub fn bools(&self) -> Option<&[bool]> {
        match &self.data {
            Data::Bool(v) => Some(v),
            _ => None,
        }
    }

    /// Whether row `row` holds a value.
    pub fn is_valid(&self, row: usize) -> bool {
        self.valid.get(row).copied().unwrap_or(false)
    }

    /// The string at `row` (empty for NULL or another type).
    fn str_at(&self, row: usize) -> &str {
        match &self.data {
            Data::Str { bytes, ends } if row < ends.len() => {
                &bytes[self.str_start(row)..ends.at(row)]
            }
            _ => "",
        }
    }

    /// The cell at `row`, read as a column of type `ty`.
    pub fn cell(&self, row: usize, ty: ColumnType) -> Cell<'_> {
        if !self.is_valid(row) {
            return Cell::Null;
        }
        // A column of another type than `ty` reads as zero values.
        fn at<T: Copy + Default>(v: Option<&[T]>, row: usize) -> T {
            v.and_then(|v| v.get(row)).copied().unwrap_or_default()
        }
        match ty {
            ColumnType::Varchar => Cell::Str(self.str_at(row)),
            ColumnType::Bigint => Cell::Int(at(self.i64s(), row)),
            ColumnType::Timestamp => Cell::Ts(at(self.i64s(), row)),
            ColumnType::Double => Cell::Float(at(self.f64s(), row)),
            ColumnType::Boolean => Cell::Bool(at(self.bools(), row)),
        }
    }
}

/// Rows of one table, stored column by column (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct RowBuffer {
    rows: usize,
    columns: Vec<Option<ColumnBuf>>,
}

impl RowBuffer {
    /// An empty buffer.
    pub fn new() -> RowBuffer {
        RowBuffer::default()
    }

    /// Finished rows.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Heap memory the buffer holds (capacity, not length), for logs.
    pub fn heap_bytes(&self) -> usize {
        self.columns
            .iter()
            .flatten()
            .map(|c| {
                c.valid.capacity()
                    + match &c.data {
                        Data::Str { bytes, ends } => bytes.capacity() + ends.heap_bytes(),
                        Data::I64(v) => v.capacity() * 8,
                        Data::F64(v) => v.capacity() * 8,
                        Data::Bool(v) => v.capacity(),
                    }
            })
            .sum()
    }

    /// Whether the buffer holds no row.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Writes column `col` (of type `ty`) of the row being built, replacing
    /// what an earlier write to it in this row put there.
    pub fn set(&mut self, col: usize, ty: ColumnType, cell: Cell<'_>) {
        let row = self.rows;
        if self.columns.len() <= col {
            if matches!(cell, Cell::Null) {
                return;
            }
            self.columns.resize_with(col + 1, || None);
        }
        let c = match &mut self.columns[col] {
            Some(c) => c,
            None if matches!(cell, Cell::Null) => return,
            slot @ None => slot.insert(ColumnBuf::new(ty)),
        };
        if c.len() > row {
            c.pop();
        } else if matches!(cell, Cell::Null) {
            // Not written in this row: it reads NULL already.
            return;
        }
        while c.len() < row {
            c.push_null();
        }
        c.push(cell);
    }

    /// Closes the row being built.
    pub fn end_row(&mut self) {
        self.rows += 1;
    }

    /// Appends a whole row of `table` (a row shorter than the table is NULL
    /// in the rest).
    pub fn push_values(&mut self, table: &TableSchema, row: &[Value]) {
        for (i, v) in row.iter().enumerate() {
            if !v.is_null() {
                self.set(i, table.columns[i].ty, Cell::from(v));
            }
        }
        self.end_row();
    }

    /// `cell(row, column)` of these rows, read as `table`'s columns: what a
    /// warehouse encodes.
    pub fn cells<'a>(&'a self, table: &'a TableSchema) -> impl Fn(usize, usize) -> Cell<'a> + 'a {
        let columns: Vec<Option<&ColumnBuf>> =
            (0..table.columns.len()).map(|i| self.column(i)).collect();
        move |r, i| match columns[i] {
            Some(c) => c.cell(r, table.columns[i].ty),
            None => Cell::Null,
        }
    }

    /// Column `i`, if any row wrote it (`None`: NULL in every row).
    pub fn column(&self, i: usize) -> Option<&ColumnBuf> {
        self.columns.get(i).and_then(Option::as_ref)
    }
}

/// `cell(row, column)` of rows held as values; a row shorter than its
/// table is NULL in the rest.
pub fn value_cells<'a>(rows: &'a [Vec<Value>]) -> impl Fn(usize, usize) -> Cell<'a> + 'a {
    move |r, i| rows[r].get(i).map_or(Cell::Null, Cell::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ColumnType as T;

    /// Row `row` as values, in `table`'s column order, read as warehouses
    /// read it.
    fn row_values(b: &RowBuffer, table: &TableSchema, row: usize) -> Vec<Value> {
        let cells = b.cells(table);
        (0..table.columns.len())
            .map(|i| cells(row, i).to_value())
            .collect()
    }

    fn table() -> TableSchema {
        TableSchema::new(
            "t",
            &[
                ("a", T::Varchar),
                ("b", T::Bigint),
                ("c", T::Varchar),
                ("d", T::Timestamp),
            ],
        )
    }

    #[test]
    fn rows_round_trip_with_late_columns_overwrites_and_nulls() {
        let t = table();
        let mut b = RowBuffer::new();
        b.set(0, T::Varchar, Cell::Str("x"));
        b.set(1, T::Bigint, Cell::Int(1));
        b.end_row();
        // Row 1: the last write of a cell wins, a NULL write clears it.
        b.set(0, T::Varchar, Cell::Str("first"));
        b.set(0, T::Varchar, Cell::Str("second"));
        b.set(1, T::Bigint, Cell::Int(2));
        b.set(1, T::Bigint, Cell::Null);
        b.end_row();
        // Row 2: a column first written now; the rows before read NULL.
        b.set(2, T::Varchar, Cell::Str("late"));
        b.set(3, T::Timestamp, Cell::Ts(7));
        b.end_row();
        b.end_row();
        b.push_values(&t, &[Value::Str("v".into()), Value::Null, Value::Null]);
        assert_eq!(b.len(), 5);
        let rows: Vec<Vec<Value>> = (0..5).map(|r| row_values(&b, &t, r)).collect();
        use Value::*;
        assert_eq!(
            rows,
            vec![
                vec![Str("x".into()), Int(1), Null, Null],
                vec![Str("second".into()), Null, Null, Null],
                vec![Null, Null, Str("late".into()), Ts(7)],
                vec![Null, Null, Null, Null],
                vec![Str("v".into()), Null, Null, Null],
            ]
        );
    }

    #[test]
    fn replacing_a_string_keeps_the_rows_before_it() {
        let t = TableSchema::new("t", &[("a", T::Varchar)]);
        let mut b = RowBuffer::new();
        for s in ["one", "two"] {
            b.set(0, T::Varchar, Cell::Str(s));
            b.end_row();
        }
        b.set(0, T::Varchar, Cell::Str("three"));
        b.set(0, T::Varchar, Cell::Str("3"));
        b.end_row();
        let got: Vec<Value> = (0..3).map(|r| row_values(&b, &t, r).remove(0)).collect();
        assert_eq!(
            got,
            ["one", "two", "3"].map(|s| Value::Str(s.into())).to_vec()
        );
    }

    /// Ends are 4 bytes until a column holds more than `NARROW_MAX` bytes
    /// (100 in unit tests), then 8; rows before, across and after the
    /// switch read back, and a replaced cell at the switch too.
    #[test]
    fn string_ends_widen_past_the_narrow_limit() {
        let t = TableSchema::new("t", &[("a", T::Varchar), ("b", T::Bigint)]);
        let mut b = RowBuffer::new();
        let mut want = Vec::new();
        for i in 0..40 {
            let s = format!("row-{i}");
            if i == 15 {
                // Replaced after the write that first crosses 100 bytes.
                b.set(0, T::Varchar, Cell::Str(&"x".repeat(60)));
            }
            if i % 7 == 3 {
                b.set(1, T::Bigint, Cell::Int(i));
                want.push(vec![Value::Null, Value::Int(i)]);
            } else {
                b.set(0, T::Varchar, Cell::Str(&s));
                want.push(vec![Value::Str(s), Value::Null]);
            }
            b.end_row();
        }
        let Some(Data::Str { ends, .. }) = b.column(0).map(|c| &c.data) else {
            panic!("a string column")
        };
        assert!(matches!(ends, Ends::Wide(_)), "{ends:?}");
        let got: Vec<Vec<Value>> = (0..40).map(|r| row_values(&b, &t, r)).collect();
        assert_eq!(got, want);
    }
}
