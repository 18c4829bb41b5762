//! The deterministic offline responder: composing a reply without a model.
//!
//! When no language model is configured (or it is unavailable) the agent
//! still has to answer sensibly. This module owns that fallback: it detects
//! the customer's language and intent, and either replies with fixed wording
//! (greetings, thanks, goodbyes, handing over to a person, offering a
//! consultation) or answers a question by quoting the most relevant knowledge
//! snippets with a citation. The same input always produces the same reply,
//! which keeps conversations reproducible and testable.

mod phrases;
mod rank;
mod trim;

use serde::{Deserialize, Serialize};

use crate::intent::{detect_intent_addressed, has_salam, small_talk_kind, Intent, SmallTalk};
use crate::lang::{detect_language, Lang};
use crate::terms::search_terms;
use rank::rank;
use trim::excerpt;

/// Most characters of quoted snippet text in one answer.
const ANSWER_BUDGET: usize = 600;
/// Fewest characters left in the budget for a second snippet to be quoted.
const SECOND_SNIPPET_MIN: usize = 120;

/// A passage retrieved from the business's knowledge base.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snippet {
    /// Title of the document the passage comes from, used for citation.
    pub title: String,
    /// The passage itself.
    pub text: String,
    /// The language the passage is written in.
    pub lang: Lang,
}

/// Everything the offline responder needs to answer one customer message.
#[derive(Debug, Clone, Copy)]
pub struct ReplyContext<'a> {
    /// The business's display name, used in greetings.
    pub business_name: &'a str,
    /// The customer's message.
    pub customer_text: &'a str,
    /// Retrieved passages, best first as ranked by retrieval.
    pub snippets: &'a [Snippet],
}

/// A composed reply.
#[derive(Debug, Clone, PartialEq)]
pub struct OfflineReply {
    /// The text to send to the customer.
    pub text: String,
    /// The intent detected in the customer's message.
    pub intent: Intent,
    /// The language of the reply (the customer's language).
    pub lang: Lang,
    /// Indexes into [`ReplyContext::snippets`] of the passages quoted.
    pub cited: Vec<usize>,
}

/// Composes the offline reply to a customer message.
///
/// The reply is in the customer's language ([`detect_language`]) and depends
/// on the intent ([`crate::detect_intent`]; words of the business's name are
/// ignored when deciding whether a message is only small talk, so "Hello
/// Sahara Solar" is a greeting). Questions are answered by quoting the best
/// relevant snippet — preferring snippets in the customer's language, then
/// those whose shared [`crate::search_terms`] carry the most weight, then
/// retrieval order — plus a second one in the same language when it covers
/// part of the question the first does not. Quotes are trimmed to about 600
/// characters in total on a sentence boundary and followed by a citation
/// line. Without a relevant snippet (one sharing at least half of the
/// question's term weight) the reply says the information is not available
/// and offers the team or a consultation.
pub fn offline_reply(ctx: &ReplyContext<'_>) -> OfflineReply {
    let lang = detect_language(ctx.customer_text);
    let business = ctx.business_name.trim();
    let intent = detect_intent_addressed(ctx.customer_text, business);
    let mut cited = Vec::new();
    let text = match intent {
        Intent::Greeting => phrases::greeting(lang, business, has_salam(ctx.customer_text)),
        Intent::Thanks => match small_talk_kind(ctx.customer_text, business) {
            Some(SmallTalk::Ack) => phrases::ack(lang),
            _ => phrases::thanks(lang),
        },
        Intent::Goodbye => phrases::goodbye(lang, business),
        Intent::Human => phrases::human(lang),
        Intent::Meeting => phrases::meeting(lang, business),
        Intent::Question => {
            let (text, used) = answer(ctx, lang);
            cited = used;
            text
        }
    };
    OfflineReply {
        text,
        intent,
        lang,
        cited,
    }
}

/// Answers a question from the snippets; returns the text and the indexes
/// of the snippets quoted.
fn answer(ctx: &ReplyContext<'_>, lang: Lang) -> (String, Vec<usize>) {
    let terms = search_terms(ctx.customer_text);
    let ranked = rank(&terms, ctx.snippets, lang);
    let Some(best) = ranked.iter().find(|s| s.relevant) else {
        return (phrases::no_information(lang), Vec::new());
    };
    let best_snippet = &ctx.snippets[best.index];
    let mut used = vec![best.index];
    let mut bodies = vec![excerpt(&best_snippet.text, &terms, ANSWER_BUDGET)];

    // A second snippet only when it covers part of the question the first
    // does not, in the same language, and there is room for it.
    let remaining = ANSWER_BUDGET.saturating_sub(bodies[0].chars().count());
    let second = ranked.iter().find(|s| {
        s.index != best.index && s.adds_to(best) && ctx.snippets[s.index].lang == best_snippet.lang
    });
    if let Some(second) = second {
        if remaining >= SECOND_SNIPPET_MIN {
            used.push(second.index);
            bodies.push(excerpt(&ctx.snippets[second.index].text, &terms, remaining));
        }
    }

    let mut text = String::new();
    let note = phrases::other_language_note(lang, best_snippet.lang);
    if !note.is_empty() {
        text.push_str(note);
        text.push_str("\n\n");
    }
    text.push_str(&bodies.join("\n\n"));
    let mut titles: Vec<&str> = Vec::new();
    for &i in &used {
        let title = ctx.snippets[i].title.trim();
        let title = if title.is_empty() {
            phrases::untitled(lang)
        } else {
            title
        };
        if !titles.contains(&title) {
            titles.push(title);
        }
    }
    text.push_str("\n\n");
    text.push_str(&phrases::citation(lang, &titles));
    (text, used)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snippet(title: &str, text: &str, lang: Lang) -> Snippet {
        Snippet {
            title: title.to_owned(),
            text: text.to_owned(),
            lang,
        }
    }

    fn snippets() -> Vec<Snippet> {
        vec![
            snippet(
                "Opening Hours",
                "Our Dubai showroom is open Saturday to Thursday, 8:30 am to 6:00 pm.",
                Lang::En,
            ),
            snippet(
                "ساعات العمل",
                "يفتح معرضنا في دبي من السبت إلى الخميس، من الساعة 8:30 صباحاً حتى 6:00 مساءً.",
                Lang::Ar,
            ),
            snippet(
                "Warranty",
                "Panels carry a 25-year performance warranty and inverters a 10-year warranty.",
                Lang::En,
            ),
        ]
    }

    fn reply(text: &str, snippets: &[Snippet]) -> OfflineReply {
        offline_reply(&ReplyContext {
            business_name: "Sahara Solar",
            customer_text: text,
            snippets,
        })
    }

    #[test]
    fn greeting_names_business_and_offers_help() {
        let en = reply("Hi there!", &[]);
        assert_eq!((en.intent, en.lang), (Intent::Greeting, Lang::En));
        assert!(en.text.contains("Sahara Solar"));
        assert!(en.text.contains("consultation") && en.text.contains("team"));
        let ar = reply("السلام عليكم", &[]);
        assert_eq!((ar.intent, ar.lang), (Intent::Greeting, Lang::Ar));
        assert!(ar.text.starts_with("وعليكم السلام"));
        assert!(ar.text.contains("Sahara Solar") && ar.text.contains("استشارة"));
        assert!(ar.cited.is_empty());
    }

    #[test]
    fn small_talk_replies_follow_language() {
        assert!(reply("thanks!", &[]).text.starts_with("You're welcome"));
        assert!(reply("ok", &[]).text.starts_with("Great"));
        assert!(reply("شكرا", &[]).text.starts_with("العفو"));
        let bye = reply("مع السلامة", &[]);
        assert_eq!((bye.intent, bye.lang), (Intent::Goodbye, Lang::Ar));
        assert!(bye.text.contains("مع السلامة"));
        assert!(reply("bye", &[]).text.contains("Have a great day"));
    }

    #[test]
    fn human_and_meeting_replies() {
        let human = reply("I want to talk to a real person", &snippets());
        assert_eq!(human.intent, Intent::Human);
        assert!(human
            .text
            .contains("I've asked a member of our team to join"));
        assert!(human.cited.is_empty());
        let human_ar = reply("ابي اكلم موظف", &[]);
        assert_eq!(human_ar.lang, Lang::Ar);
        assert!(human_ar.text.contains("أحد أعضاء فريقنا"));

        let meeting = reply("Can I book a consultation?", &[]);
        assert_eq!(meeting.intent, Intent::Meeting);
        assert!(meeting.text.contains("consultation") && meeting.text.contains("day and time"));
        let meeting_ar = reply("ابغى احجز استشارة", &[]);
        assert!(meeting_ar.text.contains("اليوم والوقت"));
    }

    #[test]
    fn question_quotes_snippet_in_customer_language_with_citation() {
        let en = reply("What are your opening hours?", &snippets());
        assert_eq!((en.intent, en.lang), (Intent::Question, Lang::En));
        assert_eq!(en.cited, [0]);
        assert!(en.text.contains("Saturday to Thursday"));
        assert!(en.text.ends_with("Source: Opening Hours"));

        let ar = reply("ما هي ساعات العمل؟", &snippets());
        assert_eq!((ar.intent, ar.lang), (Intent::Question, Lang::Ar));
        assert_eq!(ar.cited, [1]);
        assert!(ar.text.contains("من السبت إلى الخميس"));
        assert!(ar.text.ends_with("المصدر: ساعات العمل"));
    }

    #[test]
    fn question_uses_two_relevant_snippets_and_cites_both() {
        let en = reply("opening hours and warranty?", &snippets());
        assert_eq!(en.cited, [0, 2]);
        assert!(en.text.ends_with("Source: Opening Hours; Warranty"));
    }

    #[test]
    fn other_language_snippet_is_flagged() {
        let only_ar = [snippet(
            "التواصل معنا",
            "راسلونا عبر WhatsApp على الرقم +971 50 000 0000.",
            Lang::Ar,
        )];
        let en = reply("What is your WhatsApp?", &only_ar);
        assert_eq!((en.lang, en.cited.as_slice()), (Lang::En, &[0][..]));
        assert!(en.text.starts_with("I have this information in Arabic:"));
        assert!(en.text.ends_with("Source: التواصل معنا"));
    }

    #[test]
    fn loosely_related_snippets_are_not_quoted() {
        let en = reply(
            "What warranty do your panels have?",
            &[
                snippet("About", "We install tier-1 panels across Dubai.", Lang::En),
                snippet("Showroom", "See sample panels on display.", Lang::En),
            ],
        );
        assert_eq!(en.intent, Intent::Question);
        assert!(en.cited.is_empty());
        assert!(en.text.contains("don't have that information"));
    }

    #[test]
    fn question_without_snippets_offers_team_or_consultation() {
        let en = reply("Do you install wind turbines?", &[]);
        assert_eq!(en.intent, Intent::Question);
        assert!(en.text.contains("don't have that information"));
        assert!(en.cited.is_empty());
        let ar = reply("هل تركبون توربينات رياح؟", &[snippet("x", "   ", Lang::Ar)]);
        assert!(ar.text.contains("لا تتوفر لدي"));
        assert!(ar.cited.is_empty());
    }

    #[test]
    fn replies_are_deterministic() {
        let all = snippets();
        for text in [
            "hello",
            "ما هي ساعات العمل؟",
            "warranty?",
            "ابي موظف",
            "book a demo",
        ] {
            let first = reply(text, &all);
            for _ in 0..5 {
                assert_eq!(reply(text, &all), first);
            }
        }
    }

    #[test]
    fn long_arabic_snippet_is_trimmed_safely() {
        let long = "نقدم معاينة مجانية للموقع، ونصمم النظام المناسب لاستهلاكك. ".repeat(30);
        let docs = [snippet("المعاينة المجانية", &long, Lang::Ar)];
        let ar = reply("كيف تتم المعاينة المجانية؟", &docs);
        let body = ar.text.strip_suffix("المصدر: المعاينة المجانية").unwrap();
        let body = body.trim_end();
        assert!(body.chars().count() <= ANSWER_BUDGET);
        assert!(body.ends_with('.'));
        assert!(long.starts_with(body));
    }
}
