//! Whether a query orders its output (then row order counts in a comparison): the parser's
//! answer, or for SQL it does not know a scan of the tokens for the outermost `ORDER BY`.

use crate::engine::lexer;
use crate::engine::statements;

/// Whether `sql`'s last statement orders its output (a final ORDER BY of the outermost query).
pub fn orders_output(sql: &str) -> bool {
    use datafusion::sql::sqlparser::ast::Statement;
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    match Parser::parse_sql(&GenericDialect {}, sql) {
        Ok(stmts) => match stmts.last() {
            Some(Statement::Query(q)) => q.order_by.is_some(),
            _ => false,
        },
        Err(_) => top_level_order_by(sql),
    }
}

/// Whether the last statement of `sql` has `ORDER BY` outside parentheses, strings and comments
/// (for SQL our parser does not know, e.g. Athena-only syntax).
fn top_level_order_by(sql: &str) -> bool {
    let Some(last) = statements::split(sql).pop() else {
        return false;
    };
    let mut after_order = false;
    let mut found = false;
    for (depth, t) in lexer::code_with_depth(&last.text) {
        let top = depth == 0;
        found |= top && after_order && t.is_word("BY");
        after_order = top && t.is_word("ORDER");
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_final_order_by_of_the_outermost_query_orders_the_output() {
        assert!(orders_output("SELECT a FROM t ORDER BY a"));
        assert!(orders_output(
            "WITH x AS (SELECT a FROM t ORDER BY a) SELECT * FROM x ORDER BY 1;"
        ));
        assert!(!orders_output(
            "WITH x AS (SELECT a FROM t ORDER BY a) SELECT * FROM x"
        ));
        assert!(!orders_output(
            "SELECT lag(a) OVER (PARTITION BY b ORDER BY c) FROM t"
        ));
        assert!(!orders_output("SELECT * FROM (SELECT a FROM t ORDER BY a)"));
        // Fallback scan for SQL the parser rejects.
        assert!(top_level_order_by(
            "SELECT x FROM t CROSS JOIN UNNEST(y) ?? ORDER BY x"
        ));
        assert!(!top_level_order_by(
            "SELECT x ?? FROM (SELECT 1 ORDER BY 1) -- ORDER BY\n"
        ));
    }

    #[test]
    fn the_fallback_reads_the_last_statement_past_strings_and_comments() {
        assert!(top_level_order_by(
            "SELECT x ?? FROM t order\n  by x LIMIT 5;\n"
        ));
        assert!(top_level_order_by(
            "SELECT x ?? FROM (SELECT 1 ORDER BY 1) t ORDER BY (x)"
        ));
        assert!(!top_level_order_by(
            "SELECT 'ORDER BY', \"order by\" ?? /* ORDER BY */ FROM t"
        ));
        assert!(!top_level_order_by(
            "SELECT x ?? FROM t ORDER BY x; SELECT y ?? FROM t"
        ));
        assert!(top_level_order_by(
            "SELECT y ?? FROM t; SELECT x ?? FROM t ORDER BY x; -- done"
        ));
        assert!(!top_level_order_by("SELECT x ?? ORDER /* c */ x BY"));
        assert!(!top_level_order_by(""));
    }
}
