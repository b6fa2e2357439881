//! One regression tree on gradient histograms, grown leaf-wise (best gain
//! first) up to a number of leaves, LightGBM-style: a node's histogram is
//! built for the smaller child only; the larger child's is the parent's
//! minus it.

use std::time::{Duration, Instant};

use super::bins::BinMapper;
use super::histogram::Groups;
pub use super::histogram::Sums;

#[derive(Clone, Debug)]
pub struct GrowParams {
    pub max_leaves: usize,
    pub min_data_in_leaf: u32,
    pub min_sum_hessian: f64,
    pub l2: f64,
    pub learning_rate: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// Rows with `value < threshold` (or unknown, when `missing_left`) go
    /// to `left`; `bin` is the same test on binned values.
    Split {
        column: usize,
        bin: u8,
        threshold: f32,
        missing_left: bool,
        left: usize,
        right: usize,
    },
    /// A float32 value, stored widened (what the export holds).
    Leaf { value: f64 },
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tree {
    /// Node 0 is the root.
    pub nodes: Vec<Node>,
}

impl Tree {
    /// The leaf value for a row of raw inputs.
    pub fn value(&self, row: &[f32]) -> f64 {
        self.walk(|column, _, threshold, missing_left| {
            let x = row[column];
            if x.is_nan() {
                missing_left
            } else {
                x < threshold
            }
        })
    }

    /// The same on binned inputs.
    pub fn value_binned(&self, row: &[u8], mapper: &BinMapper) -> f64 {
        self.walk(|column, bin, _, missing_left| {
            let b = row[column];
            if b == mapper.missing_bin(column) {
                missing_left
            } else {
                b <= bin
            }
        })
    }

    /// From the root to a leaf; `go_left(column, bin, threshold,
    /// missing_left)` decides each split.
    fn walk(&self, go_left: impl Fn(usize, u8, f32, bool) -> bool) -> f64 {
        let mut node = 0;
        loop {
            match &self.nodes[node] {
                Node::Leaf { value } => return *value,
                Node::Split {
                    column,
                    bin,
                    threshold,
                    missing_left,
                    left,
                    right,
                } => {
                    node = if go_left(*column, *bin, *threshold, *missing_left) {
                        *left
                    } else {
                        *right
                    };
                }
            }
        }
    }

    /// Multiplies every leaf value by `factor`, keeping float32 values.
    pub fn scale(&mut self, factor: f64) {
        for node in &mut self.nodes {
            if let Node::Leaf { value } = node {
                *value = f64::from((*value * factor) as f32);
            }
        }
    }

    pub fn leaves(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| matches!(n, Node::Leaf { .. }))
            .count()
    }
}

/// The training data as the grower sees it: group bins row-major
/// (histograms read whole rows) and column bins column-major (a partition
/// reads one column, which stays in cache where whole rows would not).
pub struct Binned<'a> {
    pub groups: &'a Groups,
    pub by_column: &'a [u8],
    pub rows: usize,
    pub mapper: &'a BinMapper,
}

#[derive(Clone, Copy, Debug)]
struct Candidate {
    gain: f64,
    column: usize,
    bin: u8,
    missing_left: bool,
    left: Sums,
}

struct Leaf {
    node: usize,
    begin: usize,
    end: usize,
    hist: Vec<Sums>,
    sums: Sums,
    best: Option<Candidate>,
}

/// Where growing trees spends its time, summed over trees.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timings {
    pub histograms: Duration,
    pub partitions: Duration,
    pub splits: Duration,
}

/// A grown tree and, per leaf, the range of `rows` it holds and its value.
pub struct Grown {
    pub tree: Tree,
    pub leaves: Vec<(std::ops::Range<usize>, f64)>,
}

/// Grows a tree over `rows` (indices into the binned data), reordering
/// `rows` so each leaf's rows are contiguous. `gh` holds each row's
/// gradient and hessian.
pub fn grow(
    data: &Binned<'_>,
    gh: &[[f32; 2]],
    rows: &mut [u32],
    params: &GrowParams,
    timings: &mut Timings,
) -> Grown {
    let started = Instant::now();
    let root_hist = data.groups.histogram(gh, rows);
    timings.histograms += started.elapsed();
    let root_sums = total(&root_hist, data.mapper, 0);
    let mut tree = Tree {
        nodes: vec![Node::Leaf { value: 0.0 }],
    };
    let mut leaves = vec![Leaf {
        node: 0,
        begin: 0,
        end: rows.len(),
        best: best_split(
            &root_hist,
            data.mapper,
            root_sums,
            rows.len() as u32,
            params,
        ),
        hist: root_hist,
        sums: root_sums,
    }];
    let mut scratch = Vec::with_capacity(rows.len());
    while leaves.len() < params.max_leaves {
        let Some((index, candidate)) = leaves
            .iter()
            .enumerate()
            .filter_map(|(i, l)| l.best.map(|b| (i, b)))
            .max_by(|a, b| a.1.gain.total_cmp(&b.1.gain).then(b.0.cmp(&a.0)))
        else {
            break;
        };
        let parent = leaves.swap_remove(index);
        let started = Instant::now();
        let split_at = partition(data, rows, &parent, &candidate, &mut scratch);
        timings.partitions += started.elapsed();
        let left_sums = candidate.left;
        let right_sums = parent.sums - left_sums;
        let (left_range, right_range) = ((parent.begin, split_at), (split_at, parent.end));
        // Histogram of the smaller child; the larger is the parent's minus it.
        let left_smaller = split_at - parent.begin <= parent.end - split_at;
        let small_range = if left_smaller {
            left_range
        } else {
            right_range
        };
        let started = Instant::now();
        let small_hist = data
            .groups
            .histogram(gh, &rows[small_range.0..small_range.1]);
        let mut large_hist = parent.hist;
        for (a, b) in large_hist.iter_mut().zip(&small_hist) {
            *a = *a - *b;
        }
        timings.histograms += started.elapsed();
        let (left_hist, right_hist) = if left_smaller {
            (small_hist, large_hist)
        } else {
            (large_hist, small_hist)
        };
        let left_node = tree.nodes.len();
        let right_node = left_node + 1;
        tree.nodes.push(Node::Leaf { value: 0.0 });
        tree.nodes.push(Node::Leaf { value: 0.0 });
        tree.nodes[parent.node] = Node::Split {
            column: candidate.column,
            bin: candidate.bin,
            threshold: data.mapper.cuts[candidate.column][candidate.bin as usize],
            missing_left: candidate.missing_left,
            left: left_node,
            right: right_node,
        };
        let started = Instant::now();
        for (node, (begin, end), hist, sums) in [
            (left_node, left_range, left_hist, left_sums),
            (right_node, right_range, right_hist, right_sums),
        ] {
            leaves.push(Leaf {
                node,
                begin,
                end,
                best: best_split(&hist, data.mapper, sums, (end - begin) as u32, params),
                hist,
                sums,
            });
        }
        timings.splits += started.elapsed();
    }
    leaves.sort_by_key(|l| l.begin);
    let mut out = Vec::with_capacity(leaves.len());
    for leaf in leaves {
        let raw = -leaf.sums.g / (leaf.sums.h + params.l2) * params.learning_rate;
        let value = f64::from(raw as f32);
        tree.nodes[leaf.node] = Node::Leaf { value };
        out.push((leaf.begin..leaf.end, value));
    }
    Grown { tree, leaves: out }
}

/// The sums over one column's slots (every row counts once per column).
fn total(hist: &[Sums], mapper: &BinMapper, column: usize) -> Sums {
    let begin = mapper.offsets[column];
    let mut sums = Sums::default();
    for slot in &hist[begin..begin + mapper.cuts[column].len() + 2] {
        sums += *slot;
    }
    sums
}

fn leaf_score(s: Sums, l2: f64) -> f64 {
    s.g * s.g / (s.h + l2)
}

/// The best split of a leaf of `rows` rows with these sums; a side must keep
/// `min_data_in_leaf` rows (estimated from hessians) and `min_sum_hessian`.
fn best_split(
    hist: &[Sums],
    mapper: &BinMapper,
    sums: Sums,
    rows: u32,
    params: &GrowParams,
) -> Option<Candidate> {
    if rows < 2 * params.min_data_in_leaf {
        return None;
    }
    let parent_score = leaf_score(sums, params.l2);
    let allowed = |left: Sums, right: Sums| {
        let left_rows = left.count(rows, sums.h);
        left_rows >= params.min_data_in_leaf
            && rows - left_rows >= params.min_data_in_leaf
            && left.h >= params.min_sum_hessian
            && right.h >= params.min_sum_hessian
    };
    let mut best: Option<Candidate> = None;
    for column in 0..mapper.cuts.len() {
        let cuts = mapper.cuts[column].len();
        let slots = &hist[mapper.offsets[column]..mapper.offsets[column] + cuts + 2];
        let missing = slots[cuts + 1];
        let mut left = Sums::default();
        for (bin, slot) in slots[..cuts].iter().enumerate() {
            left += *slot;
            let choices: &[bool] = if missing.h > 0.0 {
                &[false, true]
            } else {
                &[false]
            };
            for &missing_left in choices {
                let mut l = left;
                if missing_left {
                    l += missing;
                }
                let r = sums - l;
                if !allowed(l, r) {
                    continue;
                }
                let gain = leaf_score(l, params.l2) + leaf_score(r, params.l2) - parent_score;
                if gain > 1e-12 && best.is_none_or(|b| gain > b.gain) {
                    best = Some(Candidate {
                        gain,
                        column,
                        bin: bin as u8,
                        missing_left,
                        left: l,
                    });
                }
            }
        }
    }
    best
}

/// Moves the leaf's rows that go left to the front of its range (order
/// kept on both sides); returns where the right rows start. Branch-free:
/// which side a row takes is as good as random, and a mispredicted branch
/// per row cost more than the whole move.
fn partition(
    data: &Binned<'_>,
    rows: &mut [u32],
    leaf: &Leaf,
    split: &Candidate,
    scratch: &mut Vec<u32>,
) -> usize {
    let missing = data.mapper.missing_bin(split.column);
    let column = &data.by_column[split.column * data.rows..(split.column + 1) * data.rows];
    scratch.clear();
    scratch.resize(leaf.end - leaf.begin, 0);
    // Left rows are written in place (never ahead of the read position),
    // right rows to the scratch; every row is written to both, and only the
    // side it takes advances.
    let (mut left, mut right) = (leaf.begin, 0);
    for read in leaf.begin..leaf.end {
        let row = rows[read];
        let b = column[row as usize];
        let is_missing = b == missing;
        let goes_left = (is_missing & split.missing_left) | (!is_missing & (b <= split.bin));
        rows[left] = row;
        scratch[right] = row;
        left += usize::from(goes_left);
        right += usize::from(!goes_left);
    }
    rows[left..leaf.end].copy_from_slice(&scratch[..right]);
    left
}
