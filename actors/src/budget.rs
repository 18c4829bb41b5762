//! The restart budget shared by the supervisors: at most `limit` restarts within a sliding
//! `window`, so a child that fails for good cannot make its supervisor loop.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Restart times of one child (or of all children of a supervisor) within the window.
#[derive(Debug)]
pub struct RestartBudget {
    limit: usize,
    window: Duration,
    restarts: VecDeque<Instant>,
}

impl RestartBudget {
    pub fn new(limit: usize, window: Duration) -> Self {
        Self {
            limit,
            window,
            restarts: VecDeque::new(),
        }
    }

    /// Records a restart if the budget allows one now; returns false when it is exhausted.
    pub fn try_spend(&mut self) -> bool {
        let now = Instant::now();
        while self
            .restarts
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.window)
        {
            self.restarts.pop_front();
        }
        if self.restarts.len() >= self.limit {
            return false;
        }
        self.restarts.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_limit_restarts_per_window() {
        let mut b = RestartBudget::new(2, Duration::from_millis(50));
        assert!(b.try_spend());
        assert!(b.try_spend());
        assert!(!b.try_spend());
        std::thread::sleep(Duration::from_millis(60));
        assert!(b.try_spend(), "old restarts leave the window");
    }
}
