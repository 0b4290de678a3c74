"""Reads a stocklake lake with pyarrow's Hive partitioning and prints facts for the Rust tests."""
import sys

import pyarrow.dataset as ds

lake = sys.argv[1]
dataset = ds.dataset(f"{lake}/ticks", format="parquet", partitioning="hive")
table = dataset.to_table()
symbols = sorted(set(table.column("symbol").to_pylist()))
print(f"rows={table.num_rows}")
print(f"event_time={table.schema.field('event_time').type}")
print(f"trade_date={table.schema.field('trade_date').type}")
print("symbols=" + ",".join(symbols))
