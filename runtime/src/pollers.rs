//! What the pollers (Telegram long polling, IMAP) share: a supervisor that keeps one task per
//! enabled channel of a kind that wants polling, and the lookup of a channel's open settings.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use switchboard_channels::ChannelSettings;
use switchboard_core::model::ChannelKind;
use switchboard_core::store::{channels, platform};
use switchboard_core::{ChannelId, TenantId};
use tokio::task::JoinHandle;
use tracing::{warn, Instrument};

use crate::http::AppState;

/// How often the list of polled channels is refreshed.
const RESCAN: Duration = Duration::from_secs(5);

/// A channel's settings, if it still exists and is enabled.
pub async fn open_settings(
    state: &AppState,
    tenant: TenantId,
    channel: ChannelId,
) -> Option<ChannelSettings> {
    let mut tx = state.services.db.tenant(tenant).await.ok()?;
    let record = channels::get(&mut tx, channel).await.ok()??;
    tx.commit().await.ok()?;
    if !record.channel.enabled {
        return None;
    }
    state.configurator().open(&record).ok()
}

/// Until shutdown: every few seconds, starts `poll` (in a span named `span`) for each channel of
/// `kind` whose settings satisfy `wants` and that has no live task; waits for the tasks at the end.
pub async fn supervise<W, P, F>(
    state: AppState,
    kind: ChannelKind,
    span: &'static str,
    wants: W,
    poll: P,
) where
    W: Fn(&ChannelSettings) -> bool,
    P: Fn(AppState, TenantId, ChannelId) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let mut shutdown = state.shutdown.clone();
    let mut tasks: HashMap<ChannelId, JoinHandle<()>> = HashMap::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        tasks.retain(|_, t| !t.is_finished());
        match platform::channels_of_kind(state.services.db.pool(), kind).await {
            Ok(list) => {
                for (channel, tenant) in list {
                    if tasks.contains_key(&channel) {
                        continue;
                    }
                    if matches!(open_settings(&state, tenant, channel).await, Some(s) if wants(&s))
                    {
                        let span = tracing::info_span!("poller", poller = span, channel_id = %channel, tenant_id = %tenant);
                        let task = poll(state.clone(), tenant, channel).instrument(span);
                        tasks.insert(channel, tokio::spawn(task));
                    }
                }
            }
            Err(e) => warn!(error = %e, kind = kind.as_str(), "could not list channels to poll"),
        }
        tokio::select! {
            _ = tokio::time::sleep(RESCAN) => {}
            _ = shutdown.changed() => {}
        }
    }
    for (_, t) in tasks {
        let _ = t.await;
    }
}
