//! Turns simulated events into Kafka records, injecting the data-quality
//! faults asked for: duplicates (same `event_id`, re-sent later), late events
//! (event time hours or days in the past) and malformed records.

use std::collections::VecDeque;

use chrono::NaiveDate;
use mlops_proto::events::v1::{TelecomEvent, telecom_event::Payload};
use prost::Message;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::sim::{SimConfig, Truth, World};

#[derive(Clone, Copy, Debug, Default)]
pub struct FaultRates {
    pub duplicate: f64,
    pub late: f64,
    pub malformed: f64,
}

/// What a record is, for the summary and for tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutgoingKind {
    Event(&'static str),
    /// A re-send of an earlier event, same bytes and `event_id`.
    Duplicate,
    /// Bytes that do not decode as an event.
    MalformedBytes,
    /// A decodable event missing required fields.
    MalformedEvent,
}

impl OutgoingKind {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Event(kind) => kind,
            Self::Duplicate => "duplicate",
            Self::MalformedBytes => "malformed_bytes",
            Self::MalformedEvent => "malformed_event",
        }
    }
}

/// One record ready to send: key = `subscriber_id`, payload = protobuf.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub key: String,
    pub payload: Vec<u8>,
    pub kind: OutgoingKind,
    /// Whether the event time was pushed into the past.
    pub late: bool,
}

pub fn kind_name(event: &TelecomEvent) -> &'static str {
    match &event.payload {
        Some(Payload::Call(_)) => "call",
        Some(Payload::Sms(_)) => "sms",
        Some(Payload::DataSession(_)) => "data_session",
        Some(Payload::TopUp(_)) => "top_up",
        Some(Payload::PlanChange(_)) => "plan_change",
        Some(Payload::SupportTicket(_)) => "support_ticket",
        Some(Payload::Churn(_)) => "churn",
        Some(Payload::Activation(_)) => "activation",
        None => "none",
    }
}

pub struct Emitter {
    world: World,
    faults: FaultRates,
    rng: ChaCha8Rng,
    /// Duplicates waiting to be re-sent: (records still to pass, record).
    delayed: VecDeque<(u32, Outgoing)>,
}

impl Emitter {
    pub fn new(sim: &SimConfig, faults: FaultRates) -> Self {
        Self {
            world: World::new(sim),
            faults,
            // A stream separate from the world's, so turning faults on does
            // not change the clean events.
            rng: ChaCha8Rng::seed_from_u64(sim.seed.wrapping_add(0x5EED_FA17)),
            delayed: VecDeque::new(),
        }
    }

    pub fn current_date(&self) -> NaiveDate {
        self.world.current_date()
    }

    pub fn truth(&self) -> Vec<Truth> {
        self.world.truth()
    }

    /// The records of the next simulated day, faults included.
    pub fn next_day(&mut self) -> Vec<Outgoing> {
        let events = self.world.next_day();
        let mut out = Vec::with_capacity(events.len() + events.len() / 10);
        for mut event in events {
            let mut late = false;
            if self.faults.late > 0.0 && self.rng.random_bool(self.faults.late) {
                late = true;
                let hours: i64 = if self.rng.random_bool(0.5) {
                    self.rng.random_range(1..24)
                } else {
                    24 * self.rng.random_range(1..=7)
                };
                if let Some(t) = event.event_time.as_mut() {
                    t.seconds -= hours * 3_600;
                }
            }
            let record = Outgoing {
                key: event.subscriber_id.clone(),
                payload: event.encode_to_vec(),
                kind: OutgoingKind::Event(kind_name(&event)),
                late,
            };
            if self.faults.duplicate > 0.0 && self.rng.random_bool(self.faults.duplicate) {
                let wait = self.rng.random_range(1..5_000);
                self.delayed.push_back((
                    wait,
                    Outgoing {
                        kind: OutgoingKind::Duplicate,
                        ..record.clone()
                    },
                ));
            }
            if self.faults.malformed > 0.0 && self.rng.random_bool(self.faults.malformed) {
                out.push(self.malformed(&event.subscriber_id));
            }
            out.push(record);
            self.release_due(&mut out);
        }
        out
    }

    /// Duplicates still waiting when the run ends.
    pub fn drain_delayed(&mut self) -> Vec<Outgoing> {
        self.delayed.drain(..).map(|(_, r)| r).collect()
    }

    fn release_due(&mut self, out: &mut Vec<Outgoing>) {
        for entry in self.delayed.iter_mut() {
            entry.0 = entry.0.saturating_sub(1);
        }
        while let Some(pos) = self.delayed.iter().position(|(wait, _)| *wait == 0) {
            if let Some((_, record)) = self.delayed.remove(pos) {
                out.push(record);
            }
        }
    }

    fn malformed(&mut self, subscriber_id: &str) -> Outgoing {
        if self.rng.random_bool(0.5) {
            // Field number 0 is invalid in protobuf, so these bytes never decode.
            let mut payload = vec![0u8];
            payload.extend((0..self.rng.random_range(4..64)).map(|_| self.rng.random::<u8>()));
            Outgoing {
                key: subscriber_id.to_string(),
                payload,
                kind: OutgoingKind::MalformedBytes,
                late: false,
            }
        } else {
            // Valid protobuf, but without event id, time or payload.
            let event = TelecomEvent {
                subscriber_id: subscriber_id.to_string(),
                ..Default::default()
            };
            Outgoing {
                key: subscriber_id.to_string(),
                payload: event.encode_to_vec(),
                kind: OutgoingKind::MalformedEvent,
                late: false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::midnight;

    fn sim() -> SimConfig {
        SimConfig {
            seed: 5,
            subscribers: 300,
            start: midnight(NaiveDate::from_ymd_opt(2026, 3, 1).expect("date")),
        }
    }

    fn all(emitter: &mut Emitter, days: u32) -> Vec<Outgoing> {
        let mut out = Vec::new();
        for _ in 0..days {
            out.extend(emitter.next_day());
        }
        out.extend(emitter.drain_delayed());
        out
    }

    #[test]
    fn no_faults_by_default() {
        let records = all(&mut Emitter::new(&sim(), FaultRates::default()), 5);
        assert!(
            records
                .iter()
                .all(|r| matches!(r.kind, OutgoingKind::Event(_)) && !r.late)
        );
        for r in &records {
            let event = TelecomEvent::decode(r.payload.as_slice()).expect("decodes");
            assert_eq!(event.subscriber_id, r.key);
        }
    }

    #[test]
    fn fault_rates_are_honoured() {
        let faults = FaultRates {
            duplicate: 0.05,
            late: 0.1,
            malformed: 0.02,
        };
        let records = all(&mut Emitter::new(&sim(), faults), 10);
        let events = records
            .iter()
            .filter(|r| matches!(r.kind, OutgoingKind::Event(_)))
            .count() as f64;
        let count = |k: OutgoingKind| records.iter().filter(|r| r.kind == k).count() as f64;
        let dup = count(OutgoingKind::Duplicate) / events;
        let bad =
            (count(OutgoingKind::MalformedBytes) + count(OutgoingKind::MalformedEvent)) / events;
        let late = records.iter().filter(|r| r.late).count() as f64 / events;
        assert!((0.035..0.065).contains(&dup), "duplicate rate {dup}");
        assert!((0.01..0.03).contains(&bad), "malformed rate {bad}");
        assert!((0.08..0.12).contains(&late), "late rate {late}");
        for r in records
            .iter()
            .filter(|r| r.kind == OutgoingKind::MalformedBytes)
        {
            assert!(TelecomEvent::decode(r.payload.as_slice()).is_err());
        }
        // A duplicate carries the id of an event sent earlier.
        let first_dup = records
            .iter()
            .position(|r| r.kind == OutgoingKind::Duplicate)
            .expect("dups");
        let dup_id = TelecomEvent::decode(records[first_dup].payload.as_slice())
            .expect("decodes")
            .event_id;
        assert!(records[..first_dup].iter().any(|r| {
            TelecomEvent::decode(r.payload.as_slice()).is_ok_and(|e| e.event_id == dup_id)
        }));
    }

    #[test]
    fn faults_do_not_change_the_clean_events() {
        let clean: Vec<_> = all(&mut Emitter::new(&sim(), FaultRates::default()), 3)
            .into_iter()
            .map(|r| r.payload)
            .collect();
        let faults = FaultRates {
            duplicate: 0.1,
            late: 0.0,
            malformed: 0.1,
        };
        let faulty: Vec<_> = all(&mut Emitter::new(&sim(), faults), 3)
            .into_iter()
            .filter(|r| matches!(r.kind, OutgoingKind::Event(_)))
            .map(|r| r.payload)
            .collect();
        assert_eq!(clean, faulty);
    }
}
