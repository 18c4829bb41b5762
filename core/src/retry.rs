//! Waiting before trying again: one exponential [`Backoff`] and one `Retry-After` parser.
//!
//! Every part of Switchboard that retries — the model client, the embedding client, the outbox
//! dispatcher, the effects worker, the indexer, a conversation's failed turns, the embedded
//! PostgreSQL's restarts — computes its waits here, each with its own numbers, so the arithmetic
//! (doubling without overflow, the cap, the jitter) is written and tested once. Nothing here
//! sleeps or does IO: callers decide what a wait means (a `sleep`, a `next_attempt_at`).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime};

/// Exponential backoff: retry `n` (0 for the first retry) waits `base · 2^n`, at most `cap`,
/// then scaled by a random factor in `[1 - jitter, 1)` when `jitter` is above zero, so that
/// clients failing together do not retry together.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// The wait before the first retry.
    pub base: Duration,
    /// The longest wait, before jitter.
    pub cap: Duration,
    /// The largest fraction jitter takes off a wait, in `[0, 1]`; 0 means none.
    pub jitter: f64,
}

impl Backoff {
    /// Doubling from `base` up to `cap`, without jitter.
    pub const fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff {
            base,
            cap,
            jitter: 0.0,
        }
    }

    /// The same schedule, with each wait shortened by a random part of at most `jitter` of it.
    pub const fn with_jitter(self, jitter: f64) -> Backoff {
        Backoff { jitter, ..self }
    }

    /// The wait before retry `retry` without jitter: `base · 2^retry`, at most `cap`. Never
    /// overflows, however large `retry` is.
    pub fn nominal(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The wait before retry `retry`, jitter included.
    pub fn delay(&self, retry: u32) -> Duration {
        self.delay_with(retry, random_unit())
    }

    /// [`Backoff::delay`] with the random draw given: `unit` in `[0, 1)`.
    pub fn delay_with(&self, retry: u32, unit: f64) -> Duration {
        let nominal = self.nominal(retry);
        let jitter = self.jitter.clamp(0.0, 1.0);
        if jitter == 0.0 {
            return nominal;
        }
        // `1 - unit` is in (0, 1]: the factor is in [1 - jitter, 1).
        nominal.mul_f64(1.0 - jitter * (1.0 - unit.clamp(0.0, 1.0)))
    }
}

/// A random number in `[0, 1)` from the standard library's per-process random hash keys (each
/// `RandomState` gets fresh keys): plenty for jitter, and no dependency.
fn random_unit() -> f64 {
    let bits = RandomState::new().build_hasher().finish() >> 11;
    bits as f64 / (1u64 << 53) as f64
}

/// The longest wait a `Retry-After` can mean to anyone here; pass it as the cap to learn how
/// long a provider really asked for (up to a day).
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(86_400);

/// The wait a `Retry-After` header value asks for, relative to `now` (RFC 9110 §10.2.3), at most
/// `cap`.
///
/// Accepted: delay-seconds (`120`; a fraction such as `1.5` too, which some providers send) and
/// an HTTP-date in any of its three forms (`Sun, 06 Nov 1994 08:49:37 GMT`, the obsolete RFC 850
/// and asctime forms). A date in the past means "now" (zero); a number too large to represent
/// is the cap. Anything else — empty, negative, signed, exponents, words, a malformed date — is
/// `None`, and the caller falls back to its own backoff.
pub fn parse_retry_after(value: &str, now: SystemTime, cap: Duration) -> Option<Duration> {
    let value = value.trim();
    if let Some(wait) = delay_seconds(value, cap) {
        return wait;
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO).min(cap))
}

/// `Some(answer)` when `value` has the shape of delay-seconds (digits, perhaps a fraction);
/// `None` when it does not and may be a date.
fn delay_seconds(value: &str, cap: Duration) -> Option<Option<Duration>> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || value.ends_with('.') {
        return None;
    }
    let wait = if fraction.is_empty() {
        // All digits: only an overflow fails, and an overflowing number of seconds is long.
        whole.parse::<u64>().map_or(cap, Duration::from_secs)
    } else {
        value
            .parse::<f64>()
            .ok()
            .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
            .unwrap_or(cap)
    };
    Some(Some(wait.min(cap)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_cap() {
        let b = Backoff::new(MS(100), Duration::from_secs(1));
        let waits: Vec<Duration> = (0..6).map(|n| b.delay(n)).collect();
        assert_eq!(
            waits,
            [MS(100), MS(200), MS(400), MS(800), MS(1000), MS(1000)]
        );
    }

    #[test]
    fn backoff_never_overflows() {
        let b = Backoff::new(Duration::from_secs(1), Duration::MAX);
        assert_eq!(b.nominal(31), Duration::from_secs(1 << 31));
        assert_eq!(b.nominal(32), Duration::from_secs(u64::from(u32::MAX)));
        assert_eq!(
            b.nominal(u32::MAX),
            Duration::from_secs(u64::from(u32::MAX))
        );
        let huge = Backoff::new(Duration::MAX, Duration::MAX);
        assert_eq!(huge.nominal(3), Duration::MAX);
        assert_eq!(
            Backoff::new(Duration::ZERO, MS(5)).nominal(40),
            Duration::ZERO
        );
    }

    #[test]
    fn jitter_shortens_by_at_most_its_fraction() {
        let b = Backoff::new(MS(100), Duration::from_secs(1)).with_jitter(0.5);
        for n in 0..8 {
            let full = b.nominal(n);
            assert_eq!(b.delay_with(n, 0.0), full / 2, "the lowest draw");
            assert!(b.delay_with(n, 0.999_999) < full);
            let d = b.delay(n);
            assert!(d >= full / 2 && d < full, "retry {n}: {d:?}");
        }
        let quarter = Backoff::new(MS(1000), MS(1000)).with_jitter(0.25);
        assert_eq!(quarter.delay_with(0, 0.0), MS(750));
        let samples: std::collections::HashSet<Duration> = (0..20).map(|_| b.delay(3)).collect();
        assert!(samples.len() > 1, "jitter varies");
        // Out-of-range settings are clamped rather than producing negative or longer waits.
        let wild = Backoff::new(MS(100), MS(100)).with_jitter(7.0);
        assert_eq!(wild.delay_with(0, 0.0), Duration::ZERO);
        assert_eq!(
            Backoff::new(MS(100), MS(100)).with_jitter(-1.0).delay(0),
            MS(100)
        );
    }

    #[test]
    fn retry_after_reads_seconds() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let cap = Duration::from_secs(60);
        let parse = |v: &str| parse_retry_after(v, now, cap);
        assert_eq!(parse("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse("1.5"), Some(MS(1500)));
        assert_eq!(parse("3600"), Some(cap), "capped");
        assert_eq!(
            parse("99999999999999999999999"),
            Some(cap),
            "overflow is long"
        );
        assert_eq!(parse("1.99999999999999999999e400"), None);
        for garbage in [
            "", "soon", "-3", "+3", "1e3", "1.", ".5", "1.2.3", "NaN", "inf", "٣",
        ] {
            assert_eq!(parse(garbage), None, "{garbage:?}");
        }
    }

    #[test]
    fn retry_after_reads_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let cap = Duration::from_secs(60);
        let parse = |v: &str| parse_retry_after(v, now, cap);
        let later = httpdate::fmt_http_date(now + Duration::from_secs(12));
        assert_eq!(parse(&later), Some(Duration::from_secs(12)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(12));
        assert_eq!(parse(&past), Some(Duration::ZERO), "the past means now");
        let far = httpdate::fmt_http_date(now + Duration::from_secs(7200));
        assert_eq!(parse(&far), Some(cap));
        assert_eq!(
            parse_retry_after(&far, now, RETRY_AFTER_MAX),
            Some(Duration::from_secs(7200))
        );
        // RFC 9110's obsolete forms are still dates.
        let base = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        for form in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                parse_retry_after(form, base - Duration::from_secs(5), cap),
                Some(Duration::from_secs(5)),
                "{form}"
            );
        }
        assert_eq!(parse("Sun, 32 Nov 1994 08:49:37 GMT"), None);
    }
}
