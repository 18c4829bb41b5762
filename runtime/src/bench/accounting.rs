//! The open loop's bookkeeping, free of I/O: the schedule of intended send times, and the
//! latency of every message counted from its intended time.
//!
//! Counting from the intended time rather than the actual one is what makes an open loop
//! honest: if the server (or the harness) falls behind, a message's wait includes the time it
//! spent behind others, instead of the clock starting only once it could be sent. A message
//! still unanswered when the harness stopped waiting is counted with the time it had waited so
//! far — a lower bound — so the unanswered raise the tail of the percentiles instead of
//! vanishing from it.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::{json, Value};

/// One message of the schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    /// Position in the schedule (0, 1, 2, …).
    pub index: usize,
    /// Which conversation sends it.
    pub conversation: usize,
    /// When it is meant to be sent, from the start of the run.
    pub at: Duration,
}

/// A constant arrival rate: `rate × duration` messages (at least one), the i-th at `i / rate`,
/// handed to the conversations in turn.
pub(crate) fn schedule(rate: f64, duration: Duration, conversations: usize) -> Vec<Slot> {
    let n = ((rate * duration.as_secs_f64()).round() as usize).max(1);
    let conversations = conversations.max(1);
    (0..n)
        .map(|index| Slot {
            index,
            conversation: index % conversations,
            at: Duration::from_secs_f64(index as f64 / rate),
        })
        .collect()
}

/// What happened to one message on the way in, every time measured from the start of the run.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Sent {
    /// The id the store knows it by (its provider message id).
    pub key: String,
    /// When it was meant to be sent.
    pub intended: Duration,
    /// When the harness actually started sending it (later than `intended` only when the
    /// harness itself falls behind).
    pub started: Duration,
    /// When the server acknowledged it; `None` when it refused it or could not be reached.
    pub acked: Option<Duration>,
}

/// What the harness learnt about replies.
#[derive(Debug, Default)]
pub(crate) struct Replies {
    /// Which reply answered each message (message key → reply key), read from the store.
    pub answered_by: HashMap<String, String>,
    /// When the harness saw each reply arrive (reply key → time since the start).
    pub seen: HashMap<String, Duration>,
}

/// Every message's outcome, summed up.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Accounting {
    pub sent: usize,
    pub accepted: usize,
    /// Refused by the server or never acknowledged.
    pub refused: usize,
    /// Accepted and answered, the reply seen by the harness.
    pub answered: usize,
    /// Accepted but no reply seen by the time the harness stopped waiting.
    pub unanswered: usize,
    /// Distinct replies that answered messages (fewer than `answered` when turns took in bursts).
    pub replies: usize,
    /// Every accepted message's latency from its intended send time to its reply being seen (or,
    /// for the unanswered, to the end of the wait), in milliseconds.
    pub latency_ms: Vec<f64>,
    /// Every accepted message's time from its intended send time to its acknowledgement.
    pub ack_ms: Vec<f64>,
    /// How late the harness started each send (its own health, not the server's).
    pub send_lag_ms: Vec<f64>,
    /// When the last reply was seen and the last acknowledgement arrived.
    pub last_reply: Option<Duration>,
    pub last_ack: Option<Duration>,
}

/// Accounts for every message in `sent` given what was learnt about replies, the wait having
/// ended at `waited_until`.
pub(crate) fn account(sent: &[Sent], replies: &Replies, waited_until: Duration) -> Accounting {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut acc = Accounting {
        sent: sent.len(),
        ..Accounting::default()
    };
    let mut reply_keys = HashSet::new();
    for m in sent {
        acc.send_lag_ms
            .push(ms(m.started.saturating_sub(m.intended)));
        let Some(acked) = m.acked else {
            acc.refused += 1;
            continue;
        };
        acc.accepted += 1;
        acc.ack_ms.push(ms(acked.saturating_sub(m.intended)));
        acc.last_ack = acc.last_ack.max(Some(acked));
        let seen = replies
            .answered_by
            .get(&m.key)
            .and_then(|r| replies.seen.get(r).map(|at| (r, *at)));
        match seen {
            Some((reply, at)) => {
                acc.answered += 1;
                reply_keys.insert(reply.as_str());
                acc.latency_ms.push(ms(at.saturating_sub(m.intended)));
                acc.last_reply = acc.last_reply.max(Some(at));
            }
            None => {
                acc.unanswered += 1;
                acc.latency_ms
                    .push(ms(waited_until.saturating_sub(m.intended)));
            }
        }
    }
    acc.replies = reply_keys.len();
    acc
}

impl Accounting {
    /// The open loop's figures as JSON. `offered` is the configured rate.
    pub(crate) fn into_json(mut self, offered: f64) -> Value {
        let per_sec = |n: usize, over: Option<Duration>| match over {
            Some(d) if !d.is_zero() => n as f64 / d.as_secs_f64(),
            _ => 0.0,
        };
        json!({
            "offered_per_sec": offered,
            "sent": self.sent,
            "accepted": self.accepted,
            "refused": self.refused,
            "answered": self.answered,
            "unanswered": self.unanswered,
            "replies": self.replies,
            // Messages per second from the start of the schedule to the last acknowledgement
            // and to the last reply: equal to the offered rate (less the last message's own
            // latency) when the server keeps up, lower when it falls behind.
            "accepted_per_sec": per_sec(self.accepted, self.last_ack),
            "achieved_per_sec": per_sec(self.answered, self.last_reply),
            "latency_ms": percentiles(&mut self.latency_ms),
            "ack_latency_ms": percentiles(&mut self.ack_ms),
            "send_lag_ms": percentiles(&mut self.send_lag_ms),
        })
    }
}

/// p50, p90, p99, p99.9 and the maximum of `samples` (nearest rank); `null` when empty.
pub(crate) fn percentiles(samples: &mut [f64]) -> Value {
    if samples.is_empty() {
        return Value::Null;
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let at = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    json!({"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "p99.9": at(0.999), "max": at(1.0)})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn sent(key: &str, intended: u64, started: u64, acked: Option<u64>) -> Sent {
        Sent {
            key: key.into(),
            intended: ms(intended),
            started: ms(started),
            acked: acked.map(ms),
        }
    }

    fn replies(answered_by: &[(&str, &str)], seen: &[(&str, u64)]) -> Replies {
        Replies {
            answered_by: answered_by
                .iter()
                .map(|(m, r)| (m.to_string(), r.to_string()))
                .collect(),
            seen: seen.iter().map(|(r, t)| (r.to_string(), ms(*t))).collect(),
        }
    }

    #[test]
    fn the_schedule_is_a_constant_rate_spread_over_the_conversations_in_turn() {
        let s = schedule(200.0, Duration::from_secs(2), 3);
        assert_eq!(s.len(), 400);
        assert_eq!(s[0].at, Duration::ZERO);
        assert_eq!(s[1].at, ms(5));
        assert_eq!(s[399].at, Duration::from_secs_f64(399.0 / 200.0));
        assert_eq!(
            s.iter().take(5).map(|x| x.conversation).collect::<Vec<_>>(),
            vec![0, 1, 2, 0, 1]
        );
        assert!(s.windows(2).all(|w| w[1].at > w[0].at));
        // A rate too low for the duration still offers one message.
        assert_eq!(schedule(0.1, Duration::from_secs(1), 5).len(), 1);
    }

    #[test]
    fn latency_counts_from_the_intended_send_time_not_the_actual_one() {
        // The harness fell 40 ms behind on the second message; the server answered it 10 ms
        // after it was really sent. The customer waited 50 ms, and that is what is counted.
        let s = [sent("a", 0, 0, Some(2)), sent("b", 10, 50, Some(52))];
        let r = replies(&[("a", "r1"), ("b", "r2")], &[("r1", 5), ("r2", 60)]);
        let acc = account(&s, &r, ms(1000));
        assert_eq!(acc.latency_ms, vec![5.0, 50.0]);
        assert_eq!(acc.ack_ms, vec![2.0, 42.0]);
        assert_eq!(acc.send_lag_ms, vec![0.0, 40.0]);
        assert_eq!((acc.answered, acc.unanswered, acc.replies), (2, 0, 2));
        assert_eq!(acc.last_reply, Some(ms(60)));
    }

    #[test]
    fn one_reply_answering_a_burst_answers_each_message_with_its_own_wait() {
        // Three messages taken in by one turn: each is answered when that reply arrives.
        let s = [
            sent("a", 0, 0, Some(1)),
            sent("b", 5, 5, Some(6)),
            sent("c", 10, 10, Some(11)),
        ];
        let r = replies(&[("a", "r1"), ("b", "r1"), ("c", "r1")], &[("r1", 30)]);
        let acc = account(&s, &r, ms(1000));
        assert_eq!(acc.latency_ms, vec![30.0, 25.0, 20.0]);
        assert_eq!((acc.answered, acc.replies), (3, 1));
    }

    #[test]
    fn the_unanswered_count_with_their_wait_so_far_and_the_refused_not_at_all() {
        let s = [
            sent("a", 0, 0, Some(1)),
            // Answered in the store but the reply never reached the harness.
            sent("b", 100, 100, Some(101)),
            // Never answered.
            sent("c", 200, 200, Some(201)),
            // Refused by the server.
            sent("d", 300, 300, None),
        ];
        let r = replies(&[("a", "r1"), ("b", "r2")], &[("r1", 10)]);
        let acc = account(&s, &r, ms(5_000));
        assert_eq!(acc.sent, 4);
        assert_eq!((acc.accepted, acc.refused), (3, 1));
        assert_eq!((acc.answered, acc.unanswered), (1, 2));
        assert_eq!(acc.latency_ms, vec![10.0, 4_900.0, 4_800.0]);
        let v = acc.into_json(10.0);
        assert_eq!(v["latency_ms"]["max"], 4_900.0);
        assert_eq!(v["unanswered"], 2);
    }

    #[test]
    fn rates_are_counted_from_the_start_of_the_schedule() {
        let s: Vec<Sent> = (0..10)
            .map(|i| sent(&format!("m{i}"), i * 100, i * 100, Some(i * 100 + 1)))
            .collect();
        let answered: Vec<(String, String)> = (0..10)
            .map(|i| (format!("m{i}"), format!("r{i}")))
            .collect();
        let r = Replies {
            answered_by: answered.into_iter().collect(),
            seen: (0..10)
                .map(|i| (format!("r{i}"), ms(i * 100 + 100)))
                .collect(),
        };
        let v = account(&s, &r, ms(2_000)).into_json(10.0);
        assert_eq!(v["achieved_per_sec"], 10.0);
        assert_eq!(v["offered_per_sec"], 10.0);
        assert!((v["accepted_per_sec"].as_f64().unwrap() - 10.0 / 0.901).abs() < 1e-9);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut v: Vec<f64> = (1..=1000).map(f64::from).collect();
        let p = percentiles(&mut v);
        assert_eq!(p["p50"], 501.0);
        assert_eq!(p["p99"], 990.0);
        assert_eq!(p["p99.9"], 999.0);
        assert_eq!(p["max"], 1000.0);
        assert_eq!(percentiles(&mut []), Value::Null);
    }
}
