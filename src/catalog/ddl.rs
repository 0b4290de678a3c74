//! The Athena DDL of the Glue table, for the Athena console.

use super::{INPUT_FORMAT, OUTPUT_FORMAT, SERDE_LIBRARY, TableSpec};

impl TableSpec {
    /// `CREATE EXTERNAL TABLE …` for the Athena console, equivalent to
    /// [`ensure_table`](super::ensure_table).
    pub fn ddl(&self) -> String {
        let cols: Vec<String> = self
            .data_columns()
            .iter()
            .map(|(n, t, c)| format!("  `{n}` {t} COMMENT '{}'", c.replace('\'', "''")))
            .collect();
        let keys: Vec<String> = self
            .layout
            .partition_by
            .iter()
            .map(|k| format!("`{}` {}", k.column(), k.athena_type()))
            .collect();
        format!(
            "CREATE DATABASE IF NOT EXISTS `{db}`;\n\n\
             CREATE EXTERNAL TABLE IF NOT EXISTS `{db}`.`{t}` (\n{cols}\n)\n\
             PARTITIONED BY ({keys})\n\
             ROW FORMAT SERDE '{SERDE_LIBRARY}'\n\
             STORED AS INPUTFORMAT '{INPUT_FORMAT}'\n\
             OUTPUTFORMAT '{OUTPUT_FORMAT}'\n\
             LOCATION '{loc}'\n\
             TBLPROPERTIES ('classification'='parquet');\n\n\
             -- Partitions: `stocklake catalog --repair` (or MSCK REPAIR TABLE `{db}`.`{t}`;)\n",
            db = self.database,
            t = self.table,
            cols = cols.join(",\n"),
            keys = keys.join(", "),
            loc = self.location,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::TableLayout;

    #[test]
    fn ddl_has_serde_columns_keys_and_location() {
        let spec = TableSpec::new("stocklake", "s3://b/lake/", TableLayout::default());
        assert_eq!(spec.location, "s3://b/lake/ticks/");
        let ddl = spec.ddl();
        assert!(ddl.contains("CREATE EXTERNAL TABLE IF NOT EXISTS `stocklake`.`ticks`"));
        assert!(ddl.contains("PARTITIONED BY (`symbol` string)"));
        assert!(ddl.contains("`event_time` timestamp"));
        assert!(!ddl.contains("`symbol` string COMMENT"), "{ddl}");
        assert!(ddl.contains(SERDE_LIBRARY) && ddl.contains("LOCATION 's3://b/lake/ticks/'"));
    }
}
