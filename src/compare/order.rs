//! How a query orders its output (then row order counts in a comparison): its outermost
//! `ORDER BY` keys, each resolved to an output column where it can be (a position, an output
//! name, or an expression the SELECT list projects), and whether a LIMIT or OFFSET cuts the
//! ordered rows. For SQL the parser does not know, a scan of the tokens for the outermost
//! `ORDER BY` (then the keys are unknown).

use datafusion::sql::sqlparser::ast::{
    Expr, LimitClause, OrderByKind, Query, SelectItem, SetExpr, Statement, Value,
};

use crate::engine::lexer;
use crate::engine::statements;

/// How a query's output is ordered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputOrder {
    /// The outermost query ends with ORDER BY.
    pub ordered: bool,
    /// Its keys, in order; empty when the SQL could not be parsed (then whole rows order).
    pub keys: Vec<SortKey>,
    /// The keys could be read (the parser knew the SQL).
    pub keys_known: bool,
    /// A LIMIT (or FETCH FIRST) keeps the first rows: the last tie may be cut.
    pub limit: bool,
    /// An OFFSET skips the first rows: the first tie may be cut.
    pub offset: bool,
}

/// One ORDER BY key as written and the output column it names, when it names one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    /// The key as SQL text (`trade_date`, `2`, `date_trunc('month', trade_date)`).
    pub text: String,
    pub target: KeyTarget,
}

/// What an ORDER BY key refers to in the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyTarget {
    /// `ORDER BY 2`: the output column at this 0-based position.
    Position(usize),
    /// A name: the output column so named (an alias or a projected column).
    Name(String),
    /// An expression the SELECT list projects, at this 0-based position.
    Item(usize),
    /// An expression that is not an output column: order by it cannot be checked.
    Unknown,
}

impl OutputOrder {
    /// Unordered output (no final ORDER BY).
    pub fn unordered() -> OutputOrder {
        OutputOrder::default()
    }
}

/// How `sql`'s last statement orders its output.
pub fn output_order(sql: &str) -> OutputOrder {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    match Parser::parse_sql(&GenericDialect {}, sql) {
        Ok(stmts) => match stmts.last() {
            Some(Statement::Query(q)) => query_order(q),
            _ => OutputOrder::unordered(),
        },
        Err(_) => OutputOrder {
            ordered: top_level_order_by(sql),
            ..OutputOrder::default()
        },
    }
}

/// `sql`'s last statement without the LIMIT, OFFSET and FETCH of its outermost query (to see
/// every row of a tie they cut); None when it has none or the parser does not know the SQL.
pub fn without_limit(sql: &str) -> Option<String> {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    let mut stmts = Parser::parse_sql(&GenericDialect {}, sql).ok()?;
    let Some(Statement::Query(q)) = stmts.last_mut() else {
        return None;
    };
    if q.limit_clause.is_none() && q.fetch.is_none() {
        return None;
    }
    q.limit_clause = None;
    q.fetch = None;
    Some(q.to_string())
}

fn query_order(q: &Query) -> OutputOrder {
    let Some(order_by) = &q.order_by else {
        return OutputOrder::unordered();
    };
    let projection = match q.body.as_ref() {
        SetExpr::Select(s) => Some(&s.projection),
        _ => None,
    };
    let keys = match &order_by.kind {
        // ORDER BY ALL: every output column, left to right; their count is known only from the
        // result, so the keys stay empty and whole rows order (which is what ALL means).
        OrderByKind::All(_) => Vec::new(),
        OrderByKind::Expressions(exprs) => exprs
            .iter()
            .map(|o| SortKey {
                text: o.expr.to_string(),
                target: target(&o.expr, projection.map(Vec::as_slice)),
            })
            .collect(),
    };
    let (limit, offset) = match &q.limit_clause {
        Some(LimitClause::LimitOffset { limit, offset, .. }) => {
            (limit.as_ref().is_some_and(|l| !is_all(l)), offset.is_some())
        }
        Some(LimitClause::OffsetCommaLimit { .. }) => (true, true),
        None => (false, false),
    };
    OutputOrder {
        ordered: true,
        keys_known: !matches!(order_by.kind, OrderByKind::All(_)),
        keys,
        limit: limit || q.fetch.is_some(),
        offset,
    }
}

/// `LIMIT ALL` keeps every row.
fn is_all(e: &Expr) -> bool {
    matches!(e, Expr::Value(v) if matches!(v.value, Value::Null))
        || e.to_string().eq_ignore_ascii_case("ALL")
}

/// What an ORDER BY expression refers to in the output of a SELECT with `projection`: a
/// position; else a name or expression of the SELECT list; a bare name is left to be matched
/// with the result's column names when the list has a wildcard (or the body is not a SELECT).
fn target(expr: &Expr, projection: Option<&[SelectItem]>) -> KeyTarget {
    let expr = unnest(expr);
    if let Expr::Value(v) = expr {
        return match &v.value {
            Value::Number(n, _) => match n.to_string().parse::<usize>() {
                Ok(p) if p >= 1 => KeyTarget::Position(p - 1),
                _ => KeyTarget::Unknown,
            },
            _ => KeyTarget::Unknown,
        };
    }
    let name = match expr {
        Expr::Identifier(id) => Some(&id.value),
        Expr::CompoundIdentifier(ids) => ids.last().map(|id| &id.value),
        _ => None,
    };
    let items = projection.unwrap_or_default();
    let complete = projection.is_some() && items.iter().all(|i| item_expr(i).is_some());
    if let (Some(n), true) = (name, complete)
        && let Some(i) = items
            .iter()
            .position(|i| output_name(i).is_some_and(|o| o.eq_ignore_ascii_case(n)))
    {
        return KeyTarget::Item(i);
    }
    match (projected(expr, items), name) {
        (Some(i), _) => KeyTarget::Item(i),
        (None, Some(n)) if !complete => KeyTarget::Name(n.clone()),
        _ => KeyTarget::Unknown,
    }
}

fn unnest(mut e: &Expr) -> &Expr {
    while let Expr::Nested(inner) = e {
        e = inner;
    }
    e
}

/// A SELECT item's expression (None for a wildcard).
fn item_expr(item: &SelectItem) -> Option<&Expr> {
    match item {
        SelectItem::UnnamedExpr(x) | SelectItem::ExprWithAlias { expr: x, .. } => Some(unnest(x)),
        _ => None,
    }
}

/// The name a SELECT item gives its column, when the SQL says it (an alias or a column).
fn output_name(item: &SelectItem) -> Option<&str> {
    match item {
        SelectItem::ExprWithAlias { alias, .. } => Some(&alias.value),
        SelectItem::UnnamedExpr(e) => match unnest(e) {
            Expr::Identifier(id) => Some(&id.value),
            Expr::CompoundIdentifier(ids) => ids.last().map(|id| id.value.as_str()),
            _ => None,
        },
        _ => None,
    }
}

/// The position of `e` among the projected expressions before any wildcard (whose width is
/// unknown here), compared as normalised SQL text.
fn projected(e: &Expr, projection: &[SelectItem]) -> Option<usize> {
    let wanted = e.to_string().to_ascii_lowercase();
    projection
        .iter()
        .map_while(item_expr)
        .position(|x| x.to_string().to_ascii_lowercase() == wanted)
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

    fn orders_output(sql: &str) -> bool {
        output_order(sql).ordered
    }

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

    fn targets(sql: &str) -> Vec<KeyTarget> {
        output_order(sql)
            .keys
            .into_iter()
            .map(|k| k.target)
            .collect()
    }

    #[test]
    fn order_by_keys_resolve_to_output_columns() {
        use KeyTarget::*;
        // Positions, aliases, projected columns and projected expressions.
        assert_eq!(
            targets(
                "SELECT symbol, date_trunc('month', trade_date) AS m, avg(close) FROM t \
                 GROUP BY 1, 2 ORDER BY symbol, m, 3, DATE_TRUNC('month', trade_date)"
            ),
            vec![Item(0), Item(1), Position(2), Item(1)]
        );
        // A column projected under another name is found by its expression.
        assert_eq!(
            targets("SELECT t.trade_date AS d FROM t ORDER BY trade_date, t.trade_date"),
            vec![Unknown, Item(0)]
        );
        // Not an output column at all.
        assert_eq!(
            targets("SELECT symbol FROM t ORDER BY close DESC"),
            vec![Unknown]
        );
        // With a wildcard (or a set operation) names are matched with the result's columns.
        assert_eq!(
            targets("SELECT * FROM t ORDER BY symbol, (volume)"),
            vec![Name("symbol".into()), Name("volume".into())]
        );
        assert_eq!(
            targets("SELECT a FROM t UNION ALL SELECT b FROM u ORDER BY a, 1"),
            vec![Name("a".into()), Position(0)]
        );
        assert!(!output_order("SELECT ?? FROM t ORDER BY a").keys_known);
    }

    #[test]
    fn limits_and_offsets_are_seen() {
        let o = output_order("SELECT a FROM t ORDER BY a LIMIT 5");
        assert!(o.limit && !o.offset);
        let o = output_order("SELECT a FROM t ORDER BY a OFFSET 2");
        assert!(!o.limit && o.offset);
        let o = output_order("SELECT a FROM t ORDER BY a LIMIT 5 OFFSET 2");
        assert!(o.limit && o.offset);
        assert!(output_order("SELECT a FROM t ORDER BY a FETCH FIRST 3 ROWS ONLY").limit);
        assert!(!output_order("SELECT a FROM t ORDER BY a LIMIT ALL").limit);
        assert!(!output_order("SELECT a FROM (SELECT a FROM t ORDER BY a LIMIT 1)").limit);
    }

    #[test]
    fn the_limit_can_be_taken_off() {
        assert_eq!(
            without_limit("SELECT a FROM t ORDER BY a LIMIT 5 OFFSET 2").as_deref(),
            Some("SELECT a FROM t ORDER BY a")
        );
        assert_eq!(
            without_limit(
                "SELECT a FROM (SELECT a FROM t LIMIT 1) ORDER BY a FETCH FIRST 1 ROWS ONLY"
            )
            .as_deref(),
            Some("SELECT a FROM (SELECT a FROM t LIMIT 1) ORDER BY a")
        );
        assert_eq!(without_limit("SELECT a FROM t ORDER BY a"), None);
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
