//! A short-lived in-process cache of channel id → tenant routes.
//!
//! Every public request names a channel in its URL, and resolving it is a cross-tenant lookup
//! (`platform_resolve_channel`). Channels change rarely, so a few seconds of caching removes a
//! database round trip from the hot path; a disabled or deleted channel stops being accepted
//! within [`TTL`]. Unknown ids are not cached, so creating a channel takes effect at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use switchboard_core::store::platform::{self, ChannelRoute};
use switchboard_core::{ChannelId, DbError};

/// How long a resolved route is trusted.
pub const TTL: Duration = Duration::from_secs(5);
/// Entries kept at most; the cache is cleared when full (it refills from live traffic).
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Default)]
pub struct RouteCache {
    entries: Mutex<HashMap<ChannelId, (ChannelRoute, Instant)>>,
}

impl RouteCache {
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
        let route = platform::resolve_channel(pool, channel).await?;
        if let Some(route) = route {
            let mut entries = self.entries.lock().expect("route cache");
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(channel, (route, Instant::now()));
        }
        Ok(route)
    }
}
