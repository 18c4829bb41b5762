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
                })
                .collect(),
        })
    }

    /// `composite(<id>*<weight>+...)`, e.g.
    /// `composite(local/all-MiniLM-L6-v2*0.7+hashed-ngram3-5/256*0.3)`.
    pub fn model_id(&self) -> String {
        let parts: Vec<String> = self
            .parts
            .iter()
            .map(|p| format!("{}*{}", p.embedder.model_id(), p.weight))
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
            for part in &self.parts {
                let vectors = part.embedder.embed(texts, kind).await?;
                if vectors.len() != texts.len() {
                    return Err(EmbedError::InvalidResponse {
                        model_id: part.embedder.model_id(),
                        reason: format!("{} vectors for {} texts", vectors.len(), texts.len()),
                    });
                }
                // A copy and a multiply per float: too little work to be worth a thread hop.
                for (acc, mut v) in out.iter_mut().zip(vectors) {
                    // Parts already return unit vectors; renormalising guards the weighted-mean
                    // property against a part that does not. A zero vector stays zero.
                    l2_normalize(&mut v);
                    acc.extend(v.iter().map(|x| x * part.scale));
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
}
