//! Transform settings, all from the environment (see README, "transform").

use std::net::SocketAddr;
use std::time::Duration;

use mlops_lake::LakeLocation;
use mlops_runtime::{ConfigError, EnvReader, ServiceConfig, TelemetryConfig};

#[derive(Clone, Debug)]
pub struct TransformConfig {
    /// `LAKE_URL`, default `data/lake` (a local directory).
    pub lake: LakeLocation,
    /// `TRANSFORM_ONCE` (or `--once`), default false: run once and exit (for
    /// scheduled jobs) instead of polling.
    pub once: bool,
    /// `TRANSFORM_POLL_INTERVAL_SECONDS`, default 60: pause between runs in
    /// continuous mode.
    pub poll_interval: Duration,
    /// `TRANSFORM_LATE_HORIZON_DAYS`, default 14: an event dated more than
    /// this many days before the newest event date in silver is quarantined
    /// as `too_late` instead of rewriting old partitions.
    pub late_horizon_days: u32,
    /// `TRANSFORM_DEDUP_HORIZON_DAYS`, default 2: a copy of an event is
    /// recognised when the kept copy's event date is at most this many days
    /// before its own (copies of one event normally share their event time).
    pub dedup_horizon_days: u32,
    /// `TRANSFORM_MAX_CLOCK_SKEW_SECONDS`, default 3600: an event time more
    /// than this after the record's ingestion time is `future_event_time`.
    pub max_clock_skew_seconds: u32,
    /// `ADMIN_ADDR`, default `0.0.0.0:9103`.
    pub admin_addr: SocketAddr,
    pub telemetry: TelemetryConfig,
}

impl TransformConfig {
    pub fn from_env(env: &mut EnvReader) -> Result<Self, ConfigError> {
        let lake = env.value::<LakeLocation>("LAKE_URL", "data/lake");
        let once = env.flag("TRANSFORM_ONCE", false);
        let poll = env.parse("TRANSFORM_POLL_INTERVAL_SECONDS", 60u64);
        if poll == 0 {
            env.problem("TRANSFORM_POLL_INTERVAL_SECONDS must be at least 1");
        }
        let late_horizon_days = env.parse("TRANSFORM_LATE_HORIZON_DAYS", 14u32);
        if late_horizon_days == 0 {
            env.problem("TRANSFORM_LATE_HORIZON_DAYS must be at least 1");
        }
        let dedup_horizon_days = env.parse("TRANSFORM_DEDUP_HORIZON_DAYS", 2u32);
        if dedup_horizon_days > late_horizon_days {
            env.problem(format!(
                "TRANSFORM_DEDUP_HORIZON_DAYS ({dedup_horizon_days}) must not exceed \
                 TRANSFORM_LATE_HORIZON_DAYS ({late_horizon_days})"
            ));
        }
        let max_clock_skew_seconds = env.parse("TRANSFORM_MAX_CLOCK_SKEW_SECONDS", 3_600u32);
        let admin_addr = env.parse("ADMIN_ADDR", SocketAddr::from(([0, 0, 0, 0], 9103)));
        let telemetry = TelemetryConfig::from_env(env, "transform");
        env.finish()?;
        Ok(Self {
            lake: lake.ok_or_else(|| ConfigError::invalid("LAKE_URL"))?,
            once,
            poll_interval: Duration::from_secs(poll),
            late_horizon_days,
            dedup_horizon_days,
            max_clock_skew_seconds,
            admin_addr,
            telemetry,
        })
    }
}

impl ServiceConfig for TransformConfig {
    fn from_env(env: &mut EnvReader) -> Result<Self, ConfigError> {
        Self::from_env(env)
    }
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
    fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> EnvReader {
        EnvReader::from_pairs(pairs)
    }

    #[test]
    fn defaults() {
        let config = TransformConfig::from_env(&mut env(&[])).expect("valid");
        assert_eq!(config.poll_interval, Duration::from_secs(60));
        assert_eq!(config.late_horizon_days, 14);
        assert_eq!(config.dedup_horizon_days, 2);
        assert_eq!(config.max_clock_skew_seconds, 3_600);
        assert_eq!(config.admin_addr.port(), 9103);
    }

    #[test]
    fn every_problem_is_listed() {
        let err = TransformConfig::from_env(&mut env(&[
            ("LAKE_URL", "ftp://x/y"),
            ("TRANSFORM_POLL_INTERVAL_SECONDS", "0"),
            ("TRANSFORM_LATE_HORIZON_DAYS", "3"),
            ("TRANSFORM_DEDUP_HORIZON_DAYS", "5"),
            ("TRANSFORM_MAX_CLOCK_SKEW_SECONDS", "-1"),
        ]))
        .expect_err("invalid");
        let text = err.to_string();
        for needle in [
            "LAKE_URL",
            "TRANSFORM_POLL_INTERVAL_SECONDS",
            "TRANSFORM_DEDUP_HORIZON_DAYS (5) must not exceed",
            "TRANSFORM_MAX_CLOCK_SKEW_SECONDS",
        ] {
            assert!(text.contains(needle), "{needle} missing from: {text}");
        }
    }
}
