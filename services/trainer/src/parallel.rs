//! Work split into a fixed number of contiguous parts, run on up to that many
//! threads and returned in part order. Results depend on the parts only, not
//! on the machine's core count, so training is reproducible anywhere.

use std::ops::Range;

/// How many parts `n` items are split into: one for small inputs, so small
/// nodes and tests do not pay for threads.
pub fn parts_for(n: usize) -> usize {
    if n < 16_384 { 1 } else { 4 }
}

/// Threads to use at most (the machine's parallelism).
pub fn threads() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
}

/// The `parts` contiguous ranges covering `0..n`.
pub fn ranges(n: usize, parts: usize) -> Vec<Range<usize>> {
    let parts = parts.max(1);
    (0..parts)
        .map(|p| (n * p / parts)..(n * (p + 1) / parts))
        .collect()
}

/// `f` over each part of `0..n`, in part order.
pub fn map_parts<T, F>(n: usize, f: F) -> Vec<T>
where
    T: Send,
    F: Fn(Range<usize>) -> T + Sync,
{
    let ranges = ranges(n, parts_for(n));
    let threads = threads().min(ranges.len());
    if threads <= 1 {
        return ranges.into_iter().map(&f).collect();
    }
    let mut results: Vec<Option<T>> = (0..ranges.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let chunk = ranges.len().div_ceil(threads);
        for (slots, ranges) in results.chunks_mut(chunk).zip(ranges.chunks(chunk)) {
            let f = &f;
            scope.spawn(move || {
                for (slot, range) in slots.iter_mut().zip(ranges) {
                    *slot = Some(f(range.clone()));
                }
            });
        }
    });
    results.into_iter().flatten().collect()
}

/// Sets `out[i] = f(i)` for every index, the parts on their own threads.
pub fn fill<T, F>(out: &mut [T], f: F)
where
    T: Send,
    F: Fn(usize) -> T + Sync,
{
    update(out, |i, slot| *slot = f(i));
}

/// Calls `f(i, &mut out[i])` for every index, the parts on their own threads.
pub fn update<T, F>(out: &mut [T], f: F)
where
    T: Send,
    F: Fn(usize, &mut T) + Sync,
{
    let ranges = ranges(out.len(), parts_for(out.len()));
    if threads().min(ranges.len()) <= 1 {
        for (i, slot) in out.iter_mut().enumerate() {
            f(i, slot);
        }
        return;
    }
    std::thread::scope(|scope| {
        let mut rest = out;
        for range in ranges {
            let (part, tail) = rest.split_at_mut(range.len());
            rest = tail;
            let f = &f;
            scope.spawn(move || {
                for (slot, i) in part.iter_mut().zip(range) {
                    f(i, slot);
                }
            });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_everything_in_order() {
        let sums = map_parts(100_000, |r| r.clone().map(|i| i as u64).sum::<u64>());
        assert_eq!(sums.len(), 4);
        assert_eq!(sums.iter().sum::<u64>(), (0..100_000u64).sum::<u64>());
        assert_eq!(ranges(10, 3), vec![0..3, 3..6, 6..10]);
        let mut squares = vec![0u64; 50_000];
        fill(&mut squares, |i| (i as u64) * (i as u64));
        assert!(
            squares
                .iter()
                .enumerate()
                .all(|(i, s)| *s == (i as u64) * (i as u64))
        );
        update(&mut squares, |i, s| *s -= i as u64);
        assert!(
            squares
                .iter()
                .enumerate()
                .all(|(i, s)| *s == (i as u64) * (i as u64) - i as u64)
        );
    }
}
