//! The Athena DDL of the Glue tables, for the Athena console (`catalog --ddl`): Athena's form
//! for Delta Lake tables, which takes only the location and `table_type` (no columns, SerDe or
//! other properties: Athena reads them from the Delta log).

use super::{TABLE_TYPE_DELTA, TABLE_TYPE_PARAM};

/// `CREATE DATABASE …` then one `CREATE EXTERNAL TABLE … TBLPROPERTIES ('table_type'='DELTA')`
/// per `(table, location)`, equivalent to what `catalog` does through Glue.
pub fn ddl(database: &str, tables: &[(&str, &str)]) -> String {
    let mut out = format!("CREATE DATABASE IF NOT EXISTS `{database}`;\n");
    for (table, location) in tables {
        out.push_str(&format!(
            "\nCREATE EXTERNAL TABLE `{database}`.`{table}`\n\
             LOCATION '{}'\n\
             TBLPROPERTIES ('{TABLE_TYPE_PARAM}'='{TABLE_TYPE_DELTA}');\n",
            location.replace('\'', "''")
        ));
    }
    out.push_str(
        "\n-- Athena reads the schema, partitions and files from each table's _delta_log:\n\
         -- no partitions to register, no MSCK REPAIR TABLE.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_is_athenas_delta_form() {
        let ddl = ddl(
            "stocklake",
            &[
                ("ticks", "s3://b/lake/ticks/"),
                ("rejects", "s3://b/lake/rejects/"),
            ],
        );
        assert!(ddl.starts_with("CREATE DATABASE IF NOT EXISTS `stocklake`;\n"));
        assert!(
            ddl.contains(
                "CREATE EXTERNAL TABLE `stocklake`.`ticks`\nLOCATION 's3://b/lake/ticks/'\n\
                 TBLPROPERTIES ('table_type'='DELTA');\n"
            ),
            "{ddl}"
        );
        assert!(ddl.contains("`stocklake`.`rejects`\nLOCATION 's3://b/lake/rejects/'"));
        assert!(
            !ddl.contains("PARTITIONED") && !ddl.contains("SERDE"),
            "{ddl}"
        );
    }
}
