//! ONNX exports of the trained models: one float32 input `input` `[N, F]`,
//! outputs `label` `[N]` and `probabilities` `[N, 2]` (no `ZipMap`), the
//! column list as JSON under the `features` metadata key.

use crate::gbdt::GbdtModel;
use crate::gbdt::tree::Node;
use crate::linear::LogisticModel;
use crate::onnx::*;

pub const INPUT: &str = "input";
pub const LABEL: &str = "label";
pub const PROBABILITIES: &str = "probabilities";

fn io(width: usize) -> (Vec<ValueInfoProto>, Vec<ValueInfoProto>) {
    (
        vec![value_info(INPUT, FLOAT, &[None, Some(width as i64)])],
        vec![
            value_info(LABEL, INT64, &[None]),
            value_info(PROBABILITIES, FLOAT, &[None, Some(2)]),
        ],
    )
}

/// `Imputer → Scaler → Concat(IsNaN indicators) → LinearClassifier`.
pub fn logistic(model: &LogisticModel, metadata: Vec<(String, String)>) -> Vec<u8> {
    let width = model.means.len();
    let (input, output) = io(width);
    let mut nodes = vec![
        node(
            "Imputer",
            ML_DOMAIN,
            &[INPUT],
            &["imputed"],
            vec![
                attr_floats("imputed_value_floats", model.means.clone()),
                attr_float("replaced_value_float", f32::NAN),
            ],
        ),
        node(
            "Scaler",
            ML_DOMAIN,
            &["imputed"],
            &["scaled"],
            vec![
                attr_floats("offset", model.means.clone()),
                attr_floats("scale", model.scales.clone()),
            ],
        ),
    ];
    let mut initializer = Vec::new();
    let design = if model.indicators.is_empty() {
        "scaled"
    } else {
        initializer.push(int64_tensor(
            "indicator_columns",
            model.indicators.iter().map(|&j| j as i64).collect(),
        ));
        nodes.push(node("IsNaN", "", &[INPUT], &["is_missing"], vec![]));
        nodes.push(node(
            "Cast",
            "",
            &["is_missing"],
            &["is_missing_float"],
            vec![attr_int("to", i64::from(FLOAT))],
        ));
        nodes.push(node(
            "Gather",
            "",
            &["is_missing_float", "indicator_columns"],
            &["indicators"],
            vec![attr_int("axis", 1)],
        ));
        nodes.push(node(
            "Concat",
            "",
            &["scaled", "indicators"],
            &["design"],
            vec![attr_int("axis", 1)],
        ));
        "design"
    };
    nodes.push(node(
        "LinearClassifier",
        ML_DOMAIN,
        &[design],
        &[LABEL, PROBABILITIES],
        vec![
            attr_floats("coefficients", model.coefficients.clone()),
            attr_floats("intercepts", vec![model.intercept]),
            attr_ints("classlabels_ints", vec![0, 1]),
            attr_string("post_transform", "LOGISTIC"),
        ],
    ));
    let graph = GraphProto {
        node: nodes,
        name: "churn_logistic_regression".into(),
        initializer,
        input,
        output,
    };
    model_bytes(
        graph,
        metadata,
        "logistic regression (standardised, L2, missing indicators)",
    )
}

/// One `TreeEnsembleClassifier`: the trees' sum plus the base score through
/// a logistic function.
pub fn gbdt(model: &GbdtModel, width: usize, metadata: Vec<(String, String)>) -> Vec<u8> {
    let (input, output) = io(width);
    let mut a = TreeAttributes::default();
    for (tree_id, tree) in model.trees.iter().enumerate() {
        for (node_id, n) in tree.nodes.iter().enumerate() {
            a.tree_ids.push(tree_id as i64);
            a.node_ids.push(node_id as i64);
            match n {
                Node::Split {
                    column,
                    threshold,
                    missing_left,
                    left,
                    right,
                    ..
                } => {
                    a.feature_ids.push(*column as i64);
                    a.values.push(*threshold);
                    a.modes.push("BRANCH_LT".into());
                    a.true_ids.push(*left as i64);
                    a.false_ids.push(*right as i64);
                    a.missing_tracks_true.push(i64::from(*missing_left));
                }
                Node::Leaf { value } => {
                    a.feature_ids.push(0);
                    a.values.push(0.0);
                    a.modes.push("LEAF".into());
                    a.true_ids.push(0);
                    a.false_ids.push(0);
                    a.missing_tracks_true.push(0);
                    a.class_tree_ids.push(tree_id as i64);
                    a.class_node_ids.push(node_id as i64);
                    a.class_ids.push(0);
                    a.class_weights.push(*value as f32);
                }
            }
        }
    }
    let ensemble = node(
        "TreeEnsembleClassifier",
        ML_DOMAIN,
        &[INPUT],
        &[LABEL, PROBABILITIES],
        vec![
            attr_ints("nodes_treeids", a.tree_ids),
            attr_ints("nodes_nodeids", a.node_ids),
            attr_ints("nodes_featureids", a.feature_ids),
            attr_floats("nodes_values", a.values),
            attr_strings("nodes_modes", a.modes),
            attr_ints("nodes_truenodeids", a.true_ids),
            attr_ints("nodes_falsenodeids", a.false_ids),
            attr_ints("nodes_missing_value_tracks_true", a.missing_tracks_true),
            attr_ints("class_treeids", a.class_tree_ids),
            attr_ints("class_nodeids", a.class_node_ids),
            attr_ints("class_ids", a.class_ids),
            attr_floats("class_weights", a.class_weights),
            attr_ints("classlabels_int64s", vec![0, 1]),
            attr_floats("base_values", vec![model.base_score as f32]),
            attr_string("post_transform", "LOGISTIC"),
        ],
    );
    let graph = GraphProto {
        node: vec![ensemble],
        name: "churn_gbdt".into(),
        initializer: Vec::new(),
        input,
        output,
    };
    model_bytes(
        graph,
        metadata,
        "gradient-boosted trees (histogram, leaf-wise)",
    )
}

#[derive(Default)]
struct TreeAttributes {
    tree_ids: Vec<i64>,
    node_ids: Vec<i64>,
    feature_ids: Vec<i64>,
    values: Vec<f32>,
    modes: Vec<String>,
    true_ids: Vec<i64>,
    false_ids: Vec<i64>,
    missing_tracks_true: Vec<i64>,
    class_tree_ids: Vec<i64>,
    class_node_ids: Vec<i64>,
    class_ids: Vec<i64>,
    class_weights: Vec<f32>,
}

fn model_bytes(graph: GraphProto, metadata: Vec<(String, String)>, doc: &str) -> Vec<u8> {
    model(graph, metadata, doc)
}
