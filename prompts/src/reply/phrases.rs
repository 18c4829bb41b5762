//! The fixed wording of the offline responder, in English and Arabic.
//!
//! Every sentence the agent can say without a language model lives here, so
//! that tone and translation can be reviewed in one place and the reply logic
//! never embeds text. Arabic wording is Modern Standard Arabic, which reads
//! naturally to customers of every dialect.

use crate::Lang;

/// Welcome message naming the business and what the agent can do.
pub(super) fn greeting(lang: Lang, business: &str, salam: bool) -> String {
    match lang {
        Lang::En => {
            let opener = if salam {
                "Wa alaikum assalam!"
            } else {
                "Hello!"
            };
            let welcome = if business.is_empty() {
                "Welcome.".to_owned()
            } else {
                format!("Welcome to {business}.")
            };
            format!(
                "{opener} {welcome} I can answer your questions, help you book a \
                 consultation, or put you in touch with our team. How can I help you today?"
            )
        }
        Lang::Ar => {
            let opener = if salam {
                "وعليكم السلام ورحمة الله!"
            } else {
                "أهلاً وسهلاً!"
            };
            let welcome = if business.is_empty() {
                "يسعدنا تواصلك معنا.".to_owned()
            } else {
                format!("مرحباً بك في {business}.")
            };
            format!(
                "{opener} {welcome} يمكنني الإجابة عن أسئلتك، أو مساعدتك في حجز استشارة، \
                 أو إيصالك بأحد أعضاء فريقنا. كيف يمكنني مساعدتك اليوم؟"
            )
        }
    }
}

/// Reply to thanks.
pub(super) fn thanks(lang: Lang) -> String {
    match lang {
        Lang::En => {
            "You're welcome! If there's anything else I can help with, just let me know.".to_owned()
        }
        Lang::Ar => "العفو! إذا احتجت إلى أي شيء آخر فأنا هنا لمساعدتك.".to_owned(),
    }
}

/// Reply to a bare acknowledgement ("ok", "تمام").
pub(super) fn ack(lang: Lang) -> String {
    match lang {
        Lang::En => "Great! If there's anything else I can help with, just let me know.".to_owned(),
        Lang::Ar => "رائع! إذا احتجت إلى أي شيء آخر فأنا هنا لمساعدتك.".to_owned(),
    }
}

/// Reply to a goodbye.
pub(super) fn goodbye(lang: Lang, business: &str) -> String {
    match (lang, business.is_empty()) {
        (Lang::En, true) => "Thank you for getting in touch. Have a great day!".to_owned(),
        (Lang::En, false) => {
            format!("Thank you for contacting {business}. Have a great day!")
        }
        (Lang::Ar, true) => "شكراً لتواصلك معنا. مع السلامة!".to_owned(),
        (Lang::Ar, false) => format!("شكراً لتواصلك مع {business}. مع السلامة!"),
    }
}

/// Reply to a request for a person: the conversation is being handed over.
pub(super) fn human(lang: Lang) -> String {
    match lang {
        Lang::En => "Of course. I've asked a member of our team to join this conversation, and \
                     they will take over shortly. Your conversation has been passed on, so you \
                     won't need to repeat anything."
            .to_owned(),
        Lang::Ar => "بالتأكيد. لقد طلبت من أحد أعضاء فريقنا الانضمام إلى هذه المحادثة، وسيتولى \
                     متابعتها معك قريباً. تم تحويل محادثتك إليه، فلن تحتاج إلى تكرار ما كتبته."
            .to_owned(),
    }
}

/// Reply to a booking request: ask for a preferred day and time.
pub(super) fn meeting(lang: Lang, business: &str) -> String {
    match (lang, business.is_empty()) {
        (Lang::En, true) => "I'd be happy to arrange a consultation for you. Which day and \
                             time would suit you best?"
            .to_owned(),
        (Lang::En, false) => format!(
            "I'd be happy to arrange a consultation with {business}. Which day and time \
             would suit you best?"
        ),
        (Lang::Ar, true) => "يسعدني ترتيب استشارة لك. ما اليوم والوقت الأنسب لك؟".to_owned(),
        (Lang::Ar, false) => {
            format!("يسعدني ترتيب استشارة لك مع {business}. ما اليوم والوقت الأنسب لك؟")
        }
    }
}

/// Reply to a question the knowledge base cannot answer.
pub(super) fn no_information(lang: Lang) -> String {
    match lang {
        Lang::En => "I'm sorry, I don't have that information at the moment. I can connect \
                     you with a member of our team, or help you book a consultation. Which \
                     would you prefer?"
            .to_owned(),
        Lang::Ar => "عذراً، لا تتوفر لدي هذه المعلومة حالياً. يمكنني إيصالك بأحد أعضاء \
                     فريقنا، أو مساعدتك في حجز استشارة. أيهما تفضل؟"
            .to_owned(),
    }
}

/// Lead-in when the only relevant information is in the other language.
pub(super) fn other_language_note(reply: Lang, source: Lang) -> &'static str {
    match (reply, source) {
        (Lang::En, Lang::Ar) => "I have this information in Arabic:",
        (Lang::Ar, Lang::En) => "هذه المعلومات متوفرة لدي باللغة الإنجليزية:",
        _ => "",
    }
}

/// The citation line naming the documents quoted.
pub(super) fn citation(lang: Lang, titles: &[&str]) -> String {
    match lang {
        Lang::En => format!("Source: {}", titles.join("; ")),
        Lang::Ar => format!("المصدر: {}", titles.join("؛ ")),
    }
}

/// The title used when a cited document has none.
pub(super) fn untitled(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "our knowledge base",
        Lang::Ar => "قاعدة معلوماتنا",
    }
}
