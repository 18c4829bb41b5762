//! A short-lived in-process cache of channel id → tenant routes.
//!
//! Every public request names a channel in its URL, and resolving it is a cross-tenant lookup
//! (`platform_resolve_channel`). Channels change rarely, so a few seconds of caching removes a
//! database round trip from the hot path; a disabled or deleted channel stops being accepted
//! within [`TTL`]. Unknown ids are remembered too, for [`UNKNOWN_TTL`], so a client probing
//! made-up ids (or a provider still posting to a deleted channel) costs no query per request.
//! That cannot hide a new channel: its id is a fresh random UUID, which nobody could have asked
//! for before it existed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use switchboard_core::store::platform::{self, ChannelRoute};
use switchboard_core::{ChannelId, DbError};

/// How long a resolved route is trusted.
pub const TTL: Duration = Duration::from_secs(5);
/// How long an unknown id is remembered as unknown.
pub const UNKNOWN_TTL: Duration = Duration::from_secs(60);
/// Entries kept at most (of each kind); a map is cleared when full (it refills from traffic).
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Default)]
pub struct RouteCache {
    entries: Mutex<HashMap<ChannelId, (ChannelRoute, Instant)>>,
    unknown: Mutex<HashMap<ChannelId, Instant>>,
    /// Database lookups made (cache misses), for tests and diagnostics.
    lookups: std::sync::atomic::AtomicU64,
}

impl RouteCache {
    /// How many times this cache asked the database.
    pub fn lookups(&self) -> u64 {
        self.lookups.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub async fn resolve(
        &self,
        pool: &PgPool,
        channel: ChannelId,
    ) -> Result<Option<ChannelRoute>, DbError> {
        if let Some((route, at)) = self.entries.lock().expect("route cache").get(&channel) {
            if at.elapsed() < TTL {
                return Ok(Some(*route));
            }
        }
        if let Some(at) = self.unknown.lock().expect("route cache").get(&channel) {
            if at.elapsed() < UNKNOWN_TTL {
                metrics::counter!("switchboard_unknown_channel_total", "cached" => "true")
                    .increment(1);
                return Ok(None);
            }
        }
        self.lookups
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let route = platform::resolve_channel(pool, channel).await?;
        match route {
            Some(route) => {
                let mut entries = self.entries.lock().expect("route cache");
                if entries.len() >= MAX_ENTRIES {
                    entries.clear();
                }
                entries.insert(channel, (route, Instant::now()));
            }
            None => {
                metrics::counter!("switchboard_unknown_channel_total", "cached" => "false")
                    .increment(1);
                let mut unknown = self.unknown.lock().expect("route cache");
                if unknown.len() >= MAX_ENTRIES {
                    unknown.clear();
                }
                unknown.insert(channel, Instant::now());
            }
        }
        Ok(route)
    }
}
