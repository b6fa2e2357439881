//! Every label computed from gold equals the label computed from the
//! producer's ground truth (`--truth-out` writes the same records).

use std::collections::HashMap;

use mlops_trainer::dataset::{self, Label};

use crate::support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_from_gold_equal_labels_from_the_producer_truth() {
    let (lake, truth) = support::world(11, 300, 45).await;
    let version = dataset::latest_gold_version(&lake.location)
        .await
        .expect("read")
        .expect("gold has a version");
    let snapshot = dataset::load(&lake.location, version)
        .await
        .expect("snapshot");
    let newest = snapshot.newest_day().expect("rows");
    let truth: HashMap<&str, Option<chrono::NaiveDate>> = truth
        .iter()
        .map(|t| (t.subscriber_id.as_str(), t.churn_date))
        .collect();
    let from_gold = dataset::churn_days(&snapshot);
    let (mut compared, mut positives, mut censored) = (0, 0, 0);
    for horizon in [7u32, 30] {
        for row in &snapshot.rows {
            let id = snapshot.subscribers[row.subscriber as usize].as_str();
            let expected = dataset::label(row.day, truth[id], horizon, newest);
            let got = dataset::label(row.day, from_gold[row.subscriber as usize], horizon, newest);
            assert_eq!(got, expected, "{id} on {} with horizon {horizon}", row.day);
            compared += 1;
            positives += usize::from(got == Label::Known(true));
            censored += usize::from(got == Label::Censored);
        }
    }
    assert_eq!(compared, 2 * snapshot.rows.len());
    assert!(
        positives > 20,
        "the world has churners to label: {positives}"
    );
    assert!(censored > 0);
    let churners = truth.values().filter(|c| c.is_some()).count();
    assert_eq!(
        from_gold.iter().filter(|c| c.is_some()).count(),
        churners,
        "every churn event reached gold"
    );
}
