//! Watching for a replica that holds no partitions while the topic has lag
//! nobody consumes.
//!
//! A group member can end up without an assignment after a rebalance that
//! went wrong (seen on tansu after members were killed during a join: one
//! stayed ready with no partitions for minutes while the partitions had
//! lag). Such a member is healthy by every other sign, so it watches the
//! group's progress itself: when it has held no partition for the bound and,
//! over that time, some partition has records beyond the group's committed
//! offset and that offset did not move, the partition has no working owner
//! and this member leaves and rejoins the group to force a new assignment.
//! A member that is merely spare (more replicas than partitions) sees the
//! owners' offsets move and stays put.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Per partition: the group's committed offset and the high watermark.
pub type GroupProgress = BTreeMap<i32, PartitionProgress>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionProgress {
    /// Next offset the group will consume (the low watermark when the group
    /// has committed nothing).
    pub committed: i64,
    pub high_watermark: i64,
}

/// What the watch decided at one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Owning partitions, or not yet unassigned for the bound.
    Fine,
    /// Unassigned for the bound: the group's progress is needed to decide.
    NeedProgress,
    /// The group's progress was recorded; look again later.
    Watching,
    /// These partitions lag and their committed offsets stood still for the
    /// whole bound: rejoin.
    Rejoin { stalled: Vec<i32> },
}

pub struct AssignmentWatch {
    bound: Duration,
    unassigned_since: Option<Instant>,
    /// The group's progress when the current watch window started.
    baseline: Option<(Instant, GroupProgress)>,
}

impl AssignmentWatch {
    pub fn new(bound: Duration, now: Instant) -> Self {
        Self {
            bound,
            // A fresh member has no partitions until its first assignment.
            unassigned_since: Some(now),
            baseline: None,
        }
    }

    /// Called periodically with the number of partitions owned, and with the
    /// group's progress when the previous verdict asked for it.
    pub fn check(
        &mut self,
        now: Instant,
        assigned: usize,
        progress: Option<GroupProgress>,
    ) -> Verdict {
        if assigned > 0 {
            self.unassigned_since = None;
            self.baseline = None;
            return Verdict::Fine;
        }
        let since = *self.unassigned_since.get_or_insert(now);
        if now.duration_since(since) < self.bound {
            return Verdict::Fine;
        }
        let Some(progress) = progress else {
            return Verdict::NeedProgress;
        };
        match &self.baseline {
            Some((taken, baseline)) if now.duration_since(*taken) >= self.bound => {
                let stalled = stalled_partitions(baseline, &progress);
                if stalled.is_empty() {
                    self.baseline = Some((now, progress));
                    Verdict::Watching
                } else {
                    // Start over: the rejoin gets its own bound to work.
                    self.unassigned_since = Some(now);
                    self.baseline = None;
                    Verdict::Rejoin { stalled }
                }
            }
            Some(_) => Verdict::Watching,
            None => {
                self.baseline = Some((now, progress));
                Verdict::Watching
            }
        }
    }
}

/// Partitions with records beyond the committed offset whose committed
/// offset did not move between the two observations.
fn stalled_partitions(before: &GroupProgress, now: &GroupProgress) -> Vec<i32> {
    now.iter()
        .filter(|(partition, progress)| {
            progress.high_watermark > progress.committed
                && before
                    .get(partition)
                    .is_some_and(|earlier| earlier.committed == progress.committed)
        })
        .map(|(partition, _)| *partition)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUND: Duration = Duration::from_secs(60);

    fn progress(entries: &[(i32, i64, i64)]) -> GroupProgress {
        entries
            .iter()
            .map(|&(partition, committed, high_watermark)| {
                (
                    partition,
                    PartitionProgress {
                        committed,
                        high_watermark,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn an_owner_is_never_asked_to_rejoin() {
        let start = Instant::now();
        let mut watch = AssignmentWatch::new(BOUND, start);
        for minutes in 0..10 {
            let now = start + Duration::from_secs(60 * minutes);
            assert_eq!(watch.check(now, 2, None), Verdict::Fine);
        }
    }

    #[test]
    fn an_unassigned_member_waits_for_the_bound_before_looking() {
        let start = Instant::now();
        let mut watch = AssignmentWatch::new(BOUND, start);
        assert_eq!(watch.check(start + BOUND / 2, 0, None), Verdict::Fine);
        assert_eq!(watch.check(start + BOUND, 0, None), Verdict::NeedProgress);
    }

    #[test]
    fn lag_that_nobody_consumes_for_the_bound_makes_it_rejoin() {
        let start = Instant::now();
        let mut watch = AssignmentWatch::new(BOUND, start);
        let t1 = start + BOUND;
        let stuck = progress(&[(0, 100, 500), (1, 40, 40)]);
        assert_eq!(watch.check(t1, 0, Some(stuck.clone())), Verdict::Watching);
        // Not a full bound yet since the baseline.
        assert_eq!(
            watch.check(t1 + BOUND / 2, 0, Some(stuck.clone())),
            Verdict::Watching
        );
        assert_eq!(
            watch.check(t1 + BOUND, 0, Some(progress(&[(0, 100, 900), (1, 40, 40)]))),
            Verdict::Rejoin { stalled: vec![0] }
        );
        // After a rejoin the member gets a new bound before it looks again.
        assert_eq!(watch.check(t1 + BOUND + BOUND / 2, 0, None), Verdict::Fine);
    }

    #[test]
    fn a_spare_member_stays_while_the_owners_make_progress() {
        let start = Instant::now();
        let mut watch = AssignmentWatch::new(BOUND, start);
        let t1 = start + BOUND;
        assert_eq!(
            watch.check(t1, 0, Some(progress(&[(0, 100, 500)]))),
            Verdict::Watching
        );
        assert_eq!(
            watch.check(t1 + BOUND, 0, Some(progress(&[(0, 450, 900)]))),
            Verdict::Watching
        );
        // Caught up and idle: no lag, nothing to take over.
        assert_eq!(
            watch.check(t1 + 2 * BOUND, 0, Some(progress(&[(0, 900, 900)]))),
            Verdict::Watching
        );
        assert_eq!(
            watch.check(t1 + 3 * BOUND, 0, Some(progress(&[(0, 900, 900)]))),
            Verdict::Watching
        );
    }

    #[test]
    fn getting_partitions_resets_the_watch() {
        let start = Instant::now();
        let mut watch = AssignmentWatch::new(BOUND, start);
        let t1 = start + BOUND;
        let stuck = progress(&[(0, 100, 500)]);
        assert_eq!(watch.check(t1, 0, Some(stuck.clone())), Verdict::Watching);
        assert_eq!(watch.check(t1 + BOUND / 2, 1, None), Verdict::Fine);
        // Unassigned again: the bound starts anew.
        assert_eq!(watch.check(t1 + BOUND, 0, None), Verdict::Fine);
        assert_eq!(watch.check(t1 + 3 * BOUND / 2, 0, None), Verdict::Fine);
        assert_eq!(watch.check(t1 + 2 * BOUND, 0, None), Verdict::NeedProgress);
    }
}
