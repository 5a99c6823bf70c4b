//! Bulk history loading (`txwatch seed`).
//!
//! Users are split between `workers` parallel `COPY` streams. For each
//! worker a blocking thread generates its users' history in time order,
//! scores every row with the detector against that user's running window,
//! and sends batches through a small bounded channel to an async task that
//! writes them with binary `COPY`. Memory stays flat however many rows are
//! seeded: at most a few batches per worker are in flight.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use txwatch_cache::{CacheError, WindowStore};
use txwatch_domain::{Amount, Detector, Origin, Transaction, UserId, Window};
use txwatch_simulator::{HistoryPlan, SimulatedTransaction, SimulatorConfig};
use txwatch_storage::{StorageError, TransactionRepository};

/// Rows per message from a generator to its writer.
const BATCH: usize = 2048;
/// Batches a generator may run ahead of its writer.
const BATCHES_IN_FLIGHT: usize = 4;

/// What to seed.
#[derive(Debug, Clone)]
pub struct SeedOptions {
    /// How many new users.
    pub users: usize,
    /// Transactions per user.
    pub rows_per_user: u64,
    /// The history spans this many days before `end`.
    pub days: u32,
    /// RNG seed; a random one when `None`. With the same `end` it reproduces
    /// a run exactly.
    pub seed: Option<u64>,
    /// The history ends here; now when `None`.
    pub end: Option<OffsetDateTime>,
    /// Delete every stored transaction first.
    pub reset: bool,
    /// Parallel `COPY` streams.
    pub workers: usize,
    /// Recent amounts kept per user for its Redis window.
    pub window_len: usize,
}

impl Default for SeedOptions {
    /// The old service's load: 10 users x 15,000 rows over 365 days.
    fn default() -> Self {
        SeedOptions {
            users: 10,
            rows_per_user: 15_000,
            days: 365,
            seed: None,
            end: None,
            reset: false,
            workers: 2,
            window_len: 20,
        }
    }
}

/// What a seed run did.
#[derive(Debug, Clone)]
pub struct SeedReport {
    /// Rows stored.
    pub rows: u64,
    /// Of which flagged as anomalies.
    pub anomalies: u64,
    /// The RNG seed used (pass it back with `end` to reproduce the run).
    pub seed: u64,
    /// Where the history ends.
    pub end: OffsetDateTime,
    /// Wall time of generating, scoring and storing.
    pub elapsed: Duration,
    /// Each seeded user's final window (oldest first): what the live
    /// pipeline continues from. The `seed` command writes these to Redis.
    pub windows: Vec<(UserId, Vec<Amount>)>,
}

impl SeedReport {
    /// Rows stored per second of wall time.
    pub fn rows_per_second(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Why seeding failed. Nothing of a failed worker's rows is stored.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The database refused or lost the rows.
    #[error("storing seeded rows failed")]
    Storage(#[from] StorageError),
    /// Redis refused or lost the warmed windows.
    #[error("warming the redis windows failed")]
    Cache(#[from] CacheError),
    /// A generator thread panicked.
    #[error("a generator thread failed")]
    Generator(#[source] tokio::task::JoinError),
    /// Impossible options.
    #[error("invalid seed options: {0}")]
    Options(&'static str),
}

/// Generates, scores and stores history as `options` say; `progress` is
/// advanced by each stored batch.
///
/// # Errors
/// [`SeedError`] when options are impossible or the database fails.
pub async fn seed<D>(
    repository: &TransactionRepository,
    detector: D,
    simulator: &SimulatorConfig,
    options: &SeedOptions,
    progress: &ProgressBar,
) -> Result<SeedReport, SeedError>
where
    D: Detector + Clone + Send + 'static,
    D::State: Send,
{
    if options.workers == 0 {
        return Err(SeedError::Options("workers must be at least 1"));
    }
    if options.days == 0 {
        return Err(SeedError::Options("days must be at least 1"));
    }
    let seed = options
        .seed
        .unwrap_or_else(|| uuid::Uuid::new_v4().as_u64_pair().0);
    let end = options.end.unwrap_or_else(OffsetDateTime::now_utc);
    let plan = HistoryPlan {
        users: options.users,
        rows_per_user: options.rows_per_user,
        end,
        span: time::Duration::days(i64::from(options.days)),
        seed,
    };
    progress.set_length(plan.total_rows());
    let started = Instant::now();
    if options.reset {
        repository.delete_all().await?;
    }

    let workers = options.workers.min(options.users.max(1));
    let mut tasks = Vec::with_capacity(workers);
    for worker in 0..workers {
        let positions: Vec<usize> = (worker..options.users).step_by(workers).collect();
        tasks.push(tokio::spawn(run_worker(
            repository.clone(),
            detector.clone(),
            simulator.clone(),
            plan.clone(),
            positions,
            options.window_len,
            progress.clone(),
        )));
    }
    let mut report = SeedReport {
        rows: 0,
        anomalies: 0,
        seed,
        end,
        elapsed: Duration::ZERO,
        windows: Vec::new(),
    };
    let mut first_error = None;
    for task in tasks {
        match task.await.map_err(SeedError::Generator).and_then(|r| r) {
            Ok(done) => {
                report.rows += done.rows;
                report.anomalies += done.anomalies;
                report.windows.extend(done.windows);
            }
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    if let Some(error) = first_error {
        return Err(error);
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

struct WorkerDone {
    rows: u64,
    anomalies: u64,
    windows: Vec<(UserId, Vec<Amount>)>,
}

async fn run_worker<D>(
    repository: TransactionRepository,
    detector: D,
    simulator: SimulatorConfig,
    plan: HistoryPlan,
    positions: Vec<usize>,
    window_len: usize,
    progress: ProgressBar,
) -> Result<WorkerDone, SeedError>
where
    D: Detector + Send + 'static,
    D::State: Send,
{
    let (sender, mut receiver) = mpsc::channel::<Vec<Transaction>>(BATCHES_IN_FLIGHT);
    let generator = tokio::task::spawn_blocking(move || {
        generate(
            &detector, &simulator, &plan, &positions, window_len, &sender,
        )
    });

    let mut bulk = repository.bulk_insert().await?;
    let mut anomalies = 0;
    while let Some(batch) = receiver.recv().await {
        for transaction in &batch {
            bulk.write(transaction).await?;
            anomalies += u64::from(transaction.is_anomaly());
        }
        progress.inc(batch.len() as u64);
    }
    let rows = bulk.finish().await?;
    let windows = generator.await.map_err(SeedError::Generator)?;
    Ok(WorkerDone {
        rows,
        anomalies,
        windows,
    })
}

/// Generates and scores the rows of the users at `positions`, sending them
/// in batches; returns each user's final window of `window_len` amounts.
fn generate<D: Detector>(
    detector: &D,
    simulator: &SimulatorConfig,
    plan: &HistoryPlan,
    positions: &[usize],
    window_len: usize,
    sender: &mpsc::Sender<Vec<Transaction>>,
) -> Vec<(UserId, Vec<Amount>)> {
    let mut users: HashMap<UserId, (D::State, Window)> = HashMap::with_capacity(positions.len());
    let mut batch = Vec::with_capacity(BATCH);
    for row in plan.generate(simulator, positions) {
        let (state, window) = users
            .entry(row.user_id)
            .or_insert_with(|| (detector.new_state(), Window::new(window_len)));
        batch.push(score(detector, state, window, row));
        if batch.len() == BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            if sender.blocking_send(full).is_err() {
                // The writer failed; it reports why.
                return Vec::new();
            }
        }
    }
    if !batch.is_empty() {
        let _ = sender.blocking_send(batch);
    }
    users
        .into_iter()
        .map(|(user, (_, window))| (user, window.iter().copied().collect()))
        .collect()
}

/// Judges `row` against the user's earlier amounts, then learns it: exactly
/// what the live pipeline does, so a replay gives the same flags.
fn score<D: Detector>(
    detector: &D,
    state: &mut D::State,
    window: &mut Window,
    row: SimulatedTransaction,
) -> Transaction {
    let verdict = if detector.uses_time() {
        detector.observe_at(state, row.txn_date, row.amount.to_f64())
    } else {
        detector.observe(state, row.amount.to_f64())
    };
    window.push(row.amount);
    Transaction {
        id: row.id,
        user_id: row.user_id,
        amount: row.amount,
        currency: row.currency,
        txn_date: row.txn_date,
        status: row.status,
        // Loaded history stands in for real transactions: live ones are
        // judged against it.
        origin: Origin::Real,
        verdict,
    }
}

/// Writes each seeded user's window to Redis (its latest transactions as
/// Postgres holds them, exactly what a rebuild would produce), so live
/// scoring continues from the history instead of starting cold. Returns how
/// many were written.
///
/// # Errors
/// [`SeedError::Cache`] when Redis is unreachable or refuses a write,
/// [`SeedError::Storage`] when the history cannot be read.
pub async fn warm_windows(
    store: &WindowStore,
    repository: &TransactionRepository,
    report: &SeedReport,
) -> Result<usize, SeedError> {
    let users: Vec<UserId> = report.windows.iter().map(|(user_id, _)| *user_id).collect();
    for chunk in users.chunks(1000) {
        let latest = repository
            .latest_entries(chunk, store.capacity(), Origin::Real)
            .await?;
        for (user_id, entries) in &latest {
            store.replace(*user_id, entries).await?;
        }
    }
    Ok(users.len())
}
