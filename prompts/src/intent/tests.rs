//! Unit tests for intent detection.
//!
//! Each intent is exercised with English and Arabic phrasings (Modern
//! Standard Arabic and Gulf, Levantine and Egyptian colloquial), noisy input
//! (case, punctuation, diacritics, repetition, misspellings, mixed script)
//! and near misses that must stay questions.

use super::*;

#[track_caller]
fn assert_all(intent: Intent, messages: &[&str]) {
    for message in messages {
        assert_eq!(detect_intent(message), intent, "message: {message:?}");
    }
}

#[test]
fn human_in_english() {
    assert_all(
        Intent::Human,
        &[
            "Can I talk to a real person?",
            "I want to speak with someone from sales",
            "AGENT!!!",
            "human please",
            "Please connect me to a representative",
            "Could someone call me back? 0500000000",
            "I need to talk to a human, not a bot",
            "Is there anyone I can speak to?",
            "can i chat with ur sales team",
            "I'd like to speak to a reprsentative",
            "customer service please",
            "hi, can your sales team contact me?",
        ],
    );
}

#[test]
fn human_in_arabic() {
    assert_all(
        Intent::Human,
        &[
            "أريد التحدث مع موظف",
            "ابي اكلم شخص",
            "عايز اكلم حد من المبيعات",
            "موظف خدمة العملاء",
            "انسان حقيقي",
            "ممكن تحولني على خدمة العملاء؟",
            "بدي احكي مع حدا من الفريق",
            "ابغى موظف يكلمني",
            "لو سمحت كلموني على الرقم",
            "أبي أتواصل مع مسؤول المبيعات",
            "ابغا اكلم موضف",
            "هل يمكنني التحدّث إلى أحد الموظفين؟",
            "عاوز حد يتصل بيا",
        ],
    );
}

#[test]
fn human_negatives_stay_questions() {
    assert_all(
        Intent::Question,
        &[
            "what is a human resources policy?",
            "Do your staff speak Arabic?",
            "Can I talk about battery support?",
            "Will a technician contact me before the visit?",
            "Do I need an agent to apply for Shams Dubai?",
            "How many people work at Sahara Solar?",
            "ما هي سياسة الموارد البشرية لديكم؟",
            "كم عدد الموظفين في الشركة؟",
        ],
    );
}

#[test]
fn meeting_in_english() {
    assert_all(
        Intent::Meeting,
        &[
            "I'd like to book a free site survey",
            "Can we schedule a meeting next week?",
            "Could you arrange a consultation for Tuesday?",
            "I want an apointment",
            "can i get a demo of the monitoring app",
            "When can we meet?",
            "Consultation tomorrow at 5pm?",
            "How do I book a consultation?",
            "I'd like to shedule a call",
        ],
    );
}

#[test]
fn meeting_in_arabic() {
    assert_all(
        Intent::Meeting,
        &[
            "أريد حجز موعد",
            "ابغى احجز استشارة",
            "ممكن نرتب اجتماع",
            "موعد زيارة",
            "بدي احجز زيارة معاينة للبيت",
            "عايز أحدد ميعاد مع المهندس",
            "متى نقدر نلتقي؟",
            "ودي أحجز موعداً للاستشارة المجانية",
            "هل يمكن ترتيب زيارة لموقعنا الأسبوع القادم؟",
            "ابي موعد بكرة الساعة ٤",
        ],
    );
}

#[test]
fn meeting_negatives_stay_questions() {
    assert_all(
        Intent::Question,
        &[
            "How much does a consultation cost?",
            "Do I need a site survey before installation?",
            "Does the system meet DEWA requirements?",
            "I want to know the consultation price",
            "ما هي مواعيد العمل؟",
            "هل المعاينة مجانية؟",
            "هل احتاج معاينة قبل التركيب؟",
            "ممكن اعرف سعر الاستشارة؟",
        ],
    );
}

#[test]
fn human_beats_meeting() {
    assert_all(
        Intent::Human,
        &[
            "Can someone call me to book a consultation?",
            "ابي احجز موعد بس اول ابي اكلم موظف",
        ],
    );
}

#[test]
fn greetings() {
    assert_all(
        Intent::Greeting,
        &[
            "Hi!",
            "hello there",
            "Good morning 🙂",
            "hiiii",
            "Hey team, how are you?",
            "السلام عليكم",
            "السلام عليكم ورحمة الله وبركاته",
            "مرحبا",
            "مَرْحَبًا",
            "اهلا",
            "صباح الخير",
            "هلا والله، شلونكم؟",
            "salam",
        ],
    );
}

#[test]
fn greeting_with_a_request_is_not_a_greeting() {
    assert_eq!(
        detect_intent("Hello, what are your opening hours?"),
        Intent::Question
    );
    assert_eq!(detect_intent("مرحبا، كم سعر الباقة؟"), Intent::Question);
    assert_eq!(
        detect_intent("hi, I want to talk to a person"),
        Intent::Human
    );
    assert_eq!(detect_intent("السلام عليكم، ابي احجز موعد"), Intent::Meeting);
}

#[test]
fn thanks_and_goodbyes() {
    assert_all(
        Intent::Thanks,
        &[
            "thanks",
            "Thank you so much!",
            "thx 🙏",
            "ok great, thanks",
            "Thanks for the quick reply",
            "شكرا",
            "شكراً جزيلاً",
            "مشكور",
            "يعطيك العافية",
            "تسلم يا غالي",
            "شكرا على المعلومات",
            "تمام",
        ],
    );
    assert_all(
        Intent::Goodbye,
        &[
            "bye",
            "Goodbye!",
            "thanks, bye",
            "have a nice day",
            "مع السلامة",
            "يلا باي",
            "الى اللقاء",
        ],
    );
    assert_eq!(
        detect_intent("Thanks for the info, what about batteries?"),
        Intent::Question
    );
}

#[test]
fn mixed_script_and_empty_input() {
    assert_eq!(detect_intent("ابي اكلم agent"), Intent::Human);
    assert_eq!(detect_intent("hi, ابي احجز موعد"), Intent::Meeting);
    assert_eq!(detect_intent(""), Intent::Question);
    assert_eq!(detect_intent("🙂🙂"), Intent::Question);
}

#[test]
fn small_talk_kind_and_salam() {
    assert_eq!(small_talk_kind("ok", ""), Some(SmallTalk::Ack));
    assert_eq!(small_talk_kind("thanks!", ""), Some(SmallTalk::Thanks));
    assert_eq!(small_talk_kind("prices?", ""), None);
    assert_eq!(detect_intent("Hello Sahara Solar"), Intent::Question);
    assert_eq!(
        detect_intent_addressed("Hello Sahara Solar!", "Sahara Solar"),
        Intent::Greeting
    );
    assert_eq!(
        detect_intent_addressed("hi sahara", "Sahara Solar"),
        Intent::Greeting
    );
    assert_eq!(
        detect_intent_addressed("Sahara Solar", "Sahara Solar"),
        Intent::Question
    );
    assert_eq!(
        detect_intent_addressed("hi, solar prices?", "Sahara Solar"),
        Intent::Question
    );
    assert!(has_salam("السلام عليكم"));
    assert!(has_salam("Assalamu alaikum"));
    assert!(!has_salam("hello"));
}
