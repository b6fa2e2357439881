//! Step two: the features as of a day, from the profile and the daily
//! activity of the long window ending that day.

use chrono::{Duration, NaiveDate};
use serde::Serialize;

use crate::{DailyActivity, Profile};

/// The short window: the as-of day and the 6 days before it.
pub const SHORT_WINDOW_DAYS: i64 = 7;
/// The long window: the as-of day and the 29 days before it. Every feature
/// depends on at most this much history (plus the profile).
pub const LONG_WINDOW_DAYS: i64 = 30;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeatureKind {
    /// A count, an amount in cents or a number of days.
    Long,
    /// A rate, ratio or volume in MB.
    Double,
}

/// A feature's name (its column in the gold tables), type and meaning.
#[derive(Clone, Copy, Debug)]
pub struct FeatureDef {
    pub name: &'static str,
    pub kind: FeatureKind,
    /// Whether it can be unknown (profile features without an activation).
    pub nullable: bool,
    pub description: &'static str,
}

const fn def(
    name: &'static str,
    kind: FeatureKind,
    nullable: bool,
    description: &'static str,
) -> FeatureDef {
    FeatureDef {
        name,
        kind,
        nullable,
        description,
    }
}

/// Every feature, in [`FeatureVector`] field order (also the model's input order).
pub const FEATURES: &[FeatureDef] = {
    use FeatureKind::*;
    &[
        def("tenure_days", Long, true, "days since the contract started"),
        def(
            "plan_price_cents",
            Long,
            true,
            "monthly plan price at the end of the day",
        ),
        def(
            "price_change_30d_cents",
            Long,
            true,
            "plan price now minus plan price 30 days earlier",
        ),
        def("calls_7d", Long, false, "calls in the last 7 days"),
        def("calls_30d", Long, false, "calls in the last 30 days"),
        def(
            "dropped_call_rate_7d",
            Double,
            false,
            "dropped calls / calls over 7 days (0 without calls)",
        ),
        def(
            "dropped_call_rate_30d",
            Double,
            false,
            "dropped calls / calls over 30 days (0 without calls)",
        ),
        def("sms_30d", Long, false, "SMS sent in the last 30 days"),
        def(
            "data_mb_7d",
            Double,
            false,
            "data volume (MB, up and down) over 7 days",
        ),
        def(
            "data_mb_30d",
            Double,
            false,
            "data volume (MB, up and down) over 30 days",
        ),
        def(
            "data_trend",
            Double,
            false,
            "daily data volume of the last 7 days over that of the last 30 (0 without data)",
        ),
        def("top_ups_30d", Long, false, "top-ups in the last 30 days"),
        def(
            "top_up_cents_30d",
            Long,
            false,
            "amount topped up in the last 30 days",
        ),
        def(
            "tickets_30d",
            Long,
            false,
            "support tickets opened in the last 30 days",
        ),
        def(
            "unresolved_tickets_30d",
            Long,
            false,
            "tickets of the last 30 days left open or unresolved",
        ),
        def(
            "active_days_30d",
            Long,
            false,
            "days with usage in the last 30 days",
        ),
        def(
            "days_since_last_activity",
            Long,
            false,
            "days since the last day with usage (30 when none in the last 30 days)",
        ),
    ]
};

/// A subscriber's features as of one day (see [`FEATURES`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FeatureVector {
    pub tenure_days: Option<i64>,
    pub plan_price_cents: Option<i64>,
    pub price_change_30d_cents: Option<i64>,
    pub calls_7d: i64,
    pub calls_30d: i64,
    pub dropped_call_rate_7d: f64,
    pub dropped_call_rate_30d: f64,
    pub sms_30d: i64,
    pub data_mb_7d: f64,
    pub data_mb_30d: f64,
    pub data_trend: f64,
    pub top_ups_30d: i64,
    pub top_up_cents_30d: i64,
    pub tickets_30d: i64,
    pub unresolved_tickets_30d: i64,
    pub active_days_30d: i64,
    pub days_since_last_activity: i64,
}

/// A feature's value for a column: integer or floating point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    Long(Option<i64>),
    Double(f64),
}

impl FeatureVector {
    /// The values in [`FEATURES`] order.
    pub fn values(&self) -> [Value; 17] {
        use Value::*;
        [
            Long(self.tenure_days),
            Long(self.plan_price_cents),
            Long(self.price_change_30d_cents),
            Long(Some(self.calls_7d)),
            Long(Some(self.calls_30d)),
            Double(self.dropped_call_rate_7d),
            Double(self.dropped_call_rate_30d),
            Long(Some(self.sms_30d)),
            Double(self.data_mb_7d),
            Double(self.data_mb_30d),
            Double(self.data_trend),
            Long(Some(self.top_ups_30d)),
            Long(Some(self.top_up_cents_30d)),
            Long(Some(self.tickets_30d)),
            Long(Some(self.unresolved_tickets_30d)),
            Long(Some(self.active_days_30d)),
            Long(Some(self.days_since_last_activity)),
        ]
    }

    /// Sets the feature at `index` of [`FEATURES`] (a what-if edit):
    /// `None` is unknown, allowed for nullable features only; integer
    /// features take whole numbers only.
    pub fn set(&mut self, index: usize, value: Option<f64>) -> Result<(), String> {
        let def = FEATURES
            .get(index)
            .ok_or_else(|| format!("there is no feature {index}"))?;
        let long = || -> Result<Option<i64>, String> {
            match value {
                None if def.nullable => Ok(None),
                None => Err(format!("{} cannot be unknown", def.name)),
                Some(v) if v.fract() == 0.0 && v.abs() < 9e15 => Ok(Some(v as i64)),
                Some(v) => Err(format!("{} takes whole numbers, not {v}", def.name)),
            }
        };
        let double = || -> Result<f64, String> {
            match value {
                Some(v) if v.is_finite() => Ok(v),
                Some(v) => Err(format!("{} must be a finite number, not {v}", def.name)),
                None => Err(format!("{} cannot be unknown", def.name)),
            }
        };
        let required = |v: Option<i64>| v.ok_or_else(|| format!("{} cannot be unknown", def.name));
        match index {
            0 => self.tenure_days = long()?,
            1 => self.plan_price_cents = long()?,
            2 => self.price_change_30d_cents = long()?,
            3 => self.calls_7d = required(long()?)?,
            4 => self.calls_30d = required(long()?)?,
            5 => self.dropped_call_rate_7d = double()?,
            6 => self.dropped_call_rate_30d = double()?,
            7 => self.sms_30d = required(long()?)?,
            8 => self.data_mb_7d = double()?,
            9 => self.data_mb_30d = double()?,
            10 => self.data_trend = double()?,
            11 => self.top_ups_30d = required(long()?)?,
            12 => self.top_up_cents_30d = required(long()?)?,
            13 => self.tickets_30d = required(long()?)?,
            14 => self.unresolved_tickets_30d = required(long()?)?,
            15 => self.active_days_30d = required(long()?)?,
            16 => self.days_since_last_activity = required(long()?)?,
            _ => return Err(format!("{} cannot be edited", def.name)),
        }
        Ok(())
    }

    /// The values as model inputs (`f32`, unknown as NaN), in [`FEATURES`] order.
    pub fn as_model_input(&self) -> Vec<f32> {
        self.values()
            .iter()
            .map(|value| match *value {
                Value::Long(v) => v.map_or(f32::NAN, |v| v as f32),
                Value::Double(v) => v as f32,
            })
            .collect()
    }
}

/// The features of a subscriber as of the end of `as_of`. `history` may hold
/// any of the subscriber's days, in any order: days outside the long window
/// ending at `as_of` are ignored.
pub fn compute(as_of: NaiveDate, profile: &Profile, history: &[DailyActivity]) -> FeatureVector {
    let long_start = as_of - Duration::days(LONG_WINDOW_DAYS - 1);
    let short_start = as_of - Duration::days(SHORT_WINDOW_DAYS - 1);
    let mut long = DailyActivity::default();
    let mut short = DailyActivity::default();
    let mut active_days = 0;
    let mut last_active: Option<NaiveDate> = None;
    for day in history
        .iter()
        .filter(|d| d.date >= long_start && d.date <= as_of)
    {
        long.add(day);
        if day.date >= short_start {
            short.add(day);
        }
        if day.is_active() {
            active_days += 1;
            last_active = last_active.max(Some(day.date));
        }
    }
    let rate = |dropped: i64, calls: i64| {
        if calls == 0 {
            0.0
        } else {
            dropped as f64 / calls as f64
        }
    };
    let megabytes = |bytes: i64| bytes as f64 / 1_000_000.0;
    let data_trend = if long.data_bytes == 0 {
        0.0
    } else {
        (short.data_bytes as f64 / SHORT_WINDOW_DAYS as f64)
            / (long.data_bytes as f64 / LONG_WINDOW_DAYS as f64)
    };
    let price = profile.price_on(as_of);
    let price_before = profile.price_on(as_of - Duration::days(LONG_WINDOW_DAYS));
    FeatureVector {
        tenure_days: profile.tenure_days(as_of),
        plan_price_cents: price,
        price_change_30d_cents: price.zip(price_before).map(|(now, then)| now - then),
        calls_7d: short.calls,
        calls_30d: long.calls,
        dropped_call_rate_7d: rate(short.dropped_calls, short.calls),
        dropped_call_rate_30d: rate(long.dropped_calls, long.calls),
        sms_30d: long.sms,
        data_mb_7d: megabytes(short.data_bytes),
        data_mb_30d: megabytes(long.data_bytes),
        data_trend,
        top_ups_30d: long.top_ups,
        top_up_cents_30d: long.top_up_cents,
        tickets_30d: long.tickets,
        unresolved_tickets_30d: long.unresolved_tickets,
        active_days_30d: active_days,
        days_since_last_activity: last_active
            .map_or(LONG_WINDOW_DAYS, |day| (as_of - day).num_days()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_feature_can_be_set_by_index_and_bad_values_are_named() {
        let mut v = FeatureVector::default();
        for (i, def) in FEATURES.iter().enumerate() {
            v.set(i, Some(3.0)).expect(def.name);
            assert_eq!(v.as_model_input()[i], 3.0, "{}", def.name);
        }
        v.set(0, None).expect("tenure can be unknown");
        assert!(v.as_model_input()[0].is_nan());
        assert_eq!(
            v.set(3, None).expect_err("refused"),
            "calls_7d cannot be unknown"
        );
        assert_eq!(
            v.set(3, Some(1.5)).expect_err("refused"),
            "calls_7d takes whole numbers, not 1.5"
        );
        assert!(v.set(17, Some(1.0)).is_err());
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, d).expect("date")
    }

    #[test]
    fn windows_include_the_as_of_day_and_nothing_after_it() {
        let history = [
            DailyActivity {
                date: day(1),
                calls: 10,
                dropped_calls: 5,
                ..Default::default()
            },
            DailyActivity {
                date: day(25),
                calls: 4,
                dropped_calls: 1,
                data_bytes: 7_000_000,
                ..Default::default()
            },
            DailyActivity {
                date: day(31),
                calls: 100,
                ..Default::default()
            },
        ];
        let features = compute(day(30), &Profile::default(), &history);
        assert_eq!(features.calls_30d, 14, "day 1 is the first day of the 30");
        assert_eq!(features.calls_7d, 4);
        assert_eq!(features.dropped_call_rate_30d, 6.0 / 14.0);
        assert_eq!(features.dropped_call_rate_7d, 0.25);
        assert_eq!(features.data_mb_7d, 7.0);
        assert!((features.data_trend - 30.0 / 7.0).abs() < 1e-12);
        assert_eq!(features.days_since_last_activity, 5);
        assert_eq!(features.active_days_30d, 2);

        let later = compute(day(31) + Duration::days(30), &Profile::default(), &history);
        assert_eq!(later.calls_30d, 0);
        assert_eq!(later.days_since_last_activity, LONG_WINDOW_DAYS);
        assert_eq!(later.dropped_call_rate_30d, 0.0);
    }

    #[test]
    fn every_feature_is_listed_once_in_order() {
        let values = FeatureVector::default().values();
        assert_eq!(values.len(), FEATURES.len());
        for (value, def) in values.iter().zip(FEATURES) {
            let kind = match value {
                Value::Long(_) => FeatureKind::Long,
                Value::Double(_) => FeatureKind::Double,
            };
            assert_eq!(kind, def.kind, "{}", def.name);
        }
        let mut names: Vec<_> = FEATURES.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FEATURES.len());
        let input = FeatureVector::default().as_model_input();
        assert!(input[0].is_nan(), "unknown tenure is NaN");
    }
}
