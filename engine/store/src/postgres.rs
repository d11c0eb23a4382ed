//! Transactions on PostgreSQL that begin only when they must.

use std::sync::Arc;

use crm_model::Entity;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use crate::StoreError;
use crate::sql::{Sql, joined_inserts};
use crate::stats::Timing;

/// A transaction that sends nothing until it must. New rows (a record with its audit and
/// outbox rows), which nothing in the transaction reads back, wait: whatever statement comes
/// next begins the transaction and sends them first. If they are all the transaction holds
/// when it commits and they join into one statement, that statement runs alone, atomic by
/// itself: a create is one trip to the server instead of BEGIN, INSERT and COMMIT, and holds
/// a connection only for that trip.
pub(crate) struct PgTx {
    pool: PgPool,
    open: Option<Transaction<'static, Postgres>>,
    waiting: Vec<Sql>,
    /// The entities whose rows wait, to name the field whose unique index a row breaks.
    inserting: Vec<Arc<Entity>>,
}

impl PgTx {
    pub(crate) fn new(pool: PgPool) -> Self {
        PgTx { pool, open: None, waiting: Vec::new(), inserting: Vec::new() }
    }

    /// Inserts of `entity`'s rows and the statements that go with them: kept for later while
    /// the transaction has not begun, else run now.
    pub(crate) async fn insert(&mut self, statements: Vec<Sql>, entity: &Arc<Entity>) -> Result<(), StoreError> {
        if self.open.is_none() {
            self.waiting.extend(statements);
            self.inserting.push(entity.clone());
            return Ok(());
        }
        let _timing = Timing::write();
        let conn = self.connection().await?;
        let done = Sql::run_on_postgres(statements, conn).await;
        done.map_err(|e| crate::records::classify(entity, e))
    }

    /// The transaction's connection, the transaction begun and the waiting rows sent first if
    /// it had not begun yet.
    pub(crate) async fn connection(&mut self) -> Result<&mut PgConnection, StoreError> {
        let tx = match self.open.take() {
            Some(tx) => tx,
            None => {
                let waiting = joined_inserts(std::mem::take(&mut self.waiting));
                self.begin(waiting).await?
            }
        };
        Ok(&mut **self.open.insert(tx))
    }

    pub(crate) async fn commit(mut self) -> Result<(), StoreError> {
        let tx = match self.open.take() {
            Some(tx) => tx,
            None => {
                let mut joined = joined_inserts(std::mem::take(&mut self.waiting));
                if joined.len() <= 1 {
                    let Some(statement) = joined.pop() else { return Ok(()) };
                    let _timing = Timing::write();
                    let done = statement.postgres().execute(&self.pool).await;
                    return done.map(|_| ()).map_err(|e| self.named(e.into()));
                }
                self.begin(joined).await?
            }
        };
        Ok(tx.commit().await?)
    }

    /// Begins the transaction and sends `statements`, joined already, in it.
    async fn begin(&self, statements: Vec<Sql>) -> Result<Transaction<'static, Postgres>, StoreError> {
        let mut tx = self.pool.begin().await?;
        for statement in statements {
            statement.postgres().execute(&mut *tx).await.map_err(|e| self.named(e.into()))?;
        }
        Ok(tx)
    }

    /// The error of a statement, naming the field whose unique index a waiting row broke.
    fn named(&self, error: StoreError) -> StoreError {
        self.inserting.iter().fold(error, |error, entity| crate::records::classify(entity, error))
    }
}
