//! IMAP polling for email channels with `imap_host` set: every `imap_poll_secs`, unseen
//! messages are fetched (not marked read), stored through the same path as the inbound webhook
//! (threading included), and only then marked `\Seen`. A crash in between fetches them again;
//! the unique key on the `Message-ID` drops the copies.

use std::time::Duration;

use switchboard_channels::{email, email_imap, ChannelSettings};
use switchboard_core::model::ChannelKind;
use switchboard_core::{ChannelId, TenantId};
use tracing::{info, warn};

use crate::http::{webhooks, AppState};

/// Runs until the application shuts down.
pub async fn run(state: AppState) {
    crate::pollers::supervise(
        state,
        ChannelKind::Email,
        "imap_polling",
        |s| matches!(s, ChannelSettings::Email(e) if e.imap_host.is_some()),
        poll_mailbox,
    )
    .await
}

/// The channel's settings if it is an enabled email channel with IMAP configured.
async fn settings(
    state: &AppState,
    tenant: TenantId,
    channel: ChannelId,
) -> Option<email::Settings> {
    match crate::pollers::open_settings(state, tenant, channel).await? {
        ChannelSettings::Email(s) if s.imap_host.is_some() => Some(s),
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
        match email_imap::fetch_unseen(&s, state.services.outbound.egress).await {
            Ok(fetched) => {
                let mut stored = Vec::new();
                for f in fetched {
                    let Some(item) = email_imap::parse_raw(channel, &f.raw) else {
                        warn!(uid = f.uid, "unreadable message; marked seen and skipped");
                        stored.push(f.uid);
                        continue;
                    };
                    // IMAP has no signature, so no nonce: the mailbox login authenticates.
                    match webhooks::store(
                        &state,
                        tenant,
                        channel,
                        ChannelKind::Email,
                        &[item],
                        None,
                    )
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
                if let Err(e) =
                    email_imap::mark_seen(&s, state.services.outbound.egress, &stored).await
                {
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
