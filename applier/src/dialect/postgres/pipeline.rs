//! Fewer round trips per message: writes whose results nothing waits for (`BEGIN`, a state row, the
//! applied-message id, a savepoint) are held back and sent together with the next statement whose
//! result is awaited, or with `COMMIT`. tokio-postgres pipelines requests that are polled
//! concurrently on one connection, so a message's bookkeeping costs a few round trips instead of a
//! dozen.
//!
//! Within a transaction this changes nothing but timing: statements still reach the server in the
//! order they were issued, and a failed write aborts the transaction, so every later statement
//! (`COMMIT` included) fails or rolls back. The write's own error is the one reported.

use std::future::Future;

use futures::future::{join, try_join_all};
use tokio_postgres::Client;
use tokio_postgres::types::{ToSql, Type};

use super::error::classify;
use crate::error::ApplyError;

/// A statement and its owned, typed parameters, waiting to be sent.
pub struct Deferred {
    sql: String,
    params: Vec<(Box<dyn ToSql + Send + Sync>, Type)>,
}

impl Deferred {
    pub fn new(sql: impl Into<String>) -> Deferred {
        Deferred {
            sql: sql.into(),
            params: Vec::new(),
        }
    }

    /// Binds the next parameter (`$1`, `$2`, … in order) as `ty`.
    pub fn bind<T: ToSql + Send + Sync + 'static>(mut self, value: T, ty: Type) -> Deferred {
        self.params.push((Box::new(value), ty));
        self
    }

    async fn execute(&self, client: &Client) -> Result<u64, ApplyError> {
        let params: Vec<(&(dyn ToSql + Sync), Type)> = self
            .params
            .iter()
            .map(|(value, ty)| (value.as_ref() as &(dyn ToSql + Sync), ty.clone()))
            .collect();
        client
            .execute_typed(&self.sql, &params)
            .await
            .map_err(classify)
    }
}

/// Sends `pending`, then `op`'s statements, in one round trip. A failed pending write is reported
/// in preference to `op`'s own result (which then only says the transaction was aborted).
pub async fn pipelined<T>(
    client: &Client,
    pending: Vec<Deferred>,
    op: impl Future<Output = Result<T, ApplyError>>,
) -> Result<T, ApplyError> {
    let (written, result) = sent_with(client, pending, op).await;
    written?;
    result
}

/// As [`pipelined`], keeping the outcomes apart: for a caller that handles `op`'s error itself
/// (and must not mistake a pending write's failure for it).
pub async fn sent_with<T>(
    client: &Client,
    pending: Vec<Deferred>,
    op: impl Future<Output = Result<T, ApplyError>>,
) -> (Result<(), ApplyError>, Result<T, ApplyError>) {
    if pending.is_empty() {
        return (Ok(()), op.await);
    }
    let writes = async {
        try_join_all(pending.iter().map(|d| d.execute(client)))
            .await
            .map(drop)
    };
    join(writes, op).await
}
