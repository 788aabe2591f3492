//! A batch's rows read by DuckDB straight from their column buffers.
//!
//! `INSERT INTO t SELECT * FROM ps_row_scan(token)` lands a
//! [`RowBuffer`]: the table function below fills DuckDB's vectors from the
//! buffer's columns, 2,048 rows a call. The Appender path it replaces
//! went buffer → Arrow arrays → the `duckdb` crate's conversion, which
//! assigns every cell one FFI call at a time (NULLs too), checks the UTF-8
//! of every string Rust has already checked, clears NULLs one call each,
//! and then DuckDB copies the chunk once more into the appender's own
//! collection before its insert plan reads it (BENCHMARKS.md, "Rows read
//! from their buffers").
//!
//! This is the project's one module with `unsafe` code, for three things the
//! `duckdb` crate has no safe call for: writing a vector's fixed-width
//! values as a slice, writing its validity mask as words, and assigning a
//! string without DuckDB validating it again. Each block says why it holds.
//! The buffer itself is lent to the scan by address for exactly the one
//! statement that reads it ([`Loan`]), and only that statement's thread
//! can bind the scan to it: the function is visible to every connection
//! of the database, read-only queries included, and one of those binding
//! a loan could go on reading after the loan ends.
#![allow(unsafe_code)]

use crate::contract::TableSchema;
use crate::rows::{ColumnBuf, RowBuffer};
use duckdb::core::{DataChunkHandle, LogicalTypeHandle, LogicalTypeId};
use duckdb::ffi;
use duckdb::vtab::{BindInfo, InitInfo, TableFunctionInfo, VTab};
use duckdb::Connection;
use ps_spec::ColumnType;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// The table function's name.
pub(super) const NAME: &str = "ps_row_scan";

/// Registers the table function on `conn`'s database.
pub(super) fn register(conn: &Connection) -> duckdb::Result<()> {
    conn.register_table_function::<RowScan>(NAME)
}

/// A buffer and its table, lent to the scan while one statement runs.
#[derive(Clone, Copy)]
struct Lent {
    table: *const TableSchema,
    rows: *const RowBuffer,
    /// The thread that lent them, the only one that may bind them.
    thread: std::thread::ThreadId,
}

// SAFETY: the pointers are only read through while the `Loan` that lent
// them is alive, and `TableSchema` and `RowBuffer` are plain data (`Sync`):
// reading them from DuckDB's thread is reading a shared reference.
unsafe impl Send for Lent {}
// SAFETY: as above.
unsafe impl Sync for Lent {}

/// The loans alive now, by token: one per statement landing rows, so a
/// handful at most.
static LENT: Mutex<Vec<(u64, Lent)>> = Mutex::new(Vec::new());
static NEXT: AtomicU64 = AtomicU64::new(1);

/// `rows` of `table` readable by `ps_row_scan(token)` until dropped. The
/// borrow keeps both alive and unchanged for as long as the loan exists,
/// and the statement that reads them runs (and ends) within it.
pub(super) struct Loan<'a> {
    token: u64,
    _borrow: std::marker::PhantomData<(&'a TableSchema, &'a RowBuffer)>,
}

impl<'a> Loan<'a> {
    pub(super) fn new(table: &'a TableSchema, rows: &'a RowBuffer) -> Loan<'a> {
        let token = NEXT.fetch_add(1, Ordering::Relaxed);
        let lent = Lent {
            table,
            rows,
            thread: std::thread::current().id(),
        };
        lock().push((token, lent));
        Loan {
            token,
            _borrow: std::marker::PhantomData,
        }
    }

    pub(super) fn token(&self) -> u64 {
        self.token
    }
}

impl Drop for Loan<'_> {
    fn drop(&mut self) {
        lock().retain(|(t, _)| *t != self.token);
    }
}

impl std::fmt::Debug for Loan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loan").field("token", &self.token).finish()
    }
}

fn lock() -> std::sync::MutexGuard<'static, Vec<(u64, Lent)>> {
    LENT.lock().unwrap_or_else(|e| e.into_inner())
}

struct RowScan;

struct Bind {
    lent: Lent,
}

struct Init {
    next: AtomicUsize,
}

fn logical_type(ty: ColumnType) -> LogicalTypeHandle {
    LogicalTypeHandle::from(match ty {
        ColumnType::Varchar => LogicalTypeId::Varchar,
        ColumnType::Bigint => LogicalTypeId::Bigint,
        ColumnType::Double => LogicalTypeId::Double,
        ColumnType::Boolean => LogicalTypeId::Boolean,
        ColumnType::Timestamp => LogicalTypeId::Timestamp,
    })
}

impl VTab for RowScan {
    type InitData = Init;
    type BindData = Bind;

    fn bind(bind: &BindInfo) -> Result<Bind, Box<dyn std::error::Error>> {
        let token = bind.get_parameter(0).to_int64() as u64;
        let lent = lock()
            .iter()
            .find(|(t, l)| *t == token && l.thread == std::thread::current().id())
            .map(|(_, l)| *l)
            .ok_or("ps_row_scan: no rows lent to this statement")?;
        // SAFETY: the loan is alive (it is listed, and is removed only when
        // dropped), so the table is a valid shared reference. It
        // was made on this thread, which is now binding a statement: the
        // `execute` in `DuckDb::append_buffer`, inside the loan, so every
        // read of this binding happens before the loan ends.
        let table = unsafe { &*lent.table };
        for c in &table.columns {
            bind.add_result_column(&c.name, logical_type(c.ty));
        }
        Ok(Bind { lent })
    }

    fn init(_: &InitInfo) -> Result<Init, Box<dyn std::error::Error>> {
        Ok(Init {
            next: AtomicUsize::new(0),
        })
    }

    fn func(
        func: &TableFunctionInfo<Self>,
        output: &mut DataChunkHandle,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let bind = func.get_bind_data();
        let start = func.get_init_data().next.load(Ordering::Relaxed);
        // SAFETY: the statement reading this scan runs within the loan
        // (`DuckDb::append_buffer` drops it after `execute` returns).
        let (table, rows) = unsafe { (&*bind.lent.table, &*bind.lent.rows) };
        let cap = output.flat_vector(0).capacity();
        let n = cap.min(rows.len() - start);
        for (i, col) in table.columns.iter().enumerate() {
            fill(output, i, col.ty, rows.column(i), start, n);
        }
        output.set_len(n);
        func.get_init_data()
            .next
            .store(start + n, Ordering::Relaxed);
        Ok(())
    }

    fn parameters() -> Option<Vec<LogicalTypeHandle>> {
        Some(vec![LogicalTypeHandle::from(LogicalTypeId::Bigint)])
    }
}

/// Fills vector `i` of `out` with rows `start..start + n` of `col` (NULL
/// where the column has no value or no row).
fn fill(
    out: &mut DataChunkHandle,
    i: usize,
    ty: ColumnType,
    col: Option<&ColumnBuf>,
    start: usize,
    n: usize,
) {
    // SAFETY: `i` is below the chunk's column count (one per column of the
    // table the scan was bound with).
    let vector = unsafe { ffi::duckdb_data_chunk_get_vector(out.get_ptr(), i as u64) };
    let valid = |k: usize| col.is_some_and(|c| c.is_valid(start + k));
    set_validity(vector, n, valid);
    let mut flat = out.flat_vector(i);
    // Rows of this range the column holds (a column never written holds none).
    let have = col.map_or(0, |c| c.len().saturating_sub(start).min(n));
    match ty {
        ColumnType::Varchar => {
            // A column stored as another type reads as empty strings (as
            // `ColumnBuf::cell` does).
            let text = col.and_then(|c| Some((c, c.str_bytes()?)));
            let lands = |k: usize| text.is_some_and(|(c, _)| c.is_valid(start + k));
            {
                // SAFETY: a VARCHAR vector stores 16-byte `string_t`s, all
                // zeroes being the empty inlined string (written for the
                // rows that get no string). The slice ends before DuckDB
                // writes the other rows through `vector` below.
                let slots = unsafe { flat.as_mut_slice::<[u64; 2]>() };
                for (k, slot) in slots[..n].iter_mut().enumerate() {
                    if !lands(k) {
                        *slot = [0, 0];
                    }
                }
            }
            let Some((col, bytes)) = text else { return };
            for k in (0..n).filter(|&k| lands(k)) {
                let s = &bytes[col.str_start(start + k)..col.str_end(start + k)];
                // SAFETY: `vector` is this chunk's VARCHAR vector, `k` is
                // below its capacity, and `s` is valid UTF-8 (a `&str`),
                // which is all DuckDB's unchecked assignment skips.
                unsafe {
                    ffi::duckdb_unsafe_vector_assign_string_element_len(
                        vector,
                        k as u64,
                        s.as_ptr().cast(),
                        s.len() as u64,
                    )
                };
            }
        }
        ColumnType::Bigint | ColumnType::Timestamp => {
            // SAFETY: BIGINT and TIMESTAMP (microseconds) vectors store i64.
            let dst = unsafe { flat.as_mut_slice::<i64>() };
            copy_values(dst, col.and_then(ColumnBuf::i64s), start, have, n);
        }
        ColumnType::Double => {
            // SAFETY: DOUBLE vectors store f64.
            let dst = unsafe { flat.as_mut_slice::<f64>() };
            copy_values(dst, col.and_then(ColumnBuf::f64s), start, have, n);
        }
        ColumnType::Boolean => {
            // SAFETY: BOOLEAN vectors store one byte a row, 0 or 1: a bool.
            let dst = unsafe { flat.as_mut_slice::<bool>() };
            copy_values(dst, col.and_then(ColumnBuf::bools), start, have, n);
        }
    }
}

/// `dst[..n]` from `src[start..start + have]`, default values after (NULL
/// rows, a column never written, or one of another type, which reads as
/// zeroes).
fn copy_values<T: Copy + Default>(
    dst: &mut [T],
    src: Option<&[T]>,
    start: usize,
    have: usize,
    n: usize,
) {
    match src {
        Some(src) if have > 0 => {
            dst[..have].copy_from_slice(&src[start..start + have]);
            dst[have..n].fill(T::default());
        }
        _ => dst[..n].fill(T::default()),
    }
}

/// Writes the validity mask of `vector`'s first `n` rows, a word at a time.
fn set_validity(vector: ffi::duckdb_vector, n: usize, valid: impl Fn(usize) -> bool) {
    let words = n.div_ceil(64);
    let mut mask = vec![0u64; words];
    let mut nulls = false;
    for (w, word) in mask.iter_mut().enumerate() {
        for b in 0..64.min(n - w * 64) {
            if valid(w * 64 + b) {
                *word |= 1 << b;
            } else {
                nulls = true;
            }
        }
    }
    // SAFETY: `vector` is a live vector of the output chunk. Its validity
    // mask, once writable, holds one bit per row of its capacity (`n` is
    // at most that), and DuckDB resets it between calls.
    unsafe {
        let mut m = ffi::duckdb_vector_get_validity(vector);
        if m.is_null() {
            if !nulls {
                return;
            }
            ffi::duckdb_vector_ensure_validity_writable(vector);
            m = ffi::duckdb_vector_get_validity(vector);
        }
        std::slice::from_raw_parts_mut(m, words).copy_from_slice(&mask[..words]);
    }
}
