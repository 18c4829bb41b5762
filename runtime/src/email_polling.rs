//! IMAP polling for email channels with `imap_host` set: every `imap_poll_secs`, unseen
//! messages are fetched (not marked read), stored through the same path as the inbound webhook
//! (threading included), and only then marked `\Seen`. A crash in between fetches them again;
//! the unique key on the `Message-ID` drops the copies.

use std::collections::HashMap;
use std::time::Duration;

use switchboard_channels::{email, email_imap, ChannelSettings};
use switchboard_core::model::ChannelKind;
use switchboard_core::store::{channels, platform};
use switchboard_core::{ChannelId, TenantId};
use tokio::task::JoinHandle;
use tracing::{info, warn, Instrument};

use crate::http::{webhooks, AppState};

/// How often the list of polled mailboxes is refreshed.
const RESCAN: Duration = Duration::from_secs(5);

/// Runs until the application shuts down.
pub async fn run(state: AppState) {
    let mut shutdown = state.shutdown.clone();
    let mut tasks: HashMap<ChannelId, JoinHandle<()>> = HashMap::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        tasks.retain(|_, t| !t.is_finished());
        match platform::channels_of_kind(state.services.db.pool(), ChannelKind::Email).await {
            Ok(list) => {
                for (channel, tenant) in list {
                    if tasks.contains_key(&channel) {
                        continue;
                    }
                    if settings(&state, tenant, channel).await.is_some() {
                        let span = tracing::info_span!("imap_polling", channel_id = %channel, tenant_id = %tenant);
                        tasks.insert(
                            channel,
                            tokio::spawn(
                                poll_mailbox(state.clone(), tenant, channel).instrument(span),
                            ),
                        );
                    }
                }
            }
            Err(e) => warn!(error = %e, "could not list email channels"),
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

/// The channel's settings if it is an enabled email channel with IMAP configured.
async fn settings(
    state: &AppState,
    tenant: TenantId,
    channel: ChannelId,
) -> Option<email::Settings> {
    let mut tx = state.services.db.tenant(tenant).await.ok()?;
    let record = channels::get(&mut tx, channel).await.ok()??;
    tx.commit().await.ok()?;
    if !record.channel.enabled {
        return None;
    }
    match state.configurator().open(&record) {
        Ok(ChannelSettings::Email(s)) if s.imap_host.is_some() => Some(s),
        _ => None,
    }
}

async fn poll_mailbox(state: AppState, tenant: TenantId, channel: ChannelId) {
    info!("IMAP polling started");
    let mut shutdown = state.shutdown.clone();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let Some(s) = settings(&state, tenant, channel).await else {
            break;
        };
        match email_imap::fetch_unseen(&s).await {
            Ok(fetched) => {
                let mut stored = Vec::new();
                for f in fetched {
                    let Some(item) = email_imap::parse_raw(channel, &f.raw) else {
                        warn!(uid = f.uid, "unreadable message; marked seen and skipped");
                        stored.push(f.uid);
                        continue;
                    };
                    match webhooks::store(&state, tenant, channel, ChannelKind::Email, &[item])
                        .await
                    {
                        Ok(woken) => {
                            webhooks::wake(&state, tenant, woken);
                            stored.push(f.uid);
                        }
                        Err(e) => {
                            warn!(error = ?e, "could not store a polled email; it stays unseen");
                            break;
                        }
                    }
                }
                if let Err(e) = email_imap::mark_seen(&s, &stored).await {
                    warn!(error = %e, "could not mark emails seen; they will be fetched again");
                }
            }
            Err(e) => warn!(error = %e, "IMAP poll failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(s.imap_poll_secs.max(1))) => {}
            _ = shutdown.changed() => break,
        }
    }
    info!("IMAP polling stopped");
}
