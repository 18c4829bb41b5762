//! Lexical vectors from character n-grams, with no model: the embedder that always works.
//!
//! Text is folded with [`switchboard_prompts::normalize_arabic`] and lower-cased, split into words
//! (runs of letters and digits), and each word, padded with `<` and `>`, contributes its
//! character 3-, 4- and 5-grams. Each distinct n-gram is hashed (FNV-1a, then a 64-bit
//! finaliser) into one of `dims` buckets with a sign taken from the hash, weighted by sublinear
//! term frequency `1 + ln tf`. The sum is L2-normalised.
//!
//! Sharing n-grams is what makes Arabic variants close: `الالواح` and `الواح` differ by a prefix
//! but share most of their grams, including the ones anchored at the word's end. The hash is
//! fixed and features are summed in sorted order, so a text's vector is bit-for-bit the same on
//! every run and platform.

use switchboard_prompts::normalize_arabic;

use super::{l2_normalize, EmbedError};

/// The shortest and longest character n-grams taken from each padded word.
const MIN_N: usize = 3;
const MAX_N: usize = 5;

/// Signed feature hashing of character n-grams into a fixed number of buckets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashedEmbedder {
    dims: usize,
}

impl Default for HashedEmbedder {
    /// 256 buckets: small enough to store beside every chunk, large enough that the collisions
    /// of a chunk's few hundred distinct n-grams blur rather than dominate.
    fn default() -> Self {
        Self { dims: 256 }
    }
}

impl HashedEmbedder {
    /// An embedder with `dims` buckets; at least 1.
    pub fn new(dims: usize) -> Result<Self, EmbedError> {
        if dims == 0 {
            return Err(EmbedError::Config(
                "hashed embedder needs at least one dimension".into(),
            ));
        }
        Ok(Self { dims })
    }

    /// `hashed-ngram3-5/<dims>`.
    pub fn model_id(&self) -> String {
        format!("hashed-ngram{MIN_N}-{MAX_N}/{}", self.dims)
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    /// The vector of one text; all zeros when the text has no letters or digits.
    pub fn embed_one(&self, text: &str) -> Vec<f32> {
        let mut hashes = ngram_hashes(text);
        // Sorting makes both the counting and the order of the float additions independent of
        // anything but the text.
        hashes.sort_unstable();
        let mut v = vec![0f32; self.dims];
        let mut i = 0;
        while i < hashes.len() {
            let h = hashes[i];
            let tf = hashes[i..].iter().take_while(|&&x| x == h).count();
            i += tf;
            let weight = 1.0 + (tf as f32).ln();
            let bucket = (h % self.dims as u64) as usize;
            // The sign comes from the top bit, independent of the low bits choosing the bucket,
            // so colliding features cancel as often as they add up.
            let sign = if h >> 63 == 0 { 1.0 } else { -1.0 };
            v[bucket] += sign * weight;
        }
        l2_normalize(&mut v);
        v
    }

    pub(super) fn embed_blocking(&self, texts: &[String]) -> Vec<Vec<f32>> {
        texts.iter().map(|t| self.embed_one(t)).collect()
    }
}

/// The hash of every n-gram occurrence in the text, repeats included.
fn ngram_hashes(text: &str) -> Vec<u64> {
    let normalized = normalize_arabic(text).to_lowercase();
    let mut hashes = Vec::new();
    let mut padded: Vec<char> = Vec::new();
    let mut buf = String::new();
    for word in normalized
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        padded.clear();
        padded.push('<');
        padded.extend(word.chars());
        padded.push('>');
        for n in MIN_N..=MAX_N {
            for gram in padded.windows(n) {
                buf.clear();
                buf.extend(gram);
                hashes.push(hash(buf.as_bytes()));
            }
        }
    }
    hashes
}

/// FNV-1a over the bytes, then the splitmix64 finaliser so every output bit depends on every
/// input bit (plain FNV-1a has weak high bits for short inputs).
fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::cosine;

    fn sim(e: &HashedEmbedder, a: &str, b: &str) -> f32 {
        cosine(&e.embed_one(a), &e.embed_one(b))
    }

    #[test]
    fn arabic_prefix_and_spelling_variants_are_closer_than_unrelated_words() {
        let e = HashedEmbedder::default();
        let pairs = [
            ("الألواح", "ألواح"),
            ("والتركيب", "التركيب"),
            ("الشمسية", "شمسيه"),
            ("بالفاتورة", "الفاتوره"),
        ];
        let unrelated = ["الضمان", "موعد", "البطاريات", "inverter"];
        for (a, b) in pairs {
            let close = sim(&e, a, b);
            for u in unrelated {
                let far = sim(&e, a, u);
                assert!(
                    close > far + 0.2,
                    "{a} ~ {b} = {close} should beat {a} ~ {u} = {far}"
                );
            }
        }
    }

    #[test]
    fn related_phrases_rank_above_unrelated_ones_in_both_languages() {
        let e = HashedEmbedder::default();
        let q = "تنظيف الألواح الشمسية";
        assert!(sim(&e, q, "طريقة تنظيف ألواح شمسية") > sim(&e, q, "مواعيد عمل المكتب"));
        let q = "cleaning solar panels";
        assert!(sim(&e, q, "Panel cleaning: rinse the panels") > sim(&e, q, "Office hours"));
    }

    #[test]
    fn vectors_are_unit_length_deterministic_and_pinned() {
        let e = HashedEmbedder::default();
        let text = "نقدم خدمات تركيب الألواح الشمسية — installation in 3 days!";
        let v = e.embed_one(text);
        assert_eq!(v.len(), 256);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
        assert_eq!(v, e.embed_one(text));
        assert_eq!(v, HashedEmbedder::new(256).unwrap().embed_one(text));
        // Pinned values: a change to the hash, n-grams or normalisation changes the vector space
        // and must come with a new model id.
        // The expected values come from an independent Python implementation of the same
        // definition.
        assert_eq!(hash(b"<ab"), 0xdc10_937f_ba3d_19aa, "{:#x}", hash(b"<ab"));
        assert_eq!(ngram_hashes("ab").len(), 2 + 1);
        #[rustfmt::skip]
        let expected = [
            -0.116321, -0.167816, 0.0, 0.0, -0.568274, -0.167816, -0.116321, 0.167816,
            -0.116321, 0.0, 0.335632, -0.116321, -0.284137, -0.167816, 0.335632, -0.451953,
        ];
        let v = HashedEmbedder::new(16)
            .unwrap()
            .embed_one("Solar panels, solar");
        for (got, want) in v.iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{v:?}");
        }
    }

    #[test]
    fn case_diacritics_and_punctuation_do_not_matter() {
        let e = HashedEmbedder::new(64).unwrap();
        assert_eq!(e.embed_one("Solar, PANELS!"), e.embed_one("solar panels"));
        assert_eq!(e.embed_one("الْأَلْوَاح"), e.embed_one("الالواح"));
    }

    #[test]
    fn text_without_letters_is_the_zero_vector() {
        let e = HashedEmbedder::new(8).unwrap();
        assert_eq!(e.embed_one(" ... "), vec![0.0; 8]);
        assert_eq!(e.model_id(), "hashed-ngram3-5/8");
        assert!(HashedEmbedder::new(0).is_err());
    }
}
