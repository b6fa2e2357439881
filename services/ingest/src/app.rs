//! The ingest service: consumer loop, micro-batching, dead-lettering and
//! fenced Delta commits (see the crate docs for the exactly-once argument).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use mlops_bus::{DeadLetter, DeadLetterPublisher, KafkaSettings, headers};
use mlops_runtime::{AdminServer, Readiness, Shutdown};
use prometheus_client::registry::Registry;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::Result;
use crate::batch::Batch;
use crate::config::{IngestConfig, ResumeMode, app_id};
use crate::decode::decode;
use crate::metrics::{IngestMetrics, label};
use crate::writer::{BronzeWriter, CommitOutcome};

const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);

/// A built, not yet running, ingest service.
pub struct App {
    config: IngestConfig,
    admin: AdminServer,
    readiness: Readiness,
    metrics: IngestMetrics,
}

impl App {
    /// Binds the admin server; nothing else is contacted yet.
    pub async fn build(config: IngestConfig) -> Result<Self> {
        let metrics = IngestMetrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let readiness = Readiness::default();
        let admin = AdminServer::bind(config.admin_addr, registry, readiness.clone()).await?;
        Ok(Self {
            config,
            admin,
            readiness,
            metrics,
        })
    }

    pub fn admin_addr(&self) -> std::io::Result<SocketAddr> {
        self.admin.local_addr()
    }

    pub fn metrics(&self) -> IngestMetrics {
        self.metrics.clone()
    }

    /// Runs until shutdown; the open batch is committed before returning.
    pub async fn run(self, shutdown: Shutdown) -> Result<()> {
        let admin = tokio::spawn(self.admin.serve(shutdown.clone()));
        let outcome = Pipeline::start(self.config, self.metrics, self.readiness.clone())
            .await?
            .run(shutdown.clone())
            .await;
        self.readiness.set(false);
        shutdown.trigger();
        let _ = admin.await;
        outcome
    }
}

/// Rebalance and statistics callbacks, run by librdkafka inside `recv`.
struct IngestContext {
    topic: String,
    lake: mlops_lake::LakeLocation,
    resume: ResumeMode,
    /// Set when partitions are revoked or assigned: the loop commits its
    /// batch and re-reads progress from the table before going on.
    rebalanced: Arc<Mutex<bool>>,
    metrics: IngestMetrics,
}

impl ClientContext for IngestContext {
    fn stats(&self, statistics: Statistics) {
        if let Some(topic) = statistics.topics.get(&self.topic) {
            for (partition, stats) in &topic.partitions {
                if *partition >= 0 && stats.consumer_lag >= 0 {
                    self.metrics
                        .consumer_lag
                        .get_or_create(&label("partition", partition))
                        .set(stats.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for IngestContext {
    /// Assigned partitions start at the table's progress, never at the
    /// group's committed offsets (which only serve lag monitoring and may
    /// lag behind or, after a crash of another member, be ahead of it).
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        if let Ok(mut flag) = self.rebalanced.lock() {
            *flag = true;
        }
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let partitions = partitions_of(tpl);
                match self.table_positions(&partitions) {
                    Ok(positions) => {
                        for (partition, position) in &positions {
                            if let Err(error) =
                                tpl.set_partition_offset(&self.topic, *partition, *position)
                            {
                                warn!(partition, %error, "cannot set the start offset");
                            }
                        }
                        info!(
                            ?positions,
                            "partitions assigned, starting at the table's progress"
                        );
                    }
                    // The first record of each partition is checked against
                    // the table again in the consume loop, which seeks if needed.
                    Err(error) => {
                        warn!(%error, ?partitions, "cannot read progress from the table at assignment")
                    }
                }
                if let Err(error) = consumer.assign(tpl) {
                    warn!(%error, "assign failed");
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                info!(partitions = ?partitions_of(tpl), "partitions revoked");
                if let Err(error) = consumer.unassign() {
                    warn!(%error, "unassign failed");
                }
            }
            other => warn!(error = ?other, "rebalance error"),
        }
    }
}

impl IngestContext {
    /// Next offset per partition according to the bronze table. Runs on its
    /// own thread and runtime: librdkafka calls the rebalance callback
    /// synchronously, possibly from inside the async consume loop.
    fn table_positions(&self, partitions: &[i32]) -> Result<Vec<(i32, Offset)>> {
        let read = || -> Result<Vec<(i32, Offset)>> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let writer = BronzeWriter::open(&self.lake).await?;
                let mut positions = Vec::new();
                for &partition in partitions {
                    let committed = writer
                        .committed_offset(&app_id(&self.topic, partition))
                        .await?;
                    let position = match (committed, self.resume) {
                        (Some(last), ResumeMode::Exact) => Offset::Offset(last + 1),
                        _ => Offset::Beginning,
                    };
                    positions.push((partition, position));
                }
                Ok(positions)
            })
        };
        std::thread::scope(|scope| scope.spawn(read).join()).unwrap_or_else(|_| {
            Err(crate::Error::Io(std::io::Error::other(
                "table reader thread panicked",
            )))
        })
    }
}

fn partitions_of(tpl: &TopicPartitionList) -> Vec<i32> {
    tpl.elements().iter().map(|e| e.partition()).collect()
}

/// Where a partition stands, as known since its last (re)synchronisation.
#[derive(Clone, Copy, Debug)]
struct PartitionState {
    /// Next offset to take; lower ones are already in the table.
    next: i64,
    /// The partition's `txn` version in the table (last committed offset).
    committed: Option<i64>,
}

/// A finished background commit, handed back to the pipeline.
struct InFlight {
    writer: BronzeWriter,
    batch: Batch,
    started: Instant,
    outcome: Result<CommitOutcome>,
}

struct Pipeline {
    config: IngestConfig,
    consumer: Arc<StreamConsumer<IngestContext>>,
    dead_letters: DeadLetterPublisher,
    /// `None` while a commit is in flight (the commit task owns it).
    writer: Option<BronzeWriter>,
    /// The batch being committed in the background, if any.
    in_flight: Option<tokio::task::JoinHandle<InFlight>>,
    metrics: IngestMetrics,
    readiness: Readiness,
    rebalanced: Arc<Mutex<bool>>,
    partitions: HashMap<i32, PartitionState>,
    batch: Batch,
    batch_started: Option<Instant>,
    topic: Arc<str>,
    failures: u32,
}

impl Pipeline {
    async fn start(
        config: IngestConfig,
        metrics: IngestMetrics,
        readiness: Readiness,
    ) -> Result<Self> {
        let kafka = KafkaSettings::new(&config.brokers, "ingest");
        kafka
            .ensure_topics(&[(config.dlq_topic.as_str(), 1)])
            .await?;
        let dead_letters =
            DeadLetterPublisher::new(kafka.idempotent_producer()?, &config.dlq_topic);
        let writer = BronzeWriter::open(&config.lake).await?;
        info!(lake = %config.lake.root(), version = ?writer.version(), "bronze table open");

        let rebalanced = Arc::new(Mutex::new(false));
        let context = IngestContext {
            topic: config.topic.clone(),
            lake: config.lake.clone(),
            resume: config.resume,
            rebalanced: rebalanced.clone(),
            metrics: metrics.clone(),
        };
        let mut consumer_config = kafka.consumer_config(&config.group_id);
        consumer_config.set("statistics.interval.ms", "5000");
        if let Some(instance_id) = &config.instance_id {
            consumer_config.set("group.instance.id", instance_id);
        }
        let consumer: StreamConsumer<IngestContext> =
            consumer_config.create_with_context(context)?;
        consumer.subscribe(&[&config.topic])?;
        readiness.set(true);
        info!(topic = %config.topic, group = %config.group_id, "consuming");
        Ok(Self {
            topic: Arc::from(config.topic.as_str()),
            config,
            consumer: Arc::new(consumer),
            dead_letters,
            writer: Some(writer),
            in_flight: None,
            metrics,
            readiness,
            rebalanced,
            partitions: HashMap::new(),
            batch: Batch::default(),
            batch_started: None,
            failures: 0,
        })
    }

    async fn run(mut self, shutdown: Shutdown) -> Result<()> {
        // A received message borrows the consumer; hold it apart from `self`.
        let consumer = self.consumer.clone();
        loop {
            let deadline = self.batch_started.map(|started| {
                tokio::time::Instant::from_std(started + self.config.batch_max_wait)
            });
            tokio::select! {
                biased;
                _ = shutdown.wait() => break,
                _ = sleep_until(deadline) => self.flush().await?,
                // Apply a finished commit at once (metrics, readiness, group
                // offsets) rather than at the next flush.
                joined = wait_in_flight(&mut self.in_flight) => {
                    self.in_flight = None;
                    self.apply_settled(joined).await?;
                }
                message = consumer.recv() => {
                    self.take_rebalance().await?;
                    match message {
                        Ok(message) => self.handle(&message).await?,
                        Err(error) => {
                            warn!(%error, "kafka consume error");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                    if self.batch.records() >= self.config.batch_max_records {
                        self.flush().await?;
                    }
                }
            }
        }
        info!("draining: committing the open batch");
        self.readiness.set(false);
        self.flush().await?;
        self.settle().await
    }

    /// After a rebalance: commit what we hold, then forget partition
    /// positions so each is re-read from the table when next seen.
    async fn take_rebalance(&mut self) -> Result<()> {
        let happened = self
            .rebalanced
            .lock()
            .map(|mut flag| std::mem::take(&mut *flag))
            .unwrap_or(false);
        if happened {
            self.flush().await?;
            self.settle().await?;
            self.partitions.clear();
        }
        Ok(())
    }

    async fn handle(&mut self, message: &BorrowedMessage<'_>) -> Result<()> {
        self.metrics.consumed.inc();
        let partition = message.partition();
        let offset = message.offset();
        let state = match self.partitions.get(&partition) {
            Some(state) => *state,
            None => {
                let state = self.synchronise(partition).await?;
                if offset > state.next
                    || (offset < state.next && self.config.resume == ResumeMode::Exact)
                {
                    self.reposition(partition, state.next)?;
                    return Ok(());
                }
                state
            }
        };
        if offset < state.next {
            debug!(partition, offset, "skipping a record already in bronze");
            return Ok(());
        }
        self.partitions.insert(
            partition,
            PartitionState {
                next: offset + 1,
                ..state
            },
        );
        self.batch.cover(partition, state.committed, offset);
        self.batch_started.get_or_insert_with(Instant::now);

        let schema_version = headers::get(message.headers(), headers::SCHEMA_VERSION);
        match decode(message.payload(), schema_version) {
            Ok(event) => self
                .batch
                .push(event, self.topic.clone(), partition, offset, Utc::now()),
            Err(rejection) => {
                let span = info_span!(
                    "dead_letter",
                    partition,
                    offset,
                    reason = rejection.reason.code()
                );
                headers::continue_trace(&span, message.headers());
                let letter = DeadLetter {
                    reason: rejection.reason,
                    detail: rejection.detail,
                    topic: &self.config.topic,
                    partition,
                    offset,
                    key: message.key(),
                    payload: message.payload(),
                };
                async {
                    warn!(detail = %letter.detail, "record sent to the dead-letter topic");
                    self.dead_letters.publish(&letter).await
                }
                .instrument(span)
                .await?;
                self.batch.dead_lettered += 1;
                self.metrics
                    .dead_lettered
                    .get_or_create(&label("reason", rejection.reason.code()))
                    .inc();
            }
        }
        Ok(())
    }

    /// Reads a partition's progress from the table.
    async fn synchronise(&mut self, partition: i32) -> Result<PartitionState> {
        let app_id = self.config.app_id(partition);
        let writer = self.settled_writer().await?;
        writer.refresh().await?;
        let committed = writer.committed_offset(&app_id).await?;
        let next = match committed {
            Some(last) => last + 1,
            None => {
                // Nothing from this partition in the table yet: start at the
                // oldest record the broker still has.
                let (low, _high) = tokio::task::block_in_place(|| {
                    self.consumer
                        .fetch_watermarks(&self.config.topic, partition, KAFKA_TIMEOUT)
                })?;
                low
            }
        };
        let state = PartitionState { next, committed };
        info!(
            partition,
            next,
            ?committed,
            "partition synchronised with bronze"
        );
        self.partitions.insert(partition, state);
        Ok(state)
    }

    /// Moves the fetch position so that `next` is the next record read:
    /// directly (exact), or by rewinding to the partition start (scan) and
    /// skipping what the table holds. In scan mode, records the broker no
    /// longer has (retention) cannot be re-read: ingest goes on from the
    /// oldest available one and says so.
    fn reposition(&mut self, partition: i32, next: i64) -> Result<()> {
        let target = match self.config.resume {
            ResumeMode::Exact => Offset::Offset(next),
            ResumeMode::Scan => {
                let (low, _) = tokio::task::block_in_place(|| {
                    self.consumer
                        .fetch_watermarks(&self.config.topic, partition, KAFKA_TIMEOUT)
                })?;
                if low > next {
                    warn!(
                        partition,
                        next,
                        oldest_available = low,
                        "records are gone from the broker, resuming at the oldest one"
                    );
                    if let Some(state) = self.partitions.get_mut(&partition) {
                        state.next = low;
                    }
                }
                Offset::Beginning
            }
        };
        self.seek(partition, target);
        Ok(())
    }

    fn seek(&mut self, partition: i32, offset: Offset) {
        let sought = tokio::task::block_in_place(|| {
            self.consumer
                .seek(&self.config.topic, partition, offset, KAFKA_TIMEOUT)
        });
        match sought {
            Ok(()) => info!(partition, ?offset, "resuming from the table's progress"),
            Err(error) => {
                // Forget the partition: its next record triggers a new attempt.
                warn!(partition, ?offset, %error, "seek failed, will retry");
                self.partitions.remove(&partition);
            }
        }
    }

    /// Hands the open batch to a background commit, once the previous one
    /// has settled, so consuming goes on while the batch is written.
    ///
    /// The partitions' table progress is advanced optimistically: the next
    /// batch is fenced against this batch's offsets. If this commit does not
    /// land, [`settle`](Self::settle) drops that next batch and the positions,
    /// and the table decides where each partition resumes.
    async fn flush(&mut self) -> Result<()> {
        self.settle().await?;
        self.batch_started = None;
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        for (partition, span) in &batch.spans {
            if let Some(state) = self.partitions.get_mut(partition) {
                state.committed = Some(span.last);
            }
        }
        let Some(mut writer) = self.writer.take() else {
            return Err(crate::Error::Internal(
                "the bronze writer is missing after a settled commit".into(),
            ));
        };
        let span = info_span!(
            "commit_batch",
            records = batch.records(),
            rows = batch.rows(),
            partitions = batch.spans.len(),
            version = tracing::field::Empty
        );
        let topic = self.config.topic.clone();
        self.in_flight = Some(tokio::spawn(
            async move {
                let started = Instant::now();
                let outcome = writer.commit(&batch, |p| app_id(&topic, p)).await;
                InFlight {
                    writer,
                    batch,
                    started,
                    outcome,
                }
            }
            .instrument(span),
        ));
        Ok(())
    }

    /// The writer, after the commit in flight (if any) has settled.
    async fn settled_writer(&mut self) -> Result<&mut BronzeWriter> {
        self.settle().await?;
        self.writer.as_mut().ok_or_else(|| {
            crate::Error::Internal("the bronze writer is missing after a settled commit".into())
        })
    }

    /// Waits for the commit in flight and applies its outcome.
    async fn settle(&mut self) -> Result<()> {
        let Some(handle) = self.in_flight.take() else {
            return Ok(());
        };
        let joined = handle.await;
        self.apply_settled(joined).await
    }

    /// Applies the outcome of a finished commit task.
    async fn apply_settled(
        &mut self,
        joined: std::result::Result<InFlight, tokio::task::JoinError>,
    ) -> Result<()> {
        let InFlight {
            writer,
            batch,
            started,
            outcome,
        } = joined.map_err(|e| crate::Error::Internal(format!("the commit task failed: {e}")))?;
        self.writer = Some(writer);
        let landed = matches!(outcome, Ok(CommitOutcome::Committed { .. }));
        match outcome {
            Ok(CommitOutcome::Committed { version }) => {
                self.failures = 0;
                self.readiness.set(true);
                self.metrics
                    .commits
                    .get_or_create(&label("outcome", "committed"))
                    .inc();
                self.metrics.written.inc_by(batch.rows() as u64);
                self.metrics.batch_records.observe(batch.records() as f64);
                self.metrics
                    .commit_seconds
                    .observe(started.elapsed().as_secs_f64());
                self.metrics
                    .table_version
                    .set(i64::try_from(version).unwrap_or(i64::MAX));
                debug!(version, rows = batch.rows(), "batch committed");
                self.commit_group_offsets(&batch);
            }
            Ok(CommitOutcome::Fenced {
                partition,
                expected,
                found,
            }) => {
                self.metrics
                    .commits
                    .get_or_create(&label("outcome", "fenced"))
                    .inc();
                warn!(
                    partition,
                    ?expected,
                    ?found,
                    "another writer moved this partition, re-reading from the table"
                );
            }
            Ok(CommitOutcome::Conflict(reason)) => {
                self.metrics
                    .commits
                    .get_or_create(&label("outcome", "conflict"))
                    .inc();
                warn!(%reason, "concurrent commit conflict, re-reading from the table");
            }
            Err(error) => {
                // Whether the commit landed is unknown: the table decides,
                // after a back-off.
                self.metrics
                    .commits
                    .get_or_create(&label("outcome", "error"))
                    .inc();
                self.failures += 1;
                self.readiness.set(false);
                let backoff = Duration::from_millis(250 * 2u64.pow(self.failures.min(6)));
                warn!(error = %error_chain(&error), failures = self.failures, ?backoff, "commit failed");
                tokio::time::sleep(backoff).await;
            }
        }
        if !landed {
            // The open batch was fenced on this commit's offsets: drop it
            // with the positions; its records are read again.
            self.batch = Batch::default();
            self.batch_started = None;
            self.partitions.clear();
        }
        Ok(())
    }

    fn commit_group_offsets(&self, batch: &Batch) {
        let mut tpl = TopicPartitionList::new();
        for (partition, span) in &batch.spans {
            if tpl
                .add_partition_offset(
                    &self.config.topic,
                    *partition,
                    Offset::Offset(span.last + 1),
                )
                .is_err()
            {
                return;
            }
        }
        if let Err(error) = self.consumer.commit(&tpl, CommitMode::Async) {
            debug!(%error, "group offset commit skipped");
        }
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Resolves when the commit in flight finishes; never when there is none.
async fn wait_in_flight(
    in_flight: &mut Option<tokio::task::JoinHandle<InFlight>>,
) -> std::result::Result<InFlight, tokio::task::JoinError> {
    match in_flight {
        Some(handle) => handle.await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
