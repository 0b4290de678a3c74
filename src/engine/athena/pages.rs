//! Result pages: GetQueryResults read page by page (at most 1,000 rows each, the first row of a
//! SELECT being the header), behind a trait so that recorded pages can stand in for Athena.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_athena::Client;
use aws_sdk_athena::types::ColumnNullable;

use super::convert::{ColumnMeta, Row};
use super::{ENGINE, PAGE_ROWS, call_failed};
use crate::engine::EngineError;

/// One page of GetQueryResults.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub columns: Vec<ColumnMeta>,
    pub rows: Vec<Row>,
    pub next_token: Option<String>,
}

/// Anything that hands out result pages by token: Athena itself, or a recorded sequence.
pub trait PageSource {
    fn page(&mut self, token: Option<String>) -> impl Future<Output = Result<Page, EngineError>>;
}

/// Rows read by [`read_pages`]; `remaining` is the token of the first unread page when
/// `first_only` stopped early.
#[derive(Debug, Clone, Default)]
pub struct PagedRows {
    pub columns: Vec<ColumnMeta>,
    pub rows: Vec<Row>,
    pub pages: usize,
    pub remaining: Option<String>,
}

/// Reads pages until there is no next token (or only the first when `first_only`). The first
/// row of the first page is dropped when `header` (SELECT results start with the column labels).
pub async fn read_pages<S: PageSource>(
    src: &mut S,
    header: bool,
    first_only: bool,
    cancel: &AtomicBool,
) -> Result<PagedRows, EngineError> {
    let mut out = PagedRows::default();
    read_from(src, &mut out, None, header, first_only, cancel).await?;
    Ok(out)
}

/// Reads the pages that [`read_pages`] left unread (`out.remaining`) into `out`.
pub async fn read_rest<S: PageSource>(
    src: &mut S,
    out: &mut PagedRows,
    cancel: &AtomicBool,
) -> Result<(), EngineError> {
    match out.remaining.take() {
        Some(token) => read_from(src, out, Some(token), false, false, cancel).await,
        None => Ok(()),
    }
}

/// Reads pages into `out` from `token` on.
async fn read_from<S: PageSource>(
    src: &mut S,
    out: &mut PagedRows,
    mut token: Option<String>,
    header: bool,
    first_only: bool,
    cancel: &AtomicBool,
) -> Result<(), EngineError> {
    loop {
        if cancel.load(Ordering::SeqCst) {
            return Err(EngineError::Cancelled { engine: ENGINE });
        }
        let page = src.page(token.take()).await?;
        if out.pages == 0 {
            out.columns = page.columns;
            let skip = usize::from(header && !page.rows.is_empty());
            out.rows.extend(page.rows.into_iter().skip(skip));
        } else {
            out.rows.extend(page.rows);
        }
        out.pages += 1;
        match page.next_token.filter(|t| !t.is_empty()) {
            Some(t) if first_only => {
                out.remaining = Some(t);
                return Ok(());
            }
            Some(t) => token = Some(t),
            None => return Ok(()),
        }
    }
}

/// GetQueryResults as a [`PageSource`].
pub(super) struct AthenaPages<'a> {
    pub(super) client: &'a Client,
    pub(super) id: &'a str,
}

impl AthenaPages<'_> {
    pub(super) async fn fetch(
        &mut self,
        token: Option<String>,
        max: i32,
    ) -> Result<Page, EngineError> {
        let out = self
            .client
            .get_query_results()
            .query_execution_id(self.id)
            .set_next_token(token)
            .max_results(max)
            .send()
            .await
            .map_err(call_failed(format!("GetQueryResults {}", self.id)))?;
        let rs = out.result_set();
        let columns = rs
            .and_then(|r| r.result_set_metadata())
            .map(|m| {
                m.column_info()
                    .iter()
                    .map(|c| ColumnMeta {
                        name: c.name().to_string(),
                        athena_type: c.r#type().to_string(),
                        precision: c.precision(),
                        scale: c.scale(),
                        nullable: c.nullable() != Some(&ColumnNullable::NotNull),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let rows = rs
            .map(|r| {
                r.rows()
                    .iter()
                    .map(|row| {
                        row.data()
                            .iter()
                            .map(|d| d.var_char_value().map(str::to_string))
                            .collect()
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Page {
            columns,
            rows,
            next_token: out.next_token().map(str::to_string),
        })
    }
}

impl PageSource for AthenaPages<'_> {
    async fn page(&mut self, token: Option<String>) -> Result<Page, EngineError> {
        self.fetch(token, PAGE_ROWS).await
    }
}
