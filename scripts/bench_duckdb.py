#!/usr/bin/env python3
"""Times each saved query on a lake's ticks table with DuckDB, for `stocklake bench query`.

The table is read at its current Delta version: the data files come from the Delta log (the
`deltalake` package), and DuckDB scans exactly those Parquet files, the Hive partition columns
taken from their paths. Each query runs once to warm up, then `--runs` times; the engine time of
each run is what is timed (the result is fetched, as the local engine's is).

Prints one JSON object on stdout: {"duckdb": version, "threads": n, "files": n, "rows": n,
"queries": {name: {"rows": n, "ms": [run, ...]}}}.

Usage: bench_duckdb.py --lake DIR [--queries DIR] [--runs 3] [--threads 2] [--only NAME ...]
"""

import argparse
import json
import pathlib
import sys
import time

import duckdb
from deltalake import DeltaTable


def table_files(lake: pathlib.Path) -> list[str]:
    table = DeltaTable(str(lake / "ticks"))
    files = table.file_uris()
    if not files:
        sys.exit(f"bench_duckdb: {lake / 'ticks'} has no data files")
    return [f.removeprefix("file://") for f in files]


def first_statement(text: str) -> str:
    """The saved query's statement, without the trailing semicolon (one statement a file)."""
    return text.strip().rstrip(";")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lake", required=True, type=pathlib.Path)
    parser.add_argument("--queries", type=pathlib.Path, default=pathlib.Path("queries"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args()

    files = table_files(args.lake)
    con = duckdb.connect()
    con.execute(f"SET threads = {int(args.threads)}")
    listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    con.execute(f"CREATE VIEW ticks AS SELECT * FROM read_parquet([{listed}], hive_partitioning = true)")
    rows = con.sql("SELECT count(*) FROM ticks").fetchall()[0][0]

    results = {}
    for path in sorted(args.queries.glob("*.sql")):
        name = path.stem
        if args.only and name not in args.only:
            continue
        sql = first_statement(path.read_text())
        # con.sql(...).to_arrow_table() is DuckDB's direct path to Arrow (the DB-API cursor's
        # to_arrow_table copies the rows once more).
        warm = con.sql(sql).to_arrow_table()
        times = []
        for _ in range(max(args.runs, 1)):
            start = time.perf_counter()
            con.sql(sql).to_arrow_table()
            times.append((time.perf_counter() - start) * 1000.0)
        results[name] = {"rows": warm.num_rows, "ms": times}

    json.dump(
        {
            "duckdb": duckdb.__version__,
            "threads": args.threads,
            "files": len(files),
            "rows": rows,
            "queries": results,
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
