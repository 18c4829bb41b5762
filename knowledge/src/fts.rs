//! Text preparation for PostgreSQL full-text search, per text-search configuration.
//!
//! Measured on the Arabic retrieval set (`kb eval …/xquad-r-ar`, full text only): PostgreSQL's
//! Snowball `arabic` stemmer already folds alef forms and strips diacritics, but it leaves the
//! definite article on short words ("الضمان" → `الضم`, "ضمان" → `ضمان`, so "warranty" never
//! matched "the warranty"), and unifying taa marbuta with haa before it *hurts* (its suffix rules
//! rely on ة). So for `arabic` we strip diacritics and tatweel, unify alef forms and remove the
//! article (with an attached conjunction or preposition) when three letters remain, and leave the
//! rest to the stemmer. `simple` (no stemmer) gets the full orthographic normalisation of
//! [`switchboard_prompts::normalize_arabic`]. Other configurations get the text as is.

use switchboard_prompts::normalize_arabic;

/// Article forms removed from the start of Arabic words, longest first.
const ARTICLES: [&str; 6] = ["وال", "بال", "فال", "كال", "لل", "ال"];

/// The text to index (or to parse a query with) under `config`.
pub fn prepare(text: &str, config: &str) -> String {
    let text = ascii_punctuation(text);
    match config {
        "arabic" => prepare_arabic(&text),
        "simple" => normalize_arabic(&text),
        _ => text,
    }
}

/// PostgreSQL's text-search parser does not know Arabic punctuation: "ضمان؟" would become the
/// lexeme `ضمان؟`, so a question never matched the word it ends with. Map it to ASCII.
fn ascii_punctuation(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '؟' => '?',
            '،' => ',',
            '؛' => ';',
            '٪' => '%',
            '۔' => '.',
            '«' | '»' => '"',
            c => c,
        })
        .collect()
}

fn prepare_arabic(text: &str) -> String {
    let mut folded = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            // Tashkeel, superscript alef, Quranic marks, tatweel.
            '\u{064B}'..='\u{065F}' | '\u{0670}' | '\u{06D6}'..='\u{06ED}' | '\u{0640}' => {}
            'أ' | 'إ' | 'آ' | 'ٱ' => folded.push('ا'),
            c => folded.push(c),
        }
    }
    let mut out = String::with_capacity(folded.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let w = strip_article(word);
        out.push_str(w);
        word.clear();
    };
    for c in folded.chars() {
        if is_arabic_letter(c) {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

fn strip_article(word: &str) -> &str {
    for a in ARTICLES {
        if let Some(rest) = word.strip_prefix(a) {
            if rest.chars().count() >= 3 {
                return rest;
            }
        }
    }
    word
}

fn is_arabic_letter(c: char) -> bool {
    matches!(c, '\u{0621}'..='\u{064A}' | '\u{066E}'..='\u{06D3}' | '\u{06FA}'..='\u{06FF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arabic_article_goes_and_the_rest_stays() {
        assert_eq!(prepare("الضمان", "arabic"), "ضمان");
        assert_eq!(prepare("والتركيب، بالألواح!", "arabic"), "تركيب, الواح!");
        // Too short to be an article plus a word: left alone.
        assert_eq!(prepare("الله", "arabic"), "الله");
        assert_eq!(prepare("مُدَّة", "arabic"), "مدة");
        assert_eq!(prepare("solar الألواح 25", "arabic"), "solar الواح 25");
    }

    #[test]
    fn arabic_punctuation_never_sticks_to_a_word() {
        for config in ["arabic", "simple", "english"] {
            let p = prepare("هل عندكم ضمان؟ نعم، «ضمان»؛ 10٪", config);
            assert!(!p.contains(['؟', '،', '؛', '«', '٪']), "{config}: {p}");
        }
    }

    #[test]
    fn simple_gets_full_normalisation_and_others_are_untouched() {
        assert_eq!(prepare("مدة", "simple"), "مده");
        assert_eq!(prepare("Warranties", "english"), "Warranties");
    }
}
