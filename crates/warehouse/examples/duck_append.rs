//! How fast DuckDB takes event-table rows through `append_buffer`:
//! `cargo run --release -p ps-warehouse --example duck_append -- ROWS COLUMNS [SETTING…]`
//! (settings are SQL run first, e.g. "SET threads=1").
//!
//! With `REPEAT=N` in the environment it lands the same rows in N
//! transactions of their own and prints the mean append and commit time:
//! what each table of a small commit costs (`REPEAT=20 … -- 1 58`).
use ps_spec::{Cell, ColumnType};
use ps_warehouse::{duckdb::DuckDb, RowBuffer, TableSchema, Warehouse};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rows: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let cols: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(40);
    let path = std::env::temp_dir().join(format!("duck_append_{}.duckdb", std::process::id()));
    let mut wh = DuckDb::open(path.to_str().unwrap()).unwrap();
    for s in &args[3.min(args.len())..] {
        wh.execute(s).unwrap();
    }
    let names: Vec<String> = (0..cols).map(|i| format!("c{i}")).collect();
    let spec: Vec<(&str, ColumnType)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let ty = match i % 5 {
                0 => ColumnType::Timestamp,
                1 => ColumnType::Bigint,
                _ => ColumnType::Varchar,
            };
            (n.as_str(), ty)
        })
        .collect();
    let table = TableSchema::new("t", &spec);
    wh.execute("CREATE SCHEMA s").unwrap();
    wh.execute(&format!(
        "CREATE TABLE s.t ({})",
        spec.iter()
            .map(|(n, t)| format!("{n} {}", t.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .unwrap();
    let mut buf = RowBuffer::new();
    let texts = [
        "https://example.com/products/123",
        "Mozilla/5.0 (X11; Linux x86_64)",
        "en-US",
        "analytics.js",
        "google",
    ];
    for r in 0..rows {
        for (i, (_, ty)) in spec.iter().enumerate() {
            let cell = match ty {
                ColumnType::Timestamp => Cell::Ts(1_700_000_000_000_000 + r as i64),
                ColumnType::Bigint => Cell::Int(r as i64),
                _ => Cell::Str(texts[(r + i) % texts.len()]),
            };
            buf.set(i, *ty, cell);
        }
        buf.end_row();
    }
    match std::env::var("REPEAT")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
    {
        Some(n) => {
            let (append, commit) = land(&mut wh, &table, &buf, n);
            println!(
                "{n} transactions of {rows} rows x {cols} columns: append {:.2} ms, commit {:.2} ms each",
                append * 1e3 / n as f64,
                commit * 1e3 / n as f64
            );
        }
        None => {
            let (append, commit) = land(&mut wh, &table, &buf, 1);
            let total = append + commit;
            println!(
                "{rows} rows x {cols} columns: append {append:.3} s, commit {commit:.3} s, total {total:.3} s = {:.0} rows/s, {:.1}M cells/s",
                rows as f64 / total,
                (rows * cols) as f64 / total / 1e6
            );
        }
    }
    drop(wh);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(path.with_extension("duckdb.wal"));
}

/// Lands `buf` in `n` transactions of its own; the seconds spent in the
/// appends and in the commits, summed.
fn land(wh: &mut DuckDb, table: &TableSchema, buf: &RowBuffer, n: usize) -> (f64, f64) {
    let (mut append, mut commit) = (0.0, 0.0);
    for _ in 0..n {
        let t0 = Instant::now();
        wh.begin().unwrap();
        wh.append_buffer("s", table, buf).unwrap();
        let t1 = Instant::now();
        wh.commit().unwrap();
        append += (t1 - t0).as_secs_f64();
        commit += t1.elapsed().as_secs_f64();
    }
    (append, commit)
}
