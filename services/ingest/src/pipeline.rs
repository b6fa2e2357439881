//! The consume loop: micro-batching, pipelined dead letters, fenced Delta
//! commits in the background, and the watch for a member left without
//! partitions (see the crate docs for the exactly-once argument).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use mlops_bus::{DeadLetter, DeadLetterPublisher, TopicSpec, dead_letter, headers};
use mlops_runtime::{Readiness, Shutdown, error_chain};
use rdkafka::Offset;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::Result;
use crate::assignment::{AssignmentWatch, GroupProgress, PartitionProgress, Verdict};
use crate::batch::{Batch, BatchBounds};
use crate::config::{IngestConfig, ResumeMode, app_id};
use crate::context::{IngestContext, RebalanceSignal};
use crate::decode::decode;
use crate::metrics::{IngestMetrics, label};
use crate::writer::{BronzeWriter, CommitOutcome};

const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the loop refreshes `seconds_since_last_record` and checks
/// whether it holds partitions (at least this often; more often for a
/// short rejoin bound).
const WATCH_EVERY: Duration = Duration::from_secs(5);

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

pub struct Pipeline {
    config: IngestConfig,
    consumer: Arc<StreamConsumer<IngestContext>>,
    dead_letters: DeadLetterPublisher,
    /// `None` while a commit is in flight (the commit task owns it).
    writer: Option<BronzeWriter>,
    /// The batch being committed in the background, if any.
    in_flight: Option<tokio::task::JoinHandle<InFlight>>,
    metrics: IngestMetrics,
    readiness: Readiness,
    rebalance: RebalanceSignal,
    watch: AssignmentWatch,
    last_record: Instant,
    partitions: HashMap<i32, PartitionState>,
    batch: Batch,
    batch_started: Option<Instant>,
    bounds: BatchBounds,
    topic: Arc<str>,
    failures: u32,
}

impl Pipeline {
    pub async fn start(
        config: IngestConfig,
        metrics: IngestMetrics,
        readiness: Readiness,
    ) -> Result<Self> {
        let kafka = &config.kafka;
        kafka
            .ensure_topics(&[TopicSpec {
                name: &config.dlq_topic,
                partitions: config.dlq_partitions,
            }])
            .await?;
        let dead_letters =
            DeadLetterPublisher::new(kafka.idempotent_producer()?, &config.dlq_topic);
        let writer = BronzeWriter::open(&config.lake).await?;
        info!(lake = %config.lake.root(), version = ?writer.version(), "bronze table open");

        let rebalance = RebalanceSignal::default();
        let watch = AssignmentWatch::new(config.rejoin_after, Instant::now());
        let bounds = BatchBounds {
            max_records: config.batch_max_records,
            max_wait: config.batch_max_wait,
        };
        let context = IngestContext {
            topic: config.topic.clone(),
            lake: config.lake.clone(),
            resume: config.resume,
            rebalance: rebalance.clone(),
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
            rebalance,
            watch,
            last_record: Instant::now(),
            partitions: HashMap::new(),
            batch: Batch::default(),
            batch_started: None,
            bounds,
            failures: 0,
        })
    }

    pub async fn run(mut self, shutdown: Shutdown) -> Result<()> {
        // A received message borrows the consumer; hold it apart from `self`.
        let consumer = self.consumer.clone();
        let mut watch_tick = tokio::time::interval(WATCH_EVERY.min(self.config.rejoin_after / 4));
        watch_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let deadline = self
                .batch_started
                .map(|started| tokio::time::Instant::from_std(self.bounds.deadline(started)));
            tokio::select! {
                biased;
                _ = shutdown.wait() => break,
                _ = sleep_until(deadline) => self.flush().await?,
                _ = watch_tick.tick() => self.watch_assignment(),
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
                    if self.bounds.is_full(&self.batch) {
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
        if self.rebalance.take() {
            self.flush().await?;
            self.settle().await?;
            self.partitions.clear();
        }
        Ok(())
    }

    async fn handle(&mut self, message: &BorrowedMessage<'_>) -> Result<()> {
        self.metrics.consumed.inc();
        self.last_record = Instant::now();
        self.metrics
            .last_record_timestamp
            .set(Utc::now().timestamp());
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
                // Handed to the producer, not awaited: the batch's commit
                // waits for every acknowledgement first.
                let pending = async {
                    warn!(detail = %letter.detail, "record sent to the dead-letter topic");
                    self.dead_letters.enqueue(&letter).await
                }
                .instrument(span)
                .await?;
                self.batch.push_dead_letter(pending);
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
        let mut batch = batch;
        self.in_flight = Some(tokio::spawn(
            async move {
                let started = Instant::now();
                // The records the batch skips as dead letters count as
                // handled only once the dead-letter topic has them.
                let outcome = match dead_letter::acknowledge_all(batch.take_dead_letters()).await {
                    Ok(()) => writer.commit(&batch, |p| app_id(&topic, p)).await,
                    Err(error) => Err(error.into()),
                };
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
                self.metrics.committed.inc_by(batch.records() as u64);
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

    /// Refreshes the idle-time gauge and rejoins the group when this member
    /// holds no partition while others' lag stands still (see
    /// [`crate::assignment`]).
    fn watch_assignment(&mut self) {
        self.metrics
            .seconds_since_last_record
            .set(self.last_record.elapsed().as_secs() as i64);
        let assigned = self.rebalance.assigned().len();
        let now = Instant::now();
        let mut verdict = self.watch.check(now, assigned, None);
        if verdict == Verdict::NeedProgress {
            match self.group_progress() {
                Ok(progress) => verdict = self.watch.check(now, assigned, Some(progress)),
                Err(error) => {
                    warn!(error = %error_chain(&error), "cannot read the group's progress");
                    return;
                }
            }
        }
        if let Verdict::Rejoin { stalled } = verdict {
            warn!(
                ?stalled,
                unassigned_for = ?self.config.rejoin_after,
                "no partitions while these lag without progress; rejoining the group"
            );
            self.metrics.rejoins.inc();
            self.consumer.unsubscribe();
            if let Err(error) = self.consumer.subscribe(&[&self.config.topic]) {
                warn!(%error, "rejoining the group failed; retrying after the next bound");
            }
        }
    }

    /// The group's committed offset and the high watermark of every
    /// partition of the topic (blocking broker calls, rare: only for a
    /// member without partitions).
    fn group_progress(&self) -> Result<GroupProgress> {
        tokio::task::block_in_place(|| {
            let metadata = self
                .consumer
                .fetch_metadata(Some(&self.config.topic), KAFKA_TIMEOUT)?;
            let mut tpl = TopicPartitionList::new();
            for topic in metadata.topics() {
                for partition in topic.partitions() {
                    tpl.add_partition(&self.config.topic, partition.id());
                }
            }
            let committed = self.consumer.committed_offsets(tpl, KAFKA_TIMEOUT)?;
            let mut progress = GroupProgress::new();
            for element in committed.elements() {
                let partition = element.partition();
                let (low, high) =
                    self.consumer
                        .fetch_watermarks(&self.config.topic, partition, KAFKA_TIMEOUT)?;
                let committed = match element.offset() {
                    Offset::Offset(offset) => offset,
                    _ => low,
                };
                progress.insert(
                    partition,
                    PartitionProgress {
                        committed,
                        high_watermark: high,
                    },
                );
            }
            Ok(progress)
        })
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
