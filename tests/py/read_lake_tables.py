#!/usr/bin/env python3
"""Reads both tables of a stocklake lake, `ticks` and `rejects`, twice: with the `deltalake`
package (the table at its latest version) and with plain pyarrow (each active file the Delta log
names, read by `pyarrow.parquet`; ticks also as a Hive-partitioned `pyarrow.dataset` of those
files). Prints one JSON object for tests/integration/hostile.rs to assert on.

usage: read_lake_tables.py LAKE_DIR

Output: {"ticks": {...}, "rejects": {...}} where ticks holds deltalake_rows, pyarrow_rows,
dataset_rows, distinct_offsets (of (kafka_partition, kafka_offset)), symbols (sorted), and rows
(symbol, kafka_partition, kafka_offset, close, volume, per row, sorted by partition and offset);
rejects holds deltalake_rows, pyarrow_rows and rows (partition, offset, reason, value_bytes,
value_text_bytes, value_base64_bytes, value_sha256, key_base64_bytes; sorted).
"""
import json
import sys
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from deltalake import DeltaTable


def local(uri):
    return unquote(urlparse(uri).path) if uri.startswith("file:") else uri


def read_table(path):
    dt = DeltaTable(path)
    by_delta = dt.to_pyarrow_table()
    files = [local(u) for u in dt.file_uris()]
    by_pyarrow = [pq.read_table(f) for f in files]
    rows = sum(t.num_rows for t in by_pyarrow)
    return dt, by_delta, files, rows


def ticks(lake):
    dt, table, files, pyarrow_rows = read_table(f"{lake}/ticks")
    dataset = ds.dataset(
        files, format="parquet", partitioning="hive", partition_base_dir=f"{lake}/ticks"
    ).to_table()
    cols = {c: table.column(c).to_pylist() for c in
            ("symbol", "kafka_partition", "kafka_offset", "close", "volume")}
    rows = sorted(zip(cols["kafka_partition"], cols["kafka_offset"], cols["symbol"],
                      cols["close"], cols["volume"]))
    return {
        "version": dt.version(),
        "deltalake_rows": table.num_rows,
        "pyarrow_rows": pyarrow_rows,
        "dataset_rows": dataset.num_rows,
        "distinct_offsets": len({(p, o) for p, o, *_ in rows}),
        "symbols": sorted(set(cols["symbol"])),
        "rows": [[s, p, o, c, v] for p, o, s, c, v in rows],
    }


def rejects(lake):
    dt, table, files, pyarrow_rows = read_table(f"{lake}/rejects")
    nbytes = lambda v: None if v is None else len(v.encode("utf-8"))
    rows = []
    for r in table.to_pylist():
        rows.append([r["partition"], r["offset"], r["reason"], r["value_bytes"],
                     nbytes(r["value_text"]), nbytes(r["value_base64"]), r["value_sha256"],
                     nbytes(r["key_base64"])])
    rows.sort(key=lambda r: (r[0], r[1]))
    return {
        "version": dt.version(),
        "deltalake_rows": table.num_rows,
        "pyarrow_rows": pyarrow_rows,
        "rows": rows,
    }


if __name__ == "__main__":
    lake = sys.argv[1]
    print(json.dumps({"ticks": ticks(lake), "rejects": rejects(lake)}))
