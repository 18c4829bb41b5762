//! Weighted concatenation of embedders, for hybrid (semantic + lexical) similarity.
//!
//! Each part's vector is L2-normalised and scaled by `sqrt(weight / Σ weights)`, then the parts
//! are concatenated. The dot product of two composite vectors is then
//! `Σ (weight_i / Σ weights) · cos_i`: the weighted mean of the parts' cosines, and the composite
//! vector is itself unit length. A vector store that knows only cosine similarity thus ranks by a
//! blend of, say, MiniLM's meaning and the hashed embedder's spelling.

use std::future::Future;
use std::pin::Pin;

use super::{l2_normalize, EmbedError, EmbedKind, Embedder};

/// Embedders whose vectors are concatenated with weights.
#[derive(Debug)]
pub struct CompositeEmbedder {
    parts: Vec<Part>,
}

#[derive(Debug)]
struct Part {
    embedder: Embedder,
    weight: f32,
    /// `sqrt(weight / Σ weights)`, the factor applied to the part's unit vector.
    scale: f32,
    /// Which texts the part embeds; for the others its slice of the vector is zero.
    gate: Gate,
}

/// Which texts a part of a composite embeds, by script ([`switchboard_prompts::detect_language`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    All,
    /// Text written mostly in Arabic script only.
    Arabic,
    /// Everything else (for a model that only understands English-like text: its vectors of
    /// Arabic text are noise).
    NotArabic,
}

impl Gate {
    fn admits(self, arabic: bool) -> bool {
        match self {
            Gate::All => true,
            Gate::Arabic => arabic,
            Gate::NotArabic => !arabic,
        }
    }
}

type EmbedFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<Vec<f32>>, EmbedError>> + Send + 'a>>;

impl CompositeEmbedder {
    /// A composite of `(embedder, weight)` parts, in order. Weights must be finite and positive;
    /// only their ratios matter.
    pub fn new(parts: Vec<(Embedder, f32)>) -> Result<Self, EmbedError> {
        if parts.is_empty() {
            return Err(EmbedError::Config(
                "a composite embedder needs at least one part".into(),
            ));
        }
        if let Some((e, w)) = parts.iter().find(|(_, w)| !(w.is_finite() && *w > 0.0)) {
            return Err(EmbedError::Config(format!(
                "weight of {} in a composite embedder must be positive, not {w}",
                e.model_id()
            )));
        }
        let total: f32 = parts.iter().map(|(_, w)| w).sum();
        Ok(Self {
            parts: parts
                .into_iter()
                .map(|(embedder, weight)| Part {
                    embedder,
                    weight,
                    scale: (weight / total).sqrt(),
                    gate: Gate::All,
                })
                .collect(),
        })
    }

    /// `composite(<id>*<weight>+...)`, e.g.
    /// `composite(local/all-MiniLM-L6-v2*0.7+hashed-ngram3-5/256*0.3)`.
    /// Restricts part `index` to the texts `gate` admits; for other texts that part is zero and
    /// the whole vector is renormalised, so they compare by the remaining parts alone.
    pub fn gate(mut self, index: usize, gate: Gate) -> Self {
        if let Some(p) = self.parts.get_mut(index) {
            p.gate = gate;
        }
        self
    }

    pub fn model_id(&self) -> String {
        let parts: Vec<String> = self
            .parts
            .iter()
            .map(|p| {
                let gate = match p.gate {
                    Gate::All => "",
                    Gate::Arabic => "[ar]",
                    Gate::NotArabic => "[not-ar]",
                };
                format!("{}*{}{gate}", p.embedder.model_id(), p.weight)
            })
            .collect();
        format!("composite({})", parts.join("+"))
    }

    /// The sum of the parts' dimensions, when every part's is known.
    pub fn dims(&self) -> Option<usize> {
        self.parts.iter().map(|p| p.embedder.dims()).sum()
    }

    /// Embeds with every part in turn and concatenates. Boxed because it recurses through
    /// [`Embedder::embed`].
    pub(super) fn embed<'a>(&'a self, texts: &'a [String], kind: EmbedKind) -> EmbedFuture<'a> {
        Box::pin(async move {
            let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
            let arabic: Vec<bool> = texts
                .iter()
                .map(|t| switchboard_prompts::detect_language(t) == switchboard_prompts::Lang::Ar)
                .collect();
            for part in &self.parts {
                let dims = part.embedder.dims();
                if !arabic.iter().any(|a| part.gate.admits(*a)) {
                    if let Some(d) = dims {
                        for acc in out.iter_mut() {
                            acc.extend(std::iter::repeat_n(0.0, d));
                        }
                        continue;
                    }
                }
                let vectors = part.embedder.embed(texts, kind).await?;
                if vectors.len() != texts.len() {
                    return Err(EmbedError::InvalidResponse {
                        model_id: part.embedder.model_id(),
                        reason: format!("{} vectors for {} texts", vectors.len(), texts.len()),
                    });
                }
                // A copy and a multiply per float: too little work to be worth a thread hop.
                for (i, (acc, mut v)) in out.iter_mut().zip(vectors).enumerate() {
                    if !part.gate.admits(arabic[i]) {
                        acc.extend(std::iter::repeat_n(0.0, v.len()));
                        continue;
                    }
                    // Parts already return unit vectors; renormalising guards the weighted-mean
                    // property against a part that does not. A zero vector stays zero.
                    l2_normalize(&mut v);
                    acc.extend(v.iter().map(|x| x * part.scale));
                }
            }
            if self.parts.iter().any(|p| p.gate != Gate::All) {
                // Arabic texts lost a part: back to unit length.
                for v in out.iter_mut() {
                    l2_normalize(v);
                }
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::embed::{cosine, HashedEmbedder};

    fn hashed(dims: usize) -> Embedder {
        Embedder::Hashed(HashedEmbedder::new(dims).unwrap())
    }

    #[tokio::test]
    async fn composite_cosine_is_the_weighted_mean_of_part_cosines() {
        let (a, b) = (hashed(64), hashed(256));
        let (wa, wb) = (0.7f32, 0.3f32);
        let composite = Embedder::Composite(Arc::new(
            CompositeEmbedder::new(vec![(a.clone(), wa), (b.clone(), wb)]).unwrap(),
        ));
        let texts: Vec<String> = [
            "installing solar panels on a villa roof",
            "solar panel installation for homes",
            "تركيب الألواح الشمسية",
            "office hours",
        ]
        .map(String::from)
        .to_vec();
        let va = a.embed(&texts, EmbedKind::Passage).await.unwrap();
        let vb = b.embed(&texts, EmbedKind::Passage).await.unwrap();
        let vc = composite.embed(&texts, EmbedKind::Passage).await.unwrap();
        assert_eq!(composite.dims(), Some(64 + 256));
        for v in &vc {
            assert_eq!(v.len(), 320);
            assert!((cosine(v, v) - 1.0).abs() < 1e-5);
        }
        for i in 0..texts.len() {
            for j in 0..texts.len() {
                let expected = wa * cosine(&va[i], &va[j]) + wb * cosine(&vb[i], &vb[j]);
                let got = cosine(&vc[i], &vc[j]);
                assert!(
                    (got - expected).abs() < 1e-5,
                    "{i},{j}: {got} vs {expected}"
                );
            }
        }
    }

    #[tokio::test]
    async fn composites_nest_and_name_their_parts() {
        let inner = Embedder::Composite(Arc::new(
            CompositeEmbedder::new(vec![(hashed(16), 1.0), (hashed(32), 3.0)]).unwrap(),
        ));
        let outer = CompositeEmbedder::new(vec![(inner, 0.5), (hashed(8), 0.5)]).unwrap();
        assert_eq!(
            outer.model_id(),
            "composite(composite(hashed-ngram3-5/16*1+hashed-ngram3-5/32*3)*0.5+hashed-ngram3-5/8*0.5)"
        );
        let v = outer
            .embed(&["hello".to_string()], EmbedKind::Query)
            .await
            .unwrap();
        assert_eq!(v[0].len(), 56);
        assert!((cosine(&v[0], &v[0]) - 1.0).abs() < 1e-5);
    }

    #[test]
    fn weights_must_be_positive() {
        assert!(CompositeEmbedder::new(vec![]).is_err());
        assert!(CompositeEmbedder::new(vec![(hashed(4), 0.0)]).is_err());
        assert!(CompositeEmbedder::new(vec![(hashed(4), f32::NAN)]).is_err());
        assert!(CompositeEmbedder::new(vec![(hashed(4), -1.0)]).is_err());
    }

    #[tokio::test]
    async fn a_part_skipped_for_arabic_leaves_arabic_texts_to_the_others() {
        let (a, b) = (hashed(64), hashed(256));
        let composite = Embedder::Composite(Arc::new(
            CompositeEmbedder::new(vec![(a.clone(), 0.7), (b.clone(), 0.3)])
                .unwrap()
                .gate(0, Gate::NotArabic),
        ));
        assert!(composite.model_id().contains("[not-ar]"));
        let texts: Vec<String> = [
            "تركيب الألواح الشمسية",
            "الألواح الشمسية للمنازل",
            "solar panels for homes",
            "installing solar panels",
        ]
        .map(String::from)
        .to_vec();
        let va = a.embed(&texts, EmbedKind::Passage).await.unwrap();
        let vb = b.embed(&texts, EmbedKind::Passage).await.unwrap();
        let vc = composite.embed(&texts, EmbedKind::Passage).await.unwrap();
        for v in &vc {
            assert!((cosine(v, v) - 1.0).abs() < 1e-5, "unit length");
        }
        // Arabic: the skipped part is zero and the cosine is the other part's alone.
        assert!(vc[0][..64].iter().all(|x| *x == 0.0));
        assert!((cosine(&vc[0], &vc[1]) - cosine(&vb[0], &vb[1])).abs() < 1e-5);
        // English: the weighted mean, as without the gate.
        let expected = 0.7 * cosine(&va[2], &va[3]) + 0.3 * cosine(&vb[2], &vb[3]);
        assert!((cosine(&vc[2], &vc[3]) - expected).abs() < 1e-5);
    }
}

#[cfg(test)]
mod routing_tests {
    use std::sync::Arc;

    use super::*;
    use crate::embed::{cosine, HashedEmbedder};

    #[tokio::test]
    async fn a_script_routed_composite_uses_exactly_one_part_per_text() {
        let (a, b) = (
            Embedder::Hashed(HashedEmbedder::new(64).unwrap()),
            Embedder::Hashed(HashedEmbedder::new(128).unwrap()),
        );
        let routed = Embedder::Composite(Arc::new(
            CompositeEmbedder::new(vec![(a.clone(), 1.0), (b.clone(), 1.0)])
                .unwrap()
                .gate(0, Gate::NotArabic)
                .gate(1, Gate::Arabic),
        ));
        assert!(routed.model_id().contains("[not-ar]") && routed.model_id().contains("[ar]"));
        let texts: Vec<String> = [
            "solar panels",
            "solar panel prices",
            "الألواح الشمسية",
            "ألواح شمسية",
        ]
        .map(String::from)
        .to_vec();
        let (va, vb) = (
            a.embed(&texts, EmbedKind::Passage).await.unwrap(),
            b.embed(&texts, EmbedKind::Passage).await.unwrap(),
        );
        let vr = routed.embed(&texts, EmbedKind::Passage).await.unwrap();
        // English compares exactly as part a, Arabic exactly as part b, across scripts: 0.
        assert!((cosine(&vr[0], &vr[1]) - cosine(&va[0], &va[1])).abs() < 1e-5);
        assert!((cosine(&vr[2], &vr[3]) - cosine(&vb[2], &vb[3])).abs() < 1e-5);
        assert!(cosine(&vr[0], &vr[2]).abs() < 1e-6);
    }
}
