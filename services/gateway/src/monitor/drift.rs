//! Drift of live traffic from a model's reference distribution: the
//! population stability index (PSI) of each input column and of the score,
//! between the trainer's reference (its fit rows) and the last
//! `capacity` rows the model scored.
//!
//! PSI = Σ (a − e) · ln(a / e) over the bins (the unknown values are a bin of
//! their own), with e and a the reference's and the window's shares of the
//! bin. A bin empty on one side would make it infinite, so every bin starts
//! with half a row on both sides; a bin empty on both is left out. Common reading: below 0.1 stable, 0.1–0.25
//! a shift worth a look, above 0.25 a significant one.

use std::collections::VecDeque;

use mlops_onnx::reference::{Histogram, Reference};

/// Stands for "unknown" in a row's bins.
const MISSING: u16 = u16::MAX;

/// The live side: each recent row's bins and the running counts.
pub struct DriftWindow {
    reference: Reference,
    capacity: usize,
    /// Per row: a bin per input column, then the score's bin.
    rows: VecDeque<Box<[u16]>>,
    /// Per histogram (columns, then the score): counts per bin, the unknown
    /// values last.
    counts: Vec<Vec<u64>>,
}

impl DriftWindow {
    /// A window for inputs `width` wide; `None` when the reference describes
    /// other columns than the model's input has.
    pub fn new(reference: Reference, width: usize, capacity: usize) -> Option<Self> {
        if reference.columns.len() != width || capacity == 0 {
            return None;
        }
        let counts = histograms(&reference)
            .map(|h| vec![0; h.counts.len() + 1])
            .collect();
        Some(Self {
            reference,
            capacity,
            rows: VecDeque::with_capacity(capacity),
            counts,
        })
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Adds a scored row, dropping the oldest once the window is full.
    pub fn observe(&mut self, row: &[f32], score: f32) {
        let values = row.iter().copied().chain(std::iter::once(score));
        let bins: Box<[u16]> = histograms(&self.reference)
            .zip(values)
            .map(|(h, v)| h.bin(f64::from(v)).map_or(MISSING, |b| b as u16))
            .collect();
        for (counts, &bin) in self.counts.iter_mut().zip(bins.iter()) {
            let slot = slot(counts, bin);
            counts[slot] += 1;
        }
        self.rows.push_back(bins);
        if self.rows.len() > self.capacity
            && let Some(old) = self.rows.pop_front()
        {
            for (counts, &bin) in self.counts.iter_mut().zip(old.iter()) {
                let slot = slot(counts, bin);
                counts[slot] -= 1;
            }
        }
    }

    /// PSI per input column (by name), then `("score", psi)`.
    pub fn psi(&self) -> Vec<(&str, f64)> {
        histograms(&self.reference)
            .zip(&self.counts)
            .map(|(h, live)| {
                let mut expected = h.counts.clone();
                expected.push(h.missing);
                (h.name.as_str(), psi(&expected, live))
            })
            .collect()
    }
}

fn histograms(reference: &Reference) -> impl Iterator<Item = &Histogram> {
    reference
        .columns
        .iter()
        .chain(std::iter::once(&reference.score))
}

/// Where a bin is counted: its own slot, or the last (unknown) one.
fn slot(counts: &[u64], bin: u16) -> usize {
    if bin == MISSING {
        counts.len() - 1
    } else {
        usize::from(bin)
    }
}

/// PSI between two histograms of the same bins. A bin empty on both sides
/// says nothing and is left out; the others are smoothed by half a row.
pub fn psi(expected: &[u64], actual: &[u64]) -> f64 {
    let kept: Vec<(f64, f64)> = expected
        .iter()
        .zip(actual)
        .filter(|(e, a)| **e > 0 || **a > 0)
        .map(|(&e, &a)| (e as f64 + 0.5, a as f64 + 0.5))
        .collect();
    let (e_total, a_total) = kept
        .iter()
        .fold((0.0, 0.0), |(et, at), (e, a)| (et + e, at + a));
    kept.iter()
        .map(|(e, a)| {
            let (e, a) = (e / e_total, a / a_total);
            (a - e) * (a / e).ln()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> Reference {
        let h = |name: &str| Histogram {
            name: name.into(),
            edges: vec![1.0, 2.0],
            counts: vec![100, 100, 100],
            missing: 0,
        };
        Reference {
            format: 1,
            rows: 300,
            columns: vec![h("x")],
            score: h("score"),
        }
    }

    #[test]
    fn the_same_distribution_is_stable_and_a_shift_is_not() {
        let mut window = DriftWindow::new(reference(), 1, 300).expect("window");
        for i in 0..300 {
            let v = (i % 3) as f32 + 0.5;
            window.observe(&[v], v);
        }
        let psi = window.psi();
        assert_eq!(psi[0].0, "x");
        assert_eq!(psi[1].0, "score");
        assert!(psi[0].1 < 0.01, "{psi:?}");

        // The next 300 rows all fall in the top bin, pushing the old ones out.
        for _ in 0..300 {
            window.observe(&[5.0], 5.0);
        }
        assert_eq!(window.len(), 300);
        let psi = window.psi();
        assert!(psi[0].1 > 0.25, "{psi:?}");
        assert!(psi[1].1 > 0.25, "{psi:?}");
    }

    #[test]
    fn unknown_values_are_a_bin_of_their_own() {
        let mut window = DriftWindow::new(reference(), 1, 100).expect("window");
        for _ in 0..100 {
            window.observe(&[f32::NAN], 0.5);
        }
        assert!(
            window.psi()[0].1 > 1.0,
            "all unknown vs none in the reference"
        );
        assert!(
            DriftWindow::new(reference(), 2, 100).is_none(),
            "width mismatch"
        );
    }

    #[test]
    fn psi_of_identical_shares_is_zero() {
        assert!(psi(&[10, 20, 30], &[1, 2, 3]).abs() < 0.02);
        assert!(psi(&[10, 20, 30], &[10, 20, 30]).abs() < 1e-12);
        // Bins nobody falls in change nothing, whatever the sizes.
        assert!(psi(&[0, 100, 0, 300, 0], &[0, 10, 0, 30, 0]).abs() < 1e-3);
        assert!(psi(&[100, 100], &[0, 10]) > 1.0);
    }
}
