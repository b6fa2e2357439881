//! Pipeline health for the overview, red/amber/green with the reason:
//! ingest's lag and throughput (Kafka's high watermarks against the
//! offsets bronze has committed), the lake tables' versions and freshness,
//! dead letters by reason (the `dlq-reason` header), quarantine by reason,
//! and the trainer's last run. A snapshot is kept for [`RECHECK`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mlops_bus::KafkaSettings;
use mlops_bus::dead_letter::REASON;
use mlops_lake::lineage::ingest_app_id;
use mlops_lake::{
    LakeLocation, OpenTables, TableSpec, bronze, kpi_daily, quarantine, silver, subscriber_features,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::Mutex;

use super::sql::{Scope, SqlEngine};

pub const RECHECK: Duration = Duration::from_secs(10);
const KAFKA_TIMEOUT: Duration = Duration::from_secs(3);
/// Dead letters counted at most; past it the page says "at least".
const MAX_DEAD_LETTERS: usize = 100_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Green,
    Amber,
    Red,
}

impl Level {
    pub fn class(self) -> &'static str {
        match self {
            Level::Green => "status green",
            Level::Amber => "status amber",
            Level::Red => "status red",
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Level::Green => "green",
            Level::Amber => "amber",
            Level::Red => "red",
        }
    }
}

/// One line of the health summary.
#[derive(Clone, Debug)]
pub struct Check {
    pub area: &'static str,
    pub level: Level,
    pub reason: String,
}

#[derive(Clone, Debug)]
pub struct TableState {
    pub name: &'static str,
    pub version: Option<u64>,
    pub committed_ms: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct PartitionLag {
    pub partition: i32,
    pub high_watermark: i64,
    /// The last offset bronze holds; `None` before ingest wrote any.
    pub in_bronze: Option<i64>,
    pub lag: i64,
}

#[derive(Clone, Debug)]
pub struct Snapshot {
    pub checks: Vec<Check>,
    pub tables: Vec<TableState>,
    pub partitions: Option<Result<Vec<PartitionLag>, String>>,
    /// Records per second into bronze since the previous snapshot.
    pub throughput: Option<f64>,
    pub dead_letters: Option<Result<DeadLetters, String>>,
    pub quarantine: Result<Vec<(String, String)>, String>,
}

/// Dead letters by reason; `partial` when counting stopped at
/// [`MAX_DEAD_LETTERS`] or the time limit.
#[derive(Clone, Debug, Default)]
pub struct DeadLetters {
    pub counts: BTreeMap<String, u64>,
    pub partial: bool,
}

/// Where Kafka is, when the portal reports ingest (`KAFKA_BROKERS` set).
#[derive(Clone, Debug)]
pub struct KafkaHealth {
    pub kafka: KafkaSettings,
    /// `EVENTS_TOPIC` (`telecom.events.v1`) and `DLQ_TOPIC` (`<events>.dlq`).
    pub events_topic: String,
    pub dlq_topic: String,
}

/// Thresholds (`GATEWAY_HEALTH_*`).
#[derive(Clone, Copy, Debug)]
pub struct Thresholds {
    /// Gold older than this is amber, three times this red.
    pub stale_after: Duration,
    /// Unread records past this are amber, ten times this red.
    pub lag_records: i64,
}

pub struct PipelineHealth {
    tables: OpenTables,
    kafka: Option<KafkaHealth>,
    thresholds: Thresholds,
    sql: Arc<SqlEngine>,
    held: Mutex<Option<(Instant, Arc<Snapshot>)>>,
    /// The total bronze offset at the previous snapshot, for throughput.
    previous: Mutex<Option<(Instant, i64)>>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl PipelineHealth {
    pub fn new(
        lake: LakeLocation,
        kafka: Option<KafkaHealth>,
        thresholds: Thresholds,
        sql: Arc<SqlEngine>,
    ) -> Self {
        Self {
            tables: OpenTables::new(lake),
            kafka,
            thresholds,
            sql,
            held: Mutex::new(None),
            previous: Mutex::new(None),
        }
    }

    pub async fn snapshot(&self) -> Arc<Snapshot> {
        let mut held = self.held.lock().await;
        if let Some((at, snapshot)) = held.as_ref()
            && at.elapsed() < RECHECK
        {
            return snapshot.clone();
        }
        let snapshot = Arc::new(self.take().await);
        *held = Some((Instant::now(), snapshot.clone()));
        snapshot
    }

    async fn table_state(
        &self,
        spec: &TableSpec,
    ) -> (TableState, Option<mlops_lake::deltalake::DeltaTable>) {
        let opened = self.tables.latest(spec).await.ok().flatten();
        let version = opened.as_ref().and_then(|t| t.version());
        let committed_ms = opened
            .as_ref()
            .zip(version)
            .and_then(|(t, v)| t.snapshot().ok().and_then(|s| s.version_timestamp(v as _)));
        (
            TableState {
                name: spec.name,
                version,
                committed_ms,
            },
            opened,
        )
    }

    async fn take(&self) -> Snapshot {
        let mut snapshot = Snapshot {
            checks: Vec::new(),
            tables: Vec::new(),
            partitions: None,
            throughput: None,
            dead_letters: None,
            quarantine: Ok(Vec::new()),
        };
        let mut bronze_table = None;
        for spec in [
            bronze::spec(),
            silver::spec(),
            quarantine::spec(),
            kpi_daily::spec(),
            subscriber_features::daily_spec(),
            subscriber_features::latest_spec(),
        ] {
            let (state, opened) = self.table_state(&spec).await;
            if spec.name == bronze::TABLE {
                bronze_table = opened;
            }
            snapshot.tables.push(state);
        }
        snapshot.checks.push(self.freshness(&snapshot.tables));
        snapshot.quarantine = self
            .sql
            .run(
                "SELECT reason, count(*) AS records FROM silver.quarantine GROUP BY reason ORDER BY records DESC, reason",
                Scope::GoldAndSilver,
            )
            .await
            .map(|r| r.rows.into_iter().map(|row| (row[0].clone().unwrap_or_default(), row[1].clone().unwrap_or_default())).collect())
            .map_err(|e| e.to_string());
        let quarantined: u64 = snapshot
            .quarantine
            .as_ref()
            .map(|rows| rows.iter().filter_map(|(_, n)| n.parse::<u64>().ok()).sum())
            .unwrap_or(0);
        snapshot.checks.push(Check {
            area: "Quarantine",
            level: match &snapshot.quarantine {
                Ok(_) if quarantined == 0 => Level::Green,
                _ => Level::Amber,
            },
            reason: match &snapshot.quarantine {
                Ok(_) if quarantined == 0 => "no record failed a semantic check".into(),
                Ok(_) => {
                    format!("{quarantined} records failed a semantic check; see the reasons below")
                }
                Err(e) => format!("not readable: {e}"),
            },
        });
        if let Some(kafka) = &self.kafka {
            let probe = kafka.clone();
            let measured =
                tokio::task::spawn_blocking(move || (watermarks(&probe), dead_letters(&probe)))
                    .await;
            let (highs, letters) = match measured {
                Ok(measured) => measured,
                Err(e) => (Err(e.to_string()), Err(e.to_string())),
            };
            let partitions = match highs {
                Ok(highs) => Ok(lag(bronze_table.as_ref(), &kafka.events_topic, highs).await),
                Err(e) => Err(e),
            };
            if let Ok(partitions) = &partitions {
                let total: i64 = partitions
                    .iter()
                    .filter_map(|p| p.in_bronze.map(|o| o + 1))
                    .sum();
                let mut previous = self.previous.lock().await;
                if let Some((at, before)) = *previous {
                    let seconds = at.elapsed().as_secs_f64();
                    if seconds > 0.0 {
                        snapshot.throughput = Some((total - before).max(0) as f64 / seconds);
                    }
                }
                *previous = Some((Instant::now(), total));
            }
            snapshot.checks.push(self.ingest_check(&partitions));
            snapshot.checks.push(dead_letter_check(&letters));
            snapshot.partitions = Some(partitions);
            snapshot.dead_letters = Some(letters);
        } else {
            snapshot.checks.push(Check {
                area: "Ingest",
                level: Level::Amber,
                reason: "not reported: the gateway has no KAFKA_BROKERS".into(),
            });
        }
        snapshot
    }

    fn freshness(&self, tables: &[TableState]) -> Check {
        let gold = tables.iter().find(|t| t.name == kpi_daily::TABLE);
        let stale = self.thresholds.stale_after;
        match gold.and_then(|t| t.committed_ms) {
            None => Check {
                area: "Lake",
                level: Level::Red,
                reason: "gold/kpi_daily has no commit yet: the transform has not written gold"
                    .into(),
            },
            Some(ms) => {
                let age = Duration::from_millis((now_ms() - ms).max(0) as u64);
                let minutes = age.as_secs() / 60;
                let (level, reason) = if age > stale * 3 {
                    (
                        Level::Red,
                        format!(
                            "gold was last written {minutes} min ago (over 3 × {} min)",
                            stale.as_secs() / 60
                        ),
                    )
                } else if age > stale {
                    (
                        Level::Amber,
                        format!(
                            "gold was last written {minutes} min ago (over {} min)",
                            stale.as_secs() / 60
                        ),
                    )
                } else {
                    (Level::Green, format!("gold was written {minutes} min ago"))
                };
                Check {
                    area: "Lake",
                    level,
                    reason,
                }
            }
        }
    }

    fn ingest_check(&self, partitions: &Result<Vec<PartitionLag>, String>) -> Check {
        let limit = self.thresholds.lag_records;
        match partitions {
            Err(e) => Check {
                area: "Ingest",
                level: Level::Red,
                reason: format!("Kafka did not answer: {e}"),
            },
            Ok(partitions) => {
                let lag: i64 = partitions.iter().map(|p| p.lag).sum();
                let (level, reason) = if lag > limit * 10 {
                    (
                        Level::Red,
                        format!("{lag} records wait to be ingested (over {})", limit * 10),
                    )
                } else if lag > limit {
                    (
                        Level::Amber,
                        format!("{lag} records wait to be ingested (over {limit})"),
                    )
                } else {
                    (Level::Green, format!("{lag} records wait to be ingested"))
                };
                Check {
                    area: "Ingest",
                    level,
                    reason,
                }
            }
        }
    }
}

/// Each partition of the events topic with its high watermark.
fn watermarks(kafka: &KafkaHealth) -> Result<Vec<(i32, i64)>, String> {
    let consumer = consumer(kafka)?;
    let metadata = consumer
        .fetch_metadata(Some(&kafka.events_topic), KAFKA_TIMEOUT)
        .map_err(|e| e.to_string())?;
    let topic = metadata
        .topics()
        .iter()
        .find(|t| t.name() == kafka.events_topic && t.error().is_none())
        .ok_or_else(|| format!("topic {} does not exist", kafka.events_topic))?;
    topic
        .partitions()
        .iter()
        .map(|p| {
            consumer
                .fetch_watermarks(&kafka.events_topic, p.id(), KAFKA_TIMEOUT)
                .map(|(_, high)| (p.id(), high))
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// Lag per partition: records past the last offset bronze holds.
async fn lag(
    bronze: Option<&mlops_lake::deltalake::DeltaTable>,
    topic: &str,
    highs: Vec<(i32, i64)>,
) -> Vec<PartitionLag> {
    let mut partitions = Vec::new();
    for (partition, high) in highs {
        let in_bronze = match bronze {
            Some(table) => {
                mlops_lake::changes::app_version(table, &ingest_app_id(topic, partition))
                    .await
                    .ok()
                    .flatten()
            }
            None => None,
        };
        let next = in_bronze.map_or(0, |o| o + 1);
        partitions.push(PartitionLag {
            partition,
            high_watermark: high,
            in_bronze,
            lag: (high - next).max(0),
        });
    }
    partitions
}

fn consumer(kafka: &KafkaHealth) -> Result<BaseConsumer, String> {
    kafka
        .kafka
        .client_config()
        .set("group.id", "gateway-portal-health")
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| e.to_string())
}

/// Dead letters by reason, reading the DLQ topic from its start.
fn dead_letters(kafka: &KafkaHealth) -> Result<DeadLetters, String> {
    let consumer = consumer(kafka)?;
    let metadata = consumer
        .fetch_metadata(Some(&kafka.dlq_topic), KAFKA_TIMEOUT)
        .map_err(|e| e.to_string())?;
    let Some(topic) = metadata
        .topics()
        .iter()
        .find(|t| t.name() == kafka.dlq_topic && t.error().is_none())
    else {
        return Ok(DeadLetters::default());
    };
    let mut assignment = TopicPartitionList::new();
    let mut remaining = 0i64;
    let mut ends = BTreeMap::new();
    for p in topic.partitions() {
        let (low, high) = consumer
            .fetch_watermarks(&kafka.dlq_topic, p.id(), KAFKA_TIMEOUT)
            .map_err(|e| e.to_string())?;
        if high > low {
            assignment
                .add_partition_offset(&kafka.dlq_topic, p.id(), Offset::Offset(low))
                .map_err(|e| e.to_string())?;
            remaining += high - low;
            ends.insert(p.id(), high);
        }
    }
    let mut counts = BTreeMap::new();
    if remaining == 0 {
        return Ok(DeadLetters::default());
    }
    consumer.assign(&assignment).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + KAFKA_TIMEOUT * 2;
    let mut read = 0usize;
    while remaining > 0 && read < MAX_DEAD_LETTERS && Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.map_err(|e| e.to_string())?;
        if ends
            .get(&message.partition())
            .is_some_and(|&end| message.offset() >= end)
        {
            continue;
        }
        let reason = message
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == REASON).and_then(|h| h.value))
            .map_or_else(
                || "unknown".to_owned(),
                |v| String::from_utf8_lossy(v).into_owned(),
            );
        *counts.entry(reason).or_insert(0) += 1;
        read += 1;
        remaining -= 1;
    }
    Ok(DeadLetters {
        counts,
        partial: remaining > 0,
    })
}

fn dead_letter_check(letters: &Result<DeadLetters, String>) -> Check {
    match letters {
        Err(e) => Check {
            area: "Dead letters",
            level: Level::Red,
            reason: format!("the dead-letter topic could not be read: {e}"),
        },
        Ok(letters) => {
            let total: u64 = letters.counts.values().sum();
            Check {
                area: "Dead letters",
                level: if total == 0 {
                    Level::Green
                } else {
                    Level::Amber
                },
                reason: if total == 0 {
                    "no record was rejected at ingest".into()
                } else {
                    format!("{total} records were rejected at ingest; see the reasons below")
                },
            }
        }
    }
}
