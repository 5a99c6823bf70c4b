//! The transaction repository.

use std::collections::{HashMap, HashSet};
use std::pin::Pin;

use rust_decimal::Decimal;
use time::OffsetDateTime;
use tokio::time::Instant;
use tokio_postgres::Row;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use txwatch_domain::{
    Amount, Origin, Score, Transaction, TransactionId, UserId, Verdict, WindowEntry,
};
use uuid::Uuid;

use crate::error::StorageError;
use crate::numeric::Cents;
use crate::pool::PgPool;
use crate::replicas::Replicas;
use crate::session::Session;

/// Reads and writes the `transactions` table. Cheap to clone.
///
/// With [`Replicas`], the history page and the users listing are read from
/// a usable replica and, when none is or the one tried fails, from the
/// primary, all within one query timeout. Every other call goes to the
/// primary: writes, and the reads that must see the latest writes (the
/// lookups of ingest, window rebuilds).
#[derive(Clone)]
pub struct TransactionRepository {
    pool: PgPool,
    replicas: Option<Replicas>,
}

/// A position in the history order (`txn_date DESC, id ASC`): a page that
/// starts after it holds the rows that come strictly later in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Date of the row the position is at.
    pub txn_date: OffsetDateTime,
    /// Id of that row, which breaks ties between equal dates.
    pub id: TransactionId,
}

/// One page of a user's history, newest first. All bounds are inclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageQuery {
    /// Whose history.
    pub user_id: UserId,
    /// Earliest `txn_date`.
    pub from: OffsetDateTime,
    /// Latest `txn_date`.
    pub to: OffsetDateTime,
    /// Smallest amount.
    pub min_amount: Amount,
    /// Largest amount.
    pub max_amount: Amount,
    /// Most rows to return.
    pub limit: u32,
    /// Continue after this position; `None` starts from the newest row.
    pub after: Option<Position>,
}

/// A page of history.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The rows, in `txn_date DESC, id ASC` order.
    pub transactions: Vec<Transaction>,
    /// Whether rows beyond this page match the query.
    pub has_more: bool,
}

impl Page {
    /// The position after the last row, to continue from; `None` when empty.
    pub fn end(&self) -> Option<Position> {
        self.transactions.last().map(|t| Position {
            txn_date: t.txn_date,
            id: t.id,
        })
    }
}

const COLUMNS: &str = "id, user_id, amount, currency, txn_date, status, \
     is_anomaly, anomaly_score, window_len, baseline, threshold, simulated";

const COLUMN_TYPES: [Type; 12] = [
    Type::UUID,
    Type::UUID,
    Type::NUMERIC,
    Type::VARCHAR,
    Type::TIMESTAMPTZ,
    Type::VARCHAR,
    Type::BOOL,
    Type::FLOAT8,
    Type::INT4,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::BOOL,
];

// Why the nested query: the contract orders by `txn_date desc, id asc`, which
// the index (user_id, txn_date, amount, id) does not give directly. A server
// runs these as prepared statements, whose generic plan estimates one
// matching row and so would rather sort every row of the user than walk the
// index. The inner query orders by `txn_date desc` only, which a backward
// index scan yields for free under any plan, and stops after `$n` rows plus
// any that tie on the last date; the outer sort then puts that small set in
// contract order. The first `$n` rows in contract order are always among
// them.
pub(crate) const FIRST_PAGE: &str = "select * from ( \
       select id, user_id, amount, currency, txn_date, status, \
              is_anomaly, anomaly_score, window_len, baseline, threshold, simulated \
       from transactions \
       where user_id = $1 and txn_date between $2 and $3 and amount between $4 and $5 \
       order by txn_date desc fetch first ($6) rows with ties) page \
     order by txn_date desc, id asc limit $6";

// The keyset condition is "after (date, id) in txn_date desc, id asc order":
// an earlier date, or the same date and a greater id. The redundant
// `txn_date <= $6` lets the index range scan start at the cursor.
const NEXT_PAGE: &str = "select * from ( \
       select id, user_id, amount, currency, txn_date, status, \
              is_anomaly, anomaly_score, window_len, baseline, threshold, simulated \
       from transactions \
       where user_id = $1 and txn_date between $2 and $3 and amount between $4 and $5 \
         and txn_date <= $6 and (txn_date < $6 or id > $7) \
       order by txn_date desc fetch first ($8) rows with ties) page \
     order by txn_date desc, id asc limit $8";

// A skip scan over the leading column of ix_user_date_amount_id: one index
// probe per distinct user instead of reading every row.
const DISTINCT_USERS: &str = "with recursive users(user_id) as ( \
       (select user_id from transactions order by user_id limit 1) \
       union all \
       select (select t.user_id from transactions t \
               where t.user_id > users.user_id order by t.user_id limit 1) \
       from users where users.user_id is not null) \
     select user_id from users where user_id is not null";

// Backward along ix_user_date_amount_id: no sort needed. Rows of the other
// origin are skipped on the way (`simulated` is not in the index, so each
// row read costs a heap visit; this runs only when a window is rebuilt).
const LATEST_AMOUNTS: &str = "select amount from transactions \
     where user_id = $1 and simulated = $3 \
     order by txn_date desc, amount desc, id desc limit $2";

// The same order, for many users in one statement: one short backward index
// scan per user.
const LATEST_ENTRIES: &str = "select u.user_id, t.id, t.txn_date, t.amount \
     from unnest($1::uuid[]) as u(user_id) \
     cross join lateral ( \
       select id, txn_date, amount from transactions \
       where user_id = u.user_id and simulated = $3 \
       order by txn_date desc, amount desc, id desc limit $2) as t";

// One statement, so a batch is stored whole or not at all; ids stored
// already for the same user (by an earlier call or a concurrent one) are
// skipped, and `returning` says which rows this call stored. The key is
// (id, user_id): with the table partitioned by user, no constraint can make
// an id unique across users (see `Key`).
const INSERT_MANY: &str = "insert into transactions ( \
       id, user_id, amount, currency, txn_date, status, \
       is_anomaly, anomaly_score, window_len, baseline, threshold, simulated) \
     select * from unnest($1::uuid[], $2::uuid[], $3::numeric[], $4::varchar[], \
       $5::timestamptz[], $6::varchar[], $7::bool[], $8::float8[], $9::int4[], \
       $10::float8[], $11::float8[], $12::bool[]) \
     on conflict (id, user_id) do nothing \
     returning user_id, id";

/// From this many rows on, [`TransactionRepository::insert_many`] tries
/// binary `COPY` first: below it, the extra round trips of a copy cost more
/// than they save.
const COPY_FROM: usize = 64;

// Pairs are matched exactly in Rust. The primary key (id, user_id) serves
// `id = any($2)` in each partition; `user_id = any($1)` lets the planner
// prune to the users' partitions under a custom plan (observed on
// Postgres 15), while a generic plan cannot prune on an array parameter
// and probes each of the 16 primary keys: index probes either way.
const FIND_MANY: &str = "select id, user_id, amount, currency, txn_date, status, \
       is_anomaly, anomaly_score, window_len, baseline, threshold, simulated \
     from transactions where user_id = any($1) and id = any($2)";

/// What identifies a stored transaction: its id within its user's history.
///
/// `transactions` is partitioned (and can be distributed with Citus) by
/// `user_id`, and a unique constraint there must include it: so an id is
/// unique per user, and the same id posted for another user is another
/// transaction. Every lookup carries the user, which also routes it to one
/// partition (or Citus shard).
pub type Key = (UserId, TransactionId);

/// The key of a transaction.
pub fn key_of(transaction: &Transaction) -> Key {
    (transaction.user_id, transaction.id)
}

impl TransactionRepository {
    /// A repository over `pool`.
    pub fn new(pool: PgPool) -> TransactionRepository {
        TransactionRepository {
            pool,
            replicas: None,
        }
    }

    /// The same repository, reading the history and users from `replicas`
    /// while they are usable.
    #[must_use]
    pub fn with_replicas(mut self, replicas: Option<Replicas>) -> TransactionRepository {
        self.replicas = replicas;
        self
    }

    /// The pool of the primary.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The read replicas, if any.
    pub fn replicas(&self) -> Option<&Replicas> {
        self.replicas.as_ref()
    }

    /// Runs a read that may be slightly stale: on a usable replica, within
    /// half the query timeout, and when there is none or it fails, on the
    /// primary, within what is left of the whole query timeout.
    async fn read_anywhere<T, F>(&self, read: F) -> Result<T, StorageError>
    where
        F: AsyncFn(&Session) -> Result<T, StorageError>,
    {
        let started = Instant::now();
        let whole = self.pool.query_timeout();
        if let Some(replicas) = &self.replicas {
            if let Some(replica) = replicas.pick() {
                let answer = match replica.session(started + whole / 2).await {
                    Ok(session) => read(&session).await,
                    Err(error) => Err(error),
                };
                match answer {
                    Ok(value) => {
                        replica.answered();
                        return Ok(value);
                    }
                    Err(error) => replica.failed(&error),
                }
            }
            replicas.primary_answered();
        }
        let session = self.pool.session_until(started + whole).await?;
        read(&session).await
    }

    /// Stores one scored transaction.
    ///
    /// # Errors
    /// [`StorageError::Duplicate`] when its id is stored already for its
    /// user;
    /// [`StorageError::Unavailable`] when the database cannot be reached
    /// (nothing stored); [`StorageError::OutcomeUnknown`] when the insert
    /// was sent and no answer came.
    pub async fn insert(&self, transaction: &Transaction) -> Result<(), StorageError> {
        let session = self.pool.session().await?;
        let client = session.client();
        let statement = session
            .read(client.prepare_cached(&format!(
                "insert into transactions ({COLUMNS}) \
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            )))
            .await?;
        let row = RowValues::of(transaction);
        session
            .commit(client.execute(&statement, &row.params()))
            .await?;
        Ok(())
    }

    /// Starts a bulk insert by binary `COPY` on a connection of its own.
    /// Rows become visible together when [`BulkInsert::finish`] succeeds, and
    /// not at all if it is dropped before. Each round trip of the copy gets
    /// the query timeout.
    ///
    /// # Errors
    /// [`StorageError::Unavailable`] when the database cannot be reached.
    pub async fn bulk_insert(&self) -> Result<BulkInsert, StorageError> {
        let session = self.pool.session().await?;
        let sink = session
            .read(session.client().copy_in(&format!(
                "copy transactions ({COLUMNS}) from stdin (format binary)"
            )))
            .await?;
        let writer = Box::pin(BinaryCopyInWriter::new(sink, &COLUMN_TYPES));
        Ok(BulkInsert {
            writer,
            session,
            rows: 0,
        })
    }

    /// One page of a user's history in `txn_date DESC, id ASC` order.
    ///
    /// # Errors
    /// [`StorageError::Unavailable`] when the database cannot be reached.
    pub async fn page(&self, query: &PageQuery) -> Result<Page, StorageError> {
        self.read_anywhere(async |session| page_on(session, query).await)
            .await
    }

    /// Every user that has at least one transaction, in id order.
    ///
    /// # Errors
    /// [`StorageError::Unavailable`] when the database cannot be reached.
    pub async fn users(&self) -> Result<Vec<UserId>, StorageError> {
        self.read_anywhere(async |session| users_on(session).await)
            .await
    }

    /// The user's `n` latest amounts of `origin`, oldest first: what a
    /// detector window holds after replaying the user's history of that
    /// origin.
    ///
    /// # Errors
    /// [`StorageError::Unavailable`] when the database cannot be reached.
    pub async fn latest_amounts(
        &self,
        user_id: UserId,
        n: usize,
        origin: Origin,
    ) -> Result<Vec<Amount>, StorageError> {
        let session = self.pool.session().await?;
        let client = session.client();
        let statement = session.read(client.prepare_cached(LATEST_AMOUNTS)).await?;
        let limit = i64::try_from(n).unwrap_or(i64::MAX);
        let rows = session
            .read(client.query(
                &statement,
                &[&user_id.as_uuid(), &limit, &origin.is_simulated()],
            ))
            .await?;
        let mut amounts = rows
            .iter()
            .map(|row| {
                let Cents(cents) = row.try_get(0)?;
                Amount::from_cents(cents).map_err(|e| StorageError::CorruptRow {
                    id: user_id.as_uuid(),
                    reason: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        amounts.reverse();
        Ok(amounts)
    }

    /// The `n` latest transactions of `origin` of each of `users`, oldest
    /// first, as windows remember them (in `txn_date, amount, id` order, the
    /// order of the history index). Users without such history map to an
    /// empty list.
    ///
    /// # Errors
    /// [`StorageError::Unavailable`] when the database cannot be reached.
    pub async fn latest_entries(
        &self,
        users: &[UserId],
        n: usize,
        origin: Origin,
    ) -> Result<HashMap<UserId, Vec<WindowEntry>>, StorageError> {
        let mut windows: HashMap<UserId, Vec<WindowEntry>> =
            users.iter().map(|&user| (user, Vec::new())).collect();
        if users.is_empty() || n == 0 {
            return Ok(windows);
        }
        let session = self.pool.session().await?;
        let client = session.client();
        let statement = session.read(client.prepare_cached(LATEST_ENTRIES)).await?;
        let ids: Vec<Uuid> = users.iter().map(UserId::as_uuid).collect();
        let limit = i64::try_from(n).unwrap_or(i64::MAX);
        let rows = session
            .read(client.query(&statement, &[&ids, &limit, &origin.is_simulated()]))
            .await?;
        for row in &rows {
            let user_id = UserId(row.try_get(0)?);
            let id: Uuid = row.try_get(1)?;
            let Cents(cents) = row.try_get(3)?;
            let amount = Amount::from_cents(cents).map_err(|e| StorageError::CorruptRow {
                id,
                reason: e.to_string(),
            })?;
            windows.entry(user_id).or_default().push(WindowEntry {
                id: TransactionId(id),
                txn_date: row.try_get(2)?,
                amount,
            });
        }
        // Rows arrive newest first per user.
        for entries in windows.values_mut() {
            entries.reverse();
        }
        Ok(windows)
    }

    /// Stores scored transactions in one statement: all of them or, on
    /// error, none. Keys (user and id) stored already are skipped rather
    /// than failing the batch; the answer lists the keys this call stored.
    ///
    /// When the write was sent and its answer lost (the connection dropped,
    /// or no answer came in time), this finds out what became of it before
    /// answering: it runs the same idempotent insert again on another
    /// connection, which waits for the lost write if it is still in flight.
    ///
    /// # Errors
    /// [`StorageError::Unavailable`] when the database cannot be reached
    /// (then nothing was stored); [`StorageError::OutcomeUnknown`] when the
    /// write was sent, its answer lost, and what became of it could not be
    /// found out either (then each row is stored once or not at all, and
    /// writing them again is safe).
    pub async fn insert_many(
        &self,
        transactions: &[Transaction],
    ) -> Result<Vec<Key>, StorageError> {
        if transactions.is_empty() {
            return Ok(Vec::new());
        }
        let attempt = if transactions.len() >= COPY_FROM {
            // Binary COPY costs Postgres about half of what the statement
            // does per row; it fails whole on a stored id, which is rare
            // (callers look client ids up first), and then the statement,
            // which skips stored ids, runs instead.
            match self.copy_all(transactions).await {
                Ok(()) => Ok(transactions.iter().map(key_of).collect()),
                Err(StorageError::Duplicate) => self.insert_statement(transactions).await,
                Err(error) => Err(error),
            }
        } else {
            self.insert_statement(transactions).await
        };
        match attempt {
            Err(StorageError::OutcomeUnknown(cause)) => {
                tracing::warn!(
                    error = %crate::error::chain(&*cause),
                    rows = transactions.len(),
                    "the answer to a write was lost; finding out what became of it"
                );
                self.settle(transactions, cause).await
            }
            other => other,
        }
    }

    /// Finds out what became of a write whose answer was lost, on another
    /// connection, and answers as [`insert_many`](Self::insert_many) would
    /// have: the keys stored by that write (or now).
    ///
    /// Why run the idempotent insert again rather than look the ids up: the
    /// lost write may still be under way in Postgres (only its answer is
    /// late, or its rows are inserted and not yet committed). A lookup
    /// cannot see uncommitted rows: it would say "not stored", and the
    /// write could commit a moment later. The insert, `on conflict (id, user_id) do
    /// nothing`, waits on the primary key for any transaction holding the
    /// same keys until it commits (then they conflict: they are stored) or
    /// rolls back (then they are inserted now). Once it returns, every row
    /// is stored exactly once. A second statement, with a fresh snapshot,
    /// reads the rows it did not insert, to tell the lost write's rows from
    /// rows another request stored under the same client ids.
    ///
    /// If this fails too (no connection, no answer in time, the lost write
    /// still holding its locks because its session is stuck), the outcome
    /// stays unknown. Postgres drops a vanished client's session after
    /// `dead_connection_timeout_ms`, so such locks do not last.
    async fn settle(
        &self,
        transactions: &[Transaction],
        cause: Box<dyn std::error::Error + Send + Sync>,
    ) -> Result<Vec<Key>, StorageError> {
        let unknown = |error: StorageError| {
            tracing::warn!(
                error = %crate::error::chain(&error),
                "what became of a write whose answer was lost could not be found out"
            );
            StorageError::OutcomeUnknown(cause)
        };
        let settled = async {
            let session = self.pool.session().await?;
            let inserted = self.insert_on(&session, transactions).await?;
            let now: HashSet<Key> = inserted.iter().copied().collect();
            let rest: Vec<Key> = transactions
                .iter()
                .map(key_of)
                .filter(|key| !now.contains(key))
                .collect();
            let found = self.find_on(&session, &rest).await?;
            Ok::<_, StorageError>((inserted, found))
        };
        let (mut stored, found) = settled.await.map_err(unknown)?;
        let ours: HashMap<Key, &Transaction> =
            transactions.iter().map(|t| (key_of(t), t)).collect();
        stored.extend(
            found
                .iter()
                .filter(|row| {
                    ours.get(&key_of(row))
                        .is_some_and(|t| same_transaction(t, row))
                })
                .map(key_of),
        );
        Ok(stored)
    }

    /// Stores the rows by one `insert ... on conflict (id, user_id) do
    /// nothing`, answering the keys it inserted.
    async fn insert_statement(
        &self,
        transactions: &[Transaction],
    ) -> Result<Vec<Key>, StorageError> {
        let session = self.pool.session().await?;
        self.insert_on(&session, transactions).await
    }

    /// [`insert_statement`](Self::insert_statement) on a given session.
    async fn insert_on(
        &self,
        session: &Session,
        transactions: &[Transaction],
    ) -> Result<Vec<Key>, StorageError> {
        let n = transactions.len();
        let mut ids = Vec::with_capacity(n);
        let mut users = Vec::with_capacity(n);
        let mut amounts = Vec::with_capacity(n);
        let mut currencies = Vec::with_capacity(n);
        let mut dates = Vec::with_capacity(n);
        let mut statuses = Vec::with_capacity(n);
        let mut flags = Vec::with_capacity(n);
        let mut scores = Vec::with_capacity(n);
        let mut window_lens = Vec::with_capacity(n);
        let mut baselines = Vec::with_capacity(n);
        let mut thresholds = Vec::with_capacity(n);
        let mut simulated = Vec::with_capacity(n);
        for t in transactions {
            let row = RowValues::of(t);
            ids.push(row.id);
            users.push(row.user_id);
            amounts.push(row.amount);
            currencies.push(row.currency);
            dates.push(*row.txn_date);
            statuses.push(row.status);
            flags.push(row.is_anomaly);
            scores.push(row.score);
            window_lens.push(row.window_len);
            baselines.push(row.baseline);
            thresholds.push(row.threshold);
            simulated.push(row.simulated);
        }
        let client = session.client();
        let statement = session.read(client.prepare_cached(INSERT_MANY)).await?;
        let rows = session
            .commit(client.query(
                &statement,
                &[
                    &ids,
                    &users,
                    &amounts,
                    &currencies,
                    &dates,
                    &statuses,
                    &flags,
                    &scores,
                    &window_lens,
                    &baselines,
                    &thresholds,
                    &simulated,
                ],
            ))
            .await?;
        rows.iter()
            .map(|row| Ok((UserId(row.try_get(0)?), TransactionId(row.try_get(1)?))))
            .collect()
    }

    /// Stores every row by binary `COPY`, all or none.
    async fn copy_all(&self, transactions: &[Transaction]) -> Result<(), StorageError> {
        let mut bulk = self.bulk_insert().await?;
        for transaction in transactions {
            bulk.write(transaction).await?;
        }
        bulk.finish().await?;
        Ok(())
    }

    /// The stored transactions among `keys`, in no particular order; keys
    /// not stored are left out.
    ///
    /// # Errors
    /// [`StorageError::Unavailable`] when the database cannot be reached;
    /// [`StorageError::CorruptRow`] when a row breaks the domain's rules.
    pub async fn find_many(&self, keys: &[Key]) -> Result<Vec<Transaction>, StorageError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let session = self.pool.session().await?;
        self.find_on(&session, keys).await
    }

    /// [`find_many`](Self::find_many) on a given session.
    async fn find_on(
        &self,
        session: &Session,
        keys: &[Key],
    ) -> Result<Vec<Transaction>, StorageError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let client = session.client();
        let statement = session.read(client.prepare_cached(FIND_MANY)).await?;
        let mut users: Vec<Uuid> = keys.iter().map(|(user, _)| user.as_uuid()).collect();
        users.sort_unstable();
        users.dedup();
        let ids: Vec<Uuid> = keys.iter().map(|(_, id)| id.as_uuid()).collect();
        let rows = session
            .read(client.query(&statement, &[&users, &ids]))
            .await?;
        let wanted: HashSet<Key> = keys.iter().copied().collect();
        let mut found = Vec::with_capacity(keys.len());
        for row in &rows {
            let transaction = transaction_from_row(row)?;
            // The query matches every user with every id: keep the pairs.
            if wanted.contains(&key_of(&transaction)) {
                found.push(transaction);
            }
        }
        Ok(found)
    }

    /// Deletes every transaction. Used by `seed --reset`.
    ///
    /// # Errors
    /// [`StorageError::Unavailable`] when the database cannot be reached.
    pub async fn delete_all(&self) -> Result<(), StorageError> {
        let session = self.pool.session().await?;
        session
            .commit(session.client().batch_execute("truncate transactions"))
            .await?;
        Ok(())
    }
}

/// One page of history on `session`.
async fn page_on(session: &Session, query: &PageQuery) -> Result<Page, StorageError> {
    let client = session.client();
    let fetch = i64::from(query.limit) + 1;
    let (min, max) = (query.min_amount.as_decimal(), query.max_amount.as_decimal());
    let user = query.user_id.as_uuid();
    let rows = match &query.after {
        None => {
            let statement = session.read(client.prepare_cached(FIRST_PAGE)).await?;
            session
                .read(client.query(
                    &statement,
                    &[&user, &query.from, &query.to, &min, &max, &fetch],
                ))
                .await?
        }
        Some(after) => {
            let statement = session.read(client.prepare_cached(NEXT_PAGE)).await?;
            let id = after.id.as_uuid();
            let params: [&(dyn ToSql + Sync); 8] = [
                &user,
                &query.from,
                &query.to,
                &min,
                &max,
                &after.txn_date,
                &id,
                &fetch,
            ];
            session.read(client.query(&statement, &params)).await?
        }
    };
    let has_more = rows.len() as i64 > i64::from(query.limit);
    let transactions = rows
        .iter()
        .take(query.limit as usize)
        .map(transaction_from_row)
        .collect::<Result<_, _>>()?;
    Ok(Page {
        transactions,
        has_more,
    })
}

/// The distinct users on `session`.
async fn users_on(session: &Session) -> Result<Vec<UserId>, StorageError> {
    let client = session.client();
    let statement = session.read(client.prepare_cached(DISTINCT_USERS)).await?;
    let rows = session.read(client.query(&statement, &[])).await?;
    Ok(rows.iter().map(|row| UserId(row.get(0))).collect())
}

/// A bulk insert in progress; see [`TransactionRepository::bulk_insert`].
pub struct BulkInsert {
    writer: Pin<Box<BinaryCopyInWriter>>,
    // Keeps the connection checked out of the pool until the copy ends.
    session: Session,
    rows: u64,
}

impl BulkInsert {
    /// Queues one row; rows are sent in large chunks as they accumulate.
    ///
    /// # Errors
    /// [`StorageError::Unavailable`] when the connection was lost;
    /// [`StorageError::Duplicate`] can surface here or at `finish`.
    pub async fn write(&mut self, transaction: &Transaction) -> Result<(), StorageError> {
        let row = RowValues::of(transaction);
        // Rows commit only with `finish`: until then a failure stored none.
        self.session.renew();
        self.session
            .read(self.writer.as_mut().write(&row.params()))
            .await?;
        self.rows += 1;
        Ok(())
    }

    /// Ends the copy and commits every row written, returning how many.
    ///
    /// # Errors
    /// [`StorageError::Duplicate`] when any key was stored already (then no
    /// row of this copy is stored); [`StorageError::OutcomeUnknown`] when
    /// the end of the copy was sent and no answer came.
    pub async fn finish(mut self) -> Result<u64, StorageError> {
        self.session.renew();
        let stored = self.session.commit(self.writer.as_mut().finish()).await?;
        debug_assert_eq!(stored, self.rows);
        Ok(stored)
    }
}

/// The column values of one row, borrowed from a transaction.
struct RowValues<'a> {
    id: Uuid,
    user_id: Uuid,
    amount: Decimal,
    currency: &'a str,
    txn_date: &'a OffsetDateTime,
    status: &'a str,
    is_anomaly: bool,
    score: Option<f64>,
    window_len: i32,
    baseline: Option<f64>,
    threshold: Option<f64>,
    simulated: bool,
}

impl<'a> RowValues<'a> {
    fn of(t: &'a Transaction) -> RowValues<'a> {
        let score = t.verdict.score();
        RowValues {
            id: t.id.as_uuid(),
            user_id: t.user_id.as_uuid(),
            amount: t.amount.as_decimal(),
            currency: t.currency.as_str(),
            txn_date: &t.txn_date,
            status: t.status.as_str(),
            is_anomaly: t.verdict.is_anomaly(),
            score: score.map(|s| s.score),
            window_len: i32::try_from(t.verdict.window_len()).unwrap_or(i32::MAX),
            baseline: score.map(|s| s.baseline),
            threshold: score.map(|s| s.threshold),
            simulated: t.origin.is_simulated(),
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 12] {
        [
            &self.id,
            &self.user_id,
            &self.amount,
            &self.currency,
            self.txn_date,
            &self.status,
            &self.is_anomaly,
            &self.score,
            &self.window_len,
            &self.baseline,
            &self.threshold,
            &self.simulated,
        ]
    }
}

/// Whether a stored row is the transaction `ours` rather than another one
/// stored under the same key: the same user, amount, currency, date and
/// status (the verdict follows from those and the window).
fn same_transaction(ours: &Transaction, stored: &Transaction) -> bool {
    ours.user_id == stored.user_id
        && ours.amount == stored.amount
        && ours.currency == stored.currency
        && ours.txn_date == stored.txn_date
        && ours.status == stored.status
        && ours.origin == stored.origin
}

fn transaction_from_row(row: &Row) -> Result<Transaction, StorageError> {
    let id: Uuid = row.try_get(0)?;
    let corrupt = |reason: String| StorageError::CorruptRow { id, reason };
    let Cents(cents) = row.try_get(2)?;
    let currency: &str = row.try_get(3)?;
    let status: &str = row.try_get(5)?;
    let window_len: i32 = row.try_get(8)?;
    let window_len = usize::try_from(window_len).map_err(|e| corrupt(e.to_string()))?;
    let score: Option<f64> = row.try_get(7)?;
    let verdict = match score {
        None => Verdict::NotEnoughHistory { have: window_len },
        Some(score) => Verdict::Scored(Score {
            is_anomaly: row.try_get(6)?,
            score,
            window_len,
            baseline: row.try_get::<_, Option<f64>>(9)?.unwrap_or(0.0),
            threshold: row.try_get::<_, Option<f64>>(10)?.unwrap_or(0.0),
        }),
    };
    Ok(Transaction {
        id: TransactionId(id),
        user_id: UserId(row.try_get(1)?),
        amount: Amount::from_cents(cents).map_err(|e| corrupt(e.to_string()))?,
        currency: currency
            .parse()
            .map_err(|e: txwatch_domain::CurrencyError| corrupt(e.to_string()))?,
        txn_date: row.try_get(4)?,
        status: status
            .parse()
            .map_err(|e: txwatch_domain::StatusError| corrupt(e.to_string()))?,
        origin: if row.try_get(11)? {
            Origin::Simulated
        } else {
            Origin::Real
        },
        verdict,
    })
}
