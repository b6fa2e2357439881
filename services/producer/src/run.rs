//! Sending: an idempotent producer keyed by `subscriber_id`, a bounded number
//! of records in flight, pacing in live mode, progress while it runs and a
//! summary at the end. A record whose delivery fails is counted and makes the
//! run fail; nothing is dropped silently.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::time::{Duration, Instant};

use chrono::Utc;
use mlops_bus::TopicSpec;
use mlops_proto::events::v1::{SCHEMA_VERSION, TelecomEvent};
use mlops_runtime::Shutdown;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use prost::Message;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use tracing::{Instrument, info, info_span, warn};

use crate::config::{Mode, ProducerConfig};
use crate::emit::{Emitter, FaultRates, Outgoing, OutgoingKind};
use crate::sim::{SimConfig, midnight, timestamp};

const MAX_IN_FLIGHT: usize = 20_000;
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Bus(#[from] mlops_bus::Error),
    #[error("{failed} records were not delivered to {topic}; first error: {first}")]
    Delivery {
        topic: String,
        failed: u64,
        first: String,
    },
    #[error("cannot write the ground truth to {path}: {source}")]
    Truth {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Prometheus metrics of the producer.
#[derive(Clone, Default)]
pub struct ProducerMetrics {
    pub records_sent: Family<Vec<(String, String)>, Counter>,
    pub delivery_failures: Counter,
}

impl ProducerMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "producer_records_sent",
            "Records acknowledged by the broker, by kind",
            self.records_sent.clone(),
        );
        registry.register(
            "producer_delivery_failures",
            "Records the broker did not acknowledge",
            self.delivery_failures.clone(),
        );
    }
}

/// What a run sent, by kind.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub by_kind: BTreeMap<&'static str, u64>,
    pub total: u64,
    pub late: u64,
    pub days: u32,
    pub elapsed: Duration,
}

impl Summary {
    pub fn events(&self) -> u64 {
        self.by_kind
            .iter()
            .filter(|(k, _)| !matches!(**k, "duplicate" | "malformed_bytes" | "malformed_event"))
            .map(|(_, n)| n)
            .sum()
    }

    /// A human-readable table.
    pub fn render(&self) -> String {
        let mut out = String::from("kind                 records\n");
        for (kind, n) in &self.by_kind {
            out.push_str(&format!("{kind:<20} {n:>8}\n"));
        }
        out.push_str(&format!(
            "{:<20} {:>8}\n(late event times: {}, simulated days: {}, {:.1}s, {:.0} records/s)\n",
            "total",
            self.total,
            self.late,
            self.days,
            self.elapsed.as_secs_f64(),
            self.total as f64 / self.elapsed.as_secs_f64().max(1e-9)
        ));
        out
    }
}

/// Runs until the backfill is sent, `max_events` is reached or shutdown.
pub async fn run(
    config: &ProducerConfig,
    metrics: &ProducerMetrics,
    shutdown: Shutdown,
) -> Result<Summary, Error> {
    let kafka = &config.kafka;
    kafka
        .ensure_topics(&[TopicSpec {
            name: &config.topic,
            partitions: config.topic_partitions,
        }])
        .await?;
    let producer = kafka.idempotent_producer()?;

    let start_date = config.start_date.unwrap_or_else(|| {
        (Utc::now() - chrono::Duration::days(i64::from(config.days))).date_naive()
    });
    let sim = SimConfig {
        seed: config.seed,
        subscribers: config.subscribers,
        start: midnight(start_date),
    };
    let faults = FaultRates {
        duplicate: config.duplicate_rate,
        late: config.late_rate,
        malformed: config.malformed_rate,
    };
    let mut emitter = Emitter::new(&sim, faults);
    if config.mode == Mode::Live {
        // Live mode continues the world a backfill with the same settings
        // sent: its `--days` are simulated without sending, so subscribers
        // keep their histories and no event id repeats one of the backfill.
        for _ in 0..config.days {
            emitter.next_day();
        }
        emitter.drain_delayed();
    }
    let mut sender = Sender::new(producer.clone(), &config.topic, metrics.clone());
    let mut summary = Summary::default();
    let started = Instant::now();
    let mut pacer = Pacer::new(config);
    let mut progress = Progress::new();

    'days: loop {
        if config.mode == Mode::Backfill && summary.days >= config.days {
            break;
        }
        let date = emitter.current_date();
        let mut records = emitter.next_day();
        summary.days += 1;
        let last_day = config.mode == Mode::Backfill && summary.days >= config.days;
        if last_day {
            records.extend(emitter.drain_delayed());
        }
        let span = info_span!("produce_day", %date, records = records.len());
        let sent_all = async {
            for mut record in records {
                if shutdown.is_triggered()
                    || config.max_events.is_some_and(|max| summary.total >= max)
                {
                    return false;
                }
                if config.mode == Mode::Live {
                    restamp_now(&mut record);
                    pacer.wait(summary.total).await;
                }
                sender.send(&record).await;
                *summary.by_kind.entry(record.kind.label()).or_default() += 1;
                summary.total += 1;
                summary.late += u64::from(record.late);
                progress.tick(summary.total, date);
            }
            true
        }
        .instrument(span)
        .await;
        if !sent_all {
            break 'days;
        }
    }

    sender.finish().await;
    summary.elapsed = started.elapsed();
    if let Some(path) = &config.truth_out {
        write_truth(path, &emitter).map_err(|source| Error::Truth {
            path: path.display().to_string(),
            source,
        })?;
        info!(path = %path.display(), "ground truth written");
    }
    if sender.failed > 0 {
        return Err(Error::Delivery {
            topic: config.topic.clone(),
            failed: sender.failed,
            first: sender.first_error.unwrap_or_default(),
        });
    }
    Ok(summary)
}

/// In live mode events happen now.
fn restamp_now(record: &mut Outgoing) {
    if let OutgoingKind::Event(_) | OutgoingKind::Duplicate = record.kind
        && let Ok(mut event) = TelecomEvent::decode(record.payload.as_slice())
    {
        event.event_time = Some(timestamp(Utc::now()));
        record.payload = event.encode_to_vec();
    }
}

fn write_truth(path: &std::path::Path, emitter: &Emitter) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for truth in emitter.truth() {
        serde_json::to_writer(&mut out, &truth)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

struct Sender {
    producer: FutureProducer,
    topic: String,
    in_flight: VecDeque<(DeliveryFuture, &'static str)>,
    metrics: ProducerMetrics,
    failed: u64,
    first_error: Option<String>,
}

impl Sender {
    fn new(producer: FutureProducer, topic: &str, metrics: ProducerMetrics) -> Self {
        Self {
            producer,
            topic: topic.to_string(),
            in_flight: VecDeque::new(),
            metrics,
            failed: 0,
            first_error: None,
        }
    }

    async fn send(&mut self, record: &Outgoing) {
        if self.in_flight.len() >= MAX_IN_FLIGHT {
            self.settle_oldest().await;
        }
        let headers = mlops_bus::headers::outgoing(SCHEMA_VERSION);
        loop {
            let kafka_record = FutureRecord::to(&self.topic)
                .key(record.key.as_bytes())
                .payload(record.payload.as_slice())
                .headers(headers.clone());
            match self.producer.send_result(kafka_record) {
                Ok(delivery) => {
                    self.in_flight.push_back((delivery, record.kind.label()));
                    return;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    if self.in_flight.is_empty() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    } else {
                        self.settle_oldest().await;
                    }
                }
                Err((error, _)) => {
                    self.record_failure(error.to_string());
                    return;
                }
            }
        }
    }

    async fn settle_oldest(&mut self) {
        if let Some((delivery, kind)) = self.in_flight.pop_front() {
            match delivery.await {
                Ok(Ok(_)) => {
                    self.metrics
                        .records_sent
                        .get_or_create(&vec![("kind".to_string(), kind.to_string())])
                        .inc();
                }
                Ok(Err((error, _))) => self.record_failure(error.to_string()),
                Err(_) => self.record_failure("delivery cancelled: producer closed".into()),
            };
        }
    }

    fn record_failure(&mut self, error: String) {
        self.metrics.delivery_failures.inc();
        if self.failed == 0 {
            warn!(%error, topic = %self.topic, "record not delivered");
        }
        self.failed += 1;
        self.first_error.get_or_insert(error);
    }

    async fn finish(&mut self) {
        while !self.in_flight.is_empty() {
            self.settle_oldest().await;
        }
        if let Err(error) = self.producer.flush(Duration::from_secs(30)) {
            self.record_failure(format!("final flush: {error}"));
        }
    }
}

/// Live-mode rate control: record `n` may leave at `n / rate` seconds.
struct Pacer {
    started: Instant,
    rate: f64,
}

impl Pacer {
    fn new(config: &ProducerConfig) -> Self {
        Self {
            started: Instant::now(),
            rate: config.rate,
        }
    }

    async fn wait(&mut self, sent: u64) {
        let due = self.started + Duration::from_secs_f64(sent as f64 / self.rate);
        let now = Instant::now();
        if due > now {
            tokio::time::sleep(due - now).await;
        }
    }
}

struct Progress {
    started: Instant,
    last: Instant,
    last_total: u64,
}

impl Progress {
    fn new() -> Self {
        let now = Instant::now();
        Self {
            started: now,
            last: now,
            last_total: 0,
        }
    }

    fn tick(&mut self, total: u64, date: chrono::NaiveDate) {
        let now = Instant::now();
        if now.duration_since(self.last) < PROGRESS_EVERY {
            return;
        }
        let rate = (total - self.last_total) as f64 / now.duration_since(self.last).as_secs_f64();
        info!(
            sent = total,
            per_second = rate.round(),
            simulated_date = %date,
            elapsed_s = self.started.elapsed().as_secs(),
            "progress"
        );
        self.last = now;
        self.last_total = total;
    }
}
