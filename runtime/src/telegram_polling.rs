//! Telegram long polling, for local development without a public URL: every enabled Telegram
//! channel whose `mode` is `polling` gets a task that calls `getUpdates` and feeds each update
//! through the same parser and the same storing path as the webhook. The offset is kept in
//! memory and advanced only after an update is stored, so a crash refetches (and the unique key
//! drops) what was already stored.

use std::time::Duration;

use switchboard_channels::telegram::{self, Mode};
use switchboard_channels::ChannelSettings;
use switchboard_core::model::ChannelKind;
use switchboard_core::{ChannelId, TenantId};
use tracing::{info, warn};

use crate::http::{webhooks, AppState};

/// Pause after an empty answer or an error.
const IDLE: Duration = Duration::from_secs(1);

/// Runs until the application shuts down.
pub async fn run(state: AppState) {
    crate::pollers::supervise(
        state,
        ChannelKind::Telegram,
        "telegram_polling",
        |s| matches!(s, ChannelSettings::Telegram(t) if t.mode == Mode::Polling),
        poll_channel,
    )
    .await
}

/// The channel's Telegram settings, if it still is an enabled Telegram channel.
async fn settings(
    state: &AppState,
    tenant: TenantId,
    channel: ChannelId,
) -> Option<telegram::Settings> {
    match crate::pollers::open_settings(state, tenant, channel).await? {
        ChannelSettings::Telegram(s) => Some(s),
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
        if let Err(e) = state.services.outbound.egress.check_url(&s.api_url) {
            warn!(error = %e, "long polling stopped: the channel's api_url is refused");
            break;
        }
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
                    let stored = webhooks::store(
                        &state,
                        tenant,
                        channel,
                        ChannelKind::Telegram,
                        &items,
                        None,
                    );
                    match stored.await {
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
