//! Shortening knowledge snippets to a length that fits in a chat reply.
//!
//! Snippets come from documents written for reading, not chatting, so the
//! offline responder quotes only part of them. This module owns the cutting
//! rules: start where the passage talks about what was asked (unless the
//! beginning already reaches that point within the budget), prefer ending on
//! a sentence boundary, fall back to a word boundary with an ellipsis, and
//! always count and cut in characters, never bytes, so Arabic text can never
//! be split inside a letter.

use crate::terms::term_counts;

/// Characters that end a sentence in English or Arabic text.
fn ends_sentence(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '؟' | '…' | '۔' | '。' | '\n')
}

/// Characters that may close a sentence after its final punctuation.
fn closes_quote(c: char) -> bool {
    matches!(c, '"' | '”' | '’' | '\'' | ')' | '»' | ']')
}

/// A place where a sentence ends.
#[derive(Debug, Clone, Copy)]
struct SentenceEnd {
    /// Byte offset just past the sentence's final punctuation.
    end: usize,
    /// Whether the sentence is a question (ends in `?` or `؟`).
    question: bool,
}

/// Every sentence end in `text`: final punctuation (with any closing quotes
/// or brackets) followed by whitespace or the end of the text. A full stop
/// inside a number ("6.5") is therefore not a sentence end.
fn sentence_ends(text: &str) -> Vec<SentenceEnd> {
    let mut ends = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if !ends_sentence(c) {
            continue;
        }
        let mut end = i + c.len_utf8();
        while let Some(&(j, q)) = chars.peek() {
            if closes_quote(q) || (ends_sentence(q) && !q.is_whitespace()) {
                end = j + q.len_utf8();
                chars.next();
            } else {
                break;
            }
        }
        if text[end..].chars().next().is_none_or(char::is_whitespace) {
            ends.push(SentenceEnd {
                end,
                question: matches!(c, '?' | '؟'),
            });
        }
    }
    ends
}

/// Quotes at most `max_chars` characters of `text`, focused on `terms`.
///
/// The quote starts at the beginning of the text unless the first sentence
/// containing the most query terms contains more than half of them and ends
/// beyond the budget; then it starts at that sentence. The quote is then cut
/// by [`trim_to_sentence`].
pub(super) fn excerpt(text: &str, terms: &[String], max_chars: usize) -> String {
    let text = text.trim();
    if terms.is_empty() || text.chars().count() <= max_chars {
        return trim_to_sentence(text, max_chars);
    }
    let mut best: Option<(usize, usize, usize)> = None; // (hits, start, end)
    let mut start = 0;
    for SentenceEnd { end, .. } in sentence_ends(text).into_iter().chain([SentenceEnd {
        end: text.len(),
        question: false,
    }]) {
        if end <= start {
            continue;
        }
        let hits = term_counts(terms, &text[start..end])
            .iter()
            .filter(|c| **c > 0)
            .count();
        if best.is_none_or(|(best_hits, _, _)| hits > best_hits) {
            best = Some((hits, start, end));
        }
        start = end;
    }
    let focus = match best {
        Some((hits, start, end))
            if 2 * hits > terms.len() && text[..end].chars().count() > max_chars =>
        {
            text[start..].trim_start()
        }
        _ => text,
    };
    trim_to_sentence(focus, max_chars)
}

/// Returns `text` (trimmed) if it has at most `max_chars` characters;
/// otherwise its longest prefix ending on a sentence boundary, as long as
/// that keeps at least a third of the budget (a boundary after a statement
/// is preferred to one after a question, so an FAQ is not cut between a
/// question and its answer); otherwise a prefix cut at a word boundary with
/// `…` appended. The result never exceeds `max_chars` characters.
pub(super) fn trim_to_sentence(text: &str, max_chars: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    if max_chars == 0 {
        return String::new();
    }

    // Byte offset just past the last character that fits.
    let limit = text
        .char_indices()
        .nth(max_chars)
        .map_or(text.len(), |(i, _)| i);
    let fitting: Vec<SentenceEnd> = sentence_ends(text)
        .into_iter()
        .filter(|e| e.end <= limit)
        .collect();
    let statement_end = fitting.iter().rev().find(|e| !e.question);
    let sentence_end = fitting.last();
    for end in [statement_end, sentence_end].into_iter().flatten() {
        let head = text[..end.end].trim_end();
        if head.chars().count() >= max_chars / 3 {
            return head.to_owned();
        }
    }

    // Leave room for the ellipsis.
    let limit = text
        .char_indices()
        .nth(max_chars - 1)
        .map_or(text.len(), |(i, _)| i);
    let head = &text[..limit];
    let mid_word = text[limit..]
        .chars()
        .next()
        .is_some_and(|c| !c.is_whitespace());
    let head = match head.rfind(char::is_whitespace) {
        Some(space) if space > 0 && mid_word => &head[..space],
        _ => head,
    };
    format!("{}…", head.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_returned_whole() {
        assert_eq!(trim_to_sentence("  Hello there.  ", 600), "Hello there.");
    }

    #[test]
    fn cuts_on_sentence_boundaries() {
        let text = "First sentence here. Second one is longer than the budget allows.";
        assert_eq!(trim_to_sentence(text, 40), "First sentence here.");
        // A decimal point is not a sentence boundary.
        let text = "The 6.5 kWp system costs more. It pays back fast, usually.";
        assert_eq!(trim_to_sentence(text, 45), "The 6.5 kWp system costs more.");
        let text = "He said \"yes.\" Then he left the showroom quickly.";
        assert_eq!(trim_to_sentence(text, 30), "He said \"yes.\"");
    }

    #[test]
    fn falls_back_to_word_boundary_with_ellipsis() {
        let text = "one two three four five six seven eight nine ten";
        let cut = trim_to_sentence(text, 20);
        assert_eq!(cut, "one two three four…");
        assert!(cut.chars().count() <= 20);
        assert_eq!(trim_to_sentence("abcdefghij", 5), "abcd…");
    }

    #[test]
    fn excerpt_starts_where_the_question_is_answered() {
        let terms = vec!["survey".to_owned(), "free".to_owned()];
        let text = format!(
            "{} The site survey is free of charge. It takes an hour.",
            "Filler sentence about something else entirely. ".repeat(20)
        );
        assert_eq!(
            excerpt(&text, &terms, 100),
            "The site survey is free of charge. It takes an hour."
        );
        // When the answer is reached within the budget, start at the top.
        let short = "Intro. The survey is free. More text follows here.";
        assert_eq!(excerpt(short, &terms, 30), "Intro. The survey is free.");
        // A sentence with only a minority of the terms is no reason to skip
        // the beginning.
        let terms3 = ["survey", "free", "visit"].map(String::from);
        let text3 = text.replace(" is free of charge", " is quick");
        assert!(excerpt(&text3, &terms3, 100).starts_with("Filler"));
        // Paragraph breaks end sentences too.
        let faq = format!(
            "{}\n\nIs the survey free? Yes.",
            "Other text here. ".repeat(10)
        );
        assert_eq!(excerpt(&faq, &terms, 40), "Is the survey free? Yes.");
        // No terms: the beginning.
        assert_eq!(
            excerpt(&text, &[], 50),
            "Filler sentence about something else entirely."
        );
    }

    #[test]
    fn never_splits_arabic_letters() {
        let sentence = "نوفر معاينة مجانية للموقع خلال ثلاثة أيام عمل. ";
        let text = sentence.repeat(40);
        for max in [1, 7, 33, 50, 101, 599, 600] {
            let cut = trim_to_sentence(&text, max);
            assert!(cut.chars().count() <= max, "max {max}: {cut}");
            assert!(text.starts_with(cut.trim_end_matches('…')));
        }
        let cut = trim_to_sentence(&text, 600);
        assert!(cut.ends_with('.'));
        let unpunctuated = "ألواح شمسية عالية الكفاءة ".repeat(60);
        let cut = trim_to_sentence(&unpunctuated, 100);
        assert!(cut.ends_with('…') && cut.chars().count() <= 100);
        // Arabic question mark ends a sentence too, but a statement is a
        // better place to stop.
        let faq = "Do you fit batteries? Yes, from 5 kWh. Where? Indoors, never in the sun.";
        assert_eq!(
            trim_to_sentence(faq, 50),
            "Do you fit batteries? Yes, from 5 kWh."
        );
        assert_eq!(
            trim_to_sentence("هل لديكم بطاريات؟ نعم لدينا أنواع كثيرة جدا", 25),
            "هل لديكم بطاريات؟"
        );
    }
}
