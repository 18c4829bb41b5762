//! Lead capture without a model: what a customer's message says about them as a sales lead,
//! and how good a lead that makes them.
//!
//! [`extract`] reads contact details from one message — email address, phone number, "my name
//! is …" / "اسمي …", "I work at …" / "من شركة …", what they are interested in — and the buying
//! [`Signal`]s (asked for a meeting, mentioned a budget, asked about prices, has a deadline), in
//! English and Arabic, with Arabic-Indic digits read as digits. [`score`] turns the fields a
//! contact has and the signals they ever gave into a score from 0 to 100 with one
//! human-readable reason per contribution, so a sales team can see *why* a lead ranks where it
//! does.
//!
//! The extraction is deliberately conservative: a wrong name or phone number in a CRM is worse
//! than a missing one (someone will call it). A phrase is only read after an explicit marker
//! ("my name is", "I work at"), stops at the end of its clause, and is refused when it opens
//! with a word no name starts with ("my name is not important"); a number is a phone number
//! only when it is international (`+`/`00`), a local trunk number (`0…`), or the message talks
//! about phones. Like the rest of this crate, it does no IO and is deterministic.

use serde::Serialize;

use crate::lang::normalize_arabic;
use crate::{detect_intent, Intent};

/// The contact fields of a lead. `None`: unknown (or, in an extraction, not mentioned).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LeadFields {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub interest: Option<String>,
}

impl LeadFields {
    /// Takes every field `newer` knows (a customer's latest word wins, so they can correct a
    /// typo); returns whether anything changed.
    pub fn merge(&mut self, newer: &LeadFields) -> bool {
        let mut changed = false;
        for (slot, new) in [
            (&mut self.name, &newer.name),
            (&mut self.email, &newer.email),
            (&mut self.phone, &newer.phone),
            (&mut self.company, &newer.company),
            (&mut self.interest, &newer.interest),
        ] {
            if let Some(v) = new {
                if slot.as_deref() != Some(v.as_str()) {
                    *slot = Some(v.clone());
                    changed = true;
                }
            }
        }
        changed
    }

    pub fn is_empty(&self) -> bool {
        *self == LeadFields::default()
    }
}

/// A buying signal: something a customer said that makes a sale likelier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// Asked for a meeting, demo, call or visit (or booked one).
    Meeting,
    /// Mentioned a budget or an amount they would spend.
    Budget,
    /// Asked about prices, costs or a quote.
    Pricing,
    /// Has a deadline or is in a hurry.
    Urgency,
}

impl Signal {
    pub const ALL: [Signal; 4] = [
        Signal::Meeting,
        Signal::Budget,
        Signal::Pricing,
        Signal::Urgency,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Meeting => "meeting",
            Signal::Budget => "budget",
            Signal::Pricing => "pricing",
            Signal::Urgency => "urgency",
        }
    }

    pub fn parse(s: &str) -> Option<Signal> {
        Signal::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// What one message says about its author as a lead.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extracted {
    pub fields: LeadFields,
    /// Sorted, without duplicates.
    pub signals: Vec<Signal>,
}

impl Extracted {
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.signals.is_empty()
    }
}

/// A lead's score (0–100) and why, one reason per contribution (`"+25 gave an email address"`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeadScore {
    pub score: i32,
    pub reasons: Vec<String>,
}

/// The weights, in the order reasons are listed.
const FIELD_POINTS: [(Field, i32, &str); 5] = [
    (Field::Email, 25, "gave an email address"),
    (Field::Phone, 20, "gave a phone number"),
    (Field::Name, 10, "gave their name"),
    (Field::Company, 10, "company given"),
    (Field::Interest, 10, "said what they are interested in"),
];
const SIGNAL_POINTS: [(Signal, i32, &str); 4] = [
    (Signal::Meeting, 20, "asked for a meeting/booked"),
    (Signal::Budget, 15, "mentioned a budget"),
    (Signal::Pricing, 15, "asked about prices"),
    (Signal::Urgency, 10, "urgency/timeline"),
];

#[derive(Clone, Copy)]
enum Field {
    Name,
    Email,
    Phone,
    Company,
    Interest,
}

/// Scores a lead from the fields known about it and every signal it ever gave. The sum is
/// capped at 100; reasons keep their full weights so the cap is visible.
pub fn score(fields: &LeadFields, signals: &[Signal]) -> LeadScore {
    let mut total = 0;
    let mut reasons = Vec::new();
    for (field, points, why) in FIELD_POINTS {
        let known = match field {
            Field::Name => &fields.name,
            Field::Email => &fields.email,
            Field::Phone => &fields.phone,
            Field::Company => &fields.company,
            Field::Interest => &fields.interest,
        };
        if known.is_some() {
            total += points;
            reasons.push(format!("+{points} {why}"));
        }
    }
    for (signal, points, why) in SIGNAL_POINTS {
        if signals.contains(&signal) {
            total += points;
            reasons.push(format!("+{points} {why}"));
        }
    }
    LeadScore {
        score: total.min(100),
        reasons,
    }
}

/// Reads lead details and buying signals from one customer message.
pub fn extract(text: &str) -> Extracted {
    let text: String = text.chars().take(4000).collect();
    let digits = ascii_digits(&text);
    let words = words(&digits);
    let lowered = normalize_arabic(&digits.to_lowercase());
    let fields = LeadFields {
        name: after_marker(&words, NAME_MARKERS, 3, name_stop, NOT_A_NAME, name_word)
            .map(|w| title_case(&w)),
        email: digits.split(is_email_separator).find_map(normalize_email),
        phone: find_phone(&digits, &lowered),
        company: after_marker(
            &words,
            COMPANY_MARKERS,
            4,
            company_stop,
            NOT_A_COMPANY,
            company_word,
        ),
        interest: after_marker(
            &words,
            INTEREST_MARKERS,
            6,
            interest_stop,
            NOT_AN_INTEREST,
            interest_word,
        )
        .map(|i| strip_arabic_preposition(&i)),
    };
    Extracted {
        fields,
        signals: signals(&text, &words, &lowered),
    }
}

/// A plausible email address, lower-cased: `local@domain.tld`, letters/digits/`._%+-` before
/// the `@`, dot-separated labels after it, an alphabetic top-level domain, at most 254 bytes.
pub fn normalize_email(candidate: &str) -> Option<String> {
    let e = candidate.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let (local, domain) = e.split_once('@')?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._%+-".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
    (local_ok && domain_ok && e.len() <= 254).then(|| e.to_ascii_lowercase())
}

/// A phone number given on purpose (by a form or a tool): an optional `+` (or `00`) and 7 to 15
/// digits, separated by spaces, dashes, dots or brackets. Returns `+<digits>` for international
/// numbers and the bare digits otherwise.
pub fn normalize_phone(candidate: &str) -> Option<String> {
    let s = ascii_digits(candidate.trim());
    if s.chars()
        .any(|c| !(c.is_ascii_digit() || " -.()+".contains(c)))
        || s.matches('+').count() > 1
        || (s.contains('+') && !s.starts_with('+'))
    {
        return None;
    }
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    let international = s.starts_with('+') || digits.starts_with("00");
    let digits = if !s.starts_with('+') && digits.starts_with("00") {
        digits[2..].to_owned()
    } else {
        digits
    };
    if !(7..=15).contains(&digits.len()) {
        return None;
    }
    Some(if international {
        format!("+{digits}")
    } else {
        digits
    })
}

/// Arabic-Indic and Extended Arabic-Indic digits as ASCII digits; everything else unchanged.
fn ascii_digits(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{0660}'..='\u{0669}' => char::from(b'0' + (c as u32 - 0x0660) as u8),
            '\u{06F0}'..='\u{06F9}' => char::from(b'0' + (c as u32 - 0x06F0) as u8),
            _ => c,
        })
        .collect()
}

fn is_email_separator(c: char) -> bool {
    c.is_whitespace() || ",;:<>()[]{}\"'،؛".contains(c)
}

/// One word of a message: as written (without surrounding punctuation), its matching form
/// (lower-cased, Arabic variants folded), and whether punctuation after it ends its clause.
struct Word<'a> {
    raw: &'a str,
    norm: String,
    ends_clause: bool,
}

fn words(text: &str) -> Vec<Word<'_>> {
    text.split_whitespace()
        .filter_map(|token| {
            let raw = token
                .trim_matches(|c: char| !(c.is_alphanumeric() || c == '@' || c == '+' || c == '&'));
            if raw.is_empty() {
                return None;
            }
            let after = &token[token.find(raw).unwrap_or(0) + raw.len()..];
            let ends_clause = after
                .chars()
                .any(|c| ".,;:!?()،؛؟\"".contains(c) || c == '\n');
            Some(Word {
                raw,
                norm: normalize_arabic(&raw.to_lowercase()).replace('’', "'"),
                ends_clause,
            })
        })
        .collect()
}

/// The words after the first marker found, up to `max` of them, ending at the clause's end or
/// a stop word; `None` when the first word is in `refused` or any taken word fails `ok`.
fn after_marker(
    words: &[Word<'_>],
    markers: &[&[&str]],
    max: usize,
    stop: fn(&str) -> bool,
    refused: &[&str],
    ok: fn(&str) -> bool,
) -> Option<String> {
    for start in 0..words.len() {
        for marker in markers {
            let end = start + marker.len();
            if end > words.len()
                || !marker
                    .iter()
                    .zip(&words[start..end])
                    .all(|(m, w)| w.norm == *m)
                || words[end - 1].ends_clause
            {
                continue;
            }
            let mut taken: Vec<&str> = Vec::new();
            for w in &words[end..] {
                if taken.len() == max || stop(&w.norm) {
                    break;
                }
                if taken.is_empty() && refused.contains(&w.norm.as_str()) {
                    return None;
                }
                if !ok(w.raw) {
                    break;
                }
                taken.push(w.raw);
                if w.ends_clause {
                    break;
                }
            }
            if taken.is_empty() {
                return None;
            }
            let phrase = taken.join(" ");
            return (phrase.chars().count() >= 2).then_some(phrase);
        }
    }
    None
}

const NAME_MARKERS: &[&[&str]] = &[
    &["my", "name", "is"],
    &["my", "name's"],
    &["my", "full", "name", "is"],
    &["name", "is"],
    &["اسمي", "هو"],
    &["انا", "اسمي"],
    &["اسمي"],
];

/// Words no name starts with: refusals, articles, adverbs ("my name is not important",
/// "اسمي مش مهم").
const NOT_A_NAME: &[&str] = &[
    "not",
    "no",
    "none",
    "nothing",
    "unimportant",
    "irrelevant",
    "private",
    "secret",
    "confidential",
    "anonymous",
    "withheld",
    "hidden",
    "unknown",
    "a",
    "an",
    "the",
    "very",
    "really",
    "just",
    "also",
    "actually",
    "what",
    "whatever",
    "something",
    "too",
    "so",
    "kind",
    "long",
    "hard",
    "difficult",
    "important",
    "mine",
    "on",
    "in",
    "at",
    "your",
    "his",
    "her",
    "their",
    "our",
    "my",
    "is",
    "was",
    "مش",
    "مو",
    "ليس",
    "ليست",
    "غير",
    "ما",
    "مهم",
    "سر",
    "سري",
    "مب",
    "مهوب",
    "هو",
    "انا",
    "شو",
    "ايش",
    "وش",
    "لا",
    "مو مهم",
];

/// Words that end a name: connectives and the start of the next clause.
fn name_stop(w: &str) -> bool {
    const STOP: &[&str] = &[
        "and",
        "from",
        "at",
        "with",
        "i",
        "i'm",
        "im",
        "my",
        "here",
        "the",
        "of",
        "in",
        "for",
        "to",
        "is",
        "was",
        "but",
        "so",
        "please",
        "thanks",
        "thank",
        "or",
        "we",
        "our",
        "email",
        "phone",
        "number",
        "mobile",
        "company",
        "work",
        "working",
        "calling",
        "call",
        "looking",
        "interested",
        "want",
        "would",
        "like",
        "can",
        "could",
        "need",
        "by",
        "via",
        "on",
        "من",
        "في",
        "و",
        "انا",
        "وانا",
        "رقمي",
        "ايميلي",
        "بريدي",
        "شركتي",
        "اعمل",
        "اشتغل",
        "ابي",
        "ابغى",
        "ابغي",
        "اريد",
        "وابي",
        "مهتم",
        "مهتمه",
        "عندي",
        "لو",
        "ممكن",
        "رقم",
        "ايميل",
        "الايميل",
        "البريد",
        "جوالي",
        "هاتفي",
        "موبايلي",
        "ورقمي",
        "وايميلي",
        "وبريدي",
        "وجوالي",
        "واعمل",
        "واشتغل",
        "مع",
    ];
    STOP.contains(&w) || w.chars().any(|c| c.is_ascii_digit() || c == '@')
}

fn name_word(w: &str) -> bool {
    let n = w.chars().count();
    (1..=30).contains(&n)
        && w.chars()
            .all(|c| c.is_alphabetic() || c == '-' || c == '\'' || c == '’')
}

/// Capitalises the first letter of each word of a name typed in lower case ("sara" → "Sara");
/// Arabic has no case and passes through.
fn title_case(name: &str) -> String {
    name.split(' ')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

const COMPANY_MARKERS: &[&[&str]] = &[
    &["i", "work", "at"],
    &["i", "work", "for"],
    &["i'm", "calling", "from"],
    &["im", "calling", "from"],
    &["calling", "on", "behalf", "of"],
    &["from", "the", "company"],
    &["from", "company"],
    &["our", "company", "is"],
    &["my", "company", "is"],
    &["company", "name", "is"],
    &["the", "company", "is"],
    &["my", "employer", "is"],
    &["اعمل", "في", "شركه"],
    &["اشتغل", "في", "شركه"],
    &["اعمل", "لدى", "شركه"],
    &["من", "شركه"],
    &["في", "شركه"],
    &["اعمل", "في"],
    &["اعمل", "لدى"],
    &["اشتغل", "في"],
    &["شركتي"],
    &["شركتنا"],
    &["شركتي", "اسمها"],
    &["اسم", "الشركه"],
];

/// Words that cannot open a company name ("I work at a bank", "I work at home").
const NOT_A_COMPANY: &[&str] = &[
    "a",
    "an",
    "home",
    "the",
    "night",
    "nights",
    "weekends",
    "myself",
    "it",
    "this",
    "that",
    "not",
    "no",
    "none",
    "البيت",
    "المنزل",
    "البيت.",
    "مش",
    "مو",
    "ليس",
    "اسمها",
    "هي",
];

fn company_stop(w: &str) -> bool {
    const STOP: &[&str] = &[
        "and",
        "we",
        "i",
        "i'm",
        "im",
        "my",
        "as",
        "in",
        "on",
        "looking",
        "interested",
        "which",
        "that",
        "where",
        "since",
        "for",
        "with",
        "but",
        "so",
        "please",
        "email",
        "phone",
        "and",
        "is",
        "are",
        "who",
        "we're",
        "our",
        "can",
        "could",
        "would",
        "want",
        "need",
        "و",
        "وانا",
        "ونحن",
        "ابي",
        "ابغى",
        "اريد",
        "نبي",
        "نبغى",
        "نريد",
        "مهتم",
        "مهتمين",
        "ونبي",
        "ورقمي",
        "وايميلي",
        "وبريدي",
        "وجوالي",
        "وابي",
        "واريد",
        "ممكن",
        "رقمي",
        "ايميلي",
        "في",
        "كـ",
        "ك",
        "بصفتي",
        "واسمي",
        "اسمي",
    ];
    STOP.contains(&w) || w.contains('@')
}

fn company_word(w: &str) -> bool {
    let n = w.chars().count();
    (1..=40).contains(&n)
        && w.chars()
            .all(|c| c.is_alphanumeric() || "&.-'’".contains(c))
}

const INTEREST_MARKERS: &[&[&str]] = &[
    &["interested", "in"],
    &["looking", "for"],
    &["inquiring", "about"],
    &["enquiring", "about"],
    &["asking", "about"],
    &["information", "about"],
    &["information", "on"],
    &["info", "about"],
    &["info", "on"],
    &["details", "about"],
    &["details", "on"],
    &["مهتم", "ب"],
    &["مهتمه", "ب"],
    &["مهتمين", "ب"],
    &["مهتم"],
    &["مهتمه"],
    &["مهتمين"],
    &["ابحث", "عن"],
    &["نبحث", "عن"],
    &["استفسر", "عن"],
    &["استفسار", "عن"],
    &["اسال", "عن"],
    &["معلومات", "عن"],
];

/// Objects that are not a product or service ("looking for someone to talk to").
const NOT_AN_INTEREST: &[&str] = &[
    "you",
    "your",
    "it",
    "this",
    "that",
    "them",
    "someone",
    "somebody",
    "anyone",
    "anybody",
    "a person",
    "human",
    "agent",
    "help",
    "work",
    "job",
    "jobs",
    "a job",
    "nothing",
    "something",
    "more",
    "not",
    "no",
    "how",
    "what",
    "where",
    "when",
    "انت",
    "حد",
    "شخص",
    "موظف",
    "وظيفه",
    "شغل",
    "عمل",
    "هذا",
    "هذه",
    "ذلك",
    "لا",
    "مش",
    "كيف",
    "متى",
    "وين",
    "ايش",
    "شي",
];

fn interest_stop(w: &str) -> bool {
    const STOP: &[&str] = &[
        "and",
        "but",
        "my",
        "i",
        "i'm",
        "im",
        "please",
        "thanks",
        "thank",
        "can",
        "could",
        "would",
        "because",
        "so",
        "email",
        "phone",
        "if",
        "do",
        "does",
        "is",
        "are",
        "what",
        "how",
        "when",
        "و",
        "لكن",
        "ممكن",
        "رقمي",
        "ايميلي",
        "وابي",
        "وابغى",
        "واريد",
        "لو",
        "هل",
        "كم",
        "وكم",
        "ايش",
        "شو",
        "وين",
        "متى",
    ];
    STOP.contains(&w) || w.contains('@')
}

fn interest_word(w: &str) -> bool {
    let n = w.chars().count();
    (1..=40).contains(&n)
        && w.chars()
            .all(|c| c.is_alphanumeric() || "&-'’/+".contains(c))
}

/// Arabic attaches "ب" (in/with) to the next word ("مهتم بالتصميم"); the interest is the word
/// without it when what follows is the article ("التصميم"). Other words starting with ب are
/// left alone ("برنامج" is a word of its own).
fn strip_arabic_preposition(phrase: &str) -> String {
    match phrase.strip_prefix('ب') {
        Some(rest) if rest.starts_with("ال") => rest.to_owned(),
        _ => phrase.to_owned(),
    }
}

/// Words that say the message is about phones, so a bare number in it is one.
const PHONE_CONTEXT: &[&str] = &[
    "phone",
    "mobile",
    "cell",
    "whatsapp",
    "tel",
    "call me",
    "reach me",
    "text me",
    "my number",
    "our number",
    "contact number",
    "جوال",
    "هاتف",
    "رقمي",
    "رقم الجوال",
    "موبايل",
    "واتس",
    "اتصل",
    "كلمني",
    "تواصل",
];

/// The first phone number in `text` (digits already ASCII; `lowered` is its matching form).
fn find_phone(text: &str, lowered: &str) -> Option<String> {
    let context = PHONE_CONTEXT.iter().any(|w| lowered.contains(w));
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let starts = c.is_ascii_digit() || c == '+' || c == '(';
        let glued = i > 0 && (chars[i - 1].is_alphanumeric() || "@#_/$€£".contains(chars[i - 1]));
        if !starts || glued {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < chars.len() && (chars[j].is_ascii_digit() || " -.()+".contains(chars[j])) {
            // One space between groups, never a line break or a double space (two numbers).
            if chars[j] == ' ' && chars.get(j + 1) == Some(&' ') {
                break;
            }
            j += 1;
        }
        let run: String = chars[i..j].iter().collect();
        let run = run.trim_end_matches(|c: char| !c.is_ascii_digit());
        let end = i + run.chars().count();
        let glued_after = chars
            .get(end)
            .is_some_and(|c| c.is_alphanumeric() || *c == '@' || *c == '%');
        if let Some(phone) = phone_run(run, context).filter(|_| !glued_after) {
            return Some(phone);
        }
        i = j.max(i + 1);
    }
    None
}

fn phone_run(run: &str, context: bool) -> Option<String> {
    let digits: String = run.chars().filter(char::is_ascii_digit).collect();
    let plus = run.starts_with('+');
    if run.matches('+').count() > usize::from(plus) {
        return None;
    }
    let international = plus || digits.starts_with("00");
    let local = !international && digits.starts_with('0');
    let n = digits.len();
    let accepted = (international && (9..=17).contains(&n))
        || (local && (9..=11).contains(&n))
        || (context && (9..=15).contains(&n));
    if !accepted {
        return None;
    }
    normalize_phone(run)
}

/// English words (whole words) and phrases, and Arabic stems (found inside words, since Arabic
/// attaches articles and pronouns), that signal each kind of interest.
struct SignalWords {
    signal: Signal,
    en_words: &'static [&'static str],
    en_phrases: &'static [&'static str],
    ar: &'static [&'static str],
}

const SIGNAL_WORDS: [SignalWords; 4] = [
    SignalWords {
        signal: Signal::Meeting,
        en_words: &[
            "demo",
            "meeting",
            "appointment",
            "book",
            "booking",
            "booked",
            "schedule",
            "consultation",
        ],
        en_phrases: &["a call", "site visit"],
        ar: &[
            "موعد",
            "اجتماع",
            "احجز",
            "حجز",
            "استشاره",
            "ديمو",
            "نلتقي",
            "مقابله",
        ],
    },
    SignalWords {
        signal: Signal::Budget,
        en_words: &["budget", "budgeted", "budgets", "afford", "spend"],
        en_phrases: &[],
        ar: &["ميزاني"],
    },
    SignalWords {
        signal: Signal::Pricing,
        en_words: &[
            "price",
            "prices",
            "pricing",
            "priced",
            "cost",
            "costs",
            "quote",
            "quotation",
            "rates",
            "fee",
            "fees",
            "tariff",
            "packages",
        ],
        en_phrases: &["how much"],
        ar: &[
            "سعر",
            "اسعار",
            "بكم",
            "يكلف",
            "تكلفه",
            "تكاليف",
            "الرسوم",
            "كم الرسوم",
            "باقات",
        ],
    },
    SignalWords {
        signal: Signal::Urgency,
        en_words: &[
            "urgent",
            "urgently",
            "asap",
            "immediately",
            "today",
            "tonight",
            "tomorrow",
            "deadline",
            "within",
        ],
        en_phrases: &[
            "as soon as possible",
            "right away",
            "this week",
            "next week",
            "this month",
            "next month",
        ],
        ar: &[
            "عاجل",
            "ضروري",
            "اسرع وقت",
            "فورا",
            "حالا",
            "اليوم",
            "بكره",
            "بكرا",
            "غدا",
            "هذا الاسبوع",
            "الاسبوع الجاي",
            "الاسبوع القادم",
            "الشهر الجاي",
            "الشهر القادم",
            "خلال",
        ],
    },
];

/// Currencies after (or, for symbols, before) an amount: an amount with one is a budget.
const CURRENCIES: &[&str] = &[
    "aed",
    "usd",
    "sar",
    "egp",
    "eur",
    "gbp",
    "kwd",
    "qar",
    "omr",
    "bhd",
    "jod",
    "dirham",
    "dirhams",
    "dhs",
    "riyal",
    "riyals",
    "dollars",
    "dollar",
    "euros",
    "pounds",
    "درهم",
    "دراهم",
    "ريال",
    "دولار",
    "جنيه",
    "دينار",
];

fn signals(original: &str, words: &[Word<'_>], lowered: &str) -> Vec<Signal> {
    let mut found = Vec::new();
    let padded = format!(
        " {} ",
        lowered
            .chars()
            .map(|c| if c.is_alphanumeric() || c == '\'' {
                c
            } else {
                ' '
            })
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    );
    for s in &SIGNAL_WORDS {
        let hit = words.iter().any(|w| {
            let bare = w.norm.trim_matches(|c: char| !c.is_alphanumeric());
            s.en_words.contains(&bare)
        }) || s
            .en_phrases
            .iter()
            .any(|p| padded.contains(&format!(" {p} ")))
            || s.ar.iter().any(|a| lowered.contains(a));
        if hit {
            found.push(s.signal);
        }
    }
    if !found.contains(&Signal::Meeting) && detect_intent(original) == Intent::Meeting {
        found.push(Signal::Meeting);
    }
    let amount_with_currency = words.windows(2).any(|p| {
        let amount = |w: &Word<'_>| w.norm.chars().next().is_some_and(|c| c.is_ascii_digit());
        (amount(&p[0]) && CURRENCIES.contains(&p[1].norm.as_str()))
            || (CURRENCIES.contains(&p[0].norm.as_str()) && amount(&p[1]))
    });
    if amount_with_currency && !found.contains(&Signal::Budget) {
        found.push(Signal::Budget);
    }
    // `$5000` loses its `$` when words are trimmed; look at the raw text for currency symbols.
    if !found.contains(&Signal::Budget)
        && original.char_indices().any(|(i, c)| {
            "$€£".contains(c)
                && original[i + c.len_utf8()..].starts_with(|d: char| d.is_ascii_digit())
        })
    {
        found.push(Signal::Budget);
    }
    found.sort();
    found.dedup();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> LeadFields {
        extract(text).fields
    }

    #[test]
    fn english_contact_details() {
        let f = fields(
            "Hi, my name is Sara Haddad and I work at Acme Trading. Email me at \
             Sara.Haddad@Acme.example or call +971 50 123 4567.",
        );
        assert_eq!(f.name.as_deref(), Some("Sara Haddad"));
        assert_eq!(f.company.as_deref(), Some("Acme Trading"));
        assert_eq!(f.email.as_deref(), Some("sara.haddad@acme.example"));
        assert_eq!(f.phone.as_deref(), Some("+971501234567"));
    }

    #[test]
    fn arabic_contact_details_with_arabic_indic_digits() {
        let f = fields("مرحبا، اسمي أحمد علي من شركة النور للتجارة. رقمي ٠٥٠١٢٣٤٥٦٧ وايميلي ahmed@alnoor.example");
        assert_eq!(f.name.as_deref(), Some("أحمد علي"));
        assert_eq!(f.company.as_deref(), Some("النور للتجارة"));
        assert_eq!(f.phone.as_deref(), Some("0501234567"));
        assert_eq!(f.email.as_deref(), Some("ahmed@alnoor.example"));
        let f = fields("جوالي +٩٦٦ ٥٥ ١٢٣ ٤٥٦٧");
        assert_eq!(f.phone.as_deref(), Some("+966551234567"));
        let f = fields("أعمل في شركة الريادة");
        assert_eq!(f.company.as_deref(), Some("الريادة"));
    }

    #[test]
    fn lower_case_names_are_capitalised_and_stop_at_the_clause() {
        assert_eq!(fields("my name is sara").name.as_deref(), Some("Sara"));
        assert_eq!(
            fields("My name's John, I need a quote").name.as_deref(),
            Some("John")
        );
        assert_eq!(
            fields("my name is omar from dubai").name.as_deref(),
            Some("Omar")
        );
    }

    #[test]
    fn refusals_and_non_names_are_not_names() {
        for text in [
            "my name is not important",
            "My name is irrelevant, just tell me the price",
            "my name is... why do you ask?",
            "what is my name?",
            "اسمي مش مهم",
            "اسمي ليس مهما",
            "the name is the problem",
            "my name is 12345",
            "I'm interested in your services",
        ] {
            assert_eq!(fields(text).name, None, "{text}");
        }
    }

    #[test]
    fn companies_need_an_explicit_marker() {
        assert_eq!(fields("I work at a bank").company, None);
        assert_eq!(fields("I work at home").company, None);
        assert_eq!(fields("I'm from Dubai").company, None);
        assert_eq!(
            fields("I work for Globex Corp and we need 20 licences")
                .company
                .as_deref(),
            Some("Globex Corp")
        );
    }

    #[test]
    fn phones_are_conservative() {
        // Prices, dates, order numbers and short numbers are not phone numbers.
        for text in [
            "the budget is 150000 AED",
            "the meeting is on 2025-01-15",
            "order #123456789 is late",
            "we have 25 people and 3 offices",
            "my email is user123456789@example.com",
            "is it 1,000,000 or 2,000,000?",
        ] {
            assert_eq!(fields(text).phone, None, "{text}");
        }
        assert_eq!(
            fields("call me on 050-123-4567").phone.as_deref(),
            Some("0501234567")
        );
        assert_eq!(
            fields("my phone is (555) 123-4567").phone.as_deref(),
            Some("5551234567")
        );
        assert_eq!(
            fields("00971501234567 is my whatsapp").phone.as_deref(),
            Some("+971501234567")
        );
        // A bare non-local number with no talk of phones stays unread.
        assert_eq!(fields("reference 5551234567").phone, None);
    }

    #[test]
    fn emails_are_validated() {
        assert_eq!(
            normalize_email("<Sam@Example.COM>.").as_deref(),
            Some("sam@example.com")
        );
        for bad in [
            "sam@",
            "@x.com",
            "a@x",
            "a@x.c0m",
            "a..b@",
            "a@-x.com",
            "a b@x.com",
        ] {
            assert_eq!(normalize_email(bad), None, "{bad}");
        }
        assert_eq!(
            fields("my email: someone@mail.example.org, thanks")
                .email
                .as_deref(),
            Some("someone@mail.example.org")
        );
    }

    #[test]
    fn phones_given_on_purpose_are_normalised() {
        assert_eq!(
            normalize_phone("+44 20 7946 0958").as_deref(),
            Some("+442079460958")
        );
        assert_eq!(normalize_phone("٠٥٥١٢٣٤٥٦٧").as_deref(), Some("0551234567"));
        assert_eq!(
            normalize_phone("0044 20 7946 0958").as_deref(),
            Some("+442079460958")
        );
        for bad in [
            "12345",
            "call me",
            "+1+2345678901",
            "1234567890123456",
            "12+34567890",
        ] {
            assert_eq!(normalize_phone(bad), None, "{bad}");
        }
    }

    #[test]
    fn interests_follow_their_markers() {
        assert_eq!(
            fields("I'm interested in the enterprise plan for 50 users. Can you help?")
                .interest
                .as_deref(),
            Some("the enterprise plan for 50 users")
        );
        assert_eq!(
            fields("We are looking for a CRM integration and a chatbot")
                .interest
                .as_deref(),
            Some("a CRM integration")
        );
        assert_eq!(
            fields("مهتم بالتصميم الداخلي للمكاتب").interest.as_deref(),
            Some("التصميم الداخلي للمكاتب")
        );
        assert_eq!(fields("I'm looking for someone to talk to").interest, None);
    }

    #[test]
    fn signals_in_english_and_arabic() {
        let s = |t: &str| extract(t).signals;
        assert_eq!(s("How much does it cost?"), vec![Signal::Pricing]);
        assert_eq!(s("كم سعر الباقة؟"), vec![Signal::Pricing]);
        assert_eq!(s("Our budget is around $5,000"), vec![Signal::Budget]);
        assert_eq!(s("ميزانيتنا ٢٠ ألف درهم"), vec![Signal::Budget]);
        assert_eq!(s("we can spend 20000 AED"), vec![Signal::Budget]);
        assert_eq!(s("Can we book a demo?"), vec![Signal::Meeting]);
        assert_eq!(s("ابي احجز موعد"), vec![Signal::Meeting]);
        assert_eq!(s("We need it urgently, this week"), vec![Signal::Urgency]);
        assert_eq!(s("نحتاجه بأسرع وقت"), vec![Signal::Urgency]);
        assert_eq!(s("What are your opening hours?"), vec![]);
        assert_eq!(s("I read it on facebook"), vec![]);
        assert_eq!(
            s("What's the price? We need it by next week and can book a call."),
            vec![Signal::Meeting, Signal::Pricing, Signal::Urgency]
        );
    }

    #[test]
    fn scores_add_up_with_reasons_and_are_capped() {
        let none = score(&LeadFields::default(), &[]);
        assert_eq!(none.score, 0);
        assert!(none.reasons.is_empty());
        let f = LeadFields {
            email: Some("a@b.example".into()),
            company: Some("Acme".into()),
            ..Default::default()
        };
        let s = score(&f, &[Signal::Pricing]);
        assert_eq!(s.score, 50);
        assert_eq!(
            s.reasons,
            vec![
                "+25 gave an email address",
                "+10 company given",
                "+15 asked about prices"
            ]
        );
        let all = LeadFields {
            name: Some("n".into()),
            email: Some("e@x.example".into()),
            phone: Some("0501234567".into()),
            company: Some("c".into()),
            interest: Some("i".into()),
        };
        let s = score(&all, &Signal::ALL);
        assert_eq!(s.score, 100);
        assert_eq!(s.reasons.len(), 9);
    }

    #[test]
    fn merging_takes_the_latest_word() {
        let mut f = fields("my name is Sara, email sara@old.example");
        assert!(!f.merge(&fields("nothing new here")));
        assert!(f.merge(&fields("sorry, it's sara@new.example")));
        assert_eq!(f.email.as_deref(), Some("sara@new.example"));
        assert_eq!(f.name.as_deref(), Some("Sara"));
        assert!(!f.merge(&f.clone()));
    }

    #[test]
    fn extraction_survives_odd_input() {
        for text in [
            "",
            "@",
            "+",
            "my name is",
            "اسمي",
            "$",
            "(((",
            "0",
            "a@b@c.d",
            "my name is \u{0}",
        ] {
            let _ = extract(text);
        }
        let long = "my name is ".repeat(2000);
        assert_eq!(extract(&long).fields.name, None);
    }
}
