//! A circuit breaker for one tenant's model endpoint.
//!
//! Closed: calls go through; `failure_threshold` consecutive failed calls open it. Open: calls
//! fail at once (no network, no timeout to wait out) until `cooldown` has passed. Half-open: one
//! probe call goes through while the others still fail fast; its success closes the breaker,
//! its failure opens it for another cool-down. One tenant's dead provider therefore costs its
//! own customers a fast fallback answer and costs other tenants nothing.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// When a breaker opens and for how long.
#[derive(Clone, Copy, Debug)]
pub struct BreakerConfig {
    pub failure_threshold: u32,
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 3,
            cooldown: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// The state a breaker is in, for status pages and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

/// One endpoint's breaker. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    state: Mutex<State>,
}

/// Permission to make one call. Report its outcome with [`Permit::record`]; a permit dropped
/// without a report (the caller was cancelled) frees a half-open probe slot and records nothing.
#[derive(Debug)]
pub struct Permit {
    breaker: Arc<CircuitBreaker>,
    probe: bool,
    done: bool,
}

impl CircuitBreaker {
    pub fn new(config: BreakerConfig) -> Arc<CircuitBreaker> {
        Arc::new(CircuitBreaker {
            config,
            state: Mutex::new(State::Closed { failures: 0 }),
        })
    }

    /// A permit for one call, or how long the breaker stays open.
    pub fn acquire(self: &Arc<Self>) -> Result<Permit, Duration> {
        let mut s = self.state.lock().expect("breaker lock");
        let now = Instant::now();
        let probe = match *s {
            State::Closed { .. } => false,
            State::Open { until } if now < until => return Err(until - now),
            State::Open { .. } | State::HalfOpen { probing: false } => {
                *s = State::HalfOpen { probing: true };
                true
            }
            State::HalfOpen { probing: true } => return Err(self.config.cooldown),
        };
        Ok(Permit {
            breaker: self.clone(),
            probe,
            done: false,
        })
    }

    pub fn state(&self) -> BreakerState {
        match *self.state.lock().expect("breaker lock") {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { until } if Instant::now() < until => BreakerState::Open,
            State::Open { .. } | State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    fn record(&self, success: bool) {
        let mut s = self.state.lock().expect("breaker lock");
        *s = if success {
            State::Closed { failures: 0 }
        } else {
            match *s {
                State::Closed { failures } if failures + 1 < self.config.failure_threshold => {
                    State::Closed {
                        failures: failures + 1,
                    }
                }
                _ => {
                    tracing::warn!(cooldown = ?self.config.cooldown, "model endpoint circuit opened");
                    State::Open {
                        until: Instant::now() + self.config.cooldown,
                    }
                }
            }
        };
    }
}

impl Permit {
    /// Reports the call's outcome.
    pub fn record(mut self, success: bool) {
        self.done = true;
        self.breaker.record(success);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.done && self.probe {
            let mut s = self.breaker.state.lock().expect("breaker lock");
            if *s == (State::HalfOpen { probing: true }) {
                *s = State::HalfOpen { probing: false };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(cooldown_ms: u64) -> Arc<CircuitBreaker> {
        CircuitBreaker::new(BreakerConfig {
            failure_threshold: 2,
            cooldown: Duration::from_millis(cooldown_ms),
        })
    }

    #[test]
    fn opens_after_consecutive_failures_and_probes_after_cooldown() {
        let b = breaker(40);
        b.acquire().unwrap().record(false);
        b.acquire().unwrap().record(true); // success resets the count
        b.acquire().unwrap().record(false);
        assert_eq!(b.state(), BreakerState::Closed);
        b.acquire().unwrap().record(false);
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.acquire().is_err(), "open: fail fast");
        std::thread::sleep(Duration::from_millis(50));
        let probe = b.acquire().expect("half-open lets one probe through");
        assert!(b.acquire().is_err(), "only one probe at a time");
        probe.record(false);
        assert_eq!(b.state(), BreakerState::Open, "failed probe reopens");
        std::thread::sleep(Duration::from_millis(50));
        b.acquire().unwrap().record(true);
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.acquire().is_ok());
    }

    #[test]
    fn a_dropped_probe_frees_the_slot() {
        let b = breaker(10);
        b.acquire().unwrap().record(false);
        b.acquire().unwrap().record(false);
        std::thread::sleep(Duration::from_millis(20));
        drop(b.acquire().unwrap());
        assert!(
            b.acquire().is_ok(),
            "a cancelled probe must not wedge the breaker"
        );
    }
}
