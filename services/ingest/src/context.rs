//! librdkafka's callbacks for the ingest consumer: statistics (lag per
//! partition) and rebalances (assigned partitions start at the table's
//! progress). Callbacks only record what happened; the pipeline's loop acts
//! on it.

use std::sync::{Arc, Mutex};

use mlops_lake::LakeLocation;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tracing::{info, warn};

use crate::Result;
use crate::config::{ResumeMode, app_id};
use crate::metrics::{IngestMetrics, label};
use crate::writer::BronzeWriter;

/// What the rebalance callback tells the consume loop.
#[derive(Clone, Default)]
pub struct RebalanceSignal {
    inner: Arc<Mutex<RebalanceState>>,
}

#[derive(Default)]
struct RebalanceState {
    /// Partitions were revoked or assigned since the loop last looked.
    happened: bool,
    /// Partitions owned now.
    assigned: Vec<i32>,
}

impl RebalanceSignal {
    /// Whether a rebalance happened since the last call (and clears it).
    pub fn take(&self) -> bool {
        self.inner
            .lock()
            .map(|mut state| std::mem::take(&mut state.happened))
            .unwrap_or(false)
    }

    /// The partitions this member owns now.
    pub fn assigned(&self) -> Vec<i32> {
        self.inner
            .lock()
            .map(|state| state.assigned.clone())
            .unwrap_or_default()
    }

    fn record(&self, assigned: Vec<i32>) {
        if let Ok(mut state) = self.inner.lock() {
            state.happened = true;
            state.assigned = assigned;
        }
    }
}

pub struct IngestContext {
    pub topic: String,
    pub lake: LakeLocation,
    pub resume: ResumeMode,
    pub rebalance: RebalanceSignal,
    pub metrics: IngestMetrics,
}

impl ClientContext for IngestContext {
    fn stats(&self, statistics: Statistics) {
        let assigned = self.rebalance.assigned();
        if let Some(topic) = statistics.topics.get(&self.topic) {
            for (partition, stats) in &topic.partitions {
                // Only owned partitions: a partition's lag is reported by
                // its owner, never as a stale value by a former one.
                if assigned.contains(partition) && stats.consumer_lag >= 0 {
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
                self.metrics
                    .assigned_partitions
                    .set(partitions.len() as i64);
                self.rebalance.record(partitions);
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let revoked = partitions_of(tpl);
                info!(partitions = ?revoked, "partitions revoked");
                if let Err(error) = consumer.unassign() {
                    warn!(%error, "unassign failed");
                }
                for partition in &revoked {
                    self.metrics
                        .consumer_lag
                        .remove(&label("partition", partition));
                }
                self.metrics.assigned_partitions.set(0);
                self.rebalance.record(Vec::new());
            }
            other => {
                warn!(error = ?other, "rebalance error");
                self.rebalance.record(self.rebalance.assigned());
            }
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
