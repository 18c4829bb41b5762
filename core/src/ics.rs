//! Calendar invitations as RFC 5545 text (iTIP methods REQUEST and CANCEL, RFC 5546), pure.
//!
//! One booking is one calendar event: its UID is stable across reschedules and SEQUENCE grows
//! with every change, which is what lets a calendar replace the event it already has instead of
//! adding a second one. Times are written in UTC (`…Z`), so no VTIMEZONE block is needed and the
//! invite is right in every client. Text values are escaped (`\\`, `;`, `,`, line breaks) and
//! content lines are folded at 75 octets without ever splitting a UTF-8 character (Arabic names
//! and titles are common).

use chrono::{DateTime, Utc};

/// iTIP method of the invitation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// A new event or an update of it (same UID, higher SEQUENCE).
    Request,
    /// The event is called off.
    Cancel,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Request => "REQUEST",
            Method::Cancel => "CANCEL",
        }
    }
}

/// A person on the invitation.
#[derive(Clone, Debug)]
pub struct Party {
    pub name: Option<String>,
    pub email: String,
}

/// Everything an invitation says.
#[derive(Clone, Debug)]
pub struct Event {
    pub method: Method,
    /// Stable for the booking's whole life (`<booking id>@switchboard`).
    pub uid: String,
    pub sequence: i32,
    /// When this version of the invitation was made.
    pub stamp: DateTime<Utc>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub summary: String,
    pub description: Option<String>,
    pub location: Option<String>,
    pub organizer: Party,
    pub attendees: Vec<Party>,
}

/// The invitation as a VCALENDAR, CRLF line endings, folded.
pub fn render(e: &Event) -> String {
    let mut lines: Vec<String> = vec![
        "BEGIN:VCALENDAR".into(),
        "PRODID:-//Switchboard//Bookings//EN".into(),
        "VERSION:2.0".into(),
        "CALSCALE:GREGORIAN".into(),
        format!("METHOD:{}", e.method.as_str()),
        "BEGIN:VEVENT".into(),
        format!("UID:{}", escape_text(&e.uid)),
        format!("SEQUENCE:{}", e.sequence),
        format!("DTSTAMP:{}", utc(e.stamp)),
        format!("DTSTART:{}", utc(e.start)),
        format!("DTEND:{}", utc(e.end)),
        format!("SUMMARY:{}", escape_text(&e.summary)),
    ];
    if let Some(d) = &e.description {
        lines.push(format!("DESCRIPTION:{}", escape_text(d)));
    }
    if let Some(l) = &e.location {
        lines.push(format!("LOCATION:{}", escape_text(l)));
    }
    lines.push(format!("ORGANIZER{}", party(&e.organizer)));
    for a in &e.attendees {
        let role = match e.method {
            Method::Request => ";ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE",
            Method::Cancel => ";ROLE=REQ-PARTICIPANT",
        };
        lines.push(format!("ATTENDEE{role}{}", party(a)));
    }
    lines.push(
        match e.method {
            Method::Request => "STATUS:CONFIRMED",
            Method::Cancel => "STATUS:CANCELLED",
        }
        .into(),
    );
    lines.push("TRANSP:OPAQUE".into());
    lines.push("END:VEVENT".into());
    lines.push("END:VCALENDAR".into());
    let mut out = String::new();
    for l in lines {
        out.push_str(&fold(&l));
        out.push_str("\r\n");
    }
    out
}

fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// `;CN="Name":mailto:addr`. A CN is a parameter value: it may be quoted but can hold no
/// double quote or control character, so those are dropped (RFC 5545 §3.1, `param-value`).
fn party(p: &Party) -> String {
    let address: String = p
        .email
        .chars()
        .filter(|c| !c.is_control() && !c.is_whitespace())
        .collect();
    match p.name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => {
            let cn: String = n.chars().filter(|c| *c != '"' && !c.is_control()).collect();
            format!(";CN=\"{cn}\":mailto:{address}")
        }
        None => format!(":mailto:{address}"),
    }
}

/// Escapes a TEXT value (RFC 5545 §3.3.11): backslash, semicolon, comma, and line breaks as
/// `\n`; other control characters are dropped.
pub fn escape_text(s: &str) -> String {
    let s = s.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Folds a content line so no physical line exceeds 75 octets (RFC 5545 §3.1): continuation
/// lines start with one space, which counts towards their 75. Cuts fall between characters,
/// never inside a UTF-8 sequence.
pub fn fold(line: &str) -> String {
    const LIMIT: usize = 75;
    let mut out = String::with_capacity(line.len() + line.len() / 70 * 3);
    let mut used = 0;
    for c in line.chars() {
        let n = c.len_utf8();
        if used + n > LIMIT {
            out.push_str("\r\n ");
            used = 1;
        }
        out.push(c);
        used += n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn event(method: Method) -> Event {
        Event {
            method,
            uid: "0193a1b2-0000-7000-8000-000000000001@switchboard".into(),
            sequence: 1,
            stamp: at("2026-12-04T12:00:00Z"),
            start: at("2026-12-06T05:00:00Z"),
            end: at("2026-12-06T05:30:00Z"),
            summary: "Consultation; solar, roof\\panels".into(),
            description: Some("Line one\nLine two".into()),
            location: Some("Showroom, Al Quoz".into()),
            organizer: Party {
                name: Some("Layla \"Sales\" Haddad".into()),
                email: "sales@sahara.example".into(),
            },
            attendees: vec![Party {
                name: Some("عمر خليل".into()),
                email: "omar@example.com".into(),
            }],
        }
    }

    /// Undoes folding, for assertions on whole content lines.
    fn unfold(s: &str) -> String {
        s.replace("\r\n ", "")
    }

    #[test]
    fn request_has_the_required_properties_in_utc() {
        let text = render(&event(Method::Request));
        let flat = unfold(&text);
        for needle in [
            "BEGIN:VCALENDAR\r\n",
            "VERSION:2.0\r\n",
            "METHOD:REQUEST\r\n",
            "UID:0193a1b2-0000-7000-8000-000000000001@switchboard\r\n",
            "SEQUENCE:1\r\n",
            "DTSTAMP:20261204T120000Z\r\n",
            "DTSTART:20261206T050000Z\r\n",
            "DTEND:20261206T053000Z\r\n",
            "STATUS:CONFIRMED\r\n",
            "ORGANIZER;CN=\"Layla Sales Haddad\":mailto:sales@sahara.example\r\n",
            "ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE;CN=\"عمر خليل\":mailto:omar@example.com\r\n",
            "END:VCALENDAR\r\n",
        ] {
            assert!(flat.contains(needle), "missing {needle:?} in\n{text}");
        }
        assert!(text.ends_with("END:VEVENT\r\nEND:VCALENDAR\r\n"));
        assert!(
            !text.replace("\r\n", "").contains('\n'),
            "bare LF in {text:?}"
        );
    }

    #[test]
    fn cancel_says_so() {
        let flat = unfold(&render(&event(Method::Cancel)));
        assert!(flat.contains("METHOD:CANCEL\r\n"));
        assert!(flat.contains("STATUS:CANCELLED\r\n"));
        assert!(!flat.contains("RSVP"));
    }

    #[test]
    fn text_is_escaped() {
        let flat = unfold(&render(&event(Method::Request)));
        assert!(flat.contains("SUMMARY:Consultation\\; solar\\, roof\\\\panels\r\n"));
        assert!(flat.contains("DESCRIPTION:Line one\\nLine two\r\n"));
        assert!(flat.contains("LOCATION:Showroom\\, Al Quoz\r\n"));
        assert_eq!(escape_text("a\r\nb\rc\u{7}"), "a\\nb\\nc");
    }

    #[test]
    fn folding_keeps_lines_within_75_octets_and_utf8_whole() {
        let mut e = event(Method::Request);
        // Arabic letters are two octets each: a naive cut at 75 would split one.
        e.summary = "استشارة الطاقة الشمسية مع فريق المبيعات في صالة العرض ".repeat(4);
        let text = render(&e);
        for line in text.split("\r\n") {
            assert!(line.len() <= 75, "{} octets: {line:?}", line.len());
        }
        let folded: Vec<&str> = text
            .split("\r\n")
            .skip_while(|l| !l.starts_with("SUMMARY:"))
            .take_while(|l| l.starts_with("SUMMARY:") || l.starts_with(' '))
            .collect();
        assert!(folded.len() > 3, "{folded:?}");
        assert!(folded[1..].iter().all(|l| l.starts_with(' ')));
        // Unfolding gives the escaped text back exactly.
        assert!(unfold(&text).contains(&format!("SUMMARY:{}\r\n", escape_text(&e.summary))));
        assert_eq!(fold("short"), "short");
        let exact = "X".repeat(75);
        assert_eq!(fold(&exact), exact);
        assert_eq!(fold(&"X".repeat(76)), format!("{}\r\n X", "X".repeat(75)));
    }
}
