//! Feature values to histogram bins.
//!
//! Per column, up to `max_bins - 1` cut points (float32) from the fit rows'
//! distinct values or quantiles; a value's bin is the number of cut points
//! at or below it, so `bin <= k` exactly when `value < cuts[k]`: a split on
//! bin `k` exports as `BRANCH_LT cuts[k]` and scores identically on raw
//! float32 inputs. Unknown values (NaN) get their own bin, the last.

use crate::matrix::Matrix;

/// Rows sampled to choose cut points.
const SAMPLE_ROWS: usize = 200_000;

#[derive(Clone, Debug)]
pub struct BinMapper {
    /// Cut points per column, ascending.
    pub cuts: Vec<Vec<f32>>,
    /// First histogram slot of each column; a column has `cuts + 2` slots
    /// (values, then the missing bin).
    pub offsets: Vec<usize>,
    pub total_slots: usize,
}

impl BinMapper {
    pub fn fit(matrix: &Matrix, max_bins: usize) -> Self {
        let step = matrix.len().div_ceil(SAMPLE_ROWS).max(1);
        let mut cuts = Vec::with_capacity(matrix.width);
        for j in 0..matrix.width {
            let mut values: Vec<f32> = (0..matrix.len())
                .step_by(step)
                .map(|i| matrix.values[i * matrix.width + j])
                .filter(|v| !v.is_nan())
                .collect();
            values.sort_by(f32::total_cmp);
            cuts.push(cut_points(&values, max_bins.clamp(2, 255) - 1));
        }
        let mut offsets = Vec::with_capacity(cuts.len());
        let mut total = 0;
        for c in &cuts {
            offsets.push(total);
            total += c.len() + 2;
        }
        Self {
            cuts,
            offsets,
            total_slots: total,
        }
    }

    pub fn missing_bin(&self, column: usize) -> u8 {
        (self.cuts[column].len() + 1) as u8
    }

    pub fn bin(&self, column: usize, value: f32) -> u8 {
        if value.is_nan() {
            self.missing_bin(column)
        } else {
            self.cuts[column].partition_point(|c| *c <= value) as u8
        }
    }

    /// Every row's bins, row-major.
    pub fn transform(&self, matrix: &Matrix) -> Vec<u8> {
        let width = matrix.width;
        let mut bins = vec![0u8; matrix.values.len()];
        for (out, row) in bins.chunks_mut(width).zip(matrix.values.chunks(width)) {
            for j in 0..width {
                out[j] = self.bin(j, row[j]);
            }
        }
        bins
    }
}

/// At most `max_cuts` cut points splitting sorted `values` evenly: midpoints
/// between distinct values when there are few, quantiles otherwise.
fn cut_points(values: &[f32], max_cuts: usize) -> Vec<f32> {
    let mut distinct: Vec<(f32, usize)> = Vec::new();
    for &v in values {
        match distinct.last_mut() {
            Some((last, count)) if *last == v => *count += 1,
            _ => distinct.push((v, 1)),
        }
    }
    if distinct.len() <= 1 {
        return Vec::new();
    }
    let midpoint = |a: f32, b: f32| {
        let m = ((f64::from(a) + f64::from(b)) / 2.0) as f32;
        // The cut must separate a from b in float32.
        if m > a && m <= b { m } else { b }
    };
    if distinct.len() <= max_cuts + 1 {
        return distinct
            .windows(2)
            .map(|w| midpoint(w[0].0, w[1].0))
            .collect();
    }
    // Quantiles over the distinct values, weighted by their counts.
    let total = values.len();
    let mut cuts = Vec::with_capacity(max_cuts);
    let mut seen = 0usize;
    let mut next_quantile = 1usize;
    for w in distinct.windows(2) {
        seen += w[0].1;
        while next_quantile <= max_cuts && seen * (max_cuts + 1) >= next_quantile * total {
            next_quantile += 1;
            let cut = midpoint(w[0].0, w[1].0);
            if cuts.last() != Some(&cut) {
                cuts.push(cut);
            }
        }
    }
    cuts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_agree_with_less_than_on_the_cut_points() {
        let values: Vec<f32> = (0..1_000).map(|i| (i % 37) as f32 * 0.5).collect();
        let matrix = Matrix {
            width: 1,
            values: values.iter().copied().chain([f32::NAN]).collect(),
            labels: vec![false; 1_001],
            gold_rows: vec![0; 1_001],
        };
        let mapper = BinMapper::fit(&matrix, 16);
        let cuts = &mapper.cuts[0];
        assert!(cuts.len() <= 15 && !cuts.is_empty());
        for &v in &values {
            let bin = mapper.bin(0, v) as usize;
            for (k, cut) in cuts.iter().enumerate() {
                assert_eq!(bin <= k, v < *cut, "value {v} bin {bin} cut {k}={cut}");
            }
        }
        assert_eq!(mapper.bin(0, f32::NAN), mapper.missing_bin(0));
    }

    #[test]
    fn few_distinct_values_get_one_bin_each() {
        let cuts = cut_points(&[0.0, 0.0, 1.0, 1.0, 3.0], 254);
        assert_eq!(cuts, vec![0.5, 2.0]);
        assert!(cut_points(&[2.0, 2.0], 254).is_empty());
    }
}
