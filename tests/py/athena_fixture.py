"""Writes a saved Athena result of queries/daily_summary.sql for the notebook tests.

No Athena runs here: the values are computed with pandas straight from the sample CSV, never
by stocklake's engine, so comparing them with the local engine is a real cross-check. The files
follow the saved-results store (src/engine/saved.rs): `<query id>.csv` in Athena's result-file
format (header row, every value double-quoted, NULL an unquoted empty field, doubles printed as
Java does) and `<query id>.json` with the SQL text and Athena's column metadata.

usage: athena_fixture.py STOCKS_CSV QUERY_SQL OUT_DIR [--perturb COLUMN]
  --perturb COLUMN  multiplies COLUMN of the first row by 1.001 (a result that must not match)
"""
import argparse
import json
import math
from pathlib import Path

import pandas as pd

QUERY_ID = "5f0c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e2f"

# (name, Athena type, precision, scale) as GetQueryResults describes daily_summary's columns.
COLUMNS = [
    ("symbol", "varchar", 2147483647, 0),
    ("trading_days", "bigint", 19, 0),
    ("first_day", "date", 0, 0),
    ("last_day", "date", 0, 0),
    ("min_low", "double", 17, 0),
    ("max_high", "double", 17, 0),
    ("avg_close", "double", 17, 0),
    ("avg_range_pct", "double", 17, 0),
    ("up_days", "bigint", 19, 0),
    ("avg_volume", "double", 17, 0),
    ("total_volume", "bigint", 19, 0),
]


def java_double(v):
    """A double as Java's Double.toString prints it (Athena's CSV): 1.0E7 style outside
    [1e-3, 1e7), always with a fractional part."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    if v == 0:
        return "0.0"
    if 1e-3 <= abs(v) < 1e7:
        s = repr(v)
        return s if "." in s else s + ".0"
    mantissa, exponent = f"{v:.17e}".split("e")
    # Shortest mantissa that round-trips.
    for digits in range(1, 18):
        m = f"{v:.{digits}e}".split("e")[0]
        if float(f"{m}e{exponent}") == v:
            mantissa = m
            break
    mantissa = mantissa.rstrip("0")
    if mantissa.endswith("."):
        mantissa += "0"
    if "." not in mantissa:
        mantissa += ".0"
    return f"{mantissa}E{int(exponent)}"


def quote(v):
    return "" if v is None else '"' + str(v).replace('"', '""') + '"'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("stocks")
    ap.add_argument("query")
    ap.add_argument("out")
    ap.add_argument("--perturb")
    args = ap.parse_args()

    df = pd.read_csv(args.stocks)  # Ticker,Date,Open,High,Low,Close,Volume,Adj Close
    g = df.groupby("Ticker")
    result = pd.DataFrame({
        "trading_days": g.size(),
        "first_day": g["Date"].min(),
        "last_day": g["Date"].max(),
        "min_low": g["Low"].min(),
        "max_high": g["High"].max(),
        "avg_close": g["Close"].mean(),
        "avg_range_pct": ((df["High"] - df["Low"]) / df["Close"]).groupby(df["Ticker"]).mean(),
        "up_days": (df["Close"] > df["Open"]).groupby(df["Ticker"]).sum(),
        "avg_volume": g["Volume"].mean(),
        "total_volume": g["Volume"].sum(),
    }).rename_axis("symbol").reset_index().sort_values("symbol", ignore_index=True)
    if args.perturb:
        result.loc[0, args.perturb] = result.loc[0, args.perturb] * 1.001

    lines = [",".join(quote(name) for name, *_ in COLUMNS)]
    for row in result.itertuples(index=False):
        cells = []
        for (name, kind, *_), v in zip(COLUMNS, row):
            if pd.isna(v):
                cells.append(quote(None))
            elif kind == "double":
                cells.append(quote(java_double(float(v))))
            else:
                cells.append(quote(v))
        lines.append(",".join(cells))

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{QUERY_ID}.csv").write_text("\n".join(lines) + "\n")
    meta = {
        "query_id": QUERY_ID,
        "sql": Path(args.query).read_text().strip(),
        "workgroup": "primary",
        "database": "stocklake",
        "catalog": "AwsDataCatalog",
        "output_location": f"s3://fixture-results/{QUERY_ID}.csv",
        "submitted_at": "2026-01-15T10:00:00+00:00",
        "elapsed_ms": 1234,
        "bytes_scanned": 401517,
        "rows": len(result),
        "fetched_from": "csv",
        "columns": [
            {"name": n, "athena_type": t, "precision": p, "scale": s, "nullable": True}
            for n, t, p, s in COLUMNS
        ],
    }
    (out / f"{QUERY_ID}.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(out / f"{QUERY_ID}.csv")


if __name__ == "__main__":
    main()
