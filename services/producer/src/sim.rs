//! The synthetic telecom world: subscribers with observable attributes and a
//! latent churn hazard, simulated day by day.
//!
//! Everything is derived from the seed, so a run is reproducible: the same
//! seed, subscriber count and start date give the same events, ids included.
//!
//! The planted churn signal. Each subscriber's daily hazard rises with
//! behaviour the lake can observe: the dropped-call rate of the last two weeks
//! (tied to the region's network quality and the device), unresolved support
//! tickets, a recent price increase, short tenure and prepaid top-up gaps. A
//! per-subscriber frailty term that nothing observes keeps the problem from
//! being trivial. When the hazard fires, the subscriber enters a notice period
//! of one to three weeks in which usage declines, then emits a churn event and
//! goes silent.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use mlops_proto::events::v1::{
    self as pb, Activation, Call, Churn, ChurnReason, DataSession, NetworkType, PlanChange, Sms,
    SupportTicket, TicketCategory, TicketResolution, TopUp, telecom_event::Payload,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// A region and the quality of its radio network.
struct Region {
    name: &'static str,
    /// Base probability that a call drops.
    drop_rate: f64,
    /// Probability that a support ticket gets resolved.
    resolution_rate: f64,
}

const REGIONS: &[Region] = &[
    Region {
        name: "north",
        drop_rate: 0.010,
        resolution_rate: 0.80,
    },
    Region {
        name: "south",
        drop_rate: 0.015,
        resolution_rate: 0.75,
    },
    Region {
        name: "east",
        drop_rate: 0.025,
        resolution_rate: 0.65,
    },
    Region {
        name: "west",
        drop_rate: 0.018,
        resolution_rate: 0.70,
    },
    Region {
        name: "central",
        drop_rate: 0.008,
        resolution_rate: 0.85,
    },
    Region {
        name: "coast",
        drop_rate: 0.045,
        resolution_rate: 0.55,
    },
];

struct Plan {
    name: &'static str,
    price_cents: i64,
    prepaid: bool,
}

const PLANS: &[Plan] = &[
    Plan {
        name: "prepaid_basic",
        price_cents: 1000,
        prepaid: true,
    },
    Plan {
        name: "prepaid_plus",
        price_cents: 1500,
        prepaid: true,
    },
    Plan {
        name: "postpaid_s",
        price_cents: 2500,
        prepaid: false,
    },
    Plan {
        name: "postpaid_m",
        price_cents: 4000,
        prepaid: false,
    },
    Plan {
        name: "postpaid_l",
        price_cents: 6000,
        prepaid: false,
    },
];

/// Devices and how much they add to the drop rate.
const DEVICES: &[(&str, f64)] = &[
    ("android_budget", 1.4),
    ("android_flagship", 0.8),
    ("iphone", 0.9),
    ("feature_phone", 1.2),
];

/// What the simulation needs to know.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    pub subscribers: u32,
    /// Midnight UTC of the first simulated day.
    pub start: DateTime<Utc>,
}

/// Ground truth for one subscriber; never enters the lake.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Truth {
    pub subscriber_id: String,
    /// Day the churn event was emitted, if it was.
    pub churn_date: Option<NaiveDate>,
    /// Day the hazard fired (start of the notice period), if it did.
    pub churn_decision_date: Option<NaiveDate>,
    /// Mean daily churn hazard over the simulated days.
    pub mean_daily_hazard: f64,
    /// The unobserved frailty multiplier.
    pub frailty: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lifecycle {
    Active,
    /// Decided to leave; days left before the churn event.
    Leaving {
        days_left: u32,
        notice: u32,
    },
    Churned,
}

struct Subscriber {
    id: String,
    rng: ChaCha8Rng,
    region: usize,
    plan: usize,
    price_cents: i64,
    device: usize,
    activated_at: DateTime<Utc>,
    frailty: f64,
    calls_per_day: f64,
    data_sessions_per_day: f64,
    sms_per_day: f64,
    /// Recent history, newest last: (calls, dropped) per day, 14 days kept.
    call_history: Vec<(u32, u32)>,
    unresolved_tickets: Vec<NaiveDate>,
    last_price_increase: Option<NaiveDate>,
    days_since_top_up: u32,
    lifecycle: Lifecycle,
    activation_sent: bool,
    hazard_sum: f64,
    days_simulated: u32,
    churn_date: Option<NaiveDate>,
    churn_decision_date: Option<NaiveDate>,
    ticket_seq: u32,
}

/// The simulated world, advanced one day at a time.
pub struct World {
    subscribers: Vec<Subscriber>,
    start: DateTime<Utc>,
    day: u32,
}

impl World {
    pub fn new(config: &SimConfig) -> Self {
        let subscribers = (0..config.subscribers)
            .map(|index| Subscriber::new(config.seed, index, config.start))
            .collect();
        Self {
            subscribers,
            start: config.start,
            day: 0,
        }
    }

    /// The date the next call to [`World::next_day`] simulates.
    pub fn current_date(&self) -> NaiveDate {
        (self.start + Duration::days(i64::from(self.day))).date_naive()
    }

    /// Simulates one day and returns its events, each subscriber's in time order.
    pub fn next_day(&mut self) -> Vec<pb::TelecomEvent> {
        let day_start = self.start + Duration::days(i64::from(self.day));
        let mut events = Vec::new();
        for subscriber in &mut self.subscribers {
            subscriber.simulate_day(day_start, &mut events);
        }
        self.day += 1;
        events
    }

    pub fn truth(&self) -> Vec<Truth> {
        self.subscribers.iter().map(Subscriber::truth).collect()
    }
}

impl Subscriber {
    fn new(seed: u64, index: u32, start: DateTime<Utc>) -> Self {
        // One independent stream per subscriber keeps runs reproducible
        // whatever the subscriber count.
        let mut rng = ChaCha8Rng::seed_from_u64(
            seed ^ (u64::from(index).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        );
        let region = rng.random_range(0..REGIONS.len());
        let plan = rng.random_range(0..PLANS.len());
        let device = rng.random_range(0..DEVICES.len());
        let tenure_days = rng.random_range(14..2_500);
        let activated_at =
            start - Duration::days(tenure_days) + Duration::seconds(rng.random_range(0..86_400));
        // Log-normal frailty with median 1: unobserved heterogeneity.
        let frailty = (0.6 * standard_normal(&mut rng)).exp();
        let usage = (0.4 * standard_normal(&mut rng)).exp();
        Self {
            id: format!("sub-{index:07}"),
            region,
            plan,
            price_cents: PLANS[plan].price_cents,
            device,
            activated_at,
            frailty,
            calls_per_day: 3.0 * usage,
            data_sessions_per_day: 5.0 * usage,
            sms_per_day: 1.5 * usage,
            call_history: Vec::with_capacity(15),
            unresolved_tickets: Vec::new(),
            last_price_increase: None,
            days_since_top_up: rng.random_range(0..10),
            lifecycle: Lifecycle::Active,
            activation_sent: false,
            hazard_sum: 0.0,
            days_simulated: 0,
            churn_date: None,
            churn_decision_date: None,
            ticket_seq: 0,
            rng,
        }
    }

    fn truth(&self) -> Truth {
        Truth {
            subscriber_id: self.id.clone(),
            churn_date: self.churn_date,
            churn_decision_date: self.churn_decision_date,
            mean_daily_hazard: if self.days_simulated == 0 {
                0.0
            } else {
                self.hazard_sum / f64::from(self.days_simulated)
            },
            frailty: self.frailty,
        }
    }

    /// Daily churn probability from observable behaviour and frailty.
    fn hazard(&self, today: NaiveDate) -> f64 {
        let (calls, dropped) = self
            .call_history
            .iter()
            .fold((0u32, 0u32), |(c, d), (dc, dd)| (c + dc, d + dd));
        let drop_rate = if calls == 0 {
            0.0
        } else {
            f64::from(dropped) / f64::from(calls)
        };
        let tenure_days = (today - self.activated_at.date_naive()).num_days().max(0) as f64;
        let recent_price_increase = self
            .last_price_increase
            .is_some_and(|d| (today - d).num_days() <= 30);
        let top_up_gap = PLANS[self.plan].prepaid && self.days_since_top_up > 14;
        let logit = -6.6
            + 25.0 * drop_rate
            + 0.9 * self.unresolved_tickets.len().min(3) as f64
            + if recent_price_increase { 1.2 } else { 0.0 }
            + if tenure_days < 180.0 { 0.8 } else { 0.0 }
            - 0.15 * (1.0 + tenure_days / 365.0).ln()
            + if top_up_gap { 0.7 } else { 0.0 };
        (self.frailty / (1.0 + (-logit).exp())).min(0.5)
    }

    fn simulate_day(&mut self, day_start: DateTime<Utc>, out: &mut Vec<pb::TelecomEvent>) {
        if self.lifecycle == Lifecycle::Churned {
            return;
        }
        let today = day_start.date_naive();
        let mut events: Vec<pb::TelecomEvent> = Vec::new();
        if !self.activation_sent {
            self.activation_sent = true;
            let activation = Payload::Activation(Activation {
                region: REGIONS[self.region].name.into(),
                plan: PLANS[self.plan].name.into(),
                monthly_price_cents: self.price_cents,
                device: DEVICES[self.device].0.into(),
                activated_at: Some(timestamp(self.activated_at)),
            });
            events.push(self.event(day_start, 0, activation));
        }

        // Usage declines through the notice period: the early-warning signal.
        let engagement = match self.lifecycle {
            Lifecycle::Leaving { days_left, notice } => {
                0.25 + 0.75 * f64::from(days_left) / f64::from(notice.max(1))
            }
            _ => 1.0,
        };

        let drop_p = (REGIONS[self.region].drop_rate * DEVICES[self.device].1).min(0.9);
        let calls = poisson(&mut self.rng, self.calls_per_day * engagement);
        let mut dropped_today = 0;
        for _ in 0..calls {
            let dropped = self.rng.random_bool(drop_p);
            dropped_today += u32::from(dropped);
            let duration = if dropped {
                self.rng.random_range(5..120)
            } else {
                (lognormal(&mut self.rng, 4.8, 0.9) as u32).clamp(3, 7_200)
            };
            let call = Payload::Call(Call {
                duration_seconds: duration,
                dropped,
                region: REGIONS[self.region].name.into(),
            });
            let at = self.random_second();
            events.push(self.event(day_start, at, call));
        }
        self.call_history.push((calls, dropped_today));
        if self.call_history.len() > 14 {
            self.call_history.remove(0);
        }

        for _ in 0..poisson(&mut self.rng, self.sms_per_day * engagement) {
            let sms = Payload::Sms(Sms {
                international: self.rng.random_bool(0.05),
            });
            let at = self.random_second();
            events.push(self.event(day_start, at, sms));
        }

        for _ in 0..poisson(&mut self.rng, self.data_sessions_per_day * engagement) {
            let down = lognormal(&mut self.rng, 16.5, 1.2) as u64;
            let network_type = match self.rng.random_range(0..10) {
                0 => NetworkType::NetworkType3g,
                1..=4 => NetworkType::NetworkType4g,
                5..=6 => NetworkType::NetworkType5g,
                _ => NetworkType::Wifi,
            };
            let session = Payload::DataSession(DataSession {
                bytes_up: down / self.rng.random_range(5..20),
                bytes_down: down,
                duration_seconds: self.rng.random_range(10..3_600),
                network_type: network_type as i32,
            });
            let at = self.random_second();
            events.push(self.event(day_start, at, session));
        }

        // Support tickets: more likely after dropped calls.
        let ticket_p = 0.004 + 0.05 * f64::from(dropped_today);
        if self.rng.random_bool(ticket_p.min(0.8)) {
            self.ticket_seq += 1;
            let network_issue = dropped_today > 0 && self.rng.random_bool(0.7);
            let category = if network_issue {
                TicketCategory::Network
            } else {
                [
                    TicketCategory::Billing,
                    TicketCategory::Device,
                    TicketCategory::Plan,
                    TicketCategory::Other,
                ][self.rng.random_range(0..4)]
            };
            let resolved = self.rng.random_bool(REGIONS[self.region].resolution_rate);
            let resolution = if resolved {
                TicketResolution::Resolved
            } else {
                self.unresolved_tickets.push(today);
                TicketResolution::Unresolved
            };
            let ticket = Payload::SupportTicket(SupportTicket {
                ticket_id: format!("{}-t{}", self.id, self.ticket_seq),
                category: category as i32,
                resolution: resolution as i32,
            });
            let at = self.random_second();
            events.push(self.event(day_start, at, ticket));
        }
        // Unresolved tickets weigh on the customer for 30 days.
        self.unresolved_tickets
            .retain(|d| (today - *d).num_days() < 30);

        // Price changes: rare increases for postpaid plans, rarer downgrades.
        if !PLANS[self.plan].prepaid && self.rng.random_bool(0.003) {
            let old_price = self.price_cents;
            let increase = self.rng.random_bool(0.75);
            self.price_cents = if increase {
                old_price + old_price / 10 * self.rng.random_range(1..=3)
            } else {
                (old_price - old_price / 10).max(500)
            };
            if increase {
                self.last_price_increase = Some(today);
            }
            let change = Payload::PlanChange(PlanChange {
                old_plan: PLANS[self.plan].name.into(),
                new_plan: PLANS[self.plan].name.into(),
                old_price_cents: old_price,
                new_price_cents: self.price_cents,
            });
            let at = self.random_second();
            events.push(self.event(day_start, at, change));
        }

        // Prepaid top-ups every week or so, fewer when disengaged.
        if PLANS[self.plan].prepaid {
            self.days_since_top_up += 1;
            if self.days_since_top_up >= 5 && self.rng.random_bool(0.25 * engagement) {
                self.days_since_top_up = 0;
                let amount = [500, 1000, 1500, 2000][self.rng.random_range(0..4)];
                let top_up = Payload::TopUp(TopUp {
                    amount_cents: amount,
                    channel: ["app", "retail", "web"][self.rng.random_range(0..3)].into(),
                });
                let at = self.random_second();
                events.push(self.event(day_start, at, top_up));
            }
        }

        let hazard = self.hazard(today);
        self.hazard_sum += hazard;
        self.days_simulated += 1;
        self.lifecycle = match self.lifecycle {
            Lifecycle::Active if self.rng.random_bool(hazard) => {
                let notice = self.rng.random_range(7..=21);
                self.churn_decision_date = Some(today);
                Lifecycle::Leaving {
                    days_left: notice,
                    notice,
                }
            }
            Lifecycle::Leaving { days_left: 0, .. } => {
                let reason = if self.rng.random_bool(0.7) {
                    ChurnReason::PortOut
                } else {
                    ChurnReason::Cancellation
                };
                let recipient = if reason == ChurnReason::PortOut {
                    ["rivalnet", "bluewave", "skyline"][self.rng.random_range(0..3)].into()
                } else {
                    String::new()
                };
                let churn = Payload::Churn(Churn {
                    reason: reason as i32,
                    recipient_operator: recipient,
                });
                events.push(self.event(day_start, 86_399, churn));
                self.churn_date = Some(today);
                Lifecycle::Churned
            }
            Lifecycle::Leaving { days_left, notice } => Lifecycle::Leaving {
                days_left: days_left - 1,
                notice,
            },
            other => other,
        };

        events.sort_by_key(|e| e.event_time.map(|t| (t.seconds, t.nanos)));
        out.extend(events);
    }

    fn random_second(&mut self) -> i64 {
        // Activity peaks in the daytime: a mixture of a uniform day and a
        // 08:00-22:00 window.
        if self.rng.random_bool(0.8) {
            self.rng.random_range(8 * 3_600..22 * 3_600)
        } else {
            self.rng.random_range(0..86_399)
        }
    }

    fn event(
        &mut self,
        day_start: DateTime<Utc>,
        second: i64,
        payload: Payload,
    ) -> pb::TelecomEvent {
        let id = uuid::Builder::from_random_bytes(self.rng.random()).into_uuid();
        pb::TelecomEvent {
            event_id: id.to_string(),
            subscriber_id: self.id.clone(),
            event_time: Some(timestamp(
                day_start
                    + Duration::seconds(second)
                    + Duration::milliseconds(self.rng.random_range(0..1000)),
            )),
            payload: Some(payload),
        }
    }
}

pub fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    }
}

/// Midnight UTC of `date`.
pub fn midnight(date: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).unwrap_or_default())
}

fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box-Muller; u1 in (0, 1] keeps ln finite.
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn lognormal(rng: &mut ChaCha8Rng, mu: f64, sigma: f64) -> f64 {
    (mu + sigma * standard_normal(rng)).exp()
}

fn poisson(rng: &mut ChaCha8Rng, lambda: f64) -> u32 {
    if lambda <= 0.0 {
        return 0;
    }
    if lambda > 30.0 {
        return (lambda + lambda.sqrt() * standard_normal(rng))
            .round()
            .max(0.0) as u32;
    }
    // Knuth's method; fine for the small rates used here.
    let limit = (-lambda).exp();
    let mut k = 0;
    let mut p = 1.0;
    loop {
        p *= rng.random::<f64>();
        if p <= limit {
            return k;
        }
        k += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(seed: u64, subscribers: u32) -> SimConfig {
        SimConfig {
            seed,
            subscribers,
            start: midnight(NaiveDate::from_ymd_opt(2026, 1, 1).expect("date")),
        }
    }

    fn run(config: &SimConfig, days: u32) -> (Vec<pb::TelecomEvent>, Vec<Truth>) {
        let mut world = World::new(config);
        let mut events = Vec::new();
        for _ in 0..days {
            events.extend(world.next_day());
        }
        (events, world.truth())
    }

    #[test]
    fn same_seed_gives_identical_events() {
        let (a, ta) = run(&config(7, 50), 10);
        let (b, tb) = run(&config(7, 50), 10);
        assert_eq!(a, b);
        assert_eq!(ta, tb);
        let (c, _) = run(&config(8, 50), 10);
        assert_ne!(a, c);
    }

    #[test]
    fn event_ids_are_unique_and_every_subscriber_is_activated_once() {
        let (events, _) = run(&config(1, 200), 20);
        let ids: std::collections::HashSet<_> = events.iter().map(|e| &e.event_id).collect();
        assert_eq!(ids.len(), events.len());
        let activations = events
            .iter()
            .filter(|e| matches!(e.payload, Some(Payload::Activation(_))))
            .count();
        assert_eq!(activations, 200);
    }

    #[test]
    fn churners_emit_one_churn_event_and_go_silent() {
        let (events, truth) = run(&config(3, 2_000), 60);
        let churned: Vec<_> = truth.iter().filter(|t| t.churn_date.is_some()).collect();
        assert!(!churned.is_empty(), "some subscribers churn in 60 days");
        let mut by_subscriber: std::collections::HashMap<&str, Vec<&pb::TelecomEvent>> =
            Default::default();
        for e in &events {
            by_subscriber
                .entry(e.subscriber_id.as_str())
                .or_default()
                .push(e);
        }
        for t in &churned {
            let own = &by_subscriber[t.subscriber_id.as_str()];
            let churn_events = own
                .iter()
                .filter(|e| matches!(e.payload, Some(Payload::Churn(_))))
                .count();
            assert_eq!(churn_events, 1, "{}", t.subscriber_id);
            let last = own.last().expect("has events");
            assert!(
                matches!(last.payload, Some(Payload::Churn(_))),
                "churn is the last event"
            );
        }
    }

    #[test]
    fn churn_rate_is_plausible_and_driven_by_observable_behaviour() {
        let (events, truth) = run(&config(11, 5_000), 90);
        let churned: std::collections::HashSet<_> = truth
            .iter()
            .filter(|t| t.churn_date.is_some())
            .map(|t| t.subscriber_id.clone())
            .collect();
        let rate = churned.len() as f64 / truth.len() as f64;
        assert!((0.05..0.5).contains(&rate), "90-day churn rate {rate}");

        // Dropped-call rate, observed from events, is higher among churners.
        let mut stats: std::collections::HashMap<&str, (u32, u32)> = Default::default();
        for e in &events {
            if let Some(Payload::Call(call)) = &e.payload {
                let s = stats.entry(e.subscriber_id.as_str()).or_default();
                s.0 += 1;
                s.1 += u32::from(call.dropped);
            }
        }
        let mean_drop = |want_churn: bool| {
            let rates: Vec<f64> = stats
                .iter()
                .filter(|(id, _)| churned.contains(**id) == want_churn)
                .filter(|(_, (calls, _))| *calls > 0)
                .map(|(_, (calls, dropped))| f64::from(*dropped) / f64::from(*calls))
                .collect();
            rates.iter().sum::<f64>() / rates.len() as f64
        };
        let (churn_drop, stay_drop) = (mean_drop(true), mean_drop(false));
        assert!(
            churn_drop > stay_drop * 1.2,
            "churners drop {churn_drop:.4} vs stayers {stay_drop:.4}"
        );
        // Not trivial: plenty of high-drop subscribers stay.
        let high_drop_stayers = stats
            .iter()
            .filter(|(id, (c, d))| {
                *c > 20 && f64::from(*d) / f64::from(*c) > 0.05 && !churned.contains(**id)
            })
            .count();
        assert!(high_drop_stayers > 10, "{high_drop_stayers}");
    }
}
