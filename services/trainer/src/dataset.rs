//! The training set: gold at one pinned Delta version, labelled and split by
//! time.
//!
//! **Label.** For the row (subscriber, day `d`), the label is 1 when the
//! subscriber's churn event (the gold row with `churned = true`) falls in
//! `(d, d + H]`, `H` = the horizon. Rows on or after the churn day are not
//! training rows. A row whose window runs past the snapshot's newest day
//! (`d + H > newest`) is censored and left out, never labelled 0.
//!
//! **Split.** Labelled days run to `newest - H`. The test period is the last
//! `test_days` of them. Training rows end `H` days before the test period
//! starts (`d <= test_start - H`), so no churn event labels a training row
//! and a test row. Training subscribers are split by a seeded hash into fit
//! and validation rows (early stopping, calibration): validation shares no
//! subscriber, hence no churn event, with the fit rows, and no day with test.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use chrono::{Duration, NaiveDate};
use futures::StreamExt;
use mlops_features::FEATURES;
use mlops_features::row::from_record_batch;
use mlops_lake::lineage::{self, Lineage};
use mlops_lake::{LakeLocation, query, subscriber_features};
use tracing::info;

use crate::{Error, Result};

pub const FEATURE_COUNT: usize = 17;
const _: () = assert!(FEATURES.len() == FEATURE_COUNT);

/// One gold row, compact: ids are indices into the snapshot's vocabularies.
#[derive(Clone, Debug)]
pub struct GoldRow {
    pub subscriber: u32,
    pub day: NaiveDate,
    pub region: Option<u16>,
    pub plan: Option<u16>,
    pub churned: bool,
    /// `libs/features`' model input (unknown values as NaN).
    pub features: [f32; FEATURE_COUNT],
}

/// Gold at one version, rows sorted by (day, subscriber id).
#[derive(Debug)]
pub struct Snapshot {
    pub lineage: Lineage,
    pub table_uri: String,
    pub rows: Vec<GoldRow>,
    /// Sorted subscriber ids; `GoldRow::subscriber` indexes them.
    pub subscribers: Vec<String>,
    pub regions: Vec<String>,
    pub plans: Vec<String>,
}

impl Snapshot {
    pub fn newest_day(&self) -> Option<NaiveDate> {
        self.rows.last().map(|r| r.day)
    }
    pub fn oldest_day(&self) -> Option<NaiveDate> {
        self.rows.first().map(|r| r.day)
    }
}

/// The newest version of gold, or `None` before its first commit.
pub async fn latest_gold_version(lake: &LakeLocation) -> Result<Option<u64>> {
    let spec = subscriber_features::daily_spec();
    let table = spec.open_if_exists(lake).await?;
    Ok(table.and_then(|t| t.version()))
}

/// Reads `gold/subscriber_features_daily` at `version` with its lineage.
pub async fn load(lake: &LakeLocation, version: u64) -> Result<Snapshot> {
    let started = Instant::now();
    let spec = subscriber_features::daily_spec();
    let table = lineage::open_at(lake, &spec, version).await?;
    let lineage = lineage::of_gold(lake, &spec, version).await?;
    let ctx = query::session()?;
    query::register(&ctx, "gold", &table, None).await?;
    let frame = ctx
        .sql("SELECT * FROM gold")
        .await
        .map_err(mlops_lake::Error::from)?;
    let mut stream = frame
        .execute_stream()
        .await
        .map_err(mlops_lake::Error::from)?;
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut region_ids: HashMap<String, u16> = HashMap::new();
    let mut plan_ids: HashMap<String, u16> = HashMap::new();
    let mut rows = Vec::new();
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(mlops_lake::Error::from)?;
        for row in from_record_batch(&batch)? {
            let next = ids.len() as u32;
            let subscriber = *ids.entry(row.subscriber_id).or_insert(next);
            let intern = |map: &mut HashMap<String, u16>, value: Option<String>| {
                value.map(|v| {
                    let next = map.len() as u16;
                    *map.entry(v).or_insert(next)
                })
            };
            let region = intern(&mut region_ids, row.region);
            let plan = intern(&mut plan_ids, row.plan);
            let input = row.features.as_model_input();
            let mut features = [0f32; FEATURE_COUNT];
            features.copy_from_slice(&input);
            rows.push(GoldRow {
                subscriber,
                day: row.as_of_date,
                region,
                plan,
                churned: row.churned,
                features,
            });
        }
    }
    // Deterministic order and ids whatever order the files were read in.
    let (subscribers, subscriber_map) = sorted_vocabulary(ids);
    let (regions, region_map) = sorted_vocabulary(region_ids);
    let (plans, plan_map) = sorted_vocabulary(plan_ids);
    for row in &mut rows {
        row.subscriber = subscriber_map[row.subscriber as usize];
        row.region = row.region.map(|r| region_map[r as usize] as u16);
        row.plan = row.plan.map(|p| plan_map[p as usize] as u16);
    }
    rows.sort_by_key(|r| (r.day, r.subscriber));
    info!(
        gold_version = version,
        rows = rows.len(),
        subscribers = subscribers.len(),
        seconds = started.elapsed().as_secs_f64(),
        "snapshot read"
    );
    Ok(Snapshot {
        lineage,
        table_uri: lake.table_url(spec.name).to_string(),
        rows,
        subscribers,
        regions,
        plans,
    })
}

/// Sorted values and, per interim id, the value's index in that order.
fn sorted_vocabulary<T: Copy + Into<u32>>(map: HashMap<String, T>) -> (Vec<String>, Vec<u32>) {
    let mut entries: Vec<(String, u32)> = map.into_iter().map(|(k, v)| (k, v.into())).collect();
    entries.sort();
    let mut remap = vec![0u32; entries.len()];
    for (rank, (_, interim)) in entries.iter().enumerate() {
        remap[*interim as usize] = rank as u32;
    }
    (entries.into_iter().map(|(k, _)| k).collect(), remap)
}

/// Where a gold row ends up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Fit,
    Validation,
    Test,
}

/// A labelled row: the index of its gold row, its label and its role.
#[derive(Clone, Copy, Debug)]
pub struct Example {
    pub row: u32,
    pub label: bool,
    pub role: Role,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelCounts {
    pub rows: u64,
    pub on_or_after_churn: u64,
    pub censored: u64,
    pub labelled: u64,
    pub positives: u64,
    /// Labelled rows dropped between training and test (the gap).
    pub gap: u64,
}

/// The time boundaries of a split, inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Periods {
    pub newest_day: NaiveDate,
    pub train_start: NaiveDate,
    pub train_end: NaiveDate,
    pub test_start: NaiveDate,
    pub test_end: NaiveDate,
}

#[derive(Clone, Debug)]
pub struct SplitConfig {
    pub horizon_days: u32,
    pub test_days: u32,
    pub validation_fraction: f64,
    pub seed: u64,
}

#[derive(Debug)]
pub struct LabelledSet {
    pub examples: Vec<Example>,
    pub counts: LabelCounts,
    pub periods: Periods,
}

impl LabelledSet {
    pub fn of(&self, role: Role) -> impl Iterator<Item = &Example> {
        self.examples.iter().filter(move |e| e.role == role)
    }
    pub fn count(&self, role: Role) -> (usize, usize) {
        let (mut n, mut positives) = (0, 0);
        for e in self.of(role) {
            n += 1;
            positives += usize::from(e.label);
        }
        (n, positives)
    }
}

/// Each subscriber's churn day: the first gold row marked `churned`.
pub fn churn_days(snapshot: &Snapshot) -> Vec<Option<NaiveDate>> {
    let mut days = vec![None; snapshot.subscribers.len()];
    for row in snapshot.rows.iter().filter(|r| r.churned) {
        let slot: &mut Option<NaiveDate> = &mut days[row.subscriber as usize];
        *slot = Some(slot.map_or(row.day, |d: NaiveDate| d.min(row.day)));
    }
    days
}

/// The label of a row as of `day` for a subscriber who churns on `churn`:
/// `None` when the row is not a training row (on or after churn) or is
/// censored (its window ends after `newest`).
pub fn label(
    day: NaiveDate,
    churn: Option<NaiveDate>,
    horizon_days: u32,
    newest: NaiveDate,
) -> Label {
    if churn.is_some_and(|c| day >= c) {
        return Label::AfterChurn;
    }
    let window_end = day + Duration::days(i64::from(horizon_days));
    if window_end > newest {
        return Label::Censored;
    }
    Label::Known(churn.is_some_and(|c| c > day && c <= window_end))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Label {
    AfterChurn,
    Censored,
    Known(bool),
}

/// Labels every row and assigns it to fit, validation or test.
pub fn label_and_split(snapshot: &Snapshot, config: &SplitConfig) -> Result<LabelledSet> {
    let (Some(oldest), Some(newest)) = (snapshot.oldest_day(), snapshot.newest_day()) else {
        return Err(Error::Data(format!(
            "gold version {} has no rows: run the pipeline until gold has data",
            snapshot.lineage.version
        )));
    };
    let h = i64::from(config.horizon_days);
    let test_days = i64::from(config.test_days);
    let last_labelled = newest - Duration::days(h);
    let test_start = last_labelled - Duration::days(test_days - 1);
    let train_end = test_start - Duration::days(h);
    let span = (newest - oldest).num_days() + 1;
    if train_end < oldest {
        let needed = 2 * h + test_days + 1;
        return Err(Error::Data(format!(
            "gold version {} spans {span} days ({oldest} to {newest}); with a {h}-day horizon and \
             {test_days} test days the trainer needs at least {needed} days",
            snapshot.lineage.version
        )));
    }
    let periods = Periods {
        newest_day: newest,
        train_start: oldest,
        train_end,
        test_start,
        test_end: last_labelled,
    };
    let churn = churn_days(snapshot);
    let validation = validation_subscribers(snapshot, config);
    let mut counts = LabelCounts::default();
    let mut examples = Vec::new();
    for (index, row) in snapshot.rows.iter().enumerate() {
        counts.rows += 1;
        let known = match label(
            row.day,
            churn[row.subscriber as usize],
            config.horizon_days,
            newest,
        ) {
            Label::AfterChurn => {
                counts.on_or_after_churn += 1;
                continue;
            }
            Label::Censored => {
                counts.censored += 1;
                continue;
            }
            Label::Known(label) => label,
        };
        counts.labelled += 1;
        counts.positives += u64::from(known);
        let role = if row.day >= test_start {
            Role::Test
        } else if row.day <= train_end {
            if validation.contains(&row.subscriber) {
                Role::Validation
            } else {
                Role::Fit
            }
        } else {
            counts.gap += 1;
            continue;
        };
        examples.push(Example {
            row: index as u32,
            label: known,
            role,
        });
    }
    Ok(LabelledSet {
        examples,
        counts,
        periods,
    })
}

/// A seeded, stable choice of validation subscribers.
fn validation_subscribers(snapshot: &Snapshot, config: &SplitConfig) -> BTreeSet<u32> {
    let threshold = (config.validation_fraction.clamp(0.0, 1.0) * u64::MAX as f64) as u64;
    snapshot
        .subscribers
        .iter()
        .enumerate()
        .filter(|(_, id)| stable_hash(id.as_bytes(), config.seed) < threshold)
        .map(|(i, _)| i as u32)
        .collect()
}

/// FNV-1a, seeded: the same on every platform and release.
pub fn stable_hash(bytes: &[u8], seed: u64) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    // Final avalanche so nearby ids spread over the whole range.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^ (hash >> 33)
}

/// The newest `as_of_date` of gold at `version`, from its partitions (no
/// data file is read).
pub async fn newest_day(lake: &LakeLocation, version: u64) -> Result<Option<NaiveDate>> {
    let table = lineage::open_at(lake, &subscriber_features::daily_spec(), version).await?;
    let days = mlops_lake::changes::partition_dates(&table, subscriber_features::AS_OF_DATE)?;
    Ok(days.last().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: i64) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, 1).expect("date") + Duration::days(d)
    }

    #[test]
    fn labels_follow_the_horizon_and_censoring() {
        let newest = day(100);
        let churn = Some(day(50));
        assert_eq!(
            label(day(19), churn, 30, newest),
            Label::Known(false),
            "churn is 31 days out"
        );
        assert_eq!(
            label(day(20), churn, 30, newest),
            Label::Known(true),
            "churn on the window's last day"
        );
        assert_eq!(label(day(49), churn, 30, newest), Label::Known(true));
        assert_eq!(label(day(50), churn, 30, newest), Label::AfterChurn);
        assert_eq!(label(day(70), None, 30, newest), Label::Known(false));
        assert_eq!(
            label(day(71), None, 30, newest),
            Label::Censored,
            "window ends after the newest day"
        );
        assert_eq!(
            label(day(80), Some(day(90)), 30, newest),
            Label::Censored,
            "censored even when the churn is already visible"
        );
    }

    #[test]
    fn the_hash_is_stable_and_seeded() {
        assert_eq!(
            stable_hash(b"sub-000001", 42),
            stable_hash(b"sub-000001", 42)
        );
        assert_ne!(
            stable_hash(b"sub-000001", 42),
            stable_hash(b"sub-000001", 43)
        );
        let below = (0..10_000)
            .filter(|i| stable_hash(format!("sub-{i:06}").as_bytes(), 7) < u64::MAX / 5)
            .count();
        assert!((1_700..2_300).contains(&below), "about a fifth: {below}");
    }
}
