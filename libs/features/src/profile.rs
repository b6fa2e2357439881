//! What a subscriber is (home region, plan, price, tenure) rather than what
//! it did: from its activation, plan-change and churn events.

use std::collections::HashMap;

use arrow::array::RecordBatch;
use chrono::{DateTime, NaiveDate, Utc};

use crate::Result;
use crate::activity::{dates, longs, micros, strings};

/// A price change, dated by its event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriceChange {
    pub date: NaiveDate,
    /// Event time in microseconds, to order changes within a day.
    pub at_micros: i64,
    pub plan: Option<String>,
    pub old_price_cents: Option<i64>,
    pub new_price_cents: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    pub region: Option<String>,
    pub plan: Option<String>,
    pub device: Option<String>,
    /// When the contract started (not when the platform first saw it).
    pub activated_at: Option<DateTime<Utc>>,
    pub activation_price_cents: Option<i64>,
    /// Ordered by event time.
    pub price_changes: Vec<PriceChange>,
    /// Date of the subscriber's first event.
    pub first_seen: Option<NaiveDate>,
    /// Date of its churn event, if any: it has no feature rows after it.
    pub churned_on: Option<NaiveDate>,
}

impl Profile {
    /// Monthly price at the end of `day`: the last change made on or before
    /// it, else the price before the first change, else the activation price.
    pub fn price_on(&self, day: NaiveDate) -> Option<i64> {
        match self.price_changes.iter().rev().find(|c| c.date <= day) {
            Some(change) => change.new_price_cents,
            None => self
                .price_changes
                .first()
                .and_then(|c| c.old_price_cents)
                .or(self.activation_price_cents),
        }
    }

    /// Plan at the end of `day`.
    pub fn plan_on(&self, day: NaiveDate) -> Option<String> {
        self.price_changes
            .iter()
            .rev()
            .find(|c| c.date <= day && c.plan.is_some())
            .and_then(|c| c.plan.clone())
            .or_else(|| self.plan.clone())
    }

    /// Days since the contract started, at `day`.
    pub fn tenure_days(&self, day: NaiveDate) -> Option<i64> {
        self.activated_at
            .map(|at| (day - at.date_naive()).num_days().max(0))
    }
}

/// Activation events: `subscriber_id`, `event_time` and the `activation_*` columns.
pub fn activations_sql(table: &str) -> String {
    format!(
        "SELECT subscriber_id, event_time, activation_region, activation_plan, \
         activation_monthly_price_cents, activation_device, activation_activated_at \
         FROM {table} WHERE event_kind = 'activation'"
    )
}

/// Plan changes: `subscriber_id`, `event_time`, `event_date`, `plan_new` and the prices.
pub fn plan_changes_sql(table: &str) -> String {
    format!(
        "SELECT subscriber_id, event_time, event_date, plan_new, plan_old_price_cents, \
         plan_new_price_cents FROM {table} WHERE event_kind = 'plan_change'"
    )
}

/// First-seen and churn dates per subscriber.
pub fn spans_sql(table: &str) -> String {
    format!(
        "SELECT subscriber_id, min(event_date) AS first_seen, \
         min(CASE WHEN event_kind = 'churn' THEN event_date END) AS churned_on \
         FROM {table} GROUP BY subscriber_id"
    )
}

/// Builds every subscriber's profile from the results of the three queries.
pub fn from_batches(
    activations: &[RecordBatch],
    plan_changes: &[RecordBatch],
    spans: &[RecordBatch],
) -> Result<HashMap<String, Profile>> {
    let mut profiles: HashMap<String, Profile> = HashMap::new();
    for batch in spans {
        let ids = strings(batch, "subscriber_id")?;
        let first = dates(batch, "first_seen")?;
        let churned = dates(batch, "churned_on")?;
        for row in 0..batch.num_rows() {
            let profile = profiles
                .entry(ids[row].clone().unwrap_or_default())
                .or_default();
            profile.first_seen = first[row];
            profile.churned_on = churned[row];
        }
    }
    // With several activations the earliest wins, whatever the read order.
    let mut activation_time: HashMap<String, i64> = HashMap::new();
    for batch in activations {
        let ids = strings(batch, "subscriber_id")?;
        let times = micros(batch, "event_time")?;
        let regions = strings(batch, "activation_region")?;
        let plans = strings(batch, "activation_plan")?;
        let prices = longs(batch, "activation_monthly_price_cents")?;
        let devices = strings(batch, "activation_device")?;
        let activated = micros(batch, "activation_activated_at")?;
        for row in 0..batch.num_rows() {
            let id = ids[row].clone().unwrap_or_default();
            let at = times[row].unwrap_or_default();
            if activation_time.get(&id).is_some_and(|&seen| seen <= at) {
                continue;
            }
            activation_time.insert(id.clone(), at);
            let profile = profiles.entry(id).or_default();
            profile.region = regions[row].clone();
            profile.plan = plans[row].clone();
            profile.activation_price_cents = prices[row];
            profile.device = devices[row].clone();
            profile.activated_at = activated[row].and_then(DateTime::from_timestamp_micros);
        }
    }
    for batch in plan_changes {
        let ids = strings(batch, "subscriber_id")?;
        let times = micros(batch, "event_time")?;
        let days = dates(batch, "event_date")?;
        let plans = strings(batch, "plan_new")?;
        let old = longs(batch, "plan_old_price_cents")?;
        let new = longs(batch, "plan_new_price_cents")?;
        for row in 0..batch.num_rows() {
            let Some(date) = days[row] else { continue };
            profiles
                .entry(ids[row].clone().unwrap_or_default())
                .or_default()
                .price_changes
                .push(PriceChange {
                    date,
                    at_micros: times[row].unwrap_or_default(),
                    plan: plans[row].clone(),
                    old_price_cents: old[row],
                    new_price_cents: new[row],
                });
        }
    }
    for profile in profiles.values_mut() {
        profile.price_changes.sort_by_key(|c| (c.date, c.at_micros));
    }
    Ok(profiles)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, d).expect("date")
    }

    fn change(d: u32, old: i64, new: i64) -> PriceChange {
        PriceChange {
            date: day(d),
            at_micros: 0,
            plan: None,
            old_price_cents: Some(old),
            new_price_cents: Some(new),
        }
    }

    #[test]
    fn price_follows_changes_in_time() {
        let profile = Profile {
            activation_price_cents: Some(2500),
            price_changes: vec![change(10, 2500, 3000), change(20, 3000, 2700)],
            ..Profile::default()
        };
        assert_eq!(profile.price_on(day(1)), Some(2500));
        assert_eq!(profile.price_on(day(10)), Some(3000));
        assert_eq!(profile.price_on(day(19)), Some(3000));
        assert_eq!(profile.price_on(day(25)), Some(2700));
    }

    #[test]
    fn without_activation_the_first_change_tells_the_earlier_price() {
        let profile = Profile {
            price_changes: vec![change(10, 4000, 4400)],
            ..Profile::default()
        };
        assert_eq!(profile.price_on(day(5)), Some(4000));
        assert_eq!(Profile::default().price_on(day(5)), None);
    }
}
