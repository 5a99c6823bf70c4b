//! Group commit for single transactions: concurrent `POST /transactions`
//! requests are gathered into one pipeline call, so they share the Redis
//! round trip, the database statement and its commit.
//!
//! Each request hands its validated transaction to an [`IngestQueue`] and
//! waits for its own outcome. A few workers ([`run_ingest_worker`]) take
//! whatever is waiting, up to a batch, and put it through the pipeline in
//! arrival order; under light load a batch is one transaction and nothing
//! waits, under heavy load batches grow and the cost per transaction falls.
//! A failure (Redis or Postgres down) fails every transaction of that batch,
//! as it would have failed each of them alone.
//!
//! A request waits within its deadline. If the deadline passes while its
//! transaction still waits in the queue, the request withdraws it (it will
//! never be stored) and answers so; once a worker has taken it, the
//! outcome is the worker's to tell, and the request answers that it is
//! unknown. A [`Claim`] per transaction makes sure exactly one of the two
//! happens.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::time::Instant;

use crate::api::error::ApiError;
use crate::live::claim::Claim;
use crate::live::pipeline::{NewTransaction, Outcome, Pipeline};

/// Transactions one worker puts through the pipeline at once, at most.
const MAX_BATCH: usize = 256;
/// Requests waiting beyond this many make new ones wait to enqueue.
const QUEUE_DEPTH: usize = 4096;

struct Job {
    transaction: NewTransaction,
    /// Taken by the worker before the pipeline runs; withdrawn by the
    /// request if its deadline passes first.
    claim: Claim,
    reply: oneshot::Sender<Result<Outcome, ApiError>>,
}

/// Where single transactions wait for a worker; cheap to clone.
#[derive(Clone)]
pub struct IngestQueue {
    sender: mpsc::Sender<Job>,
}

/// The workers' end of the queue; clone it for each worker.
#[derive(Clone)]
pub struct IngestJobs {
    receiver: Arc<Mutex<mpsc::Receiver<Job>>>,
}

impl IngestQueue {
    /// A queue and the end its workers take jobs from.
    pub fn new() -> (IngestQueue, IngestJobs) {
        let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
        (
            IngestQueue { sender },
            IngestJobs {
                receiver: Arc::new(Mutex::new(receiver)),
            },
        )
    }

    /// Puts one transaction through the pipeline with whatever else is
    /// waiting, and answers its outcome, by `deadline`.
    ///
    /// # Errors
    /// What the pipeline answers for the batch;
    /// [`ApiError::NotStoredInTime`] when the deadline passed before a
    /// worker took the transaction (it will not be stored);
    /// [`ApiError::OutcomeUnknown`] when it passed while a worker had it;
    /// [`ApiError::Unavailable`] when no worker runs (shutting down).
    pub async fn submit(
        &self,
        transaction: NewTransaction,
        deadline: Instant,
    ) -> Result<Outcome, ApiError> {
        let stopped = || ApiError::Unavailable {
            service: "the ingest workers",
            source: "the server is shutting down".into(),
        };
        let claim = Claim::new();
        let (reply, mut answer) = oneshot::channel();
        let job = Job {
            transaction,
            claim: claim.clone(),
            reply,
        };
        match tokio::time::timeout_at(deadline, self.sender.send(job)).await {
            // Never queued.
            Err(_) => return Err(ApiError::NotStoredInTime),
            Ok(Err(_)) => return Err(stopped()),
            Ok(Ok(())) => {}
        }
        match tokio::time::timeout_at(deadline, &mut answer).await {
            Ok(Ok(outcome)) => outcome,
            // The job went away unanswered: dropped from the queue when the
            // workers stopped (never taken, so never stored), or its worker
            // died while storing it.
            Ok(Err(_)) if claim.withdraw() => Err(stopped()),
            Ok(Err(_)) => Err(ApiError::OutcomeUnknown(
                "the ingest worker stopped while storing it".into(),
            )),
            Err(_) => match answer.try_recv() {
                // Answered just now: that is the truth.
                Ok(outcome) => outcome,
                // Still queued: it never will be stored.
                Err(_) if claim.withdraw() => Err(ApiError::NotStoredInTime),
                // A worker has it.
                Err(_) => Err(ApiError::OutcomeUnknown(
                    "the request's deadline passed while it was being stored".into(),
                )),
            },
        }
    }
}

/// One worker on `jobs`, forever: a long-lived ingest task for single
/// transactions. Run a few, so some gather while others wait on Redis and
/// Postgres.
pub async fn run_ingest_worker(jobs: IngestJobs, pipeline: Pipeline) {
    while let Some(batch) = next_batch(&jobs.receiver).await {
        process(&pipeline, batch).await;
    }
}

/// Waits for one job, then takes every job already waiting, up to a batch.
async fn next_batch(receiver: &Mutex<mpsc::Receiver<Job>>) -> Option<Vec<Job>> {
    let mut receiver = receiver.lock().await;
    let first = receiver.recv().await?;
    let mut batch = Vec::with_capacity(16);
    batch.push(first);
    while batch.len() < MAX_BATCH {
        match receiver.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    Some(batch)
}

async fn process(pipeline: &Pipeline, batch: Vec<Job>) {
    // Jobs whose requests gave up while they waited are dropped unstored:
    // those requests answered that nothing is stored. The rest are ours.
    let (transactions, replies): (Vec<NewTransaction>, Vec<_>) = batch
        .into_iter()
        .filter(|job| job.claim.take())
        .map(|job| (job.transaction, job.reply))
        .unzip();
    if transactions.is_empty() {
        return;
    }
    match pipeline.ingest_unpublished(transactions).await {
        Ok((outcomes, publication)) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                // The request may have gone away; its transaction is stored.
                let _ = reply.send(Ok(outcome));
            }
            // Answers first: they wait for the store, not for the stream.
            pipeline.publish(publication).await;
        }
        Err(error) => {
            if !matches!(
                error,
                ApiError::Unavailable { .. } | ApiError::OutcomeUnknown(_)
            ) {
                tracing::error!(%error, "a batch of single transactions failed");
            }
            for reply in replies {
                let _ = reply.send(Err(shared(&error)));
            }
        }
    }
}

/// The same error for each request of a failed batch (errors do not clone:
/// the cause is kept as text, which is all a response or log shows).
fn shared(error: &ApiError) -> ApiError {
    let cause = || -> Box<dyn std::error::Error + Send + Sync> {
        let mut text = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text.into()
    };
    match error {
        ApiError::Unavailable { service, .. } => ApiError::Unavailable {
            service,
            source: cause(),
        },
        ApiError::OutcomeUnknown(_) => ApiError::OutcomeUnknown(cause()),
        ApiError::NotStoredInTime => ApiError::NotStoredInTime,
        _ => ApiError::Internal(cause()),
    }
}
