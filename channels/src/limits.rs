//! Outbound rate limits at the providers' published caps: one token bucket per channel (the
//! sender's cap) and one per (channel, recipient) (the per-user cap). The dispatcher asks
//! before each delivery; a "not yet" defers the outbox row without using up an attempt.
//!
//! | kind | per channel | per recipient |
//! |---|---|---|
//! | WhatsApp | 80/s (Cloud API default per number) | 1 per 6 s, bursts of 3 |
//! | Telegram | 30/s | 1/s |
//! | SMS | `messages_per_second` (1/s for a long code, 3/s toll-free, 100/s short code) | — |
//! | Email | 10/s | — |
//! | web chat, voice | none (no provider) | none |
//!
//! The buckets live in this process: several dispatcher processes each get the full cap. The
//! providers' own rate-limit answers (WhatsApp 130429/131056, Telegram 429) are honoured too.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use switchboard_core::ChannelId;

use crate::settings::ChannelSettings;

/// A cap: `rate` tokens per second, at most `burst` saved up.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cap {
    pub rate: f64,
    pub burst: f64,
}

impl Cap {
    pub const fn new(rate: f64, burst: f64) -> Cap {
        Cap { rate, burst }
    }
}

/// The caps of one channel: for the sender and for each recipient.
pub fn caps(settings: &ChannelSettings) -> (Option<Cap>, Option<Cap>) {
    match settings {
        ChannelSettings::Whatsapp(_) => {
            (Some(Cap::new(80.0, 80.0)), Some(Cap::new(1.0 / 6.0, 3.0)))
        }
        ChannelSettings::Telegram(_) => (Some(Cap::new(30.0, 30.0)), Some(Cap::new(1.0, 1.0))),
        ChannelSettings::Sms(s) => {
            let rate = s.messages_per_second.unwrap_or(1.0).clamp(0.01, 1000.0);
            (Some(Cap::new(rate, rate.max(1.0))), None)
        }
        ChannelSettings::Email(_) => (Some(Cap::new(10.0, 10.0)), None),
        ChannelSettings::Webchat | ChannelSettings::Voice(_) => (None, None),
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self, cap: Cap, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * cap.rate).min(cap.burst);
        self.at = now;
    }

    /// How long until `cost` tokens are available (zero when they are).
    fn wait(&self, cap: Cap, cost: f64) -> Duration {
        if self.tokens >= cost {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((cost - self.tokens) / cap.rate)
        }
    }
}

/// Token buckets by key (created full on first use, dropped once idle): the sending caps here,
/// and the runtime's inbound limits.
#[derive(Debug)]
pub struct Buckets<K> {
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K> Default for Buckets<K> {
    fn default() -> Self {
        Buckets {
            buckets: Mutex::new(HashMap::new()),
        }
    }
}

/// Buckets idle this long are dropped (they would be full anyway).
const IDLE: Duration = Duration::from_secs(600);

impl<K: std::hash::Hash + Eq + Clone> Buckets<K> {
    /// Takes `cost` tokens from every bucket of `wanted` if all of them have them; otherwise
    /// takes nothing and says how long to wait. A cost above a bucket's burst waits for a full
    /// bucket.
    pub fn try_take(&self, wanted: &[(K, Cap)], cost: f64, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().expect("rate limiter lock poisoned");
        if buckets.len() > 10_000 {
            buckets.retain(|_, b| now.saturating_duration_since(b.at) < IDLE);
        }
        let mut wait = Duration::ZERO;
        for (key, cap) in wanted {
            let cost = cost.min(cap.burst);
            let bucket = buckets.entry(key.clone()).or_insert(Bucket {
                tokens: cap.burst,
                at: now,
            });
            bucket.refill(*cap, now);
            wait = wait.max(bucket.wait(*cap, cost));
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        for (key, cap) in wanted {
            if let Some(b) = buckets.get_mut(key) {
                b.tokens -= cost.min(cap.burst);
            }
        }
        Ok(())
    }
}

type Key = (ChannelId, Option<String>);

/// Token buckets for every channel and recipient seen recently.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Buckets<Key>,
}

impl RateLimiter {
    /// Takes `cost` tokens from the channel's and the recipient's buckets if both have them;
    /// otherwise takes nothing and says how long to wait.
    pub fn try_acquire(
        &self,
        channel: ChannelId,
        recipient: &str,
        settings: &ChannelSettings,
        cost: u32,
    ) -> Result<(), Duration> {
        self.try_acquire_at(channel, recipient, caps(settings), cost, Instant::now())
    }

    /// [`try_acquire`](Self::try_acquire) with explicit caps and clock (tests).
    pub fn try_acquire_at(
        &self,
        channel: ChannelId,
        recipient: &str,
        (per_channel, per_recipient): (Option<Cap>, Option<Cap>),
        cost: u32,
        now: Instant,
    ) -> Result<(), Duration> {
        let wanted: Vec<(Key, Cap)> = [
            per_channel.map(|c| ((channel, None), c)),
            per_recipient.map(|c| ((channel, Some(recipient.to_owned())), c)),
        ]
        .into_iter()
        .flatten()
        .collect();
        self.buckets.try_take(&wanted, f64::from(cost), now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_recipient_and_per_channel_caps_are_both_enforced() {
        let limiter = RateLimiter::default();
        let ch = ChannelId::new();
        let caps = (Some(Cap::new(2.0, 2.0)), Some(Cap::new(1.0 / 6.0, 1.0)));
        let t0 = Instant::now();
        assert_eq!(limiter.try_acquire_at(ch, "a", caps, 1, t0), Ok(()));
        // Same recipient: one per six seconds.
        let wait = limiter.try_acquire_at(ch, "a", caps, 1, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 6.0).abs() < 0.01, "{wait:?}");
        // Another recipient passes until the channel's burst is used up.
        assert_eq!(limiter.try_acquire_at(ch, "b", caps, 1, t0), Ok(()));
        let wait = limiter.try_acquire_at(ch, "c", caps, 1, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.5).abs() < 0.01, "{wait:?}");
        // A refused request took nothing: after the wait it passes.
        assert_eq!(
            limiter.try_acquire_at(ch, "c", caps, 1, t0 + Duration::from_millis(500)),
            Ok(())
        );
        assert_eq!(
            limiter.try_acquire_at(ch, "a", caps, 1, t0 + Duration::from_secs(6)),
            Ok(())
        );
        // No caps, no limit.
        for _ in 0..100 {
            assert_eq!(limiter.try_acquire_at(ch, "a", (None, None), 1, t0), Ok(()));
        }
    }

    #[test]
    fn a_costly_message_waits_for_a_full_bucket_but_is_not_refused_forever() {
        let limiter = RateLimiter::default();
        let ch = ChannelId::new();
        let caps = (Some(Cap::new(1.0, 1.0)), None);
        let t0 = Instant::now();
        assert_eq!(limiter.try_acquire_at(ch, "a", caps, 3, t0), Ok(()));
        assert!(limiter.try_acquire_at(ch, "a", caps, 3, t0).is_err());
        assert_eq!(
            limiter.try_acquire_at(ch, "a", caps, 3, t0 + Duration::from_secs(1)),
            Ok(())
        );
    }
}
