#!/usr/bin/env python3
"""An independent reader of a Delta table's log, in plain Python with pyarrow only (NOT the
deltalake package, NOT stocklake): replays `<table>/_delta_log/` as the Delta protocol says and
prints what the table holds, for tests/integration/delta_log.rs to compare with stocklake.

usage: delta_log_replay.py TABLE_DIR

1. `_delta_log/_last_checkpoint` (when present) names the latest checkpoint: its Parquet file(s)
   (`<v>.checkpoint.parquet`, or `<v>.checkpoint.<i>.<n>.parquet` parts) give the state at
   version v: `add` (active files), `txn`, `metaData`, `protocol` (checkpoint `remove`s are
   tombstones, not active files).
2. Every JSON commit `<version>.json` after it, in version order and without gaps, is applied
   line by line: `add` makes a file active, `remove` inactive, `txn` sets an application's
   version, `metaData` and `protocol` replace the previous ones; `commitInfo` is ignored.
3. The active files are read with pyarrow (paths in the log are URI-encoded, relative to the
   table); partition columns come from each `add`'s `partitionValues`, typed by the schema.

Prints one JSON object: version, checkpoint (its version or null), commits_read (the JSON
versions applied), active_files, removes_applied, txn ({appId: version}), partition_columns,
rows, and per symbol: rows, sum of volume, sum of close, min and max kafka_offset, and the count
of distinct (kafka_partition, kafka_offset) pairs. Any inconsistency (a gap in the versions, an
active file that does not exist, a deletion vector, an unknown reader feature) is an error.
"""
import json
import re
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

COMMIT = re.compile(r"^(\d{20})\.json$")
# Reader features this replay understands (it implements none beyond plain adds/removes).
KNOWN_READER_FEATURES = {"timestampNtz"}


def fail(message):
    sys.exit(f"delta_log_replay: {message}")


def load_checkpoint(log):
    """(version, actions) of the checkpoint _last_checkpoint names, or (None, [])."""
    pointer = log / "_last_checkpoint"
    if not pointer.exists():
        return None, []
    last = json.loads(pointer.read_text())
    version = int(last["version"])
    if "parts" in last and last["parts"]:
        n = int(last["parts"])
        files = [log / f"{version:020d}.checkpoint.{i:010d}.{n:010d}.parquet" for i in range(1, n + 1)]
    else:
        files = [log / f"{version:020d}.checkpoint.parquet"]
    actions = []
    for f in files:
        if not f.exists():
            fail(f"_last_checkpoint names version {version}, but {f.name} is missing")
        for row in pq.read_table(f).to_pylist():
            for kind in ("add", "remove", "txn", "metaData", "protocol"):
                if row.get(kind) is not None:
                    actions.append({kind: row[kind]})
    return version, actions


def partition_values(add):
    pv = add.get("partitionValues") or {}
    # JSON gives a dict; a checkpoint's map column comes back as a list of (key, value).
    return dict(pv) if not isinstance(pv, dict) else pv


def replay(table):
    log = table / "_delta_log"
    if not log.is_dir():
        fail(f"{log} does not exist")
    state = {"active": {}, "txn": {}, "metaData": None, "protocol": None, "removes": 0}

    def apply(action, in_checkpoint):
        if "add" in action:
            add = action["add"]
            if add.get("deletionVector"):
                fail(f"{add['path']}: deletion vectors are not supported by this replay")
            state["active"][add["path"]] = add
        elif "remove" in action:
            if not in_checkpoint:
                path = action["remove"]["path"]
                if path not in state["active"]:
                    fail(f"remove of {path}, which is not an active file")
                del state["active"][path]
                state["removes"] += 1
        elif "txn" in action:
            txn = action["txn"]
            state["txn"][txn["appId"]] = int(txn["version"])
        elif "metaData" in action:
            state["metaData"] = action["metaData"]
        elif "protocol" in action:
            state["protocol"] = action["protocol"]

    checkpoint, actions = load_checkpoint(log)
    for a in actions:
        apply(a, True)
    versions = sorted(int(m.group(1)) for p in log.iterdir() if (m := COMMIT.match(p.name)))
    later = [v for v in versions if checkpoint is None or v > checkpoint]
    expected = 0 if checkpoint is None else checkpoint + 1
    for v in later:
        if v != expected:
            fail(f"version {expected} is missing from the log (next is {v})")
        expected += 1
        for line in (log / f"{v:020d}.json").read_text().splitlines():
            if line.strip():
                apply(json.loads(line), False)
    version = later[-1] if later else checkpoint
    if version is None:
        fail("the log holds no commit and no checkpoint")
    if state["metaData"] is None or state["protocol"] is None:
        fail("no metaData or protocol action")
    features = set(state["protocol"].get("readerFeatures") or [])
    unknown = features - KNOWN_READER_FEATURES
    if unknown:
        fail(f"reader features {sorted(unknown)} are not supported by this replay")
    return version, checkpoint, later, state


ARROW_TYPES = {
    "string": pa.string(),
    "long": pa.int64(),
    "integer": pa.int32(),
    "short": pa.int16(),
    "byte": pa.int8(),
    "double": pa.float64(),
    "float": pa.float32(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "timestamp_ntz": pa.timestamp("us"),
}


def read_files(table, state):
    meta = state["metaData"]
    schema = json.loads(meta["schemaString"])
    types = {f["name"]: ARROW_TYPES[f["type"]] for f in schema["fields"]}
    partition_columns = list(meta.get("partitionColumns") or [])
    tables = []
    for path, add in sorted(state["active"].items()):
        # Relative paths are URI-encoded and relative to the table; absolute ones are URIs.
        file = Path(unquote(urlparse(path).path)) if "://" in path else table / unquote(path)
        if not file.is_file():
            fail(f"active file {path} does not exist ({file})")
        t = pq.read_table(file)
        stats = json.loads(add["stats"]) if add.get("stats") else {}
        if stats.get("numRecords", t.num_rows) != t.num_rows:
            fail(f"{path}: {t.num_rows} rows, the log's stats say {stats['numRecords']}")
        values = partition_values(add)
        for col in partition_columns:
            if col in t.column_names:
                continue
            raw = values.get(col)
            arr = pa.array([raw] * t.num_rows, pa.string()).cast(types[col])
            t = t.append_column(col, arr)
        # Every file in the table's column order and types (time units differ between writers).
        t = t.select(list(types)).cast(pa.schema([(n, ty) for n, ty in types.items()]))
        tables.append(t)
    return partition_columns, (pa.concat_tables(tables) if tables else None)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    table = Path(sys.argv[1])
    version, checkpoint, commits, state = replay(table)
    partition_columns, rows = read_files(table, state)
    by_symbol = {}
    if rows is not None and "symbol" in rows.column_names:
        for symbol in sorted(pc.unique(rows["symbol"]).to_pylist()):
            part = rows.filter(pc.equal(rows["symbol"], symbol))
            pairs = {
                (p, o)
                for p, o in zip(part["kafka_partition"].to_pylist(), part["kafka_offset"].to_pylist())
            }
            by_symbol[symbol] = {
                "rows": part.num_rows,
                "sum_volume": pc.sum(part["volume"]).as_py(),
                "sum_close": pc.sum(part["close"]).as_py(),
                "min_offset": pc.min(part["kafka_offset"]).as_py(),
                "max_offset": pc.max(part["kafka_offset"]).as_py(),
                "distinct_offsets": len(pairs),
            }
    print(
        json.dumps(
            {
                "version": version,
                "checkpoint": checkpoint,
                "commits_read": commits,
                "active_files": len(state["active"]),
                "removes_applied": state["removes"],
                "txn": state["txn"],
                "partition_columns": partition_columns,
                "rows": 0 if rows is None else rows.num_rows,
                "by_symbol": by_symbol,
            },
            indent=1,
            sort_keys=True,
        )
    )


if __name__ == "__main__":
    main()
