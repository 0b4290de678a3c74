//! The local engine's scan of a lake table: DataFusion's Parquet scan over the files of one
//! Delta version, laid out so that the plan knows what the lake guarantees.
//!
//! - **Partitioning.** When `symbol` is a partition column, every file holds one symbol, and the
//!   files are put in `target_partitions` groups by the same hash of the symbol that
//!   DataFusion's hash repartitioning uses. The scan then declares `Hash([symbol], n)`
//!   truthfully: a window `PARTITION BY symbol` or a `GROUP BY symbol` needs no repartition, and
//!   a join of this scan with a repartitioned input still meets each symbol in the same
//!   partition.
//! - **Order.** When every file's Delta stats carry the writer's mark that its rows are in
//!   `symbol, event_time` order ([`SORTED_BY`]), each group's files are listed in that order
//!   and the scan declares it; DataFusion checks the files of a group do not overlap (min/max
//!   statistics) before it relies on it. A window `ORDER BY event_time` then needs no sort.
//! - **Statistics.** Each file's row count and per-column bounds come from its Delta stats, so
//!   filters skip files (and partition values) before they are opened, and `count(*)` is
//!   answered from the log, as deltalake's provider does.
//!
//! Tables this does not fit (deletion vectors, column mapping, partition columns not last, a
//! partition value that does not parse) keep deltalake's own provider; see [`LakeScan::try_new`].

use std::sync::Arc;

use arrow::array::{ArrayRef, StringViewArray};
use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::stats::Precision;
use datafusion::common::{ColumnStatistics, ScalarValue, Statistics};
use datafusion::datasource::TableType;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{LexOrdering, Partitioning, PhysicalSortExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::repartition::REPARTITION_RANDOM_STATE;
use deltalake::DeltaTable;
use object_store::ObjectMeta;
use object_store::path::Path;
use serde_json::Value;

use crate::lake::delta::stats::{ROW_ORDER, has_row_order_mark, row_order_mark};

/// The partition column whose values group the files (see the module docs).
const SYMBOL: &str = "symbol";
/// The column files are sorted by within a symbol.
const EVENT_TIME: &str = "event_time";

/// One data file of the scanned version.
#[derive(Debug, Clone)]
struct LakeFile {
    file: PartitionedFile,
    /// The symbol the file holds (its partition value), when `symbol` is a partition column.
    symbol: Option<String>,
    /// Its least event time, for ordering the files of a symbol.
    first_event: Option<ScalarValue>,
}

/// The scan of one version of a lake table (see the module docs).
#[derive(Debug)]
pub struct LakeScan {
    /// The table's columns: the file columns, then the partition columns.
    schema: SchemaRef,
    file_schema: SchemaRef,
    partition_fields: Vec<FieldRef>,
    store_url: ObjectStoreUrl,
    files: Vec<LakeFile>,
    /// Every file is in `symbol, event_time` order.
    ordered: bool,
}

impl LakeScan {
    /// The scan of `table`'s loaded version, with `schema` the table's columns as deltalake's
    /// provider gives them (types included). None when the table is one this scan does not
    /// read exactly as deltalake does; the caller then keeps deltalake's provider.
    pub fn try_new(table: &DeltaTable, schema: &SchemaRef) -> Option<Self> {
        let state = table.snapshot().ok()?;
        let snapshot = state.snapshot();
        let partition_columns = snapshot.metadata().partition_columns();
        // Deletion vectors and column mapping change what a file's rows mean.
        let configuration = snapshot.metadata().configuration();
        let mapped = configuration
            .get("delta.columnMapping.mode")
            .is_some_and(|m| m != "none");
        if mapped {
            return None;
        }
        let n = schema.fields().len();
        let p = partition_columns.len();
        let (file_fields, partition_fields) = schema.fields().split_at(n.checked_sub(p)?);
        if partition_fields
            .iter()
            .zip(partition_columns.iter())
            .any(|(f, c)| f.name() != c)
        {
            return None;
        }
        let file_schema = Arc::new(Schema::new(file_fields.to_vec()));
        let partition_fields: Vec<FieldRef> = partition_fields.to_vec();
        let root = table.table_url().clone();
        let store_url = ObjectStoreUrl::parse(&root[..url::Position::BeforePath]).ok()?;
        let root_path = Path::from_url_path(root.path()).ok()?;

        let mark = row_order_mark(&file_schema);
        let mut files = Vec::new();
        let mut ordered = true;
        for view in state.log_data().iter() {
            if view.deletion_vector_descriptor().is_some() {
                return None;
            }
            let values = view.partition_values_map();
            let mut partition_values = Vec::with_capacity(p);
            for field in &partition_fields {
                let value = match values.get(field.name()).cloned().flatten() {
                    Some(text) => partition_value(&text, field.data_type())?,
                    None => ScalarValue::try_from(field.data_type()).ok()?,
                };
                partition_values.push(value);
            }
            let location: Path = root_path
                .parts()
                .chain(view.object_store_path().parts())
                .collect();
            let stats: Value = view
                .stats()
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or(Value::Null);
            ordered &= has_row_order_mark(&stats, mark.as_deref());
            let mut file = PartitionedFile::new_from_meta(ObjectMeta {
                location,
                last_modified: chrono::DateTime::from_timestamp_millis(view.modification_time())
                    .unwrap_or_default(),
                size: u64::try_from(view.size()).unwrap_or(0),
                e_tag: None,
                version: None,
            });
            file.partition_values = partition_values;
            let statistics = file_statistics(&stats, &file_schema, view.size());
            let first_event = file_schema.index_of(EVENT_TIME).ok().and_then(|i| {
                statistics.column_statistics[i]
                    .min_value
                    .get_value()
                    .cloned()
            });
            let symbol = values.get(SYMBOL).cloned().flatten();
            files.push(LakeFile {
                file: file.with_statistics(Arc::new(statistics)),
                symbol,
                first_event,
            });
        }
        files.sort_by(file_order);
        Some(LakeScan {
            schema: schema.clone(),
            file_schema,
            partition_fields,
            store_url,
            files,
            ordered,
        })
    }

    /// Whether `symbol` is a partition column (one symbol a file).
    fn by_symbol(&self) -> bool {
        self.partition_fields.iter().any(|f| f.name() == SYMBOL)
    }

    /// The files in `n` groups: by the repartition hash of the symbol when each file holds one,
    /// else in runs of about equal count; each group's files in `symbol, event_time` order (the
    /// order `files` is kept in).
    fn groups(&self, n: usize) -> Vec<FileGroup> {
        let n = n.max(1);
        let mut groups: Vec<Vec<&LakeFile>> = vec![Vec::new(); n];
        if self.by_symbol() {
            let symbols: Vec<Option<&str>> =
                self.files.iter().map(|f| f.symbol.as_deref()).collect();
            let array: ArrayRef = Arc::new(StringViewArray::from(symbols));
            let mut hashes = vec![0u64; self.files.len()];
            let hashed = datafusion::common::hash_utils::create_hashes(
                [&array],
                REPARTITION_RANDOM_STATE.random_state(),
                &mut hashes,
            );
            if hashed.is_err() {
                hashes.iter_mut().for_each(|h| *h = 0);
            }
            for (file, hash) in self.files.iter().zip(hashes) {
                groups[(hash % n as u64) as usize].push(file);
            }
        } else {
            let per_group = self.files.len().div_ceil(n).max(1);
            for (i, chunk) in self.files.chunks(per_group).enumerate() {
                groups[i.min(n - 1)].extend(chunk);
            }
        }
        groups
            .into_iter()
            .map(|files| FileGroup::new(files.into_iter().map(|f| f.file.clone()).collect()))
            .collect()
    }

    /// `symbol, event_time` ascending, NULLs last (the order `ORDER BY` means in our SQL), over
    /// the table's columns; None when the table lacks one of them.
    fn row_order(&self) -> Option<LexOrdering> {
        let exprs = ROW_ORDER.iter().map(|name| {
            let index = self.schema.index_of(name).ok()?;
            Some(PhysicalSortExpr::new(
                Arc::new(Column::new(name, index)),
                arrow::compute::SortOptions {
                    descending: false,
                    nulls_first: false,
                },
            ))
        });
        LexOrdering::new(exprs.collect::<Option<Vec<_>>>()?)
    }
}

/// Files by symbol, then by their least event time (files without one last), then by path.
fn file_order(a: &LakeFile, b: &LakeFile) -> std::cmp::Ordering {
    a.symbol
        .cmp(&b.symbol)
        .then_with(|| match (&a.first_event, &b.first_event) {
            (Some(x), Some(y)) => x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        })
        .then_with(|| {
            a.file
                .object_meta
                .location
                .cmp(&b.file.object_meta.location)
        })
}

/// A partition value from the log's text, as a value of the column's type.
fn partition_value(text: &str, data_type: &DataType) -> Option<ScalarValue> {
    match data_type {
        DataType::Utf8View => Some(ScalarValue::Utf8View(Some(text.to_string()))),
        DataType::Utf8 => Some(ScalarValue::Utf8(Some(text.to_string()))),
        other => ScalarValue::try_from_string(text.to_string(), other).ok(),
    }
}

/// A file's statistics from its Delta stats: exact row count and null counts, and each
/// column's bounds as inexact values (a writer may have truncated them).
fn file_statistics(stats: &Value, file_schema: &Schema, size: i64) -> Statistics {
    let rows = stats
        .get("numRecords")
        .and_then(Value::as_u64)
        .map_or(Precision::Absent, |n| Precision::Exact(n as usize));
    let columns = file_schema
        .fields()
        .iter()
        .map(|field| {
            let bound = |key: &str| {
                stats
                    .get(key)
                    .and_then(|m| m.get(field.name()))
                    .and_then(|v| stat_value(v, field))
                    .map_or(Precision::Absent, Precision::Inexact)
            };
            let nulls = stats
                .get("nullCount")
                .and_then(|m| m.get(field.name()))
                .and_then(Value::as_u64)
                .map_or(Precision::Absent, |n| Precision::Exact(n as usize));
            ColumnStatistics {
                null_count: nulls,
                min_value: bound("minValues"),
                max_value: bound("maxValues"),
                ..ColumnStatistics::new_unknown()
            }
        })
        .collect();
    Statistics {
        num_rows: rows,
        total_byte_size: Precision::Inexact(usize::try_from(size).unwrap_or(0)),
        column_statistics: columns,
    }
}

/// One bound of a Delta stats object as a value of the column's type (None when it does not
/// read as one: the file is then not pruned or ordered on that column).
fn stat_value(value: &Value, field: &Field) -> Option<ScalarValue> {
    match (field.data_type(), value) {
        (DataType::Float64, Value::Number(n)) => Some(ScalarValue::Float64(n.as_f64())),
        (DataType::Int64, Value::Number(n)) => Some(ScalarValue::Int64(n.as_i64())),
        (DataType::Int32, Value::Number(n)) => {
            Some(ScalarValue::Int32(i32::try_from(n.as_i64()?).ok()))
        }
        (DataType::Utf8, Value::String(s)) => Some(ScalarValue::Utf8(Some(s.clone()))),
        (DataType::Utf8View, Value::String(s)) => Some(ScalarValue::Utf8View(Some(s.clone()))),
        (DataType::Date32, Value::String(s)) => {
            let ms = crate::tick::parse_iso_millis(&format!("{s}T00:00:00Z"))?;
            let days = i32::try_from(ms.div_euclid(crate::tick::MS_PER_DAY)).ok()?;
            Some(ScalarValue::Date32(Some(days)))
        }
        (DataType::Timestamp(unit, tz), Value::String(s)) => {
            let ms = crate::tick::parse_iso_millis(s)?;
            Some(match unit {
                TimeUnit::Millisecond => ScalarValue::TimestampMillisecond(Some(ms), tz.clone()),
                TimeUnit::Microsecond => {
                    ScalarValue::TimestampMicrosecond(Some(ms.checked_mul(1_000)?), tz.clone())
                }
                TimeUnit::Nanosecond => {
                    ScalarValue::TimestampNanosecond(Some(ms.checked_mul(1_000_000)?), tz.clone())
                }
                TimeUnit::Second => ScalarValue::TimestampSecond(Some(ms / 1_000), tz.clone()),
            })
        }
        _ => None,
    }
}

#[async_trait]
impl TableProvider for LakeScan {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::error::Result<Vec<TableProviderFilterPushDown>> {
        // The filter stays above the scan; DataFusion pushes it into the Parquet scan to skip
        // files, row groups and pages.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let n = state.config().target_partitions();
        let store = state.runtime_env().object_store(&self.store_url)?;
        let cache = state.runtime_env().cache_manager.get_file_metadata_cache();
        let table_schema = TableSchema::builder(self.file_schema.clone())
            .with_table_partition_cols(self.partition_fields.clone())
            .build();
        let source = ParquetSource::new(table_schema)
            .with_table_parquet_options(state.table_options().parquet.clone())
            .with_parquet_file_reader_factory(Arc::new(CachedParquetFileReaderFactory::new(
                store, cache,
            )));
        let mut builder = FileScanConfigBuilder::new(self.store_url.clone(), Arc::new(source))
            .with_file_groups(self.groups(n))
            .with_limit(limit);
        if self.by_symbol()
            && let Ok(index) = self.schema.index_of(SYMBOL)
        {
            builder = builder.with_output_partitioning(Some(Partitioning::Hash(
                vec![Arc::new(Column::new(SYMBOL, index))],
                n.max(1),
            )));
        }
        if self.ordered
            && let Some(order) = self.row_order()
        {
            builder = builder.with_output_ordering(vec![order]);
        }
        let config = builder
            .with_projection_indices(projection.cloned())?
            .build();
        Ok(DataSourceExec::from_data_source(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::physical_plan::repartition::BatchPartitioner;

    /// The groups follow DataFusion's own hash repartitioning of the symbol column: a symbol's
    /// file lands in the partition a `RepartitionExec` sends its rows to.
    #[test]
    fn file_groups_match_the_repartition_hash() {
        let symbols: Vec<String> = (0..200).map(|i| format!("S{i:04}")).collect();
        let schema = Arc::new(Schema::new(vec![Field::new(
            SYMBOL,
            DataType::Utf8View,
            false,
        )]));
        let batch = arrow::record_batch::RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringViewArray::from_iter_values(&symbols))],
        )
        .unwrap();
        let scan = LakeScan {
            schema: schema.clone(),
            file_schema: Arc::new(Schema::empty()),
            partition_fields: vec![Arc::new(schema.field(0).clone())],
            store_url: ObjectStoreUrl::local_filesystem(),
            files: symbols
                .iter()
                .map(|s| LakeFile {
                    file: PartitionedFile::new(format!("{s}.parquet"), 1),
                    symbol: Some(s.clone()),
                    first_event: None,
                })
                .collect(),
            ordered: false,
        };
        for n in [2usize, 3, 8] {
            let mut partitioner = BatchPartitioner::try_new(
                Partitioning::Hash(vec![Arc::new(Column::new(SYMBOL, 0))], n),
                datafusion::physical_plan::metrics::Time::new(),
                0,
                1,
            )
            .unwrap();
            let mut expected: Vec<Vec<String>> = vec![Vec::new(); n];
            partitioner
                .partition(batch.clone(), |i, b| {
                    let a = b
                        .column(0)
                        .as_any()
                        .downcast_ref::<StringViewArray>()
                        .unwrap();
                    expected[i].extend(a.iter().flatten().map(str::to_string));
                    Ok(())
                })
                .unwrap();
            let groups = scan.groups(n);
            assert_eq!(groups.len(), n);
            for (i, group) in groups.iter().enumerate() {
                let got: Vec<String> = group
                    .iter()
                    .map(|f| {
                        f.object_meta
                            .location
                            .as_ref()
                            .trim_end_matches(".parquet")
                            .to_string()
                    })
                    .collect();
                expected[i].sort();
                assert_eq!(got, expected[i], "partition {i} of {n}");
                assert!(!got.is_empty());
            }
        }
    }

    #[test]
    fn the_order_mark_must_name_the_columns_the_file_holds() {
        let with_symbol = Schema::new(vec![
            Field::new("symbol", DataType::Utf8, false),
            Field::new("event_time", DataType::Int64, false),
        ]);
        let without = Schema::new(vec![Field::new("event_time", DataType::Int64, false)]);
        let sorted_by_row_order = |stats: &Value, schema: &Schema| {
            has_row_order_mark(stats, row_order_mark(schema).as_deref())
        };
        let mark = |v: &str| serde_json::json!({ crate::lake::delta::stats::SORTED_BY: v });
        assert!(sorted_by_row_order(
            &mark("symbol,event_time"),
            &with_symbol
        ));
        assert!(!sorted_by_row_order(&mark("event_time"), &with_symbol));
        assert!(sorted_by_row_order(&mark("event_time"), &without));
        assert!(!sorted_by_row_order(&serde_json::json!({}), &without));
        assert!(!sorted_by_row_order(&mark("event_time"), &Schema::empty()));
    }

    #[test]
    fn stats_bounds_read_back_in_the_column_type() {
        let ts = Field::new(
            "event_time",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        );
        assert_eq!(
            stat_value(&"2000-01-03T00:00:00.001Z".into(), &ts),
            Some(ScalarValue::TimestampMicrosecond(
                Some(946_857_600_001_000),
                Some("UTC".into())
            ))
        );
        let date = Field::new("trade_date", DataType::Date32, false);
        assert_eq!(
            stat_value(&"1970-01-02".into(), &date),
            Some(ScalarValue::Date32(Some(1)))
        );
        let float = Field::new("close", DataType::Float64, true);
        assert_eq!(stat_value(&"x".into(), &float), None);
    }
}
