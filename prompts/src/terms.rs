//! Retrieval terms: how customer questions and knowledge documents are
//! reduced to comparable words.
//!
//! The knowledge store indexes documents and the agent queries it with the
//! customer's words. Both sides must go through exactly the same word
//! normalisation or an Arabic question written without diacritics would never
//! find a document written with them. This module owns that contract:
//! [`normalize_for_index`] is applied to document text before indexing and
//! [`search_terms`] to a question before querying, and every term produced by
//! the latter is a word the former would produce for the same spelling.

use std::collections::HashSet;
use std::sync::OnceLock;

use crate::lang::normalize_arabic;
use crate::text::{index_form, tokenize};

/// English words too common to help retrieval.
#[rustfmt::skip]
const ENGLISH_STOP_WORDS: &[&str] = &[
    "a", "about", "after", "again", "all", "also", "am", "an", "and", "any", "anything", "are",
    "as", "at", "be", "been", "before", "but", "by", "can", "could", "dear", "did", "do", "does",
    "dont", "for", "from", "get", "give", "had", "has", "have", "hello", "hey", "hi", "how", "i",
    "id", "if", "im", "in", "into", "is", "it", "its", "ive", "just", "kindly", "know", "let",
    "like", "may", "me", "might", "more", "most", "much", "must", "my", "need", "no", "not", "now",
    "of", "ok", "okay", "on", "or", "other", "our", "ours", "please", "pls", "plz", "shall",
    "should", "so", "some", "tell", "than", "thank", "thanks", "that", "the", "their", "them",
    "then", "there", "these", "they", "this", "those", "to", "too", "u", "up", "us", "very", "want",
    "was", "we", "were", "what", "whats", "when", "where", "which", "while", "who", "whom", "why",
    "will", "with", "would", "yes", "you", "your", "youre", "yours",
    // Verbs of asking: "do you offer / provide / have …" carries no topic.
    "offer", "offers", "provide", "provides", "sell", "sells", "interested", "wondering",
    "looking", "available",
];

/// Arabic function words and conversational fillers (MSA and colloquial),
/// written in any spelling; they are normalised before use.
#[rustfmt::skip]
const ARABIC_STOP_WORDS: &[&str] = &[
    "في", "فى", "من", "على", "علي", "إلى", "الى", "عن", "مع", "ما", "ماذا", "هل", "كيف", "كم",
    "بكم", "متى", "أين", "اين", "لماذا", "ليش", "ليه", "شو", "ايش", "إيش", "وش", "ايه", "إيه",
    "شلون", "هو", "هي", "هم", "هن", "أنا", "انا", "أنت", "انت", "انتم", "أنتم", "نحن", "احنا",
    "إحنا", "هذا", "هذه", "هذي", "ذلك", "تلك", "هاذا", "ده", "دي", "دا", "التي", "الذي", "الذين",
    "اللي", "لي", "لك", "لكم", "لنا", "له", "لها", "به", "بها", "فيه", "فيها", "منه", "منها",
    "عليه", "عليها", "عندكم", "عندك", "عندي", "عند", "او", "أو", "ثم", "قد", "لقد", "كان", "كانت",
    "يكون", "تكون", "إن", "أن", "ان", "انه", "إنه", "أنه", "لا", "لم", "لن", "نعم", "كل", "اي",
    "أي", "أيضا", "ايضا", "فقط", "بس", "جدا", "حتى", "بين", "يا", "لو", "سمحت", "سمحتي", "فضلك",
    "ممكن", "يمكن", "يمكنني", "يمكنك", "أريد", "اريد", "ابي", "أبي", "ابغى", "ابغا", "بدي", "عايز",
    "عاوز", "ودي", "مرحبا", "السلام", "عليكم", "شكرا", "هناك", "هنالك", "الآن", "الان", "ذا", "إذا",
    "اذا", "لدي", "لديكم", "لديك",
];

fn stop_words() -> &'static HashSet<String> {
    static STOP: OnceLock<HashSet<String>> = OnceLock::new();
    STOP.get_or_init(|| {
        ENGLISH_STOP_WORDS
            .iter()
            .chain(ARABIC_STOP_WORDS)
            .map(|w| normalize_arabic(w))
            .collect()
    })
}

/// Whether a token (raw or prefix-stripped) is a stop word. A conjunction
/// `و` glued to a stop word (`وهل`, `وما`) is also a stop word.
fn is_stop_word(raw: &str, stem: &str) -> bool {
    let stop = stop_words();
    stop.contains(raw)
        || stop.contains(stem)
        || raw
            .strip_prefix('و')
            .is_some_and(|rest| stop.contains(rest))
}

/// Query terms for full-text retrieval.
///
/// Lower-cased, punctuation stripped, Arabic normalised (see
/// [`crate::normalize_arabic`]) and common Arabic prefixes (`ال`, `و`, `وال`,
/// `بال`, `لل`, `فال`, `كال` …) stripped where the remainder keeps at least
/// three letters; English and Arabic stop words removed; single letters
/// dropped (single digits are kept); de-duplicated with first-occurrence
/// order kept. Never contains empty strings. Beyond the Arabic prefixes, only
/// English plurals are reduced (`hours` → `hour`, `batteries` → `battery`).
pub fn search_terms(text: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut terms = Vec::new();
    for token in tokenize(text) {
        let stem = index_form(&token);
        let stem = stem.as_ref();
        if is_stop_word(&token, stem) {
            continue;
        }
        let mut chars = stem.chars();
        let single = chars.next().is_some_and(|c| !c.is_numeric()) && chars.next().is_none();
        if stem.is_empty() || single {
            continue;
        }
        if seen.insert(stem.to_owned()) {
            terms.push(stem.to_owned());
        }
    }
    terms
}

/// The normalisation applied to a document's text before it is indexed.
///
/// Produces the same word forms as [`search_terms`] (lower-cased, Arabic
/// normalised, Arabic prefixes stripped, punctuation removed), separated by
/// single spaces and in document order. Stop words and repeated words are
/// kept: they never appear among query terms, so they cannot cause false
/// matches, and keeping them preserves the text's shape for ranking.
pub fn normalize_for_index(text: &str) -> String {
    let tokens = tokenize(text);
    let mut out = String::with_capacity(text.len());
    for token in &tokens {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&index_form(token));
    }
    out
}

/// How often each query term occurs among a text's indexed words, in the
/// order of `terms`.
pub(crate) fn term_counts(terms: &[String], text: &str) -> Vec<usize> {
    let indexed = normalize_for_index(text);
    terms
        .iter()
        .map(|term| indexed.split(' ').filter(|word| *word == term).count())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_terms_drop_stop_words_and_punctuation() {
        assert_eq!(
            search_terms("What are your opening hours?"),
            ["opening", "hour"]
        );
        assert_eq!(
            search_terms("How much is the 10kW package? And the 10KW PACKAGE warranty!"),
            ["10kw", "package", "warranty"]
        );
        assert_eq!(
            search_terms("Can I pay in 12 instalments?"),
            ["pay", "12", "instalment"]
        );
    }

    #[test]
    fn arabic_terms_strip_diacritics_prefixes_and_stop_words() {
        assert_eq!(search_terms("ما هي ساعات العمل؟"), ["ساعات", "عمل"]);
        assert_eq!(
            search_terms("هَلْ تُقَدِّمُونَ الضَّمَانَ عَلى الألواح والبطاريات؟"),
            ["تقدمون", "ضمان", "واح", "بطاريات"]
        );
        assert_eq!(search_terms("للشركات وبالتقسيط"), ["شركات", "تقسيط"]);
        assert_eq!(
            search_terms("كم سعر الباقة؟ وكم سعر التركيب؟"),
            ["سعر", "باقه", "تركيب"]
        );
        // Arabic-Indic digits become ASCII digits.
        assert_eq!(search_terms("باقة ١٠ كيلوواط"), ["باقه", "10", "كيلوواط"]);
    }

    #[test]
    fn terms_are_never_empty_and_may_be_none() {
        assert!(search_terms("").is_empty());
        assert!(search_terms("?! … 🙂").is_empty());
        assert!(search_terms("what is the").is_empty());
        for text in ["a b c", "و ال لل", "x—y", "سعر،،،الباقة"] {
            assert!(search_terms(text).iter().all(|t| !t.is_empty()));
        }
    }

    #[test]
    fn index_normalization_matches_query_terms() {
        let doc = "نعمل من السبت إلى الخميس. وللاستفسار عن الأسعار: زوروا فروعنا.";
        let indexed = normalize_for_index(doc);
        assert_eq!(
            indexed,
            "نعمل من سبت الي خميس استفسار عن اسعار زوروا فروعنا"
        );
        let terms = search_terms("الاسعار والاستفسار يوم الخميس؟ الخميس!");
        assert_eq!(terms, ["اسعار", "استفسار", "يوم", "خميس"]);
        assert_eq!(term_counts(&terms, doc), [1, 1, 0, 1]);
        assert_eq!(
            normalize_for_index("  DEWA's Shams-Dubai  "),
            "dewa sham dubai"
        );
        assert_eq!(normalize_for_index(""), "");
    }
}
