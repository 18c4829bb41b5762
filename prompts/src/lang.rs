//! Language identification and Arabic orthographic normalisation.
//!
//! Switchboard serves customers who write in English or Arabic, often mixing
//! the two, and often in colloquial spellings. This module owns the two
//! primitives every other part of the crate builds on: deciding which of the
//! supported languages a message is written in, and folding the many ways the
//! same Arabic word can be typed (with or without diacritics, with different
//! alef and yeh forms, with Arabic-Indic digits) into one canonical spelling.

use serde::{Deserialize, Serialize};

/// A language the agent can converse in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// English.
    En,
    /// Arabic (Modern Standard and colloquial).
    Ar,
}

impl Lang {
    /// The ISO 639-1 code of the language: `"en"` or `"ar"`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ar => "ar",
        }
    }

    /// Parses the code produced by [`Lang::code`]. Only the exact lower-case
    /// codes `"en"` and `"ar"` are accepted, so a value that passes this check
    /// can be stored and compared as-is.
    pub fn from_code(s: &str) -> Option<Lang> {
        match s {
            "en" => Some(Lang::En),
            "ar" => Some(Lang::Ar),
            _ => None,
        }
    }
}

/// Detects the language of a customer message.
///
/// The message is Arabic when Arabic letters outnumber all other letters;
/// otherwise (including for text with no letters at all) it is English.
/// Diacritics and tatweel are not counted as letters.
pub fn detect_language(text: &str) -> Lang {
    let (mut arabic, mut other) = (0usize, 0usize);
    for c in text.chars() {
        if is_arabic_char(c) {
            if c.is_alphabetic() && !is_arabic_mark(c) {
                arabic += 1;
            }
        } else if c.is_alphabetic() {
            other += 1;
        }
    }
    if arabic > other {
        Lang::Ar
    } else {
        Lang::En
    }
}

/// Folds Arabic spelling variants into one canonical form.
///
/// Strips tashkeel (harakat, tanween, shadda, sukun, superscript alef and
/// Quranic annotation marks) and tatweel; unifies the alef forms `أ إ آ ٱ` to
/// `ا`; maps `ى` to `ي` and `ة` to `ه`; converts Arabic-Indic and Extended
/// Arabic-Indic digits to ASCII digits. As a small convenience for people
/// typing on Persian keyboard layouts it also maps Persian `ی` and `ک` to the
/// Arabic `ي` and `ك`. All other characters pass through unchanged; in
/// particular no case folding happens here.
pub fn normalize_arabic(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            c if is_arabic_mark(c) => {}
            'أ' | 'إ' | 'آ' | 'ٱ' => out.push('ا'),
            'ى' | 'ی' => out.push('ي'),
            'ة' => out.push('ه'),
            'ک' => out.push('ك'),
            '\u{0660}'..='\u{0669}' => out.push(ascii_digit(c, '\u{0660}')),
            '\u{06F0}'..='\u{06F9}' => out.push(ascii_digit(c, '\u{06F0}')),
            _ => out.push(c),
        }
    }
    out
}

/// Whether `c` belongs to one of the Arabic script blocks.
pub(crate) fn is_arabic_char(c: char) -> bool {
    matches!(
        c,
        '\u{0600}'..='\u{06FF}'
            | '\u{0750}'..='\u{077F}'
            | '\u{08A0}'..='\u{08FF}'
            | '\u{FB50}'..='\u{FDFF}'
            | '\u{FE70}'..='\u{FEFF}'
    )
}

/// Tashkeel, Quranic annotation marks and tatweel: characters that decorate a
/// word without changing which word it is.
fn is_arabic_mark(c: char) -> bool {
    matches!(
        c,
        '\u{0610}'..='\u{061A}'
            | '\u{064B}'..='\u{065F}'
            | '\u{0670}'
            | '\u{0640}'
            | '\u{06D6}'..='\u{06DC}'
            | '\u{06DF}'..='\u{06E8}'
            | '\u{06EA}'..='\u{06ED}'
    )
}

fn ascii_digit(c: char, zero: char) -> char {
    let offset = u32::from(c) - u32::from(zero);
    char::from_digit(offset, 10).unwrap_or(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for lang in [Lang::En, Lang::Ar] {
            assert_eq!(Lang::from_code(lang.code()), Some(lang));
        }
        assert_eq!(Lang::from_code("AR"), None);
        assert_eq!(Lang::from_code("en-GB"), None);
        assert_eq!(Lang::from_code("fr"), None);
        assert_eq!(Lang::from_code(""), None);
    }

    #[test]
    fn serde_uses_lowercase_codes() {
        // Checked through serde's own value-free path: the derive must accept
        // exactly the lower-case variant names.
        use serde::de::value::{Error, StrDeserializer};
        use serde::de::IntoDeserializer;
        let de: StrDeserializer<'_, Error> = "ar".into_deserializer();
        assert_eq!(Lang::deserialize(de).ok(), Some(Lang::Ar));
        let de: StrDeserializer<'_, Error> = "En".into_deserializer();
        assert!(Lang::deserialize(de).is_err());
    }

    #[test]
    fn detects_arabic_english_and_mixed() {
        assert_eq!(detect_language("What are your opening hours?"), Lang::En);
        assert_eq!(detect_language("ما هي ساعات العمل؟"), Lang::Ar);
        assert_eq!(detect_language("مَرْحَبًا"), Lang::Ar);
        assert_eq!(
            detect_language("ابي اكلم موظف about the 10kW package"),
            Lang::En
        );
        assert_eq!(detect_language("كم سعر باقة 10kW للفلل؟"), Lang::Ar);
        assert_eq!(detect_language("123 ?!"), Lang::En);
        assert_eq!(detect_language(""), Lang::En);
    }

    #[test]
    fn normalizes_arabic_spelling_variants() {
        assert_eq!(normalize_arabic("أَهْلاً وَسَهْلاً"), "اهلا وسهلا");
        assert_eq!(normalize_arabic("إلى"), "الي");
        assert_eq!(normalize_arabic("آمنة"), "امنه");
        assert_eq!(normalize_arabic("مرحبـــــا"), "مرحبا");
        assert_eq!(normalize_arabic("٠١٢٣٤٥٦٧٨٩ ۰۹"), "0123456789 09");
        assert_eq!(normalize_arabic("Hello, World"), "Hello, World");
        assert_eq!(normalize_arabic("ٱلشَّمْسِيَّة"), "الشمسيه");
    }
}
