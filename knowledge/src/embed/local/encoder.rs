//! The BERT encoder of all-MiniLM-L6-v2, written for CPU inference on packed sequences.
//!
//! It computes what Hugging Face's `BertModel` computes (embeddings, then per layer self-attention
//! with a residual layer norm and a GELU feed-forward block with another), in float32 as candle
//! did before it, but shaped for throughput on a few cores (about three times candle's on two):
//!
//! * **Packed, not padded.** The sequences of a batch are laid end to end: the linear layers run
//!   once over all their tokens, and attention runs per sequence and head at that sequence's own
//!   length. No work is spent on padding and no mask is needed; masking padding, as a padded
//!   batch must, gives exactly the same result, since a masked score's weight is exactly zero.
//! * **One thread pool.** The matrix products (the `gemm` crate, which picks AVX2+FMA or NEON
//!   kernels at run time) and the attention heads share rayon's global pool. candle also ran a
//!   spinning pool of its own for element-wise operations, which on two cores fought the matrix
//!   threads: a sixth of its profile was spent waiting at that pool's barrier.
//! * **Fused element-wise work.** Biases and residuals are accumulated by the matrix products
//!   themselves and the attention scale is applied by the score product; softmax, GELU and layer
//!   norm are one kernel each, with `exp` and `erf` evaluated by branch-free polynomials the
//!   compiler vectorises (for AVX2+FMA when the CPU has it, chosen at run time; NEON is the
//!   baseline on aarch64). Their error is a few float32 ulps, no more than the rounding of the
//!   matrix products (the unit tests bound both against float64).
//!
//! Over four fifths of the time is now spent in the matrix kernels. gemm's AVX-512 kernels (its
//! `x86-v4` feature) ran no faster on the AMD EPYC we measure on, so they are left out.
//!
//! The output for a sequence does not depend on what it was batched with, up to float32
//! rounding: it is the same computation on the same rows.

use std::cell::RefCell;

use gemm::Parallelism;
use rayon::prelude::*;

/// Width of one attention head: 384 / 12 for this model.
const HEAD: usize = 32;

/// One BERT encoder with its weights in memory.
pub(super) struct Encoder {
    hidden: usize,
    heads: usize,
    eps: f32,
    /// Word-piece embeddings, `vocab × hidden`.
    words: Vec<f32>,
    /// Absolute position embeddings, `max_positions × hidden`.
    positions: Vec<f32>,
    /// The embedding of token type 0 (every input here is a single segment).
    segment: Vec<f32>,
    embeddings_norm: LayerNorm,
    layers: Vec<Layer>,
}

/// The parameters of one encoder layer.
pub(super) struct Layer {
    /// Query, key and value projections side by side: `hidden → 3 × hidden`.
    pub qkv: Linear,
    pub attention_out: Linear,
    pub attention_norm: LayerNorm,
    pub up: Linear,
    pub down: Linear,
    pub output_norm: LayerNorm,
}

/// `y = x · Wᵀ + b`, with `W` stored as PyTorch stores it: `outputs × inputs`, row by row. (The
/// transposed layout ran a single query's pass about 15% slower and passages no faster.)
pub(super) struct Linear {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub inputs: usize,
    pub outputs: usize,
}

pub(super) struct LayerNorm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

/// Where each sequence lies in a packed batch.
#[derive(Clone, Copy)]
struct Span {
    start: usize,
    len: usize,
}

impl Encoder {
    /// Assembles an encoder; the shapes were checked by the caller.
    pub(super) fn new(
        heads: usize,
        eps: f32,
        words: Vec<f32>,
        positions: Vec<f32>,
        segment: Vec<f32>,
        embeddings_norm: LayerNorm,
        layers: Vec<Layer>,
    ) -> Self {
        let hidden = segment.len();
        debug_assert_eq!(hidden, heads * HEAD);
        Encoder {
            hidden,
            heads,
            eps,
            words,
            positions,
            segment,
            embeddings_norm,
            layers,
        }
    }

    /// How many word pieces there are.
    pub(super) fn vocab(&self) -> usize {
        self.words.len() / self.hidden
    }

    /// How many word pieces a sequence may have (the position embeddings run out after that).
    pub(super) fn max_positions(&self) -> usize {
        self.positions.len() / self.hidden
    }

    /// The mean over its tokens of each sequence's last hidden states (not yet normalised).
    /// Every id must be below the vocabulary size and every sequence non-empty and no longer
    /// than [`Encoder::max_positions`].
    pub(super) fn mean_pooled(&self, sequences: &[&[u32]]) -> Vec<Vec<f32>> {
        let h = self.hidden;
        let mut spans = Vec::with_capacity(sequences.len());
        let mut rows = 0;
        for s in sequences {
            spans.push(Span {
                start: rows,
                len: s.len(),
            });
            rows += s.len();
        }
        let threads = rayon::current_num_threads();
        let mut x = self.embed(sequences, rows);
        let mut qkv = vec![0.0; rows * 3 * h];
        let mut context = vec![0.0; rows * h];
        let mut attended = vec![0.0; rows * h];
        let mut inner = vec![0.0; rows * self.layers.first().map_or(0, |l| l.up.outputs)];
        for layer in &self.layers {
            layer.qkv.apply(&x, rows, None, &mut qkv, threads);
            self.attention(&qkv, &spans, &mut context);
            layer
                .attention_out
                .apply(&context, rows, Some(&x), &mut attended, threads);
            layer_norm_rows(&mut attended, &layer.attention_norm, self.eps);
            layer.up.apply(&attended, rows, None, &mut inner, threads);
            inner
                .par_chunks_mut(layer.up.outputs * 16)
                .for_each(kernels::gelu);
            layer
                .down
                .apply(&inner, rows, Some(&attended), &mut x, threads);
            layer_norm_rows(&mut x, &layer.output_norm, self.eps);
        }
        spans
            .iter()
            .map(|span| {
                let mut sum = vec![0.0f64; h];
                for row in x[span.start * h..(span.start + span.len) * h].chunks_exact(h) {
                    for (s, v) in sum.iter_mut().zip(row) {
                        *s += f64::from(*v);
                    }
                }
                let n = span.len.max(1) as f64;
                sum.into_iter().map(|s| (s / n) as f32).collect()
            })
            .collect()
    }

    /// Word + position + segment embeddings, layer-normalised: `rows × hidden`.
    fn embed(&self, sequences: &[&[u32]], rows: usize) -> Vec<f32> {
        let h = self.hidden;
        let mut x = vec![0.0; rows * h];
        let mut out = x.chunks_exact_mut(h);
        for s in sequences {
            for (position, &id) in s.iter().enumerate() {
                let row = out.next().expect("one row per token");
                let word = &self.words[id as usize * h..][..h];
                let pos = &self.positions[position * h..][..h];
                for (((o, w), s), p) in row.iter_mut().zip(word).zip(&self.segment).zip(pos) {
                    *o = (w + s) + p;
                }
            }
        }
        layer_norm_rows(&mut x, &self.embeddings_norm, self.eps);
        x
    }

    /// Multi-head self-attention of every sequence, each head of each sequence a task:
    /// `context[t, head] = softmax(q · kᵀ / √32) · v` over the tokens of `t`'s own sequence.
    fn attention(&self, qkv: &[f32], spans: &[Span], context: &mut [f32]) {
        let h = self.hidden;
        let stride = 3 * h;
        let scale = 1.0 / (HEAD as f32).sqrt();
        let mut tasks: Vec<(Span, usize)> = spans
            .iter()
            .flat_map(|&s| (0..self.heads).map(move |head| (s, head)))
            .collect();
        // Longest first, so that the last tasks to be picked up are short ones.
        tasks.sort_by_key(|(s, _)| std::cmp::Reverse(s.len));
        assert_eq!(qkv.len(), context.len() * 3);
        let out = SharedOut(context.as_mut_ptr());
        tasks.par_iter().for_each(|&(span, head)| {
            thread_local! {
                static SCORES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
            }
            SCORES.with_borrow_mut(|scores| {
                let n = span.len;
                scores.clear();
                scores.resize(n * n, 0.0);
                let q = qkv[span.start * stride + head * HEAD..].as_ptr();
                let k = qkv[span.start * stride + h + head * HEAD..].as_ptr();
                let v = qkv[span.start * stride + 2 * h + head * HEAD..].as_ptr();
                // SAFETY: q, k and v address `n` rows of `HEAD` values `stride` apart inside
                // `qkv` (the span lies within the batch, and the head within a row), `scores`
                // holds n × n values. The context block written, rows of the span and columns
                // of the head, lies inside `context` and is written by this task alone.
                unsafe {
                    // scores = scale · q · kᵀ (n × HEAD times HEAD × n).
                    gemm::gemm(
                        n,
                        n,
                        HEAD,
                        scores.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        q,
                        1,
                        stride as isize,
                        k,
                        stride as isize,
                        1,
                        0.0,
                        scale,
                        false,
                        false,
                        false,
                        Parallelism::None,
                    );
                    for row in scores.chunks_exact_mut(n) {
                        kernels::softmax(row);
                    }
                    // context = scores · v (n × n times n × HEAD).
                    let dst = out.at(span.start * h + head * HEAD);
                    gemm::gemm(
                        n,
                        HEAD,
                        n,
                        dst,
                        1,
                        h as isize,
                        false,
                        scores.as_ptr(),
                        1,
                        n as isize,
                        v,
                        1,
                        stride as isize,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        Parallelism::None,
                    );
                }
            });
        });
    }
}

/// The context matrix, written by the attention tasks at disjoint places.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
// SAFETY: each task writes only its own block (see `Encoder::attention`), and the matrix
// outlives the parallel loop, which returns only once every task is done.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// The address `offset` values into the matrix.
    ///
    /// # Safety
    /// `offset` must lie within the matrix.
    unsafe fn at(self, offset: usize) -> *mut f32 {
        // SAFETY: in bounds, as the caller promises.
        unsafe { self.0.add(offset) }
    }
}

impl Linear {
    /// `out = x · Wᵀ + b (+ residual)` for `rows` rows of `x`.
    fn apply(
        &self,
        x: &[f32],
        rows: usize,
        residual: Option<&[f32]>,
        out: &mut [f32],
        threads: usize,
    ) {
        let (k, n) = (self.inputs, self.outputs);
        assert!(x.len() >= rows * k && out.len() >= rows * n);
        assert_eq!(self.weight.len(), k * n);
        let out = &mut out[..rows * n];
        match residual {
            Some(r) => {
                for (o_row, r_row) in out.chunks_exact_mut(n).zip(r.chunks_exact(n)) {
                    for ((o, r), b) in o_row.iter_mut().zip(r_row).zip(&self.bias) {
                        *o = r + b;
                    }
                }
            }
            None => {
                for o_row in out.chunks_exact_mut(n) {
                    o_row.copy_from_slice(&self.bias);
                }
            }
        }
        let parallelism = if threads > 1 {
            Parallelism::Rayon(threads)
        } else {
            Parallelism::None
        };
        // SAFETY: the three row-major matrices have the sizes checked above.
        unsafe {
            gemm::gemm(
                rows,
                n,
                k,
                out.as_mut_ptr(),
                1,
                n as isize,
                true,
                x.as_ptr(),
                1,
                k as isize,
                self.weight.as_ptr(),
                k as isize,
                1,
                1.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
    }
}

/// Normalises each row of width `gamma.len()` to zero mean and unit variance, then scales and
/// shifts it; rows are shared out between the pool's threads.
fn layer_norm_rows(x: &mut [f32], norm: &LayerNorm, eps: f32) {
    let width = norm.gamma.len();
    x.par_chunks_mut(width * 64).for_each(|block| {
        for row in block.chunks_exact_mut(width) {
            kernels::layer_norm(row, &norm.gamma, &norm.beta, eps);
        }
    });
}

/// The element-wise kernels, written so that the compiler vectorises them, and compiled twice
/// on x86-64: for the baseline and for AVX2+FMA, picked at run time.
mod kernels {
    /// Lanes of the partial sums and maxima (one AVX2 register of float32).
    const LANES: usize = 8;

    macro_rules! dispatch {
        ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) => $generic:ident / $avx2:ident) => {
            $(#[$doc])*
            pub(super) fn $name($($arg: $ty),*) {
                #[cfg(target_arch = "x86_64")]
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has the features the function is compiled for.
                    return unsafe { $avx2($($arg),*) };
                }
                $generic($($arg),*)
            }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn $avx2($($arg: $ty),*) {
                $generic($($arg),*)
            }
        };
    }

    dispatch! {
        /// Softmax of one row of scores, in place.
        fn softmax(row: &mut [f32]) => softmax_generic / softmax_avx2
    }
    dispatch! {
        /// GELU (the exact, erf-based form BERT uses), in place.
        fn gelu(xs: &mut [f32]) => gelu_generic / gelu_avx2
    }
    dispatch! {
        /// Layer normalisation of one row, in place.
        fn layer_norm(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) => layer_norm_generic / layer_norm_avx2
    }

    #[inline(always)]
    fn softmax_generic(row: &mut [f32]) {
        let mut maxima = [f32::NEG_INFINITY; LANES];
        let mut chunks = row.chunks_exact(LANES);
        for c in &mut chunks {
            for (m, &x) in maxima.iter_mut().zip(c) {
                *m = if x > *m { x } else { *m };
            }
        }
        let max = chunks
            .remainder()
            .iter()
            .chain(&maxima)
            .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m });
        let mut sums = [0.0f32; LANES];
        let mut chunks = row.chunks_exact_mut(LANES);
        for c in &mut chunks {
            for (s, x) in sums.iter_mut().zip(c.iter_mut()) {
                *x = exp(*x - max);
                *s += *x;
            }
        }
        let mut sum = 0.0;
        for x in chunks.into_remainder() {
            *x = exp(*x - max);
            sum += *x;
        }
        let sum = sums.iter().sum::<f32>() + sum;
        let inverse = 1.0 / sum;
        for x in row.iter_mut() {
            *x *= inverse;
        }
    }

    #[inline(always)]
    fn gelu_generic(xs: &mut [f32]) {
        for x in xs.iter_mut() {
            *x = 0.5 * *x * (1.0 + erf(*x * std::f32::consts::FRAC_1_SQRT_2));
        }
    }

    #[inline(always)]
    fn layer_norm_generic(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
        let n = row.len() as f32;
        let mean = lane_sum(row.iter().copied()) / n;
        let variance = lane_sum(row.iter().map(|x| (x - mean) * (x - mean))) / n;
        let inverse = 1.0 / (variance + eps).sqrt();
        for ((x, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *x = (*x - mean) * inverse * g + b;
        }
    }

    /// A sum in `LANES` interleaved partial sums, which the compiler keeps in one register.
    #[inline(always)]
    fn lane_sum(xs: impl Iterator<Item = f32>) -> f32 {
        let mut sums = [0.0f32; LANES];
        for (i, x) in xs.enumerate() {
            sums[i % LANES] += x;
        }
        sums.iter().sum()
    }

    /// `eˣ` to within two float32 ulps for x ≤ 0 (softmax's arguments); flushes to zero below
    /// −87.3. Cephes' `expf`: x = n·ln 2 + r with |r| ≤ ½ ln 2, a degree-6 polynomial for eʳ,
    /// and 2ⁿ put in the exponent bits.
    #[inline(always)]
    pub(super) fn exp(x: f32) -> f32 {
        const LOG2_E: f32 = std::f32::consts::LOG2_E;
        const LN2_HI: f32 = 0.693_359_4;
        const LN2_LO: f32 = -2.121_944_4e-4;
        // Adding and subtracting 1.5 · 2²³ rounds to the nearest integer without a branch.
        const ROUND: f32 = 12_582_912.0;
        let x = if x < -87.3 { -87.3 } else { x };
        let x = if x > 88.3 { 88.3 } else { x };
        let shifted = x * LOG2_E + ROUND;
        let n = shifted - ROUND;
        let r = x - n * LN2_HI - n * LN2_LO;
        let mut p = 1.987_569_1e-4;
        p = p * r + 1.398_199_9e-3;
        p = p * r + 8.333_452e-3;
        p = p * r + 4.166_579_6e-2;
        p = p * r + 1.666_666_5e-1;
        p = p * r + 0.5;
        let er = p * r * r + r + 1.0;
        // The low bits of `shifted` hold n (−126 ≤ n ≤ 128 after the clamps).
        let n = (shifted.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
        let scale = f32::from_bits(((n + 127) as u32) << 23);
        let y = er * scale;
        if x <= -87.3 {
            0.0
        } else {
            y
        }
    }

    /// erf(x) to within 5e-7: the rational approximation of Eigen and XLA (odd degree-13
    /// numerator over even degree-8 denominator), exact to float32 precision beyond |x| = 4.
    #[inline(always)]
    pub(super) fn erf(x: f32) -> f32 {
        let x = if x > 4.0 { 4.0 } else { x };
        let x = if x < -4.0 { -4.0 } else { x };
        let x2 = x * x;
        let mut p = -2.726_142_3e-10;
        p = p * x2 + 2.770_681_4e-8;
        p = p * x2 - 2.101_024e-6;
        p = p * x2 - 5.692_506_4e-5;
        p = p * x2 - 7.349_906_3e-4;
        p = p * x2 - 2.954_6e-3;
        p = p * x2 - 1.609_603_3e-2;
        let p = p * x;
        let mut q = -1.456_607_2e-5;
        q = q * x2 - 2.133_740_6e-4;
        q = q * x2 - 1.682_827e-3;
        q = q * x2 - 7.373_329e-3;
        q = q * x2 - 1.426_474e-2;
        p / q
    }
}

#[cfg(test)]
mod tests {
    use super::kernels;

    /// erf in float64 by its Taylor series (converges well for |x| ≤ 4 in float64).
    fn erf64(x: f64) -> f64 {
        let mut term = x;
        let mut sum = x;
        for n in 1..200 {
            term *= -x * x / n as f64;
            let add = term / (2 * n + 1) as f64;
            sum += add;
            if add.abs() < 1e-18 {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn exp_is_accurate_to_a_few_ulps() {
        for i in 0..=200_000 {
            let x = -90.0 * f64::from(i) / 200_000.0;
            let got = f64::from(kernels::exp(x as f32));
            let want = (x as f32 as f64).exp();
            if want < 1e-37 {
                assert!(got < 1e-37, "exp({x}) = {got}");
                continue;
            }
            let rel = (got - want).abs() / want;
            assert!(rel < 2.5e-7, "exp({x}): {got} vs {want}, relative {rel}");
        }
    }

    #[test]
    fn erf_is_accurate_to_float_precision() {
        for i in -80_000..=80_000 {
            let x = f64::from(i) / 10_000.0;
            let got = f64::from(kernels::erf(x as f32));
            let want = if x.abs() <= 4.0 {
                erf64(x as f32 as f64)
            } else {
                x.signum()
            };
            assert!((got - want).abs() < 5e-7, "erf({x}): {got} vs {want}");
        }
    }

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        for n in [1, 7, 8, 9, 33, 256] {
            let mut row: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin() * 6.0).collect();
            let input = row.clone();
            kernels::softmax(&mut row);
            let sum: f32 = row.iter().sum();
            assert!((sum - 1.0).abs() < 1e-5, "{n}: {sum}");
            let max = input.iter().cloned().fold(f32::MIN, f32::max);
            let z: f64 = input.iter().map(|&x| f64::from(x - max).exp()).sum();
            for (p, x) in row.iter().zip(&input) {
                let want = f64::from(x - max).exp() / z;
                assert!((f64::from(*p) - want).abs() < 1e-6, "{n}: {p} vs {want}");
            }
        }
    }
}
