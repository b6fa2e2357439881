//! Why a model scored a row as it did: each input column's contribution to
//! the score's log-odds, read from the model's own ONNX graph, so the
//! explanation is of exactly what is served.
//!
//! - The trainer's logistic regression (`Imputer` → `Scaler` → optional
//!   missing-value indicators → `LinearClassifier`, logistic): coefficient ×
//!   standardised value per column, plus the column's indicator term.
//! - A binary `TreeEnsembleClassifier` with a logistic post-transform (the
//!   trainer's gradient-boosted trees): Saabas' path attribution. Walking
//!   each tree, the change in the node's expected value at every split goes
//!   to the split's column. ONNX keeps no node covers, so expected values
//!   are taken over a background population (e.g. today's subscribers).
//!
//! In both, `bias + Σ contributions` is the model's log-odds for the row.
//! Other graphs (e.g. scikit-learn pipelines) get no explainer.

use prost::Message;

use crate::proto::{AttributeProto, GraphProto, ModelProto, NodeProto};

/// Log-odds = `bias` + the sum of `contributions` (one per input column).
#[derive(Clone, Debug, PartialEq)]
pub struct Explanation {
    pub bias: f64,
    pub contributions: Vec<f64>,
}

impl Explanation {
    pub fn log_odds(&self) -> f64 {
        self.bias + self.contributions.iter().sum::<f64>()
    }

    pub fn probability(&self) -> f64 {
        1.0 / (1.0 + (-self.log_odds()).exp())
    }
}

/// What a tree explanation needs of the background population: each
/// node's expected value. Computed once per population with
/// [`Explainer::background`], then shared by every row explained.
#[derive(Clone, Debug, Default)]
pub struct Background {
    /// Per tree, per node.
    expected: Vec<Vec<f64>>,
}

#[derive(Clone, Debug)]
pub enum Explainer {
    Linear(Linear),
    Trees(Trees),
}

#[derive(Clone, Debug)]
pub struct Linear {
    imputed: Vec<f32>,
    offset: Vec<f32>,
    scale: Vec<f32>,
    /// One per design column: the inputs, then the indicators.
    coefficients: Vec<f32>,
    /// The input column of each missing-value indicator.
    indicators: Vec<usize>,
    intercept: f32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

#[derive(Clone, Debug)]
enum TreeNode {
    Split {
        column: usize,
        threshold: f32,
        mode: Mode,
        missing_true: bool,
        on_true: usize,
        on_false: usize,
    },
    Leaf(f64),
}

#[derive(Clone, Debug)]
pub struct Trees {
    /// Node 0 of each tree is its root.
    trees: Vec<Vec<TreeNode>>,
    base: f64,
    width: usize,
}

fn attribute<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn floats(node: &NodeProto, name: &str) -> Option<Vec<f32>> {
    attribute(node, name).map(|a| a.floats.clone())
}

fn ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attribute(node, name).map(|a| a.ints.clone())
}

fn string(node: &NodeProto, name: &str) -> Option<String> {
    attribute(node, name)
        .and_then(|a| a.s.as_ref())
        .map(|s| String::from_utf8_lossy(s).into_owned())
}

fn logistic(node: &NodeProto) -> bool {
    string(node, "post_transform").as_deref() == Some("LOGISTIC")
}

impl Explainer {
    /// The explainer of an ONNX model, or `None` when its graph is not one
    /// of the two shapes explained (or not a valid model).
    pub fn from_onnx(bytes: &[u8]) -> Option<Self> {
        let model = ModelProto::decode(bytes).ok()?;
        let graph = model.graph.as_ref()?;
        let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
        if ops == ["TreeEnsembleClassifier"] {
            Trees::from_node(&graph.node[0]).map(Explainer::Trees)
        } else if ops.first() == Some(&"Imputer") && ops.last() == Some(&"LinearClassifier") {
            Linear::from_graph(graph).map(Explainer::Linear)
        } else {
            None
        }
    }

    /// What the explanation method is called, for the page.
    pub fn method(&self) -> &'static str {
        match self {
            Explainer::Linear(_) => "coefficient × standardised value",
            Explainer::Trees(_) => "contributions along the trees (Saabas)",
        }
    }

    /// The expected values over `rows` (of the model's input width) that
    /// tree explanations take; empty for the linear model, which needs none.
    pub fn background(&self, rows: &[Vec<f32>]) -> Background {
        match self {
            Explainer::Linear(_) => Background::default(),
            Explainer::Trees(trees) => Background {
                expected: trees
                    .trees
                    .iter()
                    .map(|tree| Trees::expected(tree, rows))
                    .collect(),
            },
        }
    }

    /// The contributions for `row` (one value per input column), trees
    /// against `background` from [`Explainer::background`].
    pub fn explain(&self, row: &[f32], background: &Background) -> Explanation {
        match self {
            Explainer::Linear(linear) => linear.explain(row),
            Explainer::Trees(trees) => trees.explain(row, background),
        }
    }
}

impl Linear {
    fn from_graph(graph: &GraphProto) -> Option<Self> {
        let find = |op: &str| graph.node.iter().find(|n| n.op_type == op);
        let imputer = find("Imputer")?;
        let scaler = find("Scaler")?;
        let classifier = find("LinearClassifier")?;
        if !logistic(classifier) {
            return None;
        }
        let imputed = floats(imputer, "imputed_value_floats")?;
        let offset = floats(scaler, "offset")?;
        let scale = floats(scaler, "scale")?;
        let coefficients = floats(classifier, "coefficients")?;
        let intercept = *floats(classifier, "intercepts")?.first()?;
        let indicators: Vec<usize> = graph
            .initializer
            .iter()
            .find(|t| t.name == "indicator_columns")
            .map(|t| t.int64_data.iter().map(|&c| c as usize).collect())
            .unwrap_or_default();
        let width = imputed.len();
        let consistent = offset.len() == width
            && scale.len() == width
            && coefficients.len() == width + indicators.len()
            && indicators.iter().all(|&c| c < width);
        consistent.then_some(Self {
            imputed,
            offset,
            scale,
            coefficients,
            indicators,
            intercept,
        })
    }

    fn explain(&self, row: &[f32]) -> Explanation {
        let width = self.imputed.len();
        let mut contributions: Vec<f64> = (0..width)
            .map(|j| {
                let x = row.get(j).copied().unwrap_or(f32::NAN);
                let x = if x.is_nan() { self.imputed[j] } else { x };
                f64::from(self.coefficients[j]) * f64::from((x - self.offset[j]) * self.scale[j])
            })
            .collect();
        for (k, &column) in self.indicators.iter().enumerate() {
            if row.get(column).is_some_and(|x| x.is_nan()) {
                contributions[column] += f64::from(self.coefficients[width + k]);
            }
        }
        Explanation {
            bias: f64::from(self.intercept),
            contributions,
        }
    }
}

impl Trees {
    fn from_node(node: &NodeProto) -> Option<Self> {
        if !logistic(node) {
            return None;
        }
        let tree_ids = ints(node, "nodes_treeids")?;
        let node_ids = ints(node, "nodes_nodeids")?;
        let features = ints(node, "nodes_featureids")?;
        let values = floats(node, "nodes_values")?;
        let modes = attribute(node, "nodes_modes")?.strings.clone();
        let true_ids = ints(node, "nodes_truenodeids")?;
        let false_ids = ints(node, "nodes_falsenodeids")?;
        let missing = ints(node, "nodes_missing_value_tracks_true").unwrap_or_default();
        let weight_trees = ints(node, "class_treeids")?;
        let weight_nodes = ints(node, "class_nodeids")?;
        let weight_classes = ints(node, "class_ids")?;
        let weights = floats(node, "class_weights")?;
        // Binary with one weight column: the sum is the positive log-odds.
        if weight_classes.iter().any(|&c| c != 0) {
            return None;
        }
        let base = floats(node, "base_values")
            .and_then(|b| b.first().copied())
            .map_or(0.0, f64::from);
        let count = tree_ids.len();
        if [
            node_ids.len(),
            features.len(),
            values.len(),
            modes.len(),
            true_ids.len(),
            false_ids.len(),
        ]
        .iter()
        .any(|&n| n != count)
        {
            return None;
        }
        let tree_count = tree_ids.iter().max().map_or(0, |&t| t as usize + 1);
        // Node ids are per tree; map them to positions.
        let mut index: Vec<std::collections::HashMap<i64, usize>> =
            vec![Default::default(); tree_count];
        let mut trees: Vec<Vec<TreeNode>> = vec![Vec::new(); tree_count];
        for (&t, &id) in tree_ids.iter().zip(&node_ids) {
            let t = t as usize;
            index[t].insert(id, trees[t].len());
            trees[t].push(TreeNode::Leaf(0.0));
        }
        let mut width = 0;
        for i in 0..count {
            let t = tree_ids[i] as usize;
            let at = index[t][&node_ids[i]];
            let mode = match String::from_utf8_lossy(&modes[i]).as_ref() {
                "LEAF" => None,
                "BRANCH_LT" => Some(Mode::Lt),
                "BRANCH_LEQ" => Some(Mode::Le),
                "BRANCH_GT" => Some(Mode::Gt),
                "BRANCH_GTE" => Some(Mode::Ge),
                "BRANCH_EQ" => Some(Mode::Eq),
                "BRANCH_NEQ" => Some(Mode::Ne),
                _ => return None,
            };
            if let Some(mode) = mode {
                let column = features[i] as usize;
                width = width.max(column + 1);
                trees[t][at] = TreeNode::Split {
                    column,
                    threshold: values[i],
                    mode,
                    missing_true: missing.get(i).is_some_and(|&m| m != 0),
                    on_true: *index[t].get(&true_ids[i])?,
                    on_false: *index[t].get(&false_ids[i])?,
                };
            }
        }
        for ((&t, node), &weight) in weight_trees.iter().zip(&weight_nodes).zip(&weights) {
            let t = t as usize;
            let at = *index.get(t)?.get(node)?;
            if let TreeNode::Leaf(v) = &mut trees[t][at] {
                *v += f64::from(weight);
            }
        }
        // Each tree's root (node id 0) must come first, as paths start there.
        if index.iter().any(|ids| ids.get(&0) != Some(&0)) {
            return None;
        }
        Some(Self { trees, base, width })
    }

    /// The path of `row` from the root to a leaf (node positions).
    fn path(tree: &[TreeNode], row: &[f32]) -> Vec<usize> {
        let mut at = 0;
        let mut path = vec![0];
        while let TreeNode::Split {
            column,
            threshold,
            mode,
            missing_true,
            on_true,
            on_false,
        } = &tree[at]
        {
            let x = row.get(*column).copied().unwrap_or(f32::NAN);
            let goes_true = if x.is_nan() {
                *missing_true
            } else {
                match mode {
                    Mode::Lt => x < *threshold,
                    Mode::Le => x <= *threshold,
                    Mode::Gt => x > *threshold,
                    Mode::Ge => x >= *threshold,
                    Mode::Eq => x == *threshold,
                    Mode::Ne => x != *threshold,
                }
            };
            at = if goes_true { *on_true } else { *on_false };
            path.push(at);
            if path.len() > tree.len() {
                break; // a cycle; the graph validated by ORT has none
            }
        }
        path
    }

    /// Each node's expected value over `background` (unreached nodes: the
    /// mean of their children's).
    fn expected(tree: &[TreeNode], background: &[Vec<f32>]) -> Vec<f64> {
        let mut count = vec![0usize; tree.len()];
        let mut sum = vec![0f64; tree.len()];
        for row in background {
            let path = Self::path(tree, row);
            let leaf = match tree[*path.last().unwrap_or(&0)] {
                TreeNode::Leaf(v) => v,
                TreeNode::Split { .. } => 0.0,
            };
            for &n in &path {
                count[n] += 1;
                sum[n] += leaf;
            }
        }
        fn fill(
            tree: &[TreeNode],
            at: usize,
            count: &[usize],
            sum: &[f64],
            out: &mut [f64],
            depth: usize,
        ) -> f64 {
            let value = match &tree[at] {
                TreeNode::Leaf(v) => *v,
                TreeNode::Split {
                    on_true, on_false, ..
                } if depth < tree.len() => {
                    let a = fill(tree, *on_true, count, sum, out, depth + 1);
                    let b = fill(tree, *on_false, count, sum, out, depth + 1);
                    if count[at] > 0 {
                        sum[at] / count[at] as f64
                    } else {
                        (a + b) / 2.0
                    }
                }
                TreeNode::Split { .. } => 0.0,
            };
            out[at] = value;
            value
        }
        let mut out = vec![0f64; tree.len()];
        if !tree.is_empty() {
            fill(tree, 0, &count, &sum, &mut out, 0);
        }
        out
    }

    fn explain(&self, row: &[f32], background: &Background) -> Explanation {
        let mut contributions = vec![0f64; self.width.max(row.len())];
        let mut bias = self.base;
        for (t, tree) in self.trees.iter().enumerate() {
            let Some(expected) = background.expected.get(t).filter(|e| e.len() == tree.len())
            else {
                continue; // a background of another model: nothing to attribute
            };
            bias += expected[0];
            let path = Self::path(tree, row);
            for pair in path.windows(2) {
                if let TreeNode::Split { column, .. } = tree[pair[0]] {
                    contributions[column] += expected[pair[1]] - expected[pair[0]];
                }
            }
        }
        Explanation {
            bias,
            contributions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{AttributeType, TensorProto};

    fn attr_f(name: &str, v: Vec<f32>) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            floats: v,
            r#type: AttributeType::Floats as i32,
            ..Default::default()
        }
    }
    fn attr_i(name: &str, v: Vec<i64>) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            ints: v,
            r#type: AttributeType::Ints as i32,
            ..Default::default()
        }
    }
    fn attr_s(name: &str, v: &str) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            s: Some(v.as_bytes().to_vec()),
            r#type: AttributeType::String as i32,
            ..Default::default()
        }
    }
    fn node(op: &str, attribute: Vec<AttributeProto>) -> NodeProto {
        NodeProto {
            op_type: op.into(),
            attribute,
            ..Default::default()
        }
    }
    fn bytes(nodes: Vec<NodeProto>, initializer: Vec<TensorProto>) -> Vec<u8> {
        ModelProto {
            graph: Some(GraphProto {
                node: nodes,
                initializer,
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec()
    }

    #[test]
    fn linear_contributions_sum_to_the_log_odds() {
        let model = bytes(
            vec![
                node(
                    "Imputer",
                    vec![attr_f("imputed_value_floats", vec![1.0, 10.0])],
                ),
                node(
                    "Scaler",
                    vec![
                        attr_f("offset", vec![1.0, 10.0]),
                        attr_f("scale", vec![0.5, 0.1]),
                    ],
                ),
                node("IsNaN", vec![]),
                node(
                    "LinearClassifier",
                    vec![
                        attr_f("coefficients", vec![2.0, -1.0, 0.7]),
                        attr_f("intercepts", vec![0.25]),
                        attr_s("post_transform", "LOGISTIC"),
                    ],
                ),
            ],
            vec![TensorProto {
                name: "indicator_columns".into(),
                int64_data: vec![1],
                ..Default::default()
            }],
        );
        let explainer = Explainer::from_onnx(&model).expect("explainer");
        let e = explainer.explain(&[3.0, f32::NAN], &explainer.background(&[]));
        // (3 - 1) * 0.5 * 2 = 2; the missing column is imputed to its mean (0)
        // and its indicator adds 0.7.
        assert_eq!(e.bias, 0.25);
        assert!((e.contributions[0] - 2.0).abs() < 1e-9);
        assert!((e.contributions[1] - 0.7).abs() < 1e-6);
        assert!((e.log_odds() - 2.95).abs() < 1e-6);
    }

    #[test]
    fn tree_paths_attribute_the_change_of_expected_value_to_the_split_column() {
        // x0 < 5 → leaf 1.0, else (x1 < 0 → -1.0, else 3.0).
        let ensemble = node(
            "TreeEnsembleClassifier",
            vec![
                attr_i("nodes_treeids", vec![0, 0, 0, 0, 0]),
                attr_i("nodes_nodeids", vec![0, 1, 2, 3, 4]),
                attr_i("nodes_featureids", vec![0, 0, 1, 0, 0]),
                attr_f("nodes_values", vec![5.0, 0.0, 0.0, 0.0, 0.0]),
                AttributeProto {
                    name: "nodes_modes".into(),
                    strings: ["BRANCH_LT", "LEAF", "BRANCH_LT", "LEAF", "LEAF"]
                        .map(|s| s.as_bytes().to_vec())
                        .to_vec(),
                    ..Default::default()
                },
                attr_i("nodes_truenodeids", vec![1, 0, 3, 0, 0]),
                attr_i("nodes_falsenodeids", vec![2, 0, 4, 0, 0]),
                attr_i("class_treeids", vec![0, 0, 0]),
                attr_i("class_nodeids", vec![1, 3, 4]),
                attr_i("class_ids", vec![0, 0, 0]),
                attr_f("class_weights", vec![1.0, -1.0, 3.0]),
                attr_f("base_values", vec![0.5]),
                attr_s("post_transform", "LOGISTIC"),
            ],
        );
        let explainer = Explainer::from_onnx(&bytes(vec![ensemble], vec![])).expect("explainer");
        let background = vec![
            vec![1.0, 0.0],
            vec![9.0, -1.0],
            vec![9.0, 1.0],
            vec![9.0, 1.0],
        ];
        // E[root] = (1 - 1 + 3 + 3) / 4 = 1.5; E[right] = (-1 + 3 + 3) / 3 = 5/3.
        let e = explainer.explain(&[9.0, 1.0], &explainer.background(&background));
        assert!((e.bias - 2.0).abs() < 1e-9, "{e:?}");
        assert!((e.contributions[0] - (5.0 / 3.0 - 1.5)).abs() < 1e-9);
        assert!((e.contributions[1] - (3.0 - 5.0 / 3.0)).abs() < 1e-9);
        assert!((e.log_odds() - 3.5).abs() < 1e-9, "base + the leaf");
    }

    #[test]
    fn other_graphs_are_not_explained() {
        assert!(Explainer::from_onnx(b"not onnx").is_none());
        let other = bytes(vec![node("Relu", vec![])], vec![]);
        assert!(Explainer::from_onnx(&other).is_none());
    }
}
