//! Offline intent recognition: what the customer wants from this message.
//!
//! Before (or instead of) calling a language model, the runtime needs to know
//! whether a message asks for a person, asks to book a meeting, is small talk,
//! or is a question to answer from the knowledge base. This module owns that
//! decision. It is rule-based and deterministic so that it works without any
//! model, in English and Arabic (Modern Standard and Gulf, Levantine and
//! Egyptian colloquial), tolerating punctuation, case, diacritics, emphatic
//! letter repetition, common misspellings and mixed-script text.
//!
//! The rules, in order of precedence:
//!
//! 1. **Human** — an explicit request ("real person", "انسان حقيقي"), a
//!    request to be called back, a contact verb followed by a person word
//!    ("talk to someone from sales", "اكلم حد من المبيعات"), a want verb
//!    followed by an unambiguous person word ("I need an agent", "ابي موظف"),
//!    or a message made only of person words ("agent!", "موظف خدمة العملاء").
//! 2. **Meeting** — an explicit request ("can we meet", "احجز"), a booking
//!    verb followed by a meeting word ("schedule a site survey", "نرتب
//!    اجتماع"), a want verb followed by a meeting word ("I'd like a demo",
//!    "ابي موعد"), or a message made only of meeting and time words ("موعد
//!    زيارة", "consultation tomorrow at 5pm?").
//! 3. **Goodbye / Thanks / Greeting** — the message consists only of such
//!    phrases and politeness filler (with goodbye beating thanks beating
//!    greeting when combined); "thanks for …" also counts as thanks.
//! 4. **Question** — everything else.
//!
//! Deliberate limits: negation is not understood ("I don't want to talk to a
//! person" is still Human, and Gulf "ما ابي" reads as "ابي"); rules that use
//! general verbs ("need", "want", "get", "احتاج") do not fire when the message
//! opens as a how/what/do question, so "Do I need a site survey?" is a
//! Question while "Can I get a site survey?" is a Meeting; a callback request
//! phrased as a question ("Will someone call me?") is a Question; people
//! named only by their first name ("Can I speak to Ahmed?") are not
//! recognised; "human resources" and similar phrases never count as a
//! person; and anything phrased outside these vocabularies falls back to
//! Question, which is the safe default because it is answered from the
//! knowledge base.

mod lexicon;
mod matcher;

use serde::Serialize;

use crate::text::{squeeze_runs, tokenize};
use lexicon::{lexicon, Lexicon};
use matcher::{cover, followed_within};

/// What the customer wants from a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    /// Wants to talk to a person.
    Human,
    /// Wants to book a meeting, consultation, visit or call.
    Meeting,
    /// Only greets.
    Greeting,
    /// Only thanks (or acknowledges).
    Thanks,
    /// Only says goodbye.
    Goodbye,
    /// Anything else: a question for the knowledge base.
    Question,
}

/// The kinds of small talk, with acknowledgements kept apart from thanks so
/// the reply can be worded differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SmallTalk {
    Greeting,
    Thanks,
    Ack,
    Goodbye,
}

/// Words between a contact verb and a person word.
const HUMAN_GAP: usize = 4;
/// Words between a booking verb and a meeting word.
const STRONG_GAP: usize = 4;
/// Words between a general verb and the person or meeting word it asks for.
const WEAK_GAP: usize = 3;
/// Longest "thanks for …" tail still treated as thanks.
const THANKS_TAIL: usize = 6;

/// Detects what the customer wants from `text`. See the module
/// documentation for the rules and their deliberate limits.
pub fn detect_intent(text: &str) -> Intent {
    detect_intent_addressed(text, "")
}

/// [`detect_intent`] for a message that may address the business by name:
/// "Hello Sahara Solar" is still only a greeting.
pub(crate) fn detect_intent_addressed(text: &str, business_name: &str) -> Intent {
    let tokens = intent_tokens(text);
    let lx = lexicon();
    if tokens.is_empty() {
        return Intent::Question;
    }
    if wants_human(&tokens, lx) {
        return Intent::Human;
    }
    if wants_meeting(&tokens, lx) {
        return Intent::Meeting;
    }
    match small_talk_kind(text, business_name) {
        Some(SmallTalk::Greeting) => Intent::Greeting,
        Some(SmallTalk::Thanks | SmallTalk::Ack) => Intent::Thanks,
        Some(SmallTalk::Goodbye) => Intent::Goodbye,
        None => Intent::Question,
    }
}

/// The small-talk kind of a message that is only small talk, ignoring the
/// words of the business's name.
pub(crate) fn small_talk_kind(text: &str, business_name: &str) -> Option<SmallTalk> {
    let name: Vec<String> = tokenize(business_name)
        .into_iter()
        .filter(|word| word.chars().count() >= 3)
        .collect();
    let tokens: Vec<String> = intent_tokens(text)
        .into_iter()
        .filter(|token| !name.contains(token))
        .collect();
    small_talk(&tokens, lexicon())
}

/// Whether the message contains a salam greeting ("السلام عليكم").
pub(crate) fn has_salam(text: &str) -> bool {
    lexicon().salam.occurs_in(&intent_tokens(text))
}

/// Tokens prepared for intent matching: emphatic repetition squeezed and
/// phrases that merely mention people ("human resources") blanked out.
fn intent_tokens(text: &str) -> Vec<String> {
    let mut tokens: Vec<String> = tokenize(text).iter().map(|t| squeeze_runs(t)).collect();
    let exclusions = lexicon().exclusions.spans(&tokens);
    for (start, end) in exclusions {
        for token in &mut tokens[start..end] {
            // Not alphanumeric, so no pattern can match it.
            "·".clone_into(token);
        }
    }
    tokens
}

/// Whether the first meaningful word (after greetings and filler) opens a
/// question about how things work rather than a polite request.
fn opens_as_question(tokens: &[String], lx: &Lexicon) -> bool {
    let mut position = 0;
    while position < tokens.len() {
        let skip = lx
            .greetings
            .match_at(tokens, position)
            .max(lx.filler.match_at(tokens, position));
        match skip {
            Some(len) => position += len,
            None => break,
        }
    }
    let question = lx.question_openings.match_at(tokens, position);
    let request = lx.request_openings.match_at(tokens, position);
    match (question, request) {
        (Some(q), Some(r)) => r < q,
        (Some(_), None) => true,
        _ => false,
    }
}

fn wants_human(tokens: &[String], lx: &Lexicon) -> bool {
    let question = opens_as_question(tokens, lx);
    let block = &lx.gap_blockers;
    lx.human_explicit.occurs_in(tokens)
        || (!question && lx.human_callback.occurs_in(tokens))
        || followed_within(tokens, &lx.contact_verbs, &lx.people, HUMAN_GAP, block)
        || followed_within(tokens, &lx.people, &lx.talk_to, WEAK_GAP, block)
        || (!question && followed_within(tokens, &lx.desire, &lx.strong_people, WEAK_GAP, block))
        || bare_human(tokens, lx)
}

fn bare_human(tokens: &[String], lx: &Lexicon) -> bool {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Part {
        Strong,
        Person,
        Other,
    }
    let sets = [
        (&lx.strong_people, Part::Strong),
        (&lx.people, Part::Person),
        (&lx.human_bare_extra, Part::Other),
        (&lx.filler, Part::Other),
        (&lx.greetings, Part::Other),
    ];
    cover(tokens, &sets).is_some_and(|parts| {
        let strong = parts.iter().filter(|p| **p == Part::Strong).count();
        let person = parts.iter().filter(|p| **p == Part::Person).count();
        strong >= 1 || person >= 2
    })
}

fn wants_meeting(tokens: &[String], lx: &Lexicon) -> bool {
    let question = opens_as_question(tokens, lx);
    let block = &lx.gap_blockers;
    let nouns = &lx.meeting_nouns;
    lx.meeting_explicit.occurs_in(tokens)
        || followed_within(tokens, &lx.book_strong, nouns, STRONG_GAP, block)
        || (!question
            && (followed_within(tokens, &lx.book_weak, nouns, WEAK_GAP, block)
                || followed_within(tokens, &lx.desire, nouns, WEAK_GAP, block)))
        || bare_meeting(tokens, lx)
}

/// A message made only of meeting words, times and filler, with at least one
/// meeting word or day/time of day: "موعد زيارة", "Sunday 10am works".
fn bare_meeting(tokens: &[String], lx: &Lexicon) -> bool {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Part {
        Meeting,
        Time,
        Other,
    }
    // Greetings come before times so that "Morning!" stays a greeting.
    let sets = [
        (&lx.meeting_nouns, Part::Meeting),
        (&lx.greetings, Part::Other),
        (&lx.time_anchors, Part::Time),
        (&lx.time_glue, Part::Other),
        (&lx.filler, Part::Other),
    ];
    cover(tokens, &sets).is_some_and(|parts| parts.iter().any(|p| *p != Part::Other))
}

fn small_talk(tokens: &[String], lx: &Lexicon) -> Option<SmallTalk> {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Part {
        Talk(SmallTalk),
        Filler,
    }
    let sets = [
        (&lx.goodbyes, Part::Talk(SmallTalk::Goodbye)),
        (&lx.thanks, Part::Talk(SmallTalk::Thanks)),
        (&lx.greetings, Part::Talk(SmallTalk::Greeting)),
        (&lx.acks, Part::Talk(SmallTalk::Ack)),
        (&lx.filler, Part::Filler),
    ];
    if let Some(parts) = cover(tokens, &sets) {
        let has = |kind| parts.contains(&Part::Talk(kind));
        return [
            SmallTalk::Goodbye,
            SmallTalk::Thanks,
            SmallTalk::Greeting,
            SmallTalk::Ack,
        ]
        .into_iter()
        .find(|kind| has(*kind));
    }
    thanks_for_something(tokens, lx).then_some(SmallTalk::Thanks)
}

/// "Thanks for the quick reply", "شكرا على المعلومات": thanks followed by a
/// short "for …" clause that asks nothing further.
fn thanks_for_something(tokens: &[String], lx: &Lexicon) -> bool {
    let mut position = 0;
    while position < tokens.len() {
        if let Some(len) = lx.thanks.match_at(tokens, position) {
            let rest = &tokens[position + len..];
            let Some((first, tail)) = rest.split_first() else {
                return false;
            };
            let is_for = matches!(first.as_str(), "for" | "علي" | "ع");
            let asks = (0..tail.len()).any(|i| lx.question_openings.match_at(tail, i).is_some());
            return is_for && tail.len() <= THANKS_TAIL && !asks;
        }
        let skip = lx
            .greetings
            .match_at(tokens, position)
            .max(lx.filler.match_at(tokens, position))
            .max(lx.acks.match_at(tokens, position));
        match skip {
            Some(len) => position += len,
            None => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests;
