//! The outbound dispatcher: the only component that retries deliveries.
//!
//! It claims due outbox rows with a lease (`FOR UPDATE SKIP LOCKED` inside
//! `platform_claim_outbox`), so two dispatchers never hold the same row, delivers each through
//! its channel adapter, and records the result. A crash between a provider accepting a send and
//! the `sent` mark being committed is the one window in which a message can go out twice: the
//! lease expires and the row is retried. That window is as narrow as one UPDATE and is logged.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use switchboard_channels::{ChannelSettings, Delivery, OutboundMessage, SendError, SendReceipt};
use switchboard_core::retry::Backoff;
use switchboard_core::store::{channels, outbox, platform};
use switchboard_core::{DbError, TenantId};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn, Instrument};

use crate::Services;

/// How many rows one claim takes.
const BATCH: i32 = 64;
/// How long a claimed row is reserved for this dispatcher.
const LEASE: Duration = Duration::from_secs(30);
/// Deliveries in flight at once.
const CONCURRENCY: usize = 16;
/// How long a delivery's outcome may wait for the database to come back before the row is left
/// to its lease (and so to a redelivery).
const RECORD_PATIENCE: Duration = Duration::from_secs(20);
/// Longest sleep between polls when nothing is due (a safety net; turns wake us directly).
const MAX_IDLE: Duration = Duration::from_secs(2);

/// Starts the dispatcher; it runs until `shutdown` turns true.
pub fn spawn(services: Arc<Services>, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(
        async move {
            info!("outbound dispatcher started");
            loop {
                if *shutdown.borrow() {
                    break;
                }
                let claimed = match platform::claim_outbox(services.db.pool(), BATCH, LEASE).await
                {
                    Ok(rows) => rows,
                    Err(e) => {
                        warn!(error = %e, "could not claim outbox rows");
                        Vec::new()
                    }
                };
                let busy = claimed.len() as i32 == BATCH;
                // Conversations are delivered concurrently, the rows of one conversation one
                // after the other, oldest first (ids are time-ordered UUIDv7), so a customer
                // never receives two replies of one batch out of order.
                let mut by_conversation: BTreeMap<_, Vec<_>> = BTreeMap::new();
                for row in claimed {
                    by_conversation.entry(row.conversation_id).or_default().push(row);
                }
                futures::stream::iter(by_conversation.into_values())
                    .for_each_concurrent(CONCURRENCY, |mut rows| {
                        let services = services.clone();
                        async move {
                            rows.sort_by_key(|r| r.id.0);
                            let mut held_until = None;
                            for row in rows {
                                // A row put back for later (rate limit, retry) holds back the
                                // rows after it, so they never overtake it.
                                let result = match held_until {
                                    Some(at) => hold(&services, &row, at).await.map(|()| Some(at)),
                                    None => deliver(&services, row).await,
                                };
                                match result {
                                    Ok(later) => held_until = held_until.or(later),
                                    Err(e) => {
                                        warn!(outbox_id = %row.id, error = %e, "could not record a delivery")
                                    }
                                }
                            }
                        }
                    })
                    .await;
                if busy {
                    continue;
                }
                let wait = match platform::next_outbox_due(services.db.pool()).await {
                    Ok(Some(due)) => (due - Utc::now())
                        .to_std()
                        .unwrap_or(Duration::ZERO)
                        .min(MAX_IDLE),
                    _ => MAX_IDLE,
                };
                if wait.is_zero() {
                    continue;
                }
                tokio::select! {
                    _ = services.outbox_kick.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => {}
                }
            }
            info!("outbound dispatcher stopped");
        }
        .instrument(tracing::info_span!("dispatcher")),
    )
}

/// Puts a claimed row back until `at` without counting the attempt.
async fn hold(
    services: &Services,
    row: &platform::ClaimedOutbox,
    at: chrono::DateTime<Utc>,
) -> Result<(), DbError> {
    let mut tx = services.db.tenant(row.tenant_id).await?;
    outbox::mark_deferred(&mut tx, row.id, at).await?;
    tx.commit().await
}

/// Delivers one claimed row and records the outcome; returns when the row is due again if it
/// was put back for later.
async fn deliver(
    services: &Services,
    row: platform::ClaimedOutbox,
) -> Result<Option<chrono::DateTime<Utc>>, DbError> {
    let mut tx = services.db.tenant(row.tenant_id).await?;
    let Some(item) = outbox::load(&mut tx, row.id).await? else {
        tx.rollback().await?;
        return Ok(None);
    };
    tx.commit().await?;
    // A trace of its own (not a child of the dispatcher's span, which lasts as long as the
    // process): one delivery is one trace in a collector.
    let span = tracing::info_span!(parent: None, "deliver", tenant_id = %row.tenant_id, conversation_id = %item.conversation_id, channel = %item.channel_kind, outbox_id = %row.id);
    async {
        if row.redelivery {
            // The one window the outbox cannot close: a previous attempt may have reached the
            // provider just before its process stopped. Say so, then deliver again.
            warn!(attempts = row.attempts, "redelivering after an interrupted attempt; the customer may receive this message twice");
            metrics::counter!("switchboard_redeliveries_total").increment(1);
        }
        let result = if item.contact_opted_out {
            // SMS STOP: nothing is ever sent to an opted-out address.
            Err(SendError::Permanent(
                "the recipient opted out (STOP); nothing is sent until they opt back in".into(),
            ))
        } else {
            send(services, row.tenant_id, &item).await
        };
        // The provider has answered: that answer must be recorded, or a retry would send the
        // message again. A database that is briefly away (restarting) is waited for, well
        // within the row's lease.
        const PAUSES: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let started = std::time::Instant::now();
        let mut retries = 0;
        let later = loop {
            let pause = PAUSES.nominal(retries);
            match record(services, &row, &item, &result).await {
                Ok(later) => break later,
                Err(DbError::Sql(e)) if started.elapsed() + pause < RECORD_PATIENCE => {
                    warn!(error = %e, "could not record a delivery yet; trying again");
                    tokio::time::sleep(pause).await;
                    retries += 1;
                }
                Err(e) => return Err(e),
            }
        };
        Ok(later)
    }
    .instrument(span)
    .await
}

/// Records the outcome of one delivery attempt; returns when the row is due again if it was put
/// back for later.
async fn record(
    services: &Services,
    row: &platform::ClaimedOutbox,
    item: &outbox::OutboxItem,
    result: &Result<SendReceipt, SendError>,
) -> Result<Option<chrono::DateTime<Utc>>, DbError> {
    let mut tx = services.db.tenant(row.tenant_id).await?;
    let mut later = None;
    // Whether the message is now sent or failed (the inbox shows its delivery status);
    // a row put back for later changed nothing the inbox shows.
    let mut settled = true;
    let outcome;
    match result {
        Ok(receipt) => {
            outbox::mark_sent(&mut tx, row.id, receipt.provider_ref.as_deref()).await?;
            debug!("delivered");
            outcome = "sent";
        }
        Err(SendError::RateLimited {
            message,
            retry_after,
        }) => {
            // The provider's cap, not a fault: wait as asked (or back off) without using up
            // an attempt.
            let wait = retry_after.unwrap_or_else(|| backoff(row.attempts));
            let next = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
            outbox::mark_deferred(&mut tx, row.id, next).await?;
            later = Some(next);
            settled = false;
            debug!(reason = %message, ?wait, "rate limited; deferred");
            outcome = "rate_limited";
        }
        Err(SendError::Transient(e)) if row.attempts < services.config.outbox_max_attempts => {
            let backoff = backoff(row.attempts);
            channels::record_error(&mut tx, item.channel_id, e).await?;
            let next = Utc::now() + chrono::Duration::from_std(backoff).unwrap_or_default();
            outbox::mark_retry(&mut tx, row.id, e, next).await?;
            later = Some(next);
            settled = false;
            warn!(error = %e, attempts = row.attempts, ?backoff, "delivery failed; will retry");
            outcome = "retry";
        }
        Err(e) => {
            outbox::mark_failed(&mut tx, row.id, &e.to_string()).await?;
            channels::record_error(&mut tx, item.channel_id, &e.to_string()).await?;
            warn!(error = %e, attempts = row.attempts, "delivery failed for good");
            outcome = "failed";
        }
    }
    tx.commit().await?;
    services
        .metrics
        .outbound(row.tenant_id, item.channel_kind, outcome);
    if settled {
        services.inbox.publish(
            row.tenant_id,
            crate::inbox::InboxEvent::conversation(
                item.conversation_id,
                crate::inbox::ConversationReason::Delivery,
            ),
        );
    }
    Ok(later)
}

/// The wait after `attempts` failed sends: 2^attempts seconds, the exponent at most 8, at most
/// five minutes.
fn backoff(attempts: i32) -> Duration {
    const BACKOFF: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
    BACKOFF.delay(attempts.clamp(0, 8) as u32)
}

/// Opens the channel's settings and hands the message to its adapter.
async fn send(
    services: &Services,
    tenant: TenantId,
    item: &outbox::OutboxItem,
) -> Result<SendReceipt, SendError> {
    let mut msg = serde_json::from_value::<OutboundMessage>(item.payload.clone())
        .map_err(|e| SendError::Permanent(format!("unreadable outbox payload: {e}")))?;
    msg.channel_id = Some(item.channel_id);
    let settings = ChannelSettings::open(
        item.channel_kind,
        tenant,
        &item.channel_config,
        item.channel_secrets_enc.as_deref(),
        services.embedders.master_key(),
    )
    .map_err(|e| SendError::Permanent(format!("channel settings: {e}")))?;
    let cost = services.outbound.cost(&settings, &msg);
    services
        .outbound
        .limiter
        .try_acquire(item.channel_id, &msg.to, &settings, cost)
        .map_err(|wait| {
            metrics::counter!("switchboard_rate_limited_total", "what" => "send_cap").increment(1);
            SendError::RateLimited {
                message: "the channel's sending cap".into(),
                retry_after: Some(wait),
            }
        })?;
    let callback = services
        .outbound
        .status_callback_url(item.channel_kind, item.channel_id);
    let delivery = Delivery {
        settings: &settings,
        last_inbound_at: item.contact_last_inbound_at,
        status_callback_url: callback.as_deref(),
        last_inbound_payload: item.last_inbound_payload.as_ref(),
    };
    services
        .outbound
        .send(item.channel_kind, &delivery, &msg)
        .await
}
