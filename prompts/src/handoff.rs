//! What the customer and the sales team are told around a human handoff, in English and Arabic:
//! the holding message (once, when a human is asked for), the reminder when nobody has picked
//! the conversation up yet, and the keyword rule's matcher. Pure: times arrive pre-formatted.

use crate::lang::{normalize_arabic, Lang};

/// When the customer can expect a human.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expectation {
    /// During business hours: within about this many minutes.
    Within(i32),
    /// Outside business hours: when the team is back (already formatted in local time).
    BackAt(String),
    /// Outside business hours, and no opening is known.
    Later,
}

/// The one holding message sent when a conversation is escalated.
pub fn holding_message(lang: Lang, expect: &Expectation) -> String {
    match (lang, expect) {
        (Lang::En, Expectation::Within(m)) => format!(
            "I've asked a colleague from our team to take over. They'll reply right here, usually within {}. You don't need to do anything else.",
            minutes_en(*m)
        ),
        (Lang::En, Expectation::BackAt(t)) => format!(
            "I've passed your conversation to our team. They're away right now and will reply right here when they're back ({t}). You don't need to do anything else."
        ),
        (Lang::En, Expectation::Later) => "I've passed your conversation to our team. They're away right now and will reply right here as soon as they're back.".into(),
        (Lang::Ar, Expectation::Within(m)) => format!(
            "طلبت من أحد زملائنا في الفريق متابعة المحادثة. سيرد عليك هنا خلال {} تقريبًا، ولا حاجة لأي إجراء آخر.",
            minutes_ar(*m)
        ),
        (Lang::Ar, Expectation::BackAt(t)) => format!(
            "حوّلت محادثتك إلى فريقنا. الفريق غير متاح الآن وسيرد عليك هنا عند عودته ({t}). لا حاجة لأي إجراء آخر."
        ),
        (Lang::Ar, Expectation::Later) => "حوّلت محادثتك إلى فريقنا. الفريق غير متاح الآن وسيرد عليك هنا فور عودته.".into(),
    }
}

/// The message to a customer still waiting when the team is reminded.
pub fn still_waiting_message(lang: Lang, expect: &Expectation) -> String {
    match (lang, expect) {
        (Lang::En, Expectation::Within(m)) => format!(
            "Sorry for the wait — I've reminded our team and someone will reply here within about {}.",
            minutes_en(*m)
        ),
        (Lang::En, Expectation::BackAt(t)) => format!(
            "Thanks for your patience — our team will reply here when they're back ({t})."
        ),
        (Lang::En, Expectation::Later) => {
            "Thanks for your patience — our team will reply here as soon as they can.".into()
        }
        (Lang::Ar, Expectation::Within(m)) => format!(
            "نعتذر عن الانتظار — ذكّرت فريقنا وسيرد عليك أحدهم هنا خلال {} تقريبًا.",
            minutes_ar(*m)
        ),
        (Lang::Ar, Expectation::BackAt(t)) => {
            format!("شكرًا لصبرك — سيرد عليك فريقنا هنا عند عودته ({t}).")
        }
        (Lang::Ar, Expectation::Later) => "شكرًا لصبرك — سيرد عليك فريقنا هنا في أقرب وقت.".into(),
    }
}

/// Added to an answer when a rule (a high lead score) brings the team in without being asked.
pub fn team_will_follow_up(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "A member of our sales team will also follow up with you here shortly.",
        Lang::Ar => "سيتواصل معك أيضًا أحد أعضاء فريق المبيعات هنا قريبًا.",
    }
}

fn minutes_en(m: i32) -> String {
    match m {
        m if m >= 120 && m % 60 == 0 => format!("{} hours", m / 60),
        60 => "an hour".into(),
        1 => "a minute".into(),
        m => format!("{m} minutes"),
    }
}

fn minutes_ar(m: i32) -> String {
    match m {
        m if m >= 120 && m % 60 == 0 => format!("{} ساعات", m / 60),
        60 => "ساعة".into(),
        1 => "دقيقة".into(),
        m => format!("{m} دقيقة"),
    }
}

/// The first configured keyword found in `text` (case-, diacritic- and Arabic-letter-variant
/// insensitive, on word boundaries), if any.
pub fn matching_keyword<'a>(text: &str, keywords: &'a [String]) -> Option<&'a str> {
    let hay = fold(text);
    let hay_words: Vec<&str> = hay.split(' ').filter(|w| !w.is_empty()).collect();
    keywords.iter().map(String::as_str).find(|k| {
        let needle = fold(k);
        let words: Vec<&str> = needle.split(' ').filter(|w| !w.is_empty()).collect();
        !words.is_empty()
            && hay_words
                .windows(words.len())
                .any(|w| w == words.as_slice())
    })
}

/// Lower case, Arabic letter variants unified, punctuation to spaces.
fn fold(s: &str) -> String {
    normalize_arabic(&s.to_lowercase())
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holding_messages_say_when_to_expect_a_human() {
        let en = holding_message(Lang::En, &Expectation::Within(15));
        assert!(en.contains("15 minutes"), "{en}");
        let ar = holding_message(Lang::Ar, &Expectation::Within(60));
        assert!(ar.contains("ساعة"), "{ar}");
        let back = holding_message(Lang::En, &Expectation::BackAt("Sunday 08:30".into()));
        assert!(
            back.contains("Sunday 08:30") && back.contains("away"),
            "{back}"
        );
        assert_ne!(
            still_waiting_message(Lang::En, &Expectation::Within(15)),
            holding_message(Lang::En, &Expectation::Within(15))
        );
    }

    #[test]
    fn keywords_match_whole_words_in_both_scripts() {
        let k = vec![
            "refund".to_string(),
            "شكوى".to_string(),
            "legal action".into(),
        ];
        assert_eq!(matching_keyword("I want a REFUND!", &k), Some("refund"));
        assert_eq!(matching_keyword("refunded already", &k), None);
        assert_eq!(matching_keyword("عندي شكوى على الفني", &k), Some("شكوى"));
        assert_eq!(
            matching_keyword("we will take legal   action", &k),
            Some("legal action")
        );
        assert_eq!(matching_keyword("hello", &k), None);
        assert_eq!(matching_keyword("anything", &[]), None);
    }
}
