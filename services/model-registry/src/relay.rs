//! Publishes outbox rows to Kafka after their transaction committed.
//!
//! Delivery is at least once: a crash between Kafka's acknowledgement and
//! marking the row published re-sends it, so consumers deduplicate by
//! `event_id`. With several replicas, one holds the relay lease at a time,
//! which keeps events in commit order. The lease is re-checked before every
//! batch: a replica whose database session dropped (and with it the lock
//! another replica may now hold) stops publishing and competes for the lease
//! again on a later cycle.

use std::time::Duration;

use mlops_bus::KafkaSettings;
use mlops_proto::registry::v1::SCHEMA_VERSION;
use mlops_runtime::Shutdown;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::error::{Error, Result};
use crate::metrics::RegistryMetrics;
use crate::store::{RelayLease, Store};

const BATCH: i64 = 200;
const FINAL_PASS: Duration = Duration::from_secs(5);

pub struct OutboxRelay {
    store: Store,
    producer: FutureProducer,
    interval: Duration,
    metrics: RegistryMetrics,
}

impl OutboxRelay {
    pub fn new(
        store: Store,
        kafka: &KafkaSettings,
        interval: Duration,
        metrics: RegistryMetrics,
    ) -> Result<Self> {
        let producer = kafka
            .idempotent_producer()
            .map_err(|e| Error::Internal(format!("creating the Kafka producer: {e}")))?;
        Ok(Self {
            store,
            producer,
            interval,
            metrics,
        })
    }

    pub async fn run(self, shutdown: Shutdown) {
        let mut lease = None;
        loop {
            if lease.is_none() {
                lease = self.acquire_lease().await;
            }
            if lease.is_some() {
                // Shutdown abandons a publish in progress: unacknowledged
                // events stay in the outbox for the next relay.
                tokio::select! {
                    outcome = self.publish_as_leader(&mut lease, &shutdown) => {
                        if let Err(error) = outcome {
                            tracing::warn!(%error, "publishing registry events failed; retrying");
                        }
                    }
                    _ = shutdown.wait() => break,
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = shutdown.wait() => break,
            }
        }
        // A last, bounded pass so a clean shutdown usually leaves nothing.
        if lease.is_some() {
            let last = tokio::time::timeout(
                FINAL_PASS,
                self.publish_as_leader(&mut lease, &Shutdown::new()),
            )
            .await;
            if !matches!(last, Ok(Ok(()))) {
                tracing::warn!("events not acknowledged at shutdown stay in the outbox");
            }
        }
        drop(lease);
        self.metrics.relay_leader.set(0);
    }

    /// One pass outside [`run`](Self::run): publishes every pending event,
    /// oldest first, if this relay can take the lease. `Ok(false)` when
    /// another replica holds it or it was lost during the pass; what is not
    /// published stays in the outbox.
    pub async fn publish_pending(&self, shutdown: &Shutdown) -> Result<bool> {
        let mut lease = self.store.try_relay_lease().await?;
        if lease.is_none() {
            return Ok(false);
        }
        self.publish_as_leader(&mut lease, shutdown).await?;
        Ok(lease.is_some())
    }

    async fn acquire_lease(&self) -> Option<RelayLease> {
        match self.store.try_relay_lease().await {
            Ok(Some(lease)) => {
                tracing::info!("outbox relay acquired the lease; publishing");
                self.metrics.relay_leader.set(1);
                Some(lease)
            }
            // Another replica publishes.
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(%error, "outbox relay cannot reach the database");
                None
            }
        }
    }

    /// Whether `lease` is still held; a lost lease is dropped (closing its
    /// session) so that the relay stops publishing until it gets it back.
    async fn keep_lease(&self, lease: &mut Option<RelayLease>) -> bool {
        let Some(held) = lease.as_mut() else {
            return false;
        };
        let lost = match held.is_held().await {
            Ok(true) => return true,
            Ok(false) => None,
            Err(error) => Some(error),
        };
        *lease = None;
        self.metrics.relay_leader.set(0);
        match lost {
            None => tracing::warn!("outbox relay lost the lease; publishing stops"),
            Some(error) => tracing::warn!(%error, "outbox relay lost the lease; publishing stops"),
        }
        false
    }

    /// Publishes every pending event, oldest first, while `lease` holds:
    /// it is checked before each batch, which bounds what a relay that lost
    /// it unknowingly can send to the one batch in flight.
    async fn publish_as_leader(
        &self,
        lease: &mut Option<RelayLease>,
        shutdown: &Shutdown,
    ) -> Result<()> {
        loop {
            if !self.keep_lease(lease).await {
                return Ok(());
            }
            let batch = self.store.pending_events(BATCH).await?;
            self.metrics
                .outbox_pending
                .set(self.store.pending_event_count().await?);
            if batch.is_empty() || shutdown.is_triggered() {
                return Ok(());
            }
            let mut published = Vec::with_capacity(batch.len());
            for event in &batch {
                let headers = OwnedHeaders::new().insert(Header {
                    key: mlops_bus::headers::SCHEMA_VERSION,
                    value: Some(SCHEMA_VERSION),
                });
                let record = FutureRecord::to(&event.topic)
                    .key(&event.key)
                    .payload(&event.payload)
                    .headers(headers);
                if let Err((error, _)) = self.producer.send(record, Duration::from_secs(30)).await {
                    // Keep what was acknowledged; the rest is retried in order.
                    self.store.mark_published(&published).await?;
                    return Err(Error::Internal(format!(
                        "Kafka did not acknowledge event {}: {error}",
                        event.id
                    )));
                }
                published.push(event.id);
            }
            self.store.mark_published(&published).await?;
            self.metrics.events_published.inc_by(published.len() as u64);
        }
    }
}
