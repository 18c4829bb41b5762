//! Choosing which retrieved snippets actually answer a question.
//!
//! Full-text retrieval returns any passage sharing a word with the question,
//! so a question about the warranty on panels also retrieves every passage
//! that merely mentions panels. Quoting such a passage would look careless;
//! saying "I don't have that information" and offering a person is better.
//! This module owns that judgement. Each query term is weighted by how rare
//! it is among the retrieved snippets (a term every snippet contains tells
//! them apart least), and a snippet counts as relevant only when the terms it
//! contains carry at least half of the question's total weight.

use crate::lang::Lang;
use crate::reply::Snippet;
use crate::terms::term_counts;

/// A snippet with its relevance to the question.
#[derive(Debug, Clone)]
pub(super) struct Scored {
    /// Index into the snippets given to the responder.
    pub(super) index: usize,
    /// Whether the snippet is relevant enough to quote as the answer.
    pub(super) relevant: bool,
    /// Which query terms the snippet contains.
    matched: Vec<bool>,
    same_lang: bool,
    weight: f64,
    hits: usize,
}

impl Scored {
    /// Whether this snippet contains a query term that `other` lacks.
    pub(super) fn adds_to(&self, other: &Scored) -> bool {
        self.matched
            .iter()
            .zip(&other.matched)
            .any(|(mine, theirs)| *mine && !*theirs)
    }
}

/// Scores every non-empty snippet and orders them best first: the
/// customer's language first, then the weight of matched terms, then the
/// number of term occurrences, then retrieval order.
///
/// `terms` are the question's [`crate::search_terms`]. When there are none
/// (the question is all stop words) retrieval's own order is trusted and
/// every snippet counts as relevant.
pub(super) fn rank(terms: &[String], snippets: &[Snippet], lang: Lang) -> Vec<Scored> {
    let usable: Vec<(usize, &Snippet)> = snippets
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.text.trim().is_empty())
        .collect();
    let counts: Vec<Vec<usize>> = usable
        .iter()
        .map(|(_, s)| term_counts(terms, &format!("{} {}", s.title, s.text)))
        .collect();

    // Smoothed inverse document frequency over the retrieved snippets.
    let n = usable.len() as f64;
    let idf: Vec<f64> = (0..terms.len())
        .map(|t| {
            let df = counts.iter().filter(|c| c[t] > 0).count() as f64;
            (1.0 + (n + 1.0) / (df + 1.0)).ln()
        })
        .collect();
    let total: f64 = idf.iter().sum();

    let mut scored: Vec<Scored> = usable
        .iter()
        .zip(&counts)
        .map(|(&(index, snippet), counts)| {
            let matched: Vec<bool> = counts.iter().map(|c| *c > 0).collect();
            let weight: f64 = idf
                .iter()
                .zip(&matched)
                .filter(|(_, m)| **m)
                .map(|(w, _)| w)
                .sum();
            let relevant = terms.is_empty() || (weight > 0.0 && 2.0 * weight + 1e-9 >= total);
            Scored {
                index,
                relevant,
                matched,
                same_lang: snippet.lang == lang,
                weight,
                hits: counts.iter().sum(),
            }
        })
        .collect();
    scored.sort_by(|a, b| {
        b.same_lang
            .cmp(&a.same_lang)
            .then(b.weight.total_cmp(&a.weight))
            .then(b.hits.cmp(&a.hits))
            .then(a.index.cmp(&b.index))
    });
    scored
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::terms::search_terms;

    fn snippet(title: &str, text: &str, lang: Lang) -> Snippet {
        Snippet {
            title: title.to_owned(),
            text: text.to_owned(),
            lang,
        }
    }

    #[test]
    fn rare_terms_decide_relevance() {
        let snippets = [
            snippet("About", "We install tier-1 panels across Dubai.", Lang::En),
            snippet(
                "Hours",
                "Visit us to see sample panels on display.",
                Lang::En,
            ),
        ];
        let ranked = rank(
            &search_terms("What warranty do the panels have?"),
            &snippets,
            Lang::En,
        );
        assert!(ranked.iter().all(|s| !s.relevant));
    }

    #[test]
    fn more_occurrences_win_ties_and_language_comes_first() {
        let snippets = [
            snippet("Packages", "Battery storage can be added.", Lang::En),
            snippet(
                "Battery FAQ",
                "Do I need a battery? A battery helps in outages.",
                Lang::En,
            ),
            snippet(
                "بطاريات",
                "البطارية battery مفيدة عند انقطاع الكهرباء.",
                Lang::Ar,
            ),
        ];
        let ranked = rank(&search_terms("Do I need a battery?"), &snippets, Lang::En);
        let order: Vec<usize> = ranked.iter().map(|s| s.index).collect();
        assert_eq!(order, [1, 0, 2]);
        assert!(ranked.iter().all(|s| s.relevant));
        assert!(!ranked[1].adds_to(&ranked[0]));
    }

    #[test]
    fn stop_word_questions_trust_retrieval_order() {
        let snippets = [
            snippet("A", "first", Lang::En),
            snippet("B", "  ", Lang::En),
            snippet("C", "third", Lang::En),
        ];
        let ranked = rank(&search_terms("what is it?"), &snippets, Lang::En);
        let order: Vec<usize> = ranked.iter().map(|s| s.index).collect();
        assert_eq!(order, [0, 2]);
        assert!(ranked.iter().all(|s| s.relevant));
    }
}
