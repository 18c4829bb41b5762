//! Telegram long polling, for local development without a public URL: every enabled Telegram
//! channel whose `mode` is `polling` gets a task that calls `getUpdates` and feeds each update
//! through the same parser and the same storing path as the webhook. The offset is kept in
//! memory and advanced only after an update is stored, so a crash refetches (and the unique key
//! drops) what was already stored.

use std::collections::HashMap;
use std::time::Duration;

use switchboard_channels::telegram::{self, Mode};
use switchboard_channels::ChannelSettings;
use switchboard_core::model::ChannelKind;
use switchboard_core::store::{channels, platform};
use switchboard_core::{ChannelId, TenantId};
use tokio::task::JoinHandle;
use tracing::{info, warn, Instrument};

use crate::http::{webhooks, AppState};

/// How often the list of polling channels is refreshed.
const RESCAN: Duration = Duration::from_secs(5);
/// Pause after an empty answer or an error.
const IDLE: Duration = Duration::from_secs(1);

/// Runs until the application shuts down.
pub async fn run(state: AppState) {
    let mut shutdown = state.shutdown.clone();
    let mut tasks: HashMap<ChannelId, JoinHandle<()>> = HashMap::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        tasks.retain(|_, t| !t.is_finished());
        match platform::channels_of_kind(state.services.db.pool(), ChannelKind::Telegram).await {
            Ok(list) => {
                for (channel, tenant) in list {
                    if tasks.contains_key(&channel) {
                        continue;
                    }
                    if matches!(settings(&state, tenant, channel).await, Some(s) if s.mode == Mode::Polling)
                    {
                        let span = tracing::info_span!("telegram_polling", channel_id = %channel, tenant_id = %tenant);
                        tasks.insert(
                            channel,
                            tokio::spawn(
                                poll_channel(state.clone(), tenant, channel).instrument(span),
                            ),
                        );
                    }
                }
            }
            Err(e) => warn!(error = %e, "could not list Telegram channels"),
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

/// The channel's Telegram settings, if it still is an enabled Telegram channel.
async fn settings(
    state: &AppState,
    tenant: TenantId,
    channel: ChannelId,
) -> Option<telegram::Settings> {
    let mut tx = state.services.db.tenant(tenant).await.ok()?;
    let record = channels::get(&mut tx, channel).await.ok()??;
    tx.commit().await.ok()?;
    if !record.channel.enabled {
        return None;
    }
    match state.configurator().open(&record) {
        Ok(ChannelSettings::Telegram(s)) => Some(s),
        _ => None,
    }
}

async fn poll_channel(state: AppState, tenant: TenantId, channel: ChannelId) {
    info!("long polling started");
    let mut shutdown = state.shutdown.clone();
    let mut offset: i32 = 0;
    loop {
        if *shutdown.borrow() {
            break;
        }
        // Settings are re-read every round: a channel switched to webhooks or off stops here.
        let Some(s) = settings(&state, tenant, channel)
            .await
            .filter(|s| s.mode == Mode::Polling)
        else {
            break;
        };
        let polled = tokio::select! {
            r = telegram::poll(&state.services.outbound.http, &s, offset) => r,
            _ = shutdown.changed() => break,
        };
        let mut idle = true;
        match polled {
            Ok(updates) => {
                for update in updates {
                    idle = false;
                    let next = i32::try_from(update.id.0)
                        .unwrap_or(i32::MAX)
                        .saturating_add(1);
                    let items = match telegram::parse_polled(channel, &update) {
                        Ok(items) => items,
                        Err(e) => {
                            warn!(error = %e, "skipping an unreadable update");
                            offset = offset.max(next);
                            continue;
                        }
                    };
                    let settings = ChannelSettings::Telegram(s.clone());
                    let items = webhooks::transcribe_voice_notes(&state, &settings, items).await;
                    match webhooks::store(&state, tenant, channel, ChannelKind::Telegram, &items)
                        .await
                    {
                        Ok(woken) => {
                            webhooks::wake(&state, tenant, woken);
                            offset = offset.max(next);
                        }
                        Err(e) => {
                            warn!(error = ?e, "could not store a polled update; will fetch it again");
                            break;
                        }
                    }
                }
            }
            Err(e) => warn!(error = %e, "getUpdates failed"),
        }
        if idle {
            tokio::select! {
                _ = tokio::time::sleep(IDLE) => {}
                _ = shutdown.changed() => break,
            }
        }
    }
    info!("long polling stopped");
}
