//! Token-level phrase matching for intent detection.
//!
//! Intent rules are written as small phrase lists ("talk to", "خدمة عملاء")
//! rather than regular expressions, because the same rule has to tolerate
//! Arabic clitics, English plurals and common misspellings. This module owns
//! that tolerance so the rules themselves can stay declarative:
//!
//! * a pattern word ending in `*` matches any word starting with it;
//! * a pattern word ending in `~` additionally matches words within a small
//!   edit distance (one edit for 7–9 letters, two from 10), for long English
//!   words that are often misspelled;
//! * `#` matches any word containing a digit;
//! * an English pattern word of four or more letters also matches its plural
//!   in `s`;
//! * an Arabic pattern word also matches the word with a leading `و`, `ف`,
//!   `ب`, `ل`, `ال`, `وال`, `بال`, `فال`, `كال`, `لل`, `ولل` or `وبال`, so
//!   patterns are written without the article.
//!
//! Patterns are normalised with the same rules as input text when compiled,
//! so they may be written in ordinary Arabic spelling.

use crate::lang::normalize_arabic;
use crate::text::is_arabic_word;

/// How a single pattern word compares with an input word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Exact,
    Stem,
    Fuzzy,
    Number,
}

#[derive(Debug)]
struct Word {
    text: String,
    mode: Mode,
    arabic: bool,
}

/// Prefixes an Arabic input word may carry in front of a pattern word.
const CLITIC_PREFIXES: [&str; 12] = [
    "وبال", "وال", "بال", "فال", "كال", "ولل", "لل", "ال", "و", "ف", "ب", "ل",
];

impl Word {
    fn compile(raw: &str) -> Word {
        let (body, mode) = if raw == "#" {
            ("", Mode::Number)
        } else if let Some(body) = raw.strip_suffix('*') {
            (body, Mode::Stem)
        } else if let Some(body) = raw.strip_suffix('~') {
            (body, Mode::Fuzzy)
        } else {
            (raw, Mode::Exact)
        };
        let text = normalize_arabic(body).to_lowercase();
        let arabic = is_arabic_word(&text);
        Word { text, mode, arabic }
    }

    fn matches(&self, token: &str) -> bool {
        if self.mode == Mode::Number {
            return token.chars().any(|c| c.is_ascii_digit());
        }
        if self.arabic {
            if !is_arabic_word(token) {
                return false;
            }
            return self.matches_form(token)
                || CLITIC_PREFIXES.iter().any(|prefix| {
                    let min = if *prefix == "و" { 2 } else { 3 };
                    token
                        .strip_prefix(prefix)
                        .is_some_and(|rest| rest.chars().count() >= min && self.matches_form(rest))
                });
        }
        if self.matches_form(token) {
            return true;
        }
        if self.mode != Mode::Stem && self.text.chars().count() >= 4 {
            if let Some(singular) = token.strip_suffix('s') {
                return self.matches_form(singular);
            }
        }
        false
    }

    fn matches_form(&self, form: &str) -> bool {
        match self.mode {
            Mode::Exact => form == self.text,
            Mode::Stem => form.starts_with(&self.text),
            Mode::Fuzzy => {
                if form == self.text {
                    return true;
                }
                let len = self.text.chars().count();
                let allowed = if len >= 10 {
                    2
                } else if len >= 7 {
                    1
                } else {
                    0
                };
                allowed > 0
                    && form.chars().count() >= 5
                    && edit_distance(form, &self.text) <= allowed
            }
            Mode::Number => false,
        }
    }
}

/// One phrase: a sequence of pattern words matched against consecutive input
/// words.
#[derive(Debug)]
struct Phrase(Vec<Word>);

impl Phrase {
    fn matches_at(&self, tokens: &[String], start: usize) -> bool {
        let words = &self.0;
        start + words.len() <= tokens.len()
            && words
                .iter()
                .zip(&tokens[start..])
                .all(|(word, token)| word.matches(token))
    }
}

/// A compiled list of alternative phrases.
#[derive(Debug)]
pub(super) struct PhraseSet(Vec<Phrase>);

impl PhraseSet {
    /// Compiles phrases written as space-separated pattern words.
    pub(super) fn new(phrases: &[&str]) -> PhraseSet {
        PhraseSet(
            phrases
                .iter()
                .map(|p| Phrase(p.split_whitespace().map(Word::compile).collect()))
                .filter(|p| !p.0.is_empty())
                .collect(),
        )
    }

    /// The length (in words) of the longest phrase matching at `start`.
    pub(super) fn match_at(&self, tokens: &[String], start: usize) -> Option<usize> {
        self.0
            .iter()
            .filter(|phrase| phrase.matches_at(tokens, start))
            .map(|phrase| phrase.0.len())
            .max()
    }

    /// Every `(start, end)` span where some phrase matches (longest per start).
    pub(super) fn spans(&self, tokens: &[String]) -> Vec<(usize, usize)> {
        (0..tokens.len())
            .filter_map(|start| self.match_at(tokens, start).map(|len| (start, start + len)))
            .collect()
    }

    /// Whether any phrase occurs anywhere in `tokens`.
    pub(super) fn occurs_in(&self, tokens: &[String]) -> bool {
        (0..tokens.len()).any(|start| self.match_at(tokens, start).is_some())
    }
}

/// Whether a phrase from `first` is followed by a phrase from `second` with
/// at most `gap` words between them, none of which is matched by `blockers`.
pub(super) fn followed_within(
    tokens: &[String],
    first: &PhraseSet,
    second: &PhraseSet,
    gap: usize,
    blockers: &PhraseSet,
) -> bool {
    let seconds = second.spans(tokens);
    first.spans(tokens).iter().any(|&(_, end)| {
        seconds.iter().any(|&(start, _)| {
            start >= end
                && start - end <= gap
                && (end..start).all(|i| blockers.match_at(tokens, i).is_none())
        })
    })
}

/// Tries to explain every word of `tokens` with phrases from `sets`, always
/// taking the longest phrase at each position (earlier sets win ties).
/// Returns the tag of each phrase used, or `None` if some word is left over.
pub(super) fn cover<T: Copy>(tokens: &[String], sets: &[(&PhraseSet, T)]) -> Option<Vec<T>> {
    let mut tags = Vec::new();
    let mut position = 0;
    while position < tokens.len() {
        let mut best: Option<(usize, T)> = None;
        for &(set, tag) in sets {
            if let Some(len) = set.match_at(tokens, position) {
                if best.is_none_or(|(best_len, _)| len > best_len) {
                    best = Some((len, tag));
                }
            }
        }
        let (len, tag) = best?;
        tags.push(tag);
        position += len;
    }
    Some(tags)
}

/// Optimal string alignment distance (Levenshtein plus adjacent
/// transpositions), counted in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::tokenize;

    #[test]
    fn pattern_words_honour_their_modes() {
        let set = PhraseSet::new(&["appointment~", "talk*", "موظف", "خدمة عملاء", "call", "#"]);
        let hit = |text: &str| set.occurs_in(&tokenize(text));
        assert!(hit("apointment"));
        assert!(hit("appointmnet"));
        assert!(hit("appointments"));
        assert!(!hit("appeasement"));
        assert!(hit("talking"));
        assert!(hit("بالموظف"));
        assert!(hit("للموظف"));
        assert!(!hit("موظفون"));
        assert!(hit("خدمة العملاء"));
        assert!(hit("calls"));
        assert!(hit("5pm"));
        assert!(!hit("nothing here"));
    }

    #[test]
    fn short_words_have_no_plural_or_fuzz() {
        let set = PhraseSet::new(&["hi", "meeting~"]);
        assert!(!set.occurs_in(&tokenize("his")));
        assert!(set.occurs_in(&tokenize("meating")));
        assert!(!set.occurs_in(&tokenize("greeting")));
    }

    #[test]
    fn edit_distance_counts_transpositions_once() {
        assert_eq!(edit_distance("abc", "abc"), 0);
        assert_eq!(edit_distance("abc", "acb"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn cover_reports_leftovers() {
        let greet = PhraseSet::new(&["good morning", "hi"]);
        let filler = PhraseSet::new(&["there"]);
        let sets = [(&greet, 'g'), (&filler, 'f')];
        assert_eq!(
            cover(&tokenize("Hi there, good morning"), &sets),
            Some(vec!['g', 'f', 'g'])
        );
        assert_eq!(cover(&tokenize("hi, prices?"), &sets), None);
    }
}
