//! `switchboard_live_actors{actor}`: how many conversation agents and tenant supervisors are
//! alive in this process.
//!
//! Counted by a guard kept in the actor's state rather than by an increment in `pre_start` and
//! a decrement in `post_stop`: ractor skips `post_stop` for an actor that failed or was killed,
//! but it always drops the state, so the gauge cannot drift whatever way an actor ends.

/// One live actor of a kind, counted while the value exists.
pub(crate) struct LiveActor(metrics::Gauge);

impl LiveActor {
    pub(crate) fn conversation() -> LiveActor {
        LiveActor::new(metrics::gauge!("switchboard_live_actors", "actor" => "conversation"))
    }

    pub(crate) fn tenant() -> LiveActor {
        LiveActor::new(metrics::gauge!("switchboard_live_actors", "actor" => "tenant"))
    }

    fn new(gauge: metrics::Gauge) -> LiveActor {
        gauge.increment(1.0);
        LiveActor(gauge)
    }
}

impl Drop for LiveActor {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}
