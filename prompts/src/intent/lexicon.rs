//! The phrase lists behind intent detection, in English and Arabic.
//!
//! Keeping the vocabulary apart from the rules that combine it means a new
//! colloquial phrasing or misspelling is a one-line data change that cannot
//! disturb the rule logic. Arabic entries are written without the definite
//! article (the matcher accepts `ال`, `و`, `ب` … in front of them) and in any
//! spelling, since they are normalised on compilation; they cover Modern
//! Standard Arabic and Gulf, Levantine and Egyptian colloquial forms. See
//! [`super::matcher`] for the meaning of `*`, `~` and `#`.

use std::sync::OnceLock;

use super::matcher::PhraseSet;

/// Unmistakable requests for a person, valid anywhere in a message.
#[rustfmt::skip]
const HUMAN_EXPLICIT: &[&str] = &[
    "real person", "real human", "real people", "actual person", "actual human", "live person",
    "live agent", "live human", "live representative~", "live support", "human agent",
    "human being", "human operator", "human representative~", "human please", "not a bot",
    "not a robot", "no bot", "no bots", "not an ai", "transfer me", "connect me", "put me through",
    "escalate", "escalate this", "someone help", "someone to help", "somebody help", "anyone help",
    "anybody help", "someone available", "anyone available", "anyone there", "anybody there",
    "someone there",
    "انسان حقيقي", "شخص حقيقي", "موظف حقيقي", "بشري حقيقي", "بني ادم", "بني آدم", "مو بوت",
    "مش بوت", "مب بوت", "مو روبوت", "مش روبوت", "لا اريد بوت", "مش عايز بوت", "حولني", "حولوني",
    "تحولني", "حوّلني", "وصلني", "وصلوني", "توصلني", "حد يساعدني", "احد يساعدني", "حدا يساعدني",
    "حد يرد", "احد يرد", "حدا يرد", "فيه احد", "فيه حد", "حد موجود", "احد موجود",
];

/// Requests to be called or contacted; ignored when the message opens as a
/// question about the process ("Will a technician call me?").
#[rustfmt::skip]
const HUMAN_CALLBACK: &[&str] = &[
    "call me", "call me back", "ring me", "phone me", "give me a call", "give me a ring",
    "callback", "call back", "contact me", "reach me", "reach out to me", "get in touch with me",
    "get back to me", "someone call", "somebody call", "someone contact", "have someone",
    "get someone",
    "كلمني", "كلموني", "اتصل بي", "اتصلوا بي", "اتصلو بي", "اتصل علي", "اتصلوا علي", "اتصلو علي",
    "اتصل فيني", "اتصلوا فيني", "اتصلو فيني", "اتصلي بي", "تواصلوا معي", "تواصلو معي", "تواصل معي",
    "تواصلي معي", "يتصل بي", "يتصل علي", "يتصل فيني", "يتصل بيا", "يكلمني", "يكلمنا", "يتواصل معي",
    "يتواصل معايا", "يتصلون بي", "رن علي", "رنوا علي", "دق علي", "دقولي", "دقلي", "ارجعولي",
    "يرد علي",
];

/// Verbs of getting through to someone: talk, speak, connect …
#[rustfmt::skip]
const CONTACT_VERBS: &[&str] = &[
    "talk*", "speak*", "chat", "chatting", "connect*", "transfer*", "forward", "escalat*", "reach",
    "contact*", "get in touch", "put through", "redirect*", "pass me", "hand me", "hand over",
    "hand off", "handover", "switch me", "get hold of",
    "اتحدث*", "نتحدث*", "تحدث*", "التحدث", "احكي*", "نحكي*", "احاكي", "حكي", "اكلم*", "نكلم*",
    "كلم", "اتكلم*", "نتكلم*", "تكلم", "تكلمني", "الكلام", "اتواصل*", "نتواصل*", "تواصل*", "اتصل*",
    "نتصل*", "تحويل*", "توصيل", "اوصل", "ادردش", "دردشه", "اراسل", "مراسله",
];

/// "to talk to" after a person word: "someone I can talk to".
#[rustfmt::skip]
const TALK_TO: &[&str] = &[
    "talk to", "talk with", "speak to", "speak with", "chat to", "chat with",
];

/// Anyone on the business's side a customer might ask for.
#[rustfmt::skip]
const PEOPLE: &[&str] = &[
    "human", "person", "persons", "people", "agent", "representative~", "rep", "reps", "operator",
    "someone", "somebody", "anyone", "anybody", "some one", "any one", "somone", "sombody", "staff",
    "staff member", "employee", "manager", "supervisor", "salesperson", "salesman", "saleswoman",
    "sales", "sales team", "support team", "tech support", "technical support", "customer service",
    "customer care", "customer support", "team", "team member", "advisor", "adviser", "consultant",
    "specialist", "expert", "engineer", "technician", "colleague", "owner", "huamn", "agnet",
    "persn",
    "موظف*", "موضف*", "شخص", "شخصا", "اشخاص", "انسان", "بشري", "بشر", "ادمي", "بني ادم", "حد",
    "حدا", "حدن", "احد", "واحد", "مندوب*", "ممثل*", "وكيل", "مسؤول*", "مسئول*", "مسؤل*", "مبيعات",
    "خدمة عملاء", "خدمه زبائن", "دعم", "دعم فني", "فريق*", "مدير*", "مشرف*", "مستشار*", "مهندس*",
    "فني", "اخصائي*", "خبير*", "زول",
];

/// Person words that on their own ask for a human ("agent!", "موظف لو سمحت").
#[rustfmt::skip]
const STRONG_PEOPLE: &[&str] = &[
    "human", "human being", "person", "agent", "representative~", "rep", "operator", "staff member",
    "employee", "salesperson", "sales team", "sales department", "sales rep", "customer service",
    "customer care", "customer support", "support team", "team member", "advisor", "adviser",
    "huamn", "agnet",
    "موظف*", "موضف*", "انسان", "بشري", "شخص", "مندوب*", "ممثل*", "خدمة عملاء", "خدمه زبائن",
    "فريق مبيعات", "قسم مبيعات", "مسؤول*", "مسئول*", "دعم فني", "بني ادم",
];

/// Words allowed around person words in a bare request ("a real person from
/// your sales team, now please").
#[rustfmt::skip]
const HUMAN_BARE_EXTRA: &[&str] = &[
    "real", "live", "actual", "from", "of", "department", "dept", "member", "urgent", "urgently",
    "immediately", "asap", "talk", "speak", "in",
    "حقيقي", "قسم", "حالا", "بسرعه", "ضروري", "مستعجل", "في",
];

/// Wanting or asking for something: the verb before a person or meeting word.
#[rustfmt::skip]
const DESIRE: &[&str] = &[
    "want", "wanna", "need", "needs", "would like", "id like", "like to", "request", "requesting",
    "prefer", "looking for", "can i have", "can i get", "could i have", "could i get", "may i have",
    "can we have", "can we get", "get me", "give me", "interested in", "would love", "love to",
    "hoping for", "hope to",
    "اريد", "نريد", "ابي", "ابى", "نبي", "ابغى", "ابغا", "نبغى", "نبغا", "ابا", "بدي", "بدنا",
    "عايز", "عاوز", "عايزه", "عاوزه", "عايزين", "عاوزين", "حاب", "حابب", "حابه", "ودي", "ودنا",
    "محتاج", "محتاجه", "احتاج", "نحتاج", "اود", "نود", "ارغب", "نرغب", "ممكن", "يمكن", "يمكنني",
    "اقدر", "نقدر", "تقدر", "بالامكان", "لو سمحت",
];

/// Polite request openings that look like questions but are requests
/// ("هل يمكن", "could I"): they cancel the question guard.
#[rustfmt::skip]
const REQUEST_OPENINGS: &[&str] = &[
    "هل ممكن", "هل يمكن", "هل يمكنني", "هل يمكنك", "هل اقدر", "هل نقدر", "هل تقدر", "هل بالامكان",
    "هل استطيع", "هل نستطيع",
];

/// Words that open a question about how things work rather than a request.
#[rustfmt::skip]
const QUESTION_OPENINGS: &[&str] = &[
    "do", "does", "did", "is", "are", "was", "were", "will", "would", "should", "what", "whats",
    "how", "hows", "why", "which", "where", "who", "whose", "isnt", "arent", "doesnt", "dont",
    "هل", "ما", "ماذا", "كيف", "ليش", "لماذا", "شو", "ايش", "وش", "ليه", "ايه", "شلون", "اشلون",
    "كم", "بكم",
];

/// Verbs that only ever mean putting a meeting in the diary.
#[rustfmt::skip]
const BOOK_STRONG: &[&str] = &[
    "book", "booking", "booked", "bok", "schedule~", "scheduling", "schedual", "reschedule~",
    "rescheduling", "arrange", "arranging", "organise", "organize", "organising", "organizing",
    "reserve", "reserving", "set up", "setup", "line up", "fix up", "pencil in",
    "حجز*", "احجز*", "نحجز*", "يحجز*", "تحجز*", "رتب", "رتبلي", "رتبوا", "ارتب*", "نرتب*", "ترتيب*",
    "ترتب*", "نظم", "انظم", "ننظم", "تنظيم", "جدوله", "نجدول*", "اجدول*", "ثبت", "اثبت", "نثبت",
    "تثبيت",
];

/// General verbs that mean booking only next to a meeting word.
#[rustfmt::skip]
const BOOK_WEAK: &[&str] = &[
    "get", "make", "plan", "fix", "do", "take", "come for", "come in for", "go for",
    "اخذ", "ناخذ", "اخد", "ناخد", "طلب", "اطلب", "نطلب", "اسوي", "نسوي", "سوي", "تسوي", "اعمل",
    "نعمل", "حدد", "احدد", "نحدد", "تحدد", "تحديد", "حددلي",
];

/// What can be booked: meetings, appointments, consultations, visits, demos,
/// call slots. "مواعيد" is deliberately absent: it usually means opening
/// times ("مواعيد العمل").
#[rustfmt::skip]
const MEETING_NOUNS: &[&str] = &[
    "meeting~", "meating", "appointment~", "appt", "consultation~", "visit", "site visit",
    "home visit", "survey", "site survey", "roof survey", "demo", "demonstration", "call",
    "phone call", "video call", "zoom call", "zoom", "slot", "time slot", "session", "inspection",
    "assessment", "viewing", "face to face",
    "موعد*", "ميعاد", "اجتماع*", "لقاء", "استشار*", "زيار*", "معاين*", "عرض توضيحي", "عرض تجريبي",
    "مقابله", "مكالم*", "جلسه", "مسح موقع", "مسح ميداني", "كشف", "ديمو", "زوم",
];

/// Phrases that request a meeting by themselves.
#[rustfmt::skip]
const MEETING_EXPLICIT: &[&str] = &[
    "meet with", "meet you", "meet up", "meet in person", "meet your", "meet someone",
    "can we meet", "could we meet", "shall we meet", "should we meet", "let meet", "lets meet",
    "like to meet", "want to meet", "love to meet", "book me", "book it", "book one", "book now",
    "to book", "can i book", "how do i book", "where do i book", "come over", "come and see",
    "drop by", "stop by", "pop by", "when are you available", "when are you free",
    "are you available", "your availability", "free slot", "available slot", "available slots",
    "can i visit", "can we visit", "visit your showroom", "visit your office",
    "come to your showroom", "come and check", "come check", "come and inspect",
    "come and have a look", "send someone", "send somebody", "send an engineer",
    "send a technician", "send your engineer", "send your team", "engineer come", "technician come",
    "check my roof", "inspect my roof", "look at my roof",
    "احجز*", "نحجز*", "نلتقي", "نتلاقي", "نتقابل", "اقابل*", "نقابل*", "نجتمع", "اجتمع*", "تزوروني",
    "مواعيد متاحه", "موعد متاح", "وقت مناسب", "تجون", "تجوا", "تيجوا", "تجي تشوف", "ترسلون مهندس",
    "ترسلوا مهندس", "ترسلون حد", "ترسلوا حد", "ترسلون احد", "ارسلوا مهندس", "ترسل مهندس",
    "يجي مهندس", "يجي حد", "يجيني", "تشوفون سطح", "ازوركم", "ازور معرض*", "نزوركم",
];

/// Days and times of day: on their own ("Sunday 10am works") they propose a
/// slot for a meeting.
#[rustfmt::skip]
const TIME_ANCHORS: &[&str] = &[
    "today", "tomorrow", "tonight", "morning", "afternoon", "evening", "noon", "weekend", "monday",
    "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
    "اليوم", "بكره", "بكرا", "غدا", "بعد بكره", "صبح", "صباحا", "صباح", "مساء", "مساءا", "عصر",
    "ظهر", "ليله", "احد", "اثنين", "اتنين", "ثلاثاء", "اربعاء", "خميس", "جمعه", "سبت",
];

/// Words that accompany a proposed time without meaning anything alone.
#[rustfmt::skip]
const TIME_GLUE: &[&str] = &[
    "#", "week", "next", "this", "at", "on", "am", "pm", "soon", "sometime", "anytime", "or", "is",
    "works", "work", "would work", "suits", "suit", "fine", "good", "ok", "okay",
    "بعد", "اسبوع", "جاي", "قادم", "ساعه", "يوم", "او", "يناسبني", "يناسب", "يناسبنا", "مناسب",
    "تمام", "اوكي",
];

/// Greetings, in English, Arabic and Arabizi.
#[rustfmt::skip]
const GREETINGS: &[&str] = &[
    "hi", "hii", "hey", "heya", "hiya", "hello", "helo", "hellow", "hallo", "hullo", "yo", "howdy",
    "greetings", "good morning", "good afternoon", "good evening", "good day", "morning", "evening",
    "gm", "salam", "salaam", "salam alaikum", "salaam alaikum", "assalamu alaikum",
    "asalamu alaikum", "assalam alaikum", "as salamu alaikum", "salamu alaikum", "alaikum",
    "marhaba", "marhaban", "ahlan", "how are you", "how r u", "how are u", "hows it going",
    "how is it going", "whats up", "wassup", "sup", "hope you are well", "hope youre well",
    "سلام عليكم", "سلام", "ورحمة الله", "ورحمة الله وبركاته", "وعليكم سلام", "مرحبا", "مرحبه",
    "مراحب", "مرحبتين", "اهلا", "اهلين", "اهلا وسهلا", "هلا", "هلا والله", "هلا وغلا", "هلو", "هاي",
    "هالو", "صباح الخير", "صباح النور", "مساء الخير", "مسا الخير", "مساء النور", "كيف الحال",
    "كيف حالك", "كيفك", "كيفكم", "كيف حالكم", "شلونك", "شلونكم", "شخبارك", "شخباركم", "ازيك",
    "ازيكم", "عامل ايه", "اخبارك", "ايش اخبارك", "تحية طيبة", "تحياتي", "الو", "يا هلا", "حياك",
    "حياكم", "حياك الله",
];

/// Phrases containing a salam greeting, answered with "wa alaikum assalam".
#[rustfmt::skip]
const SALAM: &[&str] = &[
    "salam", "salaam", "salam alaikum", "assalamu alaikum", "asalamu alaikum", "assalam alaikum",
    "as salamu alaikum", "salamu alaikum",
    "سلام", "سلام عليكم",
];

/// Thanks, in English, Arabic and Arabizi.
#[rustfmt::skip]
const THANKS: &[&str] = &[
    "thanks", "thank", "thank you", "thank u", "thankyou", "thanku", "thx", "thanx", "tnx", "ty",
    "tysm", "thanks a lot", "many thanks", "much appreciated", "appreciate it", "i appreciate it",
    "appreciated", "cheers", "grateful", "shukran", "shokran",
    "شكرا", "شكر", "شكرا جزيلا", "الف شكر", "مشكور", "مشكوره", "مشكورين", "يعطيك العافيه",
    "يعطيكم العافيه", "الله يعطيك العافيه", "يعطيك الف عافيه", "تسلم", "تسلمي", "تسلمو", "تسلمون",
    "تسلم ايدك", "تسلم يدك", "ميرسي", "مرسي", "جزاك الله خير", "جزاك الله خيرا", "جزاكم الله خير",
    "جزاكم الله خيرا", "بارك الله فيك", "بارك الله فيكم", "ممنون", "ممنونك", "متشكر", "متشكرين",
    "كثر خيرك", "كثر الله خيرك", "ما قصرت", "ما قصرتوا", "ما قصرتو", "الله يسعدك", "الله يجزاك خير",
];

/// Bare acknowledgements ("ok", "great", "تمام"), answered like thanks.
#[rustfmt::skip]
const ACKS: &[&str] = &[
    "ok", "okay", "okey", "k", "kk", "great", "perfect", "awesome", "cool", "nice", "noted",
    "got it", "understood", "excellent", "wonderful", "fine", "alright", "all right", "sure",
    "تمام", "طيب", "اوكي", "اوك", "حسنا", "ممتاز", "رائع", "مفهوم", "وصلت", "ماشي", "تمام التمام",
];

/// Goodbyes, in English, Arabic and Arabizi.
#[rustfmt::skip]
const GOODBYES: &[&str] = &[
    "bye", "byebye", "bye bye", "goodbye", "good bye", "see you", "see ya", "see you later",
    "see you soon", "cya", "take care", "good night", "goodnight", "have a nice day",
    "have a good day", "have a great day", "have a nice one", "later", "farewell", "talk later",
    "talk soon", "ttyl", "ma salama", "masalama",
    "مع السلامه", "في امان الله", "الى اللقاء", "وداعا", "باي", "باي باي", "يلا باي",
    "تصبح على خير", "تصبحون على خير", "الله معك", "الله معاك", "نشوفك", "اشوفك",
];

/// Words that carry no intent of their own: politeness, forms of address and
/// function words that surround greetings and bare requests.
#[rustfmt::skip]
const FILLER: &[&str] = &[
    "please", "pls", "plz", "pleez", "kindly", "the", "a", "an", "with", "your", "you", "u", "for",
    "me", "my", "i", "we", "us", "our", "to", "now", "just", "one", "again", "so", "very", "much",
    "and", "too", "also", "there", "all", "everyone", "everybody", "guys", "folks", "team",
    "friend", "sir", "madam", "maam", "dear", "bro", "mate", "habibi", "oh", "no", "nope", "nah",
    "yes", "yeah", "yep",
    "لو سمحت", "لو سمحتي", "من فضلك", "من فضلكم", "رجاء", "يا", "اخي", "اخوي", "اختي", "حبيبي",
    "حبيبتي", "عزيزي", "عزيزتي", "استاذ", "استاذه", "والله", "بس", "الان", "و", "اخوان", "اخوه",
    "شباب", "جماعه", "جميع", "كل", "ع", "علي", "مع", "جزيلا", "كثير", "كتير", "واجد", "وايد", "مره",
    "جدا", "لك", "لكم", "من", "عليك", "فريق", "لا", "نعم", "ايوه", "اي", "غالي", "غاليه", "طيب",
    "حبيب",
];

/// Words between a verb and its object that show the customer wants
/// information rather than a person or a booking ("talk about the sales
/// process", "I want to know the consultation price").
#[rustfmt::skip]
const GAP_BLOCKERS: &[&str] = &[
    "about", "regarding", "know", "ask", "if", "whether", "price", "prices", "cost", "costs",
    "much", "how", "what", "fee", "fees", "number", "phone", "email", "address", "whatsapp",
    "عن", "بخصوص", "اعرف", "نعرف", "معرفه", "اسال", "نسال", "سعر", "اسعار", "تكلفه", "كم", "بكم",
    "رسوم", "هل", "اذا", "رقم", "هاتف", "تلفون", "جوال", "ايميل", "بريد", "عنوان", "واتساب",
];

/// Phrases that contain a person word without asking for one; they are
/// blanked out before any rule runs.
#[rustfmt::skip]
const EXCLUSIONS: &[&str] = &[
    "human resources", "human resource", "hr", "human error", "human rights",
    "موارد بشريه", "شؤون موظفين", "حقوق انسان",
];

/// Every phrase list, compiled once.
pub(super) struct Lexicon {
    pub(super) human_explicit: PhraseSet,
    pub(super) human_callback: PhraseSet,
    pub(super) contact_verbs: PhraseSet,
    pub(super) talk_to: PhraseSet,
    pub(super) people: PhraseSet,
    pub(super) strong_people: PhraseSet,
    pub(super) human_bare_extra: PhraseSet,
    pub(super) desire: PhraseSet,
    pub(super) request_openings: PhraseSet,
    pub(super) question_openings: PhraseSet,
    pub(super) book_strong: PhraseSet,
    pub(super) book_weak: PhraseSet,
    pub(super) meeting_nouns: PhraseSet,
    pub(super) meeting_explicit: PhraseSet,
    pub(super) time_anchors: PhraseSet,
    pub(super) time_glue: PhraseSet,
    pub(super) greetings: PhraseSet,
    pub(super) salam: PhraseSet,
    pub(super) thanks: PhraseSet,
    pub(super) acks: PhraseSet,
    pub(super) goodbyes: PhraseSet,
    pub(super) filler: PhraseSet,
    pub(super) exclusions: PhraseSet,
    pub(super) gap_blockers: PhraseSet,
}

/// The compiled lexicon (built on first use).
pub(super) fn lexicon() -> &'static Lexicon {
    static LEXICON: OnceLock<Lexicon> = OnceLock::new();
    LEXICON.get_or_init(|| Lexicon {
        human_explicit: PhraseSet::new(HUMAN_EXPLICIT),
        human_callback: PhraseSet::new(HUMAN_CALLBACK),
        contact_verbs: PhraseSet::new(CONTACT_VERBS),
        talk_to: PhraseSet::new(TALK_TO),
        people: PhraseSet::new(PEOPLE),
        strong_people: PhraseSet::new(STRONG_PEOPLE),
        human_bare_extra: PhraseSet::new(HUMAN_BARE_EXTRA),
        desire: PhraseSet::new(DESIRE),
        request_openings: PhraseSet::new(REQUEST_OPENINGS),
        question_openings: PhraseSet::new(QUESTION_OPENINGS),
        book_strong: PhraseSet::new(BOOK_STRONG),
        book_weak: PhraseSet::new(BOOK_WEAK),
        meeting_nouns: PhraseSet::new(MEETING_NOUNS),
        meeting_explicit: PhraseSet::new(MEETING_EXPLICIT),
        time_anchors: PhraseSet::new(TIME_ANCHORS),
        time_glue: PhraseSet::new(TIME_GLUE),
        greetings: PhraseSet::new(GREETINGS),
        salam: PhraseSet::new(SALAM),
        thanks: PhraseSet::new(THANKS),
        acks: PhraseSet::new(ACKS),
        goodbyes: PhraseSet::new(GOODBYES),
        filler: PhraseSet::new(FILLER),
        exclusions: PhraseSet::new(EXCLUSIONS),
        gap_blockers: PhraseSet::new(GAP_BLOCKERS),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::tokenize;

    /// Every phrase, written as ordinary text, must match itself once
    /// compiled: this catches patterns that normalisation or tokenisation
    /// would silently make unreachable (stray punctuation, diacritics).
    #[test]
    fn every_phrase_matches_its_own_text() {
        let lists: &[&[&str]] = &[
            HUMAN_EXPLICIT,
            HUMAN_CALLBACK,
            CONTACT_VERBS,
            TALK_TO,
            PEOPLE,
            STRONG_PEOPLE,
            HUMAN_BARE_EXTRA,
            DESIRE,
            REQUEST_OPENINGS,
            QUESTION_OPENINGS,
            BOOK_STRONG,
            BOOK_WEAK,
            MEETING_NOUNS,
            MEETING_EXPLICIT,
            TIME_ANCHORS,
            TIME_GLUE,
            GREETINGS,
            SALAM,
            THANKS,
            ACKS,
            GOODBYES,
            FILLER,
            GAP_BLOCKERS,
            EXCLUSIONS,
        ];
        for list in lists {
            let set = PhraseSet::new(list);
            for phrase in list.iter().filter(|p| **p != "#") {
                let plain = phrase.replace(['*', '~'], "");
                let tokens = tokenize(&plain);
                assert_eq!(
                    tokens.len(),
                    phrase.split_whitespace().count(),
                    "{phrase:?} does not tokenise into its own words"
                );
                assert_eq!(set.match_at(&tokens, 0), Some(tokens.len()), "{phrase:?}");
            }
        }
    }
}
