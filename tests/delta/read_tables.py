"""Reads every Delta table of a space with an independent reader of what
profiles-sync's delta:// warehouse wrote (installed, pinned, by scripts/setup):

- `deltalake` (default): delta-rs' Python binding, the rows through pyarrow;
- `polars`: `pl.read_delta`, the rows decoded by polars' own Parquet reader
  (it asks `deltalake` only which files make the table's current version).

Usage: read_tables.py DIR SPACE [deltalake|polars]
Prints one JSON object: table name -> {"columns": [[name, type]...],
"rows": [[cell...]...], "version": N, "txn": the table's profiles-sync txn
version, "files": the names of the data files the current version reads}
(polars: the reader's own type names; version, txn and files are null).
Timestamps are {"ts": microseconds since the epoch, UTC}; NULL is null.
"""

import json
import os
import sys


def deltalake_table(path, space, name):
    from deltalake import DeltaTable
    import pyarrow as pa

    def cells(column, typ):
        if pa.types.is_timestamp(typ):
            if typ.unit != "us" or typ.tz not in ("UTC", "+00:00"):
                raise SystemExit(f"timestamp column of type {typ}: expected microseconds in UTC")
            return [None if v is None else {"ts": v} for v in column.cast(pa.int64()).to_pylist()]
        return column.to_pylist()

    dt = DeltaTable(path)
    table = dt.to_pyarrow_table()
    columns = [[f.name, str(f.type)] for f in table.schema]
    data = [cells(table.column(i), f.type) for i, f in enumerate(table.schema)]
    rows = [list(r) for r in zip(*data)] if data else []
    return {
        "columns": columns,
        "rows": rows,
        "version": dt.version(),
        "txn": dt.transaction_version(f"profiles-sync/{space}/{name}"),
        "files": [os.path.basename(u) for u in dt.file_uris()],
    }


def polars_table(path, space, name):
    import polars as pl

    df = pl.read_delta(path)
    data = []
    for s in df.get_columns():
        if isinstance(s.dtype, pl.Datetime):
            if s.dtype.time_unit != "us" or s.dtype.time_zone not in ("UTC", "+00:00"):
                raise SystemExit(f"timestamp column of type {s.dtype}: expected microseconds in UTC")
            data.append([None if v is None else {"ts": v} for v in s.dt.epoch("us").to_list()])
        else:
            data.append(s.to_list())
    rows = [list(r) for r in zip(*data)] if data else []
    return {
        "columns": [[n, str(t)] for n, t in df.schema.items()],
        "rows": rows,
        "version": None,
        "txn": None,
        "files": None,
    }


def main():
    root, space = sys.argv[1], sys.argv[2]
    reader = sys.argv[3] if len(sys.argv) > 3 else "deltalake"
    read = {"deltalake": deltalake_table, "polars": polars_table}.get(reader)
    if read is None:
        raise SystemExit(f"unknown reader {reader!r} (deltalake or polars)")
    out = {}
    base = os.path.join(root, space)
    for name in sorted(os.listdir(base)):
        path = os.path.join(base, name)
        if not os.path.isdir(os.path.join(path, "_delta_log")):
            continue
        out[name] = read(path, space, name)
    json.dump(out, sys.stdout)


main()
# Skip the interpreter's teardown: once, under a loaded CI machine, the
# readers' native thread pools aborted the process there ("terminate called
# without an active exception") after the answer was complete.
sys.stdout.flush()
os._exit(0)
