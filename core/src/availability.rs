//! A tenant's bookable time, as pure computation: weekly opening hours in the tenant's IANA
//! time zone, slot length, a buffer after each meeting, minimum notice, a booking horizon and
//! holidays. No IO: the store reads the settings and the busy holds, this module turns them into
//! free slots, and answers "are we open now, and if not, when?" for the handoff rule.
//!
//! Time zones are handled on local wall-clock days: a day's windows are converted to UTC
//! instants through `chrono-tz`, so the UTC time of "09:00" moves with daylight saving, and slots
//! are then laid out in real (UTC) time. A window edge that falls into a spring-forward gap
//! moves to the first local time that exists; an edge in a fall-back overlap takes the earlier
//! instant.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Weekday keys of `weekly_hours`, Monday first (chrono's `num_days_from_monday` order).
pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Availability as stored and as the admin API reads and writes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AvailabilitySettings {
    /// IANA time zone name (`Asia/Dubai`).
    pub timezone: String,
    /// Local opening windows per weekday key (`mon` … `sun`), as `["HH:MM", "HH:MM"]` pairs;
    /// `24:00` closes at midnight. A missing day is closed.
    pub weekly_hours: BTreeMap<String, Vec<[String; 2]>>,
    #[serde(default = "default_slot")]
    pub slot_minutes: u32,
    #[serde(default)]
    pub buffer_minutes: u32,
    #[serde(default = "default_notice")]
    pub min_notice_minutes: u32,
    #[serde(default = "default_horizon")]
    pub horizon_days: u32,
    /// Local dates with no slots.
    #[serde(default)]
    pub holidays: Vec<NaiveDate>,
    #[serde(default)]
    pub salesperson_name: Option<String>,
    #[serde(default)]
    pub salesperson_email: Option<String>,
    #[serde(default = "default_title")]
    pub meeting_title: String,
    #[serde(default)]
    pub location: Option<String>,
}

fn default_slot() -> u32 {
    30
}
fn default_notice() -> u32 {
    60
}
fn default_horizon() -> u32 {
    14
}
fn default_title() -> String {
    "Consultation".into()
}

/// Why settings were refused; the message is meant for the admin who sent them.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AvailabilityError(pub String);

fn invalid(msg: impl Into<String>) -> AvailabilityError {
    AvailabilityError(msg.into())
}

/// A bookable slot: the meeting's start and end, and the start on the tenant's wall clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Slot {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub local_start: NaiveDateTime,
}

/// Validated availability, ready to compute with.
#[derive(Clone, Debug)]
pub struct Availability {
    settings: AvailabilitySettings,
    tz: Tz,
    /// Windows per weekday (Monday first) in minutes since local midnight, sorted, disjoint.
    weekly: [Vec<(u32, u32)>; 7],
}

impl Availability {
    /// Validates `settings`: a known time zone, well-formed and non-overlapping hours, sane
    /// numbers, a plausible salesperson email.
    pub fn new(settings: AvailabilitySettings) -> Result<Availability, AvailabilityError> {
        let tz: Tz = settings.timezone.parse().map_err(|_| {
            invalid(format!(
                "unknown time zone `{}`; use an IANA name such as `Asia/Dubai` or `Europe/London`",
                settings.timezone
            ))
        })?;
        let mut weekly: [Vec<(u32, u32)>; 7] = Default::default();
        for (day, windows) in &settings.weekly_hours {
            let Some(i) = WEEKDAYS.iter().position(|d| d == day) else {
                return Err(invalid(format!(
                    "unknown weekday `{day}` in weekly_hours; use mon, tue, wed, thu, fri, sat, sun"
                )));
            };
            if windows.len() > 12 {
                return Err(invalid(format!("{day}: at most 12 windows a day")));
            }
            let mut parsed = Vec::with_capacity(windows.len());
            for [from, to] in windows {
                let a = parse_hhmm(from).ok_or_else(|| {
                    invalid(format!(
                        "{day}: `{from}` is not a time (use HH:MM, 00:00 to 24:00)"
                    ))
                })?;
                let b = parse_hhmm(to).ok_or_else(|| {
                    invalid(format!(
                        "{day}: `{to}` is not a time (use HH:MM, 00:00 to 24:00)"
                    ))
                })?;
                if a >= b {
                    return Err(invalid(format!(
                        "{day}: the window {from}–{to} ends before it starts"
                    )));
                }
                parsed.push((a, b));
            }
            parsed.sort_unstable();
            if let Some(w) = parsed.windows(2).find(|w| w[1].0 < w[0].1) {
                return Err(invalid(format!(
                    "{day}: the windows {}–{} and {}–{} overlap",
                    hhmm(w[0].0),
                    hhmm(w[0].1),
                    hhmm(w[1].0),
                    hhmm(w[1].1)
                )));
            }
            weekly[i] = parsed;
        }
        let s = &settings;
        if !(5..=480).contains(&s.slot_minutes) {
            return Err(invalid("slot_minutes must be between 5 and 480"));
        }
        if s.buffer_minutes > 240 {
            return Err(invalid("buffer_minutes must be between 0 and 240"));
        }
        if s.min_notice_minutes > 43_200 {
            return Err(invalid(
                "min_notice_minutes must be between 0 and 43200 (30 days)",
            ));
        }
        if !(1..=365).contains(&s.horizon_days) {
            return Err(invalid("horizon_days must be between 1 and 365"));
        }
        if s.holidays.len() > 1000 {
            return Err(invalid("at most 1000 holidays"));
        }
        let title = s.meeting_title.trim();
        if title.is_empty() || title.chars().count() > 200 {
            return Err(invalid("meeting_title must be 1 to 200 characters"));
        }
        if let Some(e) = &s.salesperson_email {
            if !crate::validate::email(e) {
                return Err(invalid(format!(
                    "salesperson_email `{e}` is not an email address"
                )));
            }
        }
        if s.salesperson_name
            .as_ref()
            .is_some_and(|n| n.chars().count() > 200)
        {
            return Err(invalid("salesperson_name is at most 200 characters"));
        }
        if s.location.as_ref().is_some_and(|l| l.chars().count() > 500) {
            return Err(invalid("location is at most 500 characters"));
        }
        Ok(Availability {
            settings,
            tz,
            weekly,
        })
    }

    pub fn settings(&self) -> &AvailabilitySettings {
        &self.settings
    }

    pub fn timezone_name(&self) -> &str {
        &self.settings.timezone
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    pub fn slot_length(&self) -> Duration {
        Duration::minutes(self.settings.slot_minutes.into())
    }

    /// The time a booking starting at `start` keeps for itself: the meeting plus the buffer.
    pub fn hold(&self, start: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let end =
            start + self.slot_length() + Duration::minutes(self.settings.buffer_minutes.into());
        (start, end)
    }

    /// `at` on the tenant's wall clock.
    pub fn local(&self, at: DateTime<Utc>) -> NaiveDateTime {
        at.with_timezone(&self.tz).naive_local()
    }

    /// Up to `limit` free slots after `now`, earliest first: inside the weekly hours of
    /// non-holiday days, at least the minimum notice after `now`, before the horizon, and with
    /// a hold (meeting plus buffer) that overlaps none of `busy` (the confirmed holds).
    pub fn free_slots(
        &self,
        now: DateTime<Utc>,
        busy: &[(DateTime<Utc>, DateTime<Utc>)],
        limit: usize,
    ) -> Vec<Slot> {
        let mut out = Vec::new();
        if limit == 0 {
            return out;
        }
        let earliest = now + Duration::minutes(self.settings.min_notice_minutes.into());
        let horizon = now + Duration::days(self.settings.horizon_days.into());
        let first_day = self.local(now).date();
        for offset in 0..=i64::from(self.settings.horizon_days) + 1 {
            let day = first_day + Duration::days(offset);
            for slot in self.day_slots(day) {
                if slot.start < earliest || slot.start >= horizon {
                    continue;
                }
                let (h0, h1) = self.hold(slot.start);
                if busy.iter().any(|&(b0, b1)| h0 < b1 && b0 < h1) {
                    continue;
                }
                out.push(slot);
                if out.len() == limit {
                    return out;
                }
            }
        }
        out
    }

    /// Whether a customer may book the slot starting at `start` now (ignoring other bookings):
    /// it is one of the slots laid out for its day, respects the notice and the horizon.
    pub fn offers(&self, now: DateTime<Utc>, start: DateTime<Utc>) -> bool {
        let earliest = now + Duration::minutes(self.settings.min_notice_minutes.into());
        let horizon = now + Duration::days(self.settings.horizon_days.into());
        if start < earliest || start >= horizon {
            return false;
        }
        // A slot's local date can differ from its window's day only around midnight; look at
        // both neighbours.
        let day = self.local(start).date();
        [day - Duration::days(1), day]
            .into_iter()
            .flat_map(|d| self.day_slots(d))
            .any(|s| s.start == start)
    }

    /// Whether a meeting starting at `start` lies inside opening hours (for admins, who may
    /// book off the slot grid and at short notice).
    pub fn within_hours(&self, start: DateTime<Utc>) -> bool {
        let end = start + self.slot_length();
        let day = self.local(start).date();
        [day - Duration::days(1), day].into_iter().any(|d| {
            self.day_windows(d)
                .into_iter()
                .any(|(w0, w1)| w0 <= start && end <= w1)
        })
    }

    /// Whether the business is open at `at` (weekly hours, holidays; bookings do not matter).
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        let day = self.local(at).date();
        [day - Duration::days(1), day].into_iter().any(|d| {
            self.day_windows(d)
                .into_iter()
                .any(|(w0, w1)| w0 <= at && at < w1)
        })
    }

    /// The first instant at or after `at` when the business is open: `at` itself when open,
    /// else the start of the next window. `None` when no window opens within a year (no hours
    /// configured, or every day a holiday).
    pub fn next_opening(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.is_open(at) {
            return Some(at);
        }
        let first = self.local(at).date();
        (0..=366)
            .map(|o| first + Duration::days(o))
            .flat_map(|d| self.day_windows(d))
            .map(|(w0, _)| w0)
            .find(|&w0| w0 > at)
    }

    /// The opening windows of local date `day` as UTC instants (none on holidays).
    fn day_windows(&self, day: NaiveDate) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        if self.settings.holidays.contains(&day) {
            return Vec::new();
        }
        let weekday = day.weekday().num_days_from_monday() as usize;
        self.weekly[weekday]
            .iter()
            .filter_map(|&(a, b)| {
                let start = self.instant(day, a)?;
                let end = self.instant(day, b)?;
                (start < end).then_some((start, end))
            })
            .collect()
    }

    /// The slots of local date `day`: from each window's start, one every slot + buffer, each
    /// ending inside its window (the buffer may run past closing).
    fn day_slots(&self, day: NaiveDate) -> Vec<Slot> {
        let len = self.slot_length();
        let step = len + Duration::minutes(self.settings.buffer_minutes.into());
        let mut out = Vec::new();
        for (w0, w1) in self.day_windows(day) {
            let mut s = w0;
            while s + len <= w1 {
                out.push(Slot {
                    start: s,
                    end: s + len,
                    local_start: self.local(s),
                });
                s += step;
            }
        }
        out
    }

    /// The UTC instant of `minutes` after local midnight of `day`. In a spring-forward gap the
    /// first existing local time after it; in a fall-back overlap the earlier instant.
    fn instant(&self, day: NaiveDate, minutes: u32) -> Option<DateTime<Utc>> {
        let naive = day.and_time(NaiveTime::MIN) + Duration::minutes(minutes.into());
        // Gaps are at most a few hours long (most are one hour); step through them by minutes.
        (0..=240).find_map(|m| {
            self.tz
                .from_local_datetime(&(naive + Duration::minutes(m)))
                .earliest()
                .map(|t| t.with_timezone(&Utc))
        })
    }
}

/// `HH:MM` as minutes since midnight (`24:00` is 1440).
fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: u32 = h.parse().ok()?;
    let m: u32 = m.parse().ok()?;
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return None;
    }
    Some(h * 60 + m)
}

fn hhmm(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours(days: &[&str], from: &str, to: &str) -> BTreeMap<String, Vec<[String; 2]>> {
        days.iter()
            .map(|d| (d.to_string(), vec![[from.to_string(), to.to_string()]]))
            .collect()
    }

    fn settings(tz: &str, weekly: BTreeMap<String, Vec<[String; 2]>>) -> AvailabilitySettings {
        AvailabilitySettings {
            timezone: tz.into(),
            weekly_hours: weekly,
            slot_minutes: 30,
            buffer_minutes: 0,
            min_notice_minutes: 0,
            horizon_days: 14,
            holidays: Vec::new(),
            salesperson_name: None,
            salesperson_email: None,
            meeting_title: "Consultation".into(),
            location: None,
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const WEEK: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

    #[test]
    fn dst_moves_the_utc_time_of_local_opening_hours() {
        // New York switches to daylight time on Sunday 8 March 2026.
        let a = Availability::new(settings("America/New_York", hours(&WEEK, "09:00", "10:00")))
            .unwrap();
        let slots = a.free_slots(utc("2026-03-06T00:00:00Z"), &[], 10);
        let starts: Vec<_> = slots.iter().map(|s| s.start).collect();
        // Friday and Saturday 09:00 EST = 14:00Z; Sunday on, 09:00 EDT = 13:00Z.
        assert_eq!(starts[0], utc("2026-03-06T14:00:00Z"));
        assert_eq!(starts[2], utc("2026-03-07T14:00:00Z"));
        assert_eq!(starts[4], utc("2026-03-08T13:00:00Z"));
        assert_eq!(starts[6], utc("2026-03-09T13:00:00Z"));
        assert!(slots.iter().all(
            |s| s.local_start.time().format("%H:%M").to_string() == "09:00"
                || s.local_start.time().format("%H:%M").to_string() == "09:30"
        ));
        // Opening hours follow the wall clock too.
        assert!(a.is_open(utc("2026-03-06T14:30:00Z")));
        assert!(!a.is_open(utc("2026-03-09T14:30:00Z")));
        assert!(a.is_open(utc("2026-03-09T13:30:00Z")));
    }

    #[test]
    fn a_window_edge_in_the_spring_forward_gap_moves_to_the_first_existing_time() {
        // London skips 01:00–02:00 on Sunday 29 March 2026.
        let a = Availability::new(settings("Europe/London", hours(&["sun"], "01:00", "03:00")))
            .unwrap();
        let slots = a.free_slots(utc("2026-03-28T00:00:00Z"), &[], 3);
        // The window really is 02:00–03:00 BST = 01:00–02:00Z: two slots, not four; the next
        // Sunday has all four, from 01:00 BST = 00:00Z.
        let starts: Vec<_> = slots.iter().map(|s| s.start).collect();
        assert_eq!(
            starts,
            vec![
                utc("2026-03-29T01:00:00Z"),
                utc("2026-03-29T01:30:00Z"),
                utc("2026-04-05T00:00:00Z")
            ]
        );
        assert_eq!(slots[0].local_start.to_string(), "2026-03-29 02:00:00");
    }

    #[test]
    fn holidays_have_no_slots_and_are_closed() {
        let mut s = settings("Asia/Dubai", hours(&WEEK, "09:00", "10:00"));
        s.holidays = vec![NaiveDate::from_ymd_opt(2026, 12, 2).unwrap()];
        let a = Availability::new(s).unwrap();
        let slots = a.free_slots(utc("2026-12-01T00:00:00Z"), &[], 4);
        let days: Vec<_> = slots.iter().map(|s| s.local_start.date().day()).collect();
        assert_eq!(days, vec![1, 1, 3, 3]);
        assert!(!a.is_open(utc("2026-12-02T05:15:00Z"))); // 09:15 in Dubai, a holiday
        assert!(a.is_open(utc("2026-12-03T05:15:00Z")));
        // Closed on the holiday: the next opening is the next day's 09:00 (05:00Z).
        assert_eq!(
            a.next_opening(utc("2026-12-01T07:00:00Z")),
            Some(utc("2026-12-03T05:00:00Z"))
        );
    }

    #[test]
    fn buffers_separate_slots_and_busy_holds() {
        let mut s = settings("UTC", hours(&WEEK, "09:00", "12:00"));
        s.buffer_minutes = 15;
        let a = Availability::new(s).unwrap();
        let now = utc("2026-12-01T00:00:00Z");
        let starts: Vec<String> = a
            .free_slots(now, &[], 4)
            .iter()
            .map(|s| s.start.format("%H:%M").to_string())
            .collect();
        assert_eq!(starts, ["09:00", "09:45", "10:30", "11:15"]);
        // A booking at 09:45 holds 09:45–10:30; its neighbours' holds would touch, not overlap.
        let busy = [a.hold(utc("2026-12-01T09:45:00Z"))];
        assert_eq!(busy[0].1, utc("2026-12-01T10:30:00Z"));
        let starts: Vec<String> = a
            .free_slots(now, &busy, 3)
            .iter()
            .map(|s| s.start.format("%H:%M").to_string())
            .collect();
        assert_eq!(starts, ["09:00", "10:30", "11:15"]);
        // An off-grid hold (an admin's 10:00 meeting) knocks out both slots it overlaps.
        let busy = [a.hold(utc("2026-12-01T10:00:00Z"))];
        let starts: Vec<String> = a
            .free_slots(now, &busy, 2)
            .iter()
            .map(|s| s.start.format("%H:%M").to_string())
            .collect();
        assert_eq!(starts, ["09:00", "11:15"]);
    }

    #[test]
    fn minimum_notice_and_horizon_bound_the_offer() {
        let mut s = settings("UTC", hours(&WEEK, "09:00", "17:00"));
        s.min_notice_minutes = 120;
        s.horizon_days = 2;
        let a = Availability::new(s).unwrap();
        let now = utc("2026-12-01T09:10:00Z");
        let slots = a.free_slots(now, &[], 1000);
        assert_eq!(slots[0].start, utc("2026-12-01T11:30:00Z"));
        assert!(slots.iter().all(|s| s.start < utc("2026-12-03T09:10:00Z")));
        assert_eq!(slots.last().unwrap().start, utc("2026-12-03T09:00:00Z"));
        assert!(a.offers(now, utc("2026-12-01T11:30:00Z")));
        assert!(!a.offers(now, utc("2026-12-01T11:00:00Z")), "too soon");
        assert!(
            !a.offers(now, utc("2026-12-03T09:30:00Z")),
            "past the horizon"
        );
        assert!(!a.offers(now, utc("2026-12-01T11:40:00Z")), "off the grid");
    }

    #[test]
    fn next_opening_crosses_the_weekend() {
        // Sahara Solar: Saturday to Thursday, closed Fridays.
        let days = ["sat", "sun", "mon", "tue", "wed", "thu"];
        let a = Availability::new(settings("Asia/Dubai", hours(&days, "08:30", "18:30"))).unwrap();
        // Thursday 3 Dec 2026 19:00 Dubai (15:00Z): closed until Saturday 08:30 (04:30Z).
        let at = utc("2026-12-03T15:00:00Z");
        assert!(!a.is_open(at));
        assert_eq!(a.next_opening(at), Some(utc("2026-12-05T04:30:00Z")));
        let open = utc("2026-12-05T06:00:00Z");
        assert_eq!(a.next_opening(open), Some(open));
        let none = Availability::new(settings("UTC", BTreeMap::new())).unwrap();
        assert_eq!(none.next_opening(at), None);
        assert!(!none.is_open(at));
    }

    #[test]
    fn midnight_close_and_within_hours() {
        let mut s = settings("UTC", hours(&["tue"], "22:00", "24:00"));
        s.horizon_days = 1;
        let a = Availability::new(s).unwrap();
        let slots = a.free_slots(utc("2026-12-01T00:00:00Z"), &[], 10);
        assert_eq!(slots.len(), 4);
        assert_eq!(slots[3].end, utc("2026-12-02T00:00:00Z"));
        assert!(a.within_hours(utc("2026-12-01T23:10:00Z")));
        assert!(!a.within_hours(utc("2026-12-01T23:40:00Z")));
    }

    #[test]
    fn bad_settings_are_refused_with_a_clear_message() {
        let bad_tz = Availability::new(settings("Mars/Olympus", BTreeMap::new())).unwrap_err();
        assert!(bad_tz.0.contains("unknown time zone `Mars/Olympus`"));
        let bad_day = Availability::new(settings("UTC", hours(&["funday"], "09:00", "10:00")));
        assert!(bad_day.unwrap_err().0.contains("unknown weekday `funday`"));
        let bad_time = Availability::new(settings("UTC", hours(&["mon"], "9am", "10:00")));
        assert!(bad_time.unwrap_err().0.contains("`9am` is not a time"));
        let backwards = Availability::new(settings("UTC", hours(&["mon"], "10:00", "09:00")));
        assert!(backwards.unwrap_err().0.contains("ends before it starts"));
        let mut overlapping = BTreeMap::new();
        overlapping.insert(
            "mon".to_string(),
            vec![
                ["09:00".to_string(), "12:00".to_string()],
                ["11:00".to_string(), "13:00".to_string()],
            ],
        );
        let e = Availability::new(settings("UTC", overlapping)).unwrap_err();
        assert_eq!(e.0, "mon: the windows 09:00–12:00 and 11:00–13:00 overlap");
        let mut s = settings("UTC", BTreeMap::new());
        s.slot_minutes = 0;
        assert!(Availability::new(s).unwrap_err().0.contains("slot_minutes"));
        let mut s = settings("UTC", BTreeMap::new());
        s.salesperson_email = Some("sales@example.com\r\nBcc: x@y.z".into());
        assert!(Availability::new(s)
            .unwrap_err()
            .0
            .contains("salesperson_email"));
    }
}
