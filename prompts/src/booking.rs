//! What the customer is told about meetings, in English and Arabic, and how their answers are
//! read: which offered slot they picked (a number, Arabic-Indic digits, "the first"/"الأول",
//! a button's id or title) and whether they want to cancel or move a booking.
//!
//! Pure: times arrive as local wall-clock values (the caller converts with the tenant's time
//! zone), so every text here is a deterministic function of its inputs.

use chrono::{Datelike, NaiveDateTime, Timelike, Weekday};

use crate::lang::{normalize_arabic, Lang};

/// A slot as shown to the customer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotLabel {
    /// The button id (`slot:<start in RFC 3339>`).
    pub id: String,
    /// Short enough for a WhatsApp reply button (20 characters).
    pub title: String,
    /// The long form used in sentences and numbered lists.
    pub long: String,
}

/// Labels of a slot starting at `local` (wall clock) whose UTC start is `start_rfc3339`.
pub fn slot_label(lang: Lang, local: NaiveDateTime, start_rfc3339: &str) -> SlotLabel {
    SlotLabel {
        id: format!("slot:{start_rfc3339}"),
        title: short_when(lang, local),
        long: long_when(lang, local),
    }
}

/// `Sat 5 Dec 08:30` / `السبت 5/12 08:30`: at most 20 characters.
pub fn short_when(lang: Lang, t: NaiveDateTime) -> String {
    match lang {
        Lang::En => format!(
            "{} {} {} {:02}:{:02}",
            weekday_en(t.weekday())[..3].to_owned(),
            t.day(),
            &month_en(t.month())[..3],
            t.hour(),
            t.minute()
        ),
        Lang::Ar => format!(
            "{} {}/{} {:02}:{:02}",
            weekday_ar(t.weekday()),
            t.day(),
            t.month(),
            t.hour(),
            t.minute()
        ),
    }
}

/// `Saturday 5 December, 08:30` / `السبت 5 ديسمبر، الساعة 08:30`.
pub fn long_when(lang: Lang, t: NaiveDateTime) -> String {
    match lang {
        Lang::En => format!(
            "{} {} {}, {:02}:{:02}",
            weekday_en(t.weekday()),
            t.day(),
            month_en(t.month()),
            t.hour(),
            t.minute()
        ),
        Lang::Ar => format!(
            "{} {} {}، الساعة {:02}:{:02}",
            weekday_ar(t.weekday()),
            t.day(),
            month_ar(t.month()),
            t.hour(),
            t.minute()
        ),
    }
}

fn weekday_en(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

fn weekday_ar(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "الاثنين",
        Weekday::Tue => "الثلاثاء",
        Weekday::Wed => "الأربعاء",
        Weekday::Thu => "الخميس",
        Weekday::Fri => "الجمعة",
        Weekday::Sat => "السبت",
        Weekday::Sun => "الأحد",
    }
}

fn month_en(m: u32) -> &'static str {
    [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ][(m as usize).clamp(1, 12) - 1]
}

fn month_ar(m: u32) -> &'static str {
    [
        "يناير",
        "فبراير",
        "مارس",
        "أبريل",
        "مايو",
        "يونيو",
        "يوليو",
        "أغسطس",
        "سبتمبر",
        "أكتوبر",
        "نوفمبر",
        "ديسمبر",
    ][(m as usize).clamp(1, 12) - 1]
}

/// How the slots are presented: inline as a numbered list (web chat, voice: no buttons), or
/// left to the channel, which renders the choices as buttons or its own numbered list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presentation {
    InlineList,
    Buttons,
}

fn list(slots: &[SlotLabel], how: Presentation) -> String {
    match how {
        Presentation::Buttons => String::new(),
        Presentation::InlineList => slots
            .iter()
            .enumerate()
            .map(|(i, s)| format!("\n{}. {}", i + 1, s.long))
            .collect(),
    }
}

fn pick_hint(lang: Lang, how: Presentation) -> &'static str {
    match (lang, how) {
        (Lang::En, Presentation::InlineList) => "Reply with the number of the time that suits you.",
        (Lang::En, Presentation::Buttons) => "Pick the time that suits you.",
        (Lang::Ar, Presentation::InlineList) => "أرسل رقم الموعد المناسب لك.",
        (Lang::Ar, Presentation::Buttons) => "اختر الموعد المناسب لك.",
    }
}

/// The offer of free slots for a new meeting. `zone` is the time zone's name.
pub fn offer(
    lang: Lang,
    title: &str,
    zone: &str,
    slots: &[SlotLabel],
    how: Presentation,
) -> String {
    match lang {
        Lang::En => format!(
            "Happy to set up a {title}. These are the next free times ({zone} time):{}\n{}",
            list(slots, how),
            pick_hint(lang, how)
        ),
        Lang::Ar => format!(
            "يسعدنا ترتيب موعد ({title}). هذه أقرب المواعيد المتاحة (بتوقيت {zone}):{}\n{}",
            list(slots, how),
            pick_hint(lang, how)
        ),
    }
}

/// The offer of other times for an existing booking (on `current`).
pub fn reschedule_offer(
    lang: Lang,
    current: &str,
    zone: &str,
    slots: &[SlotLabel],
    how: Presentation,
) -> String {
    match lang {
        Lang::En => format!(
            "Your meeting is on {current}. These are other free times ({zone} time):{}\n{}",
            list(slots, how),
            pick_hint(lang, how)
        ),
        Lang::Ar => format!(
            "موعدك الحالي {current}. هذه مواعيد أخرى متاحة (بتوقيت {zone}):{}\n{}",
            list(slots, how),
            pick_hint(lang, how)
        ),
    }
}

/// The slot the customer picked was taken a moment ago; `slots` are fresh alternatives.
pub fn slot_taken(
    lang: Lang,
    taken: &str,
    zone: &str,
    slots: &[SlotLabel],
    how: Presentation,
) -> String {
    if slots.is_empty() {
        return match lang {
            Lang::En => format!(
                "Sorry, {taken} was just taken by someone else, and there are no other free times right now. A colleague can help you find one."
            ),
            Lang::Ar => format!(
                "عذرًا، الموعد {taken} حُجز للتو من شخص آخر، ولا توجد مواعيد متاحة أخرى حاليًا. يمكن لأحد زملائنا مساعدتك في إيجاد موعد."
            ),
        };
    }
    match lang {
        Lang::En => format!(
            "Sorry, {taken} was just taken by someone else. These times are still free ({zone} time):{}\n{}",
            list(slots, how),
            pick_hint(lang, how)
        ),
        Lang::Ar => format!(
            "عذرًا، الموعد {taken} حُجز للتو من شخص آخر. هذه المواعيد ما زالت متاحة (بتوقيت {zone}):{}\n{}",
            list(slots, how),
            pick_hint(lang, how)
        ),
    }
}

/// No free slot within the horizon.
pub fn no_slots(lang: Lang, days: u32) -> String {
    match lang {
        Lang::En => format!(
            "Sorry, there are no free times in the next {days} days. A colleague can help you find one — just ask for a person."
        ),
        Lang::Ar => format!(
            "عذرًا، لا توجد مواعيد متاحة خلال الأيام الـ{days} القادمة. يمكن لأحد زملائنا مساعدتك — فقط اطلب التحدث مع موظف."
        ),
    }
}

/// The booking is made. `invite_to`: where the calendar invitation goes, when known.
pub fn confirmed(
    lang: Lang,
    title: &str,
    when: &str,
    zone: &str,
    invite_to: Option<&str>,
) -> String {
    match lang {
        Lang::En => {
            let invite = match invite_to {
                Some(e) => format!(" A calendar invitation is on its way to {e}."),
                None => String::new(),
            };
            format!(
                "You're booked: {title} on {when} ({zone} time).{invite} To change it, say \"reschedule\"; to cancel, say \"cancel my appointment\"."
            )
        }
        Lang::Ar => {
            let invite = match invite_to {
                Some(e) => format!(" أرسلنا دعوة التقويم إلى {e}."),
                None => String::new(),
            };
            format!(
                "تم تأكيد موعدك: {title} يوم {when} (بتوقيت {zone}).{invite} لتغييره اكتب \"تغيير الموعد\"، ولإلغائه اكتب \"إلغاء الموعد\"."
            )
        }
    }
}

/// The booking is moved.
pub fn rescheduled(lang: Lang, title: &str, when: &str, zone: &str) -> String {
    match lang {
        Lang::En => format!(
            "Done — your {title} is moved to {when} ({zone} time). An updated invitation follows."
        ),
        Lang::Ar => {
            format!("تم — نقلنا موعدك ({title}) إلى {when} (بتوقيت {zone}). ستصلك دعوة محدّثة.")
        }
    }
}

/// The booking is cancelled.
pub fn cancelled(lang: Lang, title: &str, when: &str) -> String {
    match lang {
        Lang::En => {
            format!("Your {title} on {when} is cancelled. If you'd like a new time, just ask.")
        }
        Lang::Ar => {
            format!("تم إلغاء موعدك ({title}) يوم {when}. إذا رغبت في موعد جديد فقط اطلب ذلك.")
        }
    }
}

/// A cancel or reschedule request, but the customer has no upcoming booking.
pub fn no_booking(lang: Lang) -> String {
    match lang {
        Lang::En => "You have no upcoming booking with us. Would you like to book a meeting? Just say \"book a meeting\".".into(),
        Lang::Ar => "ليس لديك موعد قادم معنا. هل ترغب في حجز موعد؟ فقط اكتب \"احجز موعد\".".into(),
    }
}

/// The sender of a cancel or reschedule request is not verified as the customer on file (an
/// email from another address into their thread, or one whose provider checks failed): no
/// change is made.
pub fn owner_only(lang: Lang) -> String {
    match lang {
        Lang::En => "For your security, bookings and contact details can only be changed from the address we have on file for you. Please write to us from that address and we will gladly help. You are welcome to ask anything else here.".into(),
        Lang::Ar => "حرصًا على أمانك، لا يمكن تعديل المواعيد أو بيانات التواصل إلا من العنوان المسجل لدينا. من فضلك راسلنا من ذلك العنوان وسنساعدك بكل سرور. ويسعدنا الرد على أي استفسار آخر هنا.".into(),
    }
}

/// The answer looked like a pick, but not of an offered slot.
pub fn pick_again(lang: Lang, n: usize) -> String {
    match lang {
        Lang::En => format!("Please reply with a number from 1 to {n}."),
        Lang::Ar => format!("من فضلك أرسل رقمًا من 1 إلى {n}."),
    }
}

/// The subject and text of an invitation email.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InviteKind {
    Booked,
    Rescheduled,
    Cancelled,
}

/// What an invitation email names (times already formatted in the tenant's zone).
#[derive(Clone, Copy, Debug)]
pub struct InviteFacts<'a> {
    pub business: &'a str,
    pub title: &'a str,
    pub when: &'a str,
    pub zone: &'a str,
    pub customer: &'a str,
}

/// Subject and body of a calendar invitation email to the customer (`for_team: false`) or the
/// salesperson (`for_team: true`: in English, the team's working language).
pub fn invite_email(
    lang: Lang,
    kind: InviteKind,
    for_team: bool,
    f: &InviteFacts,
) -> (String, String) {
    let InviteFacts {
        business,
        title,
        when,
        zone,
        customer,
    } = *f;
    if for_team {
        let (verb, line) = match kind {
            InviteKind::Booked => ("New booking", "booked"),
            InviteKind::Rescheduled => ("Booking moved", "moved their meeting to"),
            InviteKind::Cancelled => ("Booking cancelled", "cancelled their meeting on"),
        };
        return (
            format!("{verb}: {title} with {customer}, {when}"),
            format!("{customer} {line} {when} ({zone} time) through the assistant of {business}."),
        );
    }
    match (lang, kind) {
        (Lang::En, InviteKind::Booked) => (
            format!("Confirmed: {title} with {business}, {when}"),
            format!("Your {title} with {business} is confirmed for {when} ({zone} time). The invitation is attached."),
        ),
        (Lang::En, InviteKind::Rescheduled) => (
            format!("Updated: {title} with {business}, {when}"),
            format!("Your {title} with {business} is moved to {when} ({zone} time). The updated invitation is attached."),
        ),
        (Lang::En, InviteKind::Cancelled) => (
            format!("Cancelled: {title} with {business}, {when}"),
            format!("Your {title} with {business} on {when} ({zone} time) is cancelled."),
        ),
        (Lang::Ar, InviteKind::Booked) => (
            format!("تأكيد موعد: {title} مع {business}، {when}"),
            format!("تم تأكيد موعدك ({title}) مع {business} يوم {when} (بتوقيت {zone}). الدعوة مرفقة."),
        ),
        (Lang::Ar, InviteKind::Rescheduled) => (
            format!("تحديث موعد: {title} مع {business}، {when}"),
            format!("تم نقل موعدك ({title}) مع {business} إلى {when} (بتوقيت {zone}). الدعوة المحدّثة مرفقة."),
        ),
        (Lang::Ar, InviteKind::Cancelled) => (
            format!("إلغاء موعد: {title} مع {business}، {when}"),
            format!("تم إلغاء موعدك ({title}) مع {business} يوم {when} (بتوقيت {zone})."),
        ),
    }
}

/// What a customer asked of an existing booking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BookingRequest {
    Cancel,
    Reschedule,
}

/// Recognises "cancel my appointment" / "إلغاء الموعد" and "reschedule" / "تغيير الموعد".
pub fn booking_request(text: &str) -> Option<BookingRequest> {
    let t = normalize(text);
    // Words without punctuation ("appointment?" is "appointment").
    let words: Vec<&str> = t
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .collect();
    let has = |w: &str| words.contains(&w);
    let has_prefix = |p: &str| words.iter().any(|x| x.starts_with(p));
    let meeting_word = [
        "appointment",
        "appointments",
        "booking",
        "meeting",
        "consultation",
        "visit",
        "call",
        "slot",
        "it",
        "موعد",
        "الموعد",
        "موعدي",
        "الحجز",
        "حجزي",
        "حجز",
        "الاجتماع",
        "اجتماع",
        "الزياره",
        "الاستشاره",
        "المقابله",
    ];
    let about_meeting = words.iter().any(|w| meeting_word.contains(w));
    // Reschedule first: "cancel and reschedule" is a move.
    let reschedule = has_prefix("reschedul")
        || ((has("change") || has("move") || has("postpone") || has("shift")) && about_meeting)
        || t.contains("another time")
        || t.contains("different time")
        || t.contains("other time")
        || ((has_prefix("تغيير")
            || has_prefix("اغير")
            || has_prefix("غير")
            || has_prefix("تعديل")
            || has_prefix("تاجيل")
            || has_prefix("اجل")
            || has_prefix("نقل")
            || has_prefix("انقل"))
            && about_meeting)
        || t.contains("موعد اخر")
        || t.contains("وقت اخر");
    if reschedule {
        return Some(BookingRequest::Reschedule);
    }
    let cancel_en = has_prefix("cancel") && (about_meeting || words.len() <= 2);
    let cancel_ar = (has_prefix("الغاء") || has_prefix("الغي") || has_prefix("بلغي"))
        && (about_meeting || words.len() <= 2);
    if cancel_en || cancel_ar {
        return Some(BookingRequest::Cancel);
    }
    None
}

/// What the customer's answer to an offer of `n` slots means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// The slot at this index (0-based).
    Slot(usize),
    /// A pick, but of no offered slot ("7" of five).
    OutOfRange,
    /// Not a pick.
    None,
}

/// Reads a pick among `offered` (their button ids and titles, in order): the button id, the
/// title (or its first 20 characters, as WhatsApp truncates button titles), the long label, a
/// number ("2", "٢", "option 2", "رقم ٢"), or an ordinal ("the first", "الأول").
pub fn parse_pick(text: &str, offered: &[SlotLabel]) -> Pick {
    let raw = text.trim();
    if raw.is_empty() || offered.is_empty() {
        return Pick::None;
    }
    let folded = normalize(raw);
    for (i, s) in offered.iter().enumerate() {
        let title = normalize(&s.title);
        let short: String = s.title.chars().take(20).collect();
        if raw == s.id
            || folded == title
            || folded == normalize(&short)
            || folded == normalize(&s.long)
        {
            return Pick::Slot(i);
        }
    }
    let words: Vec<&str> = folded
        .split(|c: char| c.is_whitespace() || ".,!?؟،#:)(".contains(c))
        .filter(|w| !w.is_empty())
        .collect();
    // A pick is a short answer: a number or an ordinal among filler words. "I have 2 questions"
    // is not a pick.
    const FILLER: &[&str] = &[
        "the",
        "one",
        "option",
        "number",
        "no",
        "slot",
        "time",
        "please",
        "pls",
        "i",
        "take",
        "choose",
        "pick",
        "want",
        "ok",
        "okay",
        "yes",
        "'ll",
        "ill",
        "let's",
        "lets",
        "go",
        "with",
        "رقم",
        "الرقم",
        "الخيار",
        "خيار",
        "الموعد",
        "موعد",
        "اختار",
        "ابغي",
        "ابي",
        "اريد",
        "لو",
        "سمحت",
        "من",
        "فضلك",
        "نعم",
        "طيب",
        "تمام",
        "الوقت",
        "و",
        "خلني",
        "خليه",
    ];
    let mut choice = None;
    for w in &words {
        if FILLER.contains(w) {
            continue;
        }
        let n = if let Ok(n) = w.parse::<usize>() {
            Some(n)
        } else {
            ordinal(w)
        };
        match (n, choice) {
            (Some(n), None) => choice = Some(n),
            // Two numbers, or a word that is neither: not a pick.
            _ => return Pick::None,
        }
    }
    match choice {
        Some(usize::MAX) => Pick::Slot(offered.len() - 1),
        Some(n) if (1..=offered.len()).contains(&n) => Pick::Slot(n - 1),
        Some(_) => Pick::OutOfRange,
        None => Pick::None,
    }
}

fn ordinal(w: &str) -> Option<usize> {
    Some(match w {
        "first" | "1st" | "الاول" | "الاولي" | "اول" | "الأول" => 1,
        "second" | "2nd" | "الثاني" | "الثانيه" | "ثاني" => 2,
        "third" | "3rd" | "الثالث" | "الثالثه" | "ثالث" => 3,
        "fourth" | "4th" | "الرابع" | "الرابعه" | "رابع" => 4,
        "fifth" | "5th" | "الخامس" | "الخامسه" | "خامس" => 5,
        // The last offered, whatever their number.
        "last" | "الاخير" | "الاخيره" => usize::MAX,
        _ => return None,
    })
}

/// Lower-case, Arabic folded (alef forms, ta marbuta, Arabic-Indic digits), spaces collapsed.
fn normalize(s: &str) -> String {
    normalize_arabic(&s.to_lowercase())
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, min, 0)
            .unwrap()
    }

    fn offered(lang: Lang) -> Vec<SlotLabel> {
        [(5, 8, 30), (5, 9, 15), (6, 10, 0)]
            .iter()
            .map(|&(d, h, m)| {
                slot_label(
                    lang,
                    local(2026, 12, d, h, m),
                    &format!("2026-12-{d:02}T0{}:00:00Z", h - 4),
                )
            })
            .collect()
    }

    #[test]
    fn labels_in_both_languages_fit_a_whatsapp_button() {
        let t = local(2026, 12, 5, 8, 30);
        assert_eq!(short_when(Lang::En, t), "Sat 5 Dec 08:30");
        assert_eq!(long_when(Lang::En, t), "Saturday 5 December, 08:30");
        assert_eq!(short_when(Lang::Ar, t), "السبت 5/12 08:30");
        assert_eq!(long_when(Lang::Ar, t), "السبت 5 ديسمبر، الساعة 08:30");
        // The longest weekday names with two-digit dates still fit in 20 characters.
        let wed = local(2026, 12, 30, 18, 0);
        assert!(
            short_when(Lang::Ar, wed).chars().count() <= 20,
            "{}",
            short_when(Lang::Ar, wed)
        );
        assert!(short_when(Lang::En, wed).chars().count() <= 20);
        assert!(short_when(Lang::Ar, wed).starts_with("الأربعاء"));
    }

    #[test]
    fn offers_list_the_slots_inline_only_where_there_are_no_buttons() {
        let slots = offered(Lang::En);
        let inline = offer(
            Lang::En,
            "Consultation",
            "Asia/Dubai",
            &slots,
            Presentation::InlineList,
        );
        assert!(inline.contains("\n1. Saturday 5 December, 08:30\n2. Saturday 5 December, 09:15\n3. Sunday 6 December, 10:00"));
        assert!(inline.contains("Reply with the number"));
        let buttons = offer(
            Lang::En,
            "Consultation",
            "Asia/Dubai",
            &slots,
            Presentation::Buttons,
        );
        assert!(!buttons.contains("1."));
        let ar = offer(
            Lang::Ar,
            "استشارة",
            "Asia/Dubai",
            &offered(Lang::Ar),
            Presentation::InlineList,
        );
        assert!(ar.contains("1. السبت 5 ديسمبر، الساعة 08:30"), "{ar}");
        assert!(ar.contains("أرسل رقم الموعد"));
        let taken = slot_taken(
            Lang::Ar,
            "السبت 5 ديسمبر، الساعة 08:30",
            "Asia/Dubai",
            &slots[1..],
            Presentation::InlineList,
        );
        assert!(taken.contains("حُجز للتو"));
        assert!(slot_taken(Lang::En, "x", "UTC", &[], Presentation::Buttons)
            .contains("no other free times"));
    }

    #[test]
    fn picks_by_number_digit_word_id_and_title() {
        let en = offered(Lang::En);
        assert_eq!(parse_pick("2", &en), Pick::Slot(1));
        assert_eq!(parse_pick(" 1. ", &en), Pick::Slot(0));
        assert_eq!(parse_pick("option 3 please", &en), Pick::Slot(2));
        assert_eq!(parse_pick("The first one", &en), Pick::Slot(0));
        assert_eq!(parse_pick("second", &en), Pick::Slot(1));
        assert_eq!(parse_pick(&en[2].id, &en), Pick::Slot(2));
        assert_eq!(parse_pick("Sat 5 Dec 09:15", &en), Pick::Slot(1));
        assert_eq!(parse_pick("saturday 5 december, 08:30", &en), Pick::Slot(0));
        assert_eq!(parse_pick("7", &en), Pick::OutOfRange);
        assert_eq!(parse_pick("I have 2 questions", &en), Pick::None);
        assert_eq!(parse_pick("1 or 2", &en), Pick::None);
        assert_eq!(parse_pick("What are your opening hours?", &en), Pick::None);

        let ar = offered(Lang::Ar);
        assert_eq!(parse_pick("٢", &ar), Pick::Slot(1));
        assert_eq!(parse_pick("رقم ٣", &ar), Pick::Slot(2));
        assert_eq!(parse_pick("الأول", &ar), Pick::Slot(0));
        assert_eq!(parse_pick("الموعد الثاني لو سمحت", &ar), Pick::Slot(1));
        assert_eq!(parse_pick("الأحد 6/12 10:00", &ar), Pick::Slot(2));
        assert_eq!(parse_pick("٩", &ar), Pick::OutOfRange);
        assert_eq!(parse_pick("كم سعر الألواح؟", &ar), Pick::None);
    }

    #[test]
    fn cancel_and_reschedule_requests_in_both_languages() {
        use BookingRequest::*;
        for (text, want) in [
            ("cancel my appointment", Some(Cancel)),
            ("Please cancel the booking.", Some(Cancel)),
            ("cancel", Some(Cancel)),
            ("I need to reschedule", Some(Reschedule)),
            ("can I change my appointment?", Some(Reschedule)),
            ("move my meeting to another day", Some(Reschedule)),
            ("الغاء الموعد", Some(Cancel)),
            ("أبغى إلغاء الموعد", Some(Cancel)),
            ("تغيير الموعد", Some(Reschedule)),
            ("ممكن موعد آخر؟", Some(Reschedule)),
            ("أريد تأجيل الموعد", Some(Reschedule)),
            ("Can I book a consultation?", None),
            (
                "How do I cancel my solar panel warranty claim process online?",
                None,
            ),
            ("ما هي ساعات العمل؟", None),
        ] {
            assert_eq!(booking_request(text), want, "{text}");
        }
    }

    #[test]
    fn confirmations_and_invites() {
        let c = confirmed(
            Lang::En,
            "Consultation",
            "Saturday 5 December, 08:30",
            "Asia/Dubai",
            Some("omar@example.com"),
        );
        assert!(c.contains("You're booked: Consultation on Saturday 5 December, 08:30 (Asia/Dubai time). A calendar invitation is on its way to omar@example.com."));
        let c = confirmed(
            Lang::Ar,
            "استشارة",
            "السبت 5 ديسمبر، الساعة 08:30",
            "Asia/Dubai",
            None,
        );
        assert!(c.starts_with("تم تأكيد موعدك: استشارة يوم السبت"));
        assert!(!c.contains("دعوة"));
        let (subject, _) = invite_email(
            Lang::Ar,
            InviteKind::Cancelled,
            false,
            &InviteFacts {
                business: "Sahara Solar",
                title: "استشارة",
                when: "x",
                zone: "Asia/Dubai",
                customer: "عمر",
            },
        );
        assert!(subject.starts_with("إلغاء موعد"));
        let (subject, text) = invite_email(
            Lang::Ar,
            InviteKind::Booked,
            true,
            &InviteFacts {
                business: "Sahara Solar",
                title: "Consultation",
                when: "Sat",
                zone: "Asia/Dubai",
                customer: "عمر",
            },
        );
        assert_eq!(subject, "New booking: Consultation with عمر, Sat");
        assert!(text.contains("booked Sat (Asia/Dubai time)"));
        assert!(cancelled(Lang::En, "Consultation", "Sat").contains("is cancelled"));
        assert!(rescheduled(Lang::Ar, "استشارة", "الأحد", "Asia/Dubai").contains("نقلنا موعدك"));
        assert!(no_booking(Lang::En).contains("no upcoming booking"));
        assert_eq!(
            pick_again(Lang::En, 5),
            "Please reply with a number from 1 to 5."
        );
    }
}
