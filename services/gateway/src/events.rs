//! Registry events (`registry.events.v1`) wake the follower for the model
//! they name, so an alias move is served within moments instead of at the
//! next poll. Every gateway instance reads every event (a group of its own,
//! from the newest offset, nothing committed); polling stays the fallback
//! while the broker is unreachable.

use mlops_bus::KafkaSettings;
use mlops_proto::registry::v1::{RegistryEvent, registry_event::Event};
use mlops_runtime::Shutdown;
use prost::Message as _;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use tracing::{debug, info, warn};

use crate::follow::Wake;
use crate::metrics::GatewayMetrics;

/// The model an event concerns, when it can change what is served.
pub fn model_of(payload: &[u8]) -> Option<String> {
    match RegistryEvent::decode(payload).ok()?.event? {
        Event::AliasChanged(changed) => Some(changed.model_name),
        Event::VersionReady(ready) => Some(ready.model_name),
        Event::VersionCreated(_) => None,
    }
}

/// Reads `topic` until shutdown, waking the follower per relevant event.
pub async fn follow(
    kafka: KafkaSettings,
    topic: String,
    wake: Wake,
    metrics: GatewayMetrics,
    shutdown: Shutdown,
) {
    let group = format!("gateway-{}", uuid::Uuid::new_v4().simple());
    let mut config = kafka.consumer_config(&group);
    config.set("auto.offset.reset", "latest");
    let consumer: StreamConsumer = match config.create() {
        Ok(consumer) => consumer,
        Err(error) => {
            warn!(%error, "cannot create the registry events consumer; polling only");
            return;
        }
    };
    if let Err(error) = consumer.subscribe(&[&topic]) {
        warn!(%error, topic, "cannot subscribe to registry events; polling only");
        return;
    }
    info!(topic, group, "following registry events");
    loop {
        let message = tokio::select! {
            _ = shutdown.wait() => return,
            message = consumer.recv() => message,
        };
        match message {
            Ok(message) => {
                metrics.event();
                if let Some(model) = message.payload().and_then(model_of) {
                    debug!(model, "registry event");
                    wake.model(&model);
                }
            }
            Err(error) => {
                warn!(%error, "reading registry events failed; polling covers it");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlops_proto::registry::v1::{AliasChanged, VersionCreated};

    #[test]
    fn alias_moves_and_ready_versions_name_their_model() {
        let event = |event| {
            RegistryEvent {
                event_id: "e1".into(),
                event: Some(event),
                ..Default::default()
            }
            .encode_to_vec()
        };
        let moved = event(Event::AliasChanged(AliasChanged {
            model_name: "churn".into(),
            alias: "champion".into(),
            previous_version: 1,
            version: 2,
        }));
        assert_eq!(model_of(&moved).as_deref(), Some("churn"));
        let created = event(Event::VersionCreated(VersionCreated {
            model_name: "churn".into(),
            version: 3,
            run_id: String::new(),
        }));
        assert_eq!(model_of(&created), None);
        assert_eq!(model_of(b"not protobuf \xff"), None);
    }
}
