//! Rows as Arrow batches in the Delta tables' types, and the tables'
//! Delta schemas.
//!
//! deltalake brings its own Arrow, a different major version from DuckDB's,
//! so the batches DuckDB's Appender takes cannot be handed over: rows are
//! encoded again here, from the same cells.

use deltalake::arrow::array::{
    new_null_array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringBuilder,
    TimestampMicrosecondArray,
};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use deltalake::arrow::error::ArrowError;
use deltalake::kernel::{DataType as DeltaType, StructField, StructType};
use ps_spec::ColumnType;
use ps_warehouse::{Cell, TableSchema};
use std::sync::Arc;

/// The time zone of every timestamp column. Segment's timestamps are UTC
/// instants, and Delta's `timestamp` (UTC-adjusted, readable by every Delta
/// reader) is what an Arrow timestamp with a time zone maps to; one without
/// would become `timestamp_ntz`, a table feature older readers refuse.
const UTC: &str = "UTC";

/// The Arrow type of a column of type `ty`.
pub(crate) fn arrow_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Varchar => DataType::Utf8,
        ColumnType::Bigint => DataType::Int64,
        ColumnType::Double => DataType::Float64,
        ColumnType::Boolean => DataType::Boolean,
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
    }
}

/// The Delta type of a column of type `ty`.
fn delta_type(ty: ColumnType) -> DeltaType {
    match ty {
        ColumnType::Varchar => DeltaType::STRING,
        ColumnType::Bigint => DeltaType::LONG,
        ColumnType::Double => DeltaType::DOUBLE,
        ColumnType::Boolean => DeltaType::BOOLEAN,
        ColumnType::Timestamp => DeltaType::TIMESTAMP,
    }
}

/// The table's Arrow schema; every column is nullable (columns are added
/// while the table has rows, which hold NULL there).
pub(crate) fn arrow_schema(table: &TableSchema) -> SchemaRef {
    Arc::new(Schema::new(
        table
            .columns
            .iter()
            .map(|c| Field::new(c.name.as_str(), arrow_type(c.ty), true))
            .collect::<Vec<_>>(),
    ))
}

/// The table's Delta schema.
pub(crate) fn delta_schema(table: &TableSchema) -> Vec<StructField> {
    table
        .columns
        .iter()
        .map(|c| StructField::new(c.name.as_str(), delta_type(c.ty), true))
        .collect()
}

/// The table's Delta schema as a struct.
pub(crate) fn delta_struct(table: &TableSchema) -> deltalake::DeltaResult<StructType> {
    Ok(StructType::try_new(delta_schema(table))?)
}

/// Rows `rows` (cells read by `cell(row, column)`) as a batch of `table`'s
/// columns.
pub(crate) fn record_batch<'a>(
    table: &TableSchema,
    rows: std::ops::Range<usize>,
    cell: &impl Fn(usize, usize) -> Cell<'a>,
) -> Result<RecordBatch, ArrowError> {
    let n = rows.len();
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(table.columns.len());
    for (i, col) in table.columns.iter().enumerate() {
        let array: ArrayRef = match col.ty {
            ColumnType::Varchar => {
                let mut b = StringBuilder::with_capacity(n, n * 16);
                for r in rows.clone() {
                    match cell(r, i) {
                        Cell::Str(s) => b.append_value(s),
                        _ => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
            ColumnType::Bigint => Arc::new(
                rows.clone()
                    .map(|r| match cell(r, i) {
                        Cell::Int(v) => Some(v),
                        _ => None,
                    })
                    .collect::<Int64Array>(),
            ),
            ColumnType::Double => Arc::new(
                rows.clone()
                    .map(|r| match cell(r, i) {
                        Cell::Float(v) => Some(v),
                        _ => None,
                    })
                    .collect::<Float64Array>(),
            ),
            ColumnType::Boolean => Arc::new(
                rows.clone()
                    .map(|r| match cell(r, i) {
                        Cell::Bool(v) => Some(v),
                        _ => None,
                    })
                    .collect::<BooleanArray>(),
            ),
            ColumnType::Timestamp => Arc::new(
                rows.clone()
                    .map(|r| match cell(r, i) {
                        Cell::Ts(v) => Some(v),
                        _ => None,
                    })
                    .collect::<TimestampMicrosecondArray>()
                    .with_timezone(UTC),
            ),
        };
        arrays.push(array);
    }
    RecordBatch::try_new(arrow_schema(table), arrays)
}

/// `batch` with `table`'s columns: those it lacks (added later in the same
/// transaction) are NULL.
pub(crate) fn widen(batch: &RecordBatch, table: &TableSchema) -> Result<RecordBatch, ArrowError> {
    let schema = arrow_schema(table);
    if batch.schema() == schema {
        return Ok(batch.clone());
    }
    let arrays = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(a) => a.clone(),
            None => new_null_array(f.data_type(), batch.num_rows()),
        })
        .collect();
    RecordBatch::try_new(schema, arrays)
}
