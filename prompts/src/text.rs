//! Word tokenisation shared by intent detection and retrieval terms.
//!
//! Intent detection and full-text retrieval must agree on what a "word" is,
//! otherwise a phrase recognised in one place would be missed in the other.
//! This module is the single definition: text is Arabic-normalised and
//! lower-cased, punctuation and symbols (including emoji) separate words,
//! apostrophes join contractions (`don't` → `dont`) and drop a possessive or
//! contracted `'s` (`DEWA's` → `dewa`), and a change between Arabic and
//! Latin letters starts a new word so that mixed-script input such as
//! `hiمرحبا` still yields two recognisable words. It also owns the Arabic
//! prefix stripping used for indexing, because that is a property of words
//! rather than of any one caller.

use crate::lang::{is_arabic_char, normalize_arabic};
use std::borrow::Cow;

/// Which writing system a letter belongs to, for splitting mixed-script runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    Arabic,
    Other,
}

/// Splits `text` into lower-cased, Arabic-normalised words. Never yields an
/// empty string.
pub(crate) fn tokenize(text: &str) -> Vec<String> {
    let normalized = normalize_arabic(text);
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut current_script: Option<Script> = None;
    let mut chars = normalized.chars().peekable();

    while let Some(c) = chars.next() {
        if is_apostrophe(c) {
            if !current.is_empty() {
                let mut ahead = chars.clone();
                let is_s = ahead.next().is_some_and(|n| n == 's' || n == 'S');
                if is_s && ahead.next().is_none_or(|n| !n.is_alphanumeric()) {
                    chars.next();
                }
            }
            continue;
        }
        if !c.is_alphanumeric() {
            flush(&mut current, &mut tokens, &mut current_script);
            continue;
        }
        let script = if c.is_numeric() {
            None
        } else if is_arabic_char(c) {
            Some(Script::Arabic)
        } else {
            Some(Script::Other)
        };
        if let (Some(prev), Some(now)) = (current_script, script) {
            if prev != now {
                flush(&mut current, &mut tokens, &mut current_script);
            }
        }
        if script.is_some() {
            current_script = script;
        }
        current.extend(c.to_lowercase());
    }
    flush(&mut current, &mut tokens, &mut current_script);
    tokens
}

fn flush(current: &mut String, tokens: &mut Vec<String>, script: &mut Option<Script>) {
    if !current.is_empty() {
        tokens.push(std::mem::take(current));
    }
    *script = None;
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '’' | '‘' | '`' | 'ʼ')
}

/// Whether the word is written in Arabic script (judged by its first letter).
pub(crate) fn is_arabic_word(word: &str) -> bool {
    word.chars()
        .find(|c| !c.is_numeric())
        .is_some_and(is_arabic_char)
}

/// Collapses runs of three or more identical letters into one, so that
/// emphatic spellings (`hiii`, `thanksss`, `شكراااا`) match their plain
/// form. Doubled letters (`hello`, `good`) and digits (`3000`) are kept.
pub(crate) fn squeeze_runs(word: &str) -> String {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::with_capacity(word.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut j = i;
        while j < chars.len() && chars[j] == c {
            j += 1;
        }
        let run = j - i;
        if run >= 3 && c.is_alphabetic() {
            out.push(c);
        } else {
            out.extend(&chars[i..j]);
        }
        i = j;
    }
    out
}

/// Arabic prefixes removed before indexing, longest first. Conjunctions and
/// prepositions glued to the definite article are listed as units so that
/// one strip removes them together.
const INDEX_PREFIXES: [&str; 9] = ["وبال", "وال", "بال", "فال", "كال", "ولل", "لل", "ال", "و"];

/// The shortest remainder (in letters) a prefix may leave behind.
const MIN_STEM_LETTERS: usize = 3;

/// Removes common Arabic prefixes (`ال`, `و`, `وال`, `بال`, `لل`, `فال`,
/// `كال` …) while the remainder keeps at least three letters.
///
/// Stripping repeats until no prefix applies. That makes the result
/// independent of how many prefixes were glued on: `ألواح`, `الألواح` and
/// `والألواح` all reduce to the same stem, which is what matters for
/// matching even where the stem is not a dictionary word.
pub(crate) fn strip_arabic_prefixes(word: &str) -> &str {
    let mut stem = word;
    loop {
        let next = INDEX_PREFIXES.iter().find_map(|prefix| {
            stem.strip_prefix(prefix)
                .filter(|rest| rest.chars().count() >= MIN_STEM_LETTERS)
        });
        match next {
            Some(rest) => stem = rest,
            None => return stem,
        }
    }
}

/// The indexed form of one token: Arabic words lose their prefixes, other
/// words are kept as they are.
pub(crate) fn index_form(token: &str) -> Cow<'_, str> {
    if is_arabic_word(token) {
        Cow::Borrowed(strip_arabic_prefixes(token))
    } else {
        english_singular(token)
    }
}

/// A deliberately light English stemmer: plural nouns become singular, so that "prices"
/// finds "price" and "batteries" finds "battery". Nothing else is touched — verb endings
/// stay, since stripping them ("financing" → "financ") hurts more than it helps without a
/// dictionary. Words without a trailing `s`, short words and words ending in `ss`, `us` or
/// `is` are left alone.
fn english_singular(word: &str) -> Cow<'_, str> {
    let n = word.len();
    if n <= 3 || !word.is_ascii() || !word.ends_with('s') {
        return Cow::Borrowed(word);
    }
    if let Some(stem) = word.strip_suffix("ies") {
        if n > 4 {
            return Cow::Owned(format!("{stem}y"));
        }
    }
    for suffix in ["sses", "shes", "ches", "xes", "zes"] {
        if word.ends_with(suffix) {
            return Cow::Borrowed(&word[..n - 2]);
        }
    }
    if word.ends_with("ss") || word.ends_with("us") || word.ends_with("is") {
        return Cow::Borrowed(word);
    }
    Cow::Borrowed(&word[..n - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizes_punctuation_case_contractions_and_scripts() {
        assert_eq!(
            tokenize("Hi!! What's DEWA's rule? I'd like a 10kW set-up 🙂"),
            ["hi", "what", "dewa", "rule", "id", "like", "a", "10kw", "set", "up"]
        );
        assert_eq!(tokenize("hiمرحبا،كيفك؟"), ["hi", "مرحبا", "كيفك"]);
        assert_eq!(tokenize("باقة ١٠ كيلوواط"), ["باقه", "10", "كيلوواط"]);
        assert!(tokenize(" ... !!! ").is_empty());
    }

    #[test]
    fn english_plurals_become_singular_and_nothing_else_changes() {
        for (word, want) in [
            ("prices", "price"),
            ("batteries", "battery"),
            ("hours", "hour"),
            ("panels", "panel"),
            ("boxes", "box"),
            ("classes", "class"),
            ("costs", "cost"),
            ("gas", "gas"),
            ("bus", "bus"),
            ("status", "status"),
            ("analysis", "analysis"),
            ("glass", "glass"),
            ("financing", "financing"),
            ("kwh", "kwh"),
        ] {
            assert_eq!(english_singular(word), want, "{word}");
        }
    }

    #[test]
    fn squeezes_only_long_letter_runs() {
        assert_eq!(squeeze_runs("hiiii"), "hi");
        assert_eq!(squeeze_runs("hello"), "hello");
        assert_eq!(squeeze_runs("شكرااااا"), "شكرا");
        assert_eq!(squeeze_runs("3000"), "3000");
    }

    #[test]
    fn strips_arabic_prefixes_consistently() {
        assert_eq!(strip_arabic_prefixes("الشمسيه"), "شمسيه");
        assert_eq!(strip_arabic_prefixes("والشمسيه"), "شمسيه");
        assert_eq!(strip_arabic_prefixes("بالكهرباء"), "كهرباء");
        assert_eq!(strip_arabic_prefixes("للطاقه"), "طاقه");
        assert_eq!(strip_arabic_prefixes("فالتركيب"), "تركيب");
        assert_eq!(strip_arabic_prefixes("كالعاده"), "عاده");
        // Too short a remainder: left alone.
        assert_eq!(strip_arabic_prefixes("الف"), "الف");
        assert_eq!(strip_arabic_prefixes("وقت"), "وقت");
        // Same stem however many prefixes were glued on.
        let forms = ["الواح", "الالواح", "والالواح"];
        let stems: Vec<&str> = forms.iter().map(|w| strip_arabic_prefixes(w)).collect();
        assert!(stems.windows(2).all(|w| w[0] == w[1]), "{stems:?}");
    }
}
