//! The effects worker: delivers what `switchboard_core::store::effects` queued — emails
//! (notifications, calendar invites), Telegram messages to the sales team, and signed CRM
//! webhooks — and is the only place those are retried.
//!
//! Like the outbound dispatcher it claims due rows with a lease, so two workers never hold the
//! same effect, and records every attempt (the delivery log). The one window it cannot close is
//! a crash after the receiver accepted an effect and before `done` was committed: the lease
//! expires and the effect is performed again. Webhooks carry the idempotency key in a header and
//! emails a stable `Message-ID`, so receivers can de-duplicate even then; the redelivery is
//! logged and counted (`switchboard_effect_redeliveries_total`).
//!
//! The same task also sends the reminders of unclaimed escalations (see
//! [`crate::handoff::remind`]).

use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard_core::egress::Egress;

use chrono::Utc;
use secrecy::ExposeSecret;
use serde_json::Value;
use switchboard_channels::email::{self, Notice};
use switchboard_channels::webhook::{hex, hmac_sha256};
use switchboard_channels::{ChannelSettings, Delivery, OutboundMessage, SendError};
use switchboard_core::model::ChannelKind;
use switchboard_core::retry::Backoff;
use switchboard_core::store::effects::{self, AttemptRecord, Effect, EffectKind, Outcome};
use switchboard_core::store::{actions, channels, platform};
use switchboard_core::{ChannelId, DbError, TenantId, TenantTx};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn, Instrument};

use crate::Services;

/// How many effects one claim takes.
const BATCH: i32 = 16;
/// How long a claimed effect is reserved for this worker.
pub const LEASE: Duration = Duration::from_secs(60);
/// Longest sleep between polls when nothing is due (turns and the API wake us directly).
const MAX_IDLE: Duration = Duration::from_secs(2);
/// Header carrying the signature of a webhook: `t=<unix seconds>,v1=<hex HMAC-SHA256>`.
pub const SIGNATURE_HEADER: &str = "x-switchboard-signature";

/// Tunables of the worker (tests shorten them).
#[derive(Clone, Copy, Debug)]
pub struct EffectsConfig {
    pub lease: Duration,
    /// First retry delay; doubled per attempt, capped at `max_backoff`.
    pub backoff_base: Duration,
    pub max_backoff: Duration,
}

impl Default for EffectsConfig {
    fn default() -> Self {
        EffectsConfig {
            lease: LEASE,
            backoff_base: Duration::from_secs(2),
            max_backoff: Duration::from_secs(600),
        }
    }
}

/// Starts the worker; it runs until `shutdown` turns true.
pub fn spawn(services: Arc<Services>, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(
        async move {
            info!("effects worker started");
            loop {
                if *shutdown.borrow() {
                    break;
                }
                if let Err(e) = crate::handoff::send_due_reminders(&services).await {
                    warn!(error = %e, "could not send escalation reminders");
                }
                let lease = services.effects.lease;
                let claimed = match platform::claim_effects(services.db.pool(), BATCH, lease).await
                {
                    Ok(rows) => rows,
                    Err(e) => {
                        warn!(error = %e, "could not claim effects");
                        Vec::new()
                    }
                };
                let busy = claimed.len() as i32 == BATCH;
                // One after the other, oldest first: effects are few, and a sales team reads
                // its notifications in the order they happened.
                for row in claimed {
                    if let Err(e) = perform(&services, row).await {
                        warn!(effect_id = %row.id, error = %e, "could not record an effect attempt");
                    }
                }
                if busy {
                    continue;
                }
                let wait = match platform::next_effect_due(services.db.pool()).await {
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
                    _ = services.effects_kick.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => {}
                }
            }
            info!("effects worker stopped");
        }
        .instrument(tracing::info_span!("effects")),
    )
}

/// What one attempt ended with.
struct Attempted {
    outcome: Outcome,
    status_code: Option<i32>,
    detail: String,
}

impl Attempted {
    fn ok(detail: impl Into<String>) -> Self {
        Attempted {
            outcome: Outcome::Ok,
            status_code: None,
            detail: detail.into(),
        }
    }
    fn skipped(detail: impl Into<String>) -> Self {
        Attempted {
            outcome: Outcome::Skipped,
            status_code: None,
            detail: detail.into(),
        }
    }
    fn from_send(e: SendError) -> Self {
        let (outcome, detail) = match e {
            SendError::Permanent(d) => (Outcome::Permanent, d),
            SendError::Transient(d) => (Outcome::Transient, d),
            SendError::RateLimited { message, .. } => (Outcome::Transient, message),
        };
        Attempted {
            outcome,
            status_code: None,
            detail,
        }
    }
}

/// Performs one claimed effect and records the attempt.
async fn perform(services: &Services, row: platform::ClaimedEffect) -> Result<(), DbError> {
    let mut tx = services.db.tenant(row.tenant_id).await?;
    let Some(effect) = effects::load(&mut tx, row.id).await? else {
        tx.rollback().await?;
        return Ok(());
    };
    let settings = actions::get(&mut tx).await?;
    tx.commit().await?;
    // A trace of its own, like a delivery's (the worker's span lasts as long as the process).
    let span = tracing::info_span!(parent: None, "effect", tenant_id = %row.tenant_id, effect_id = %effect.id, kind = effect.kind.as_str(), purpose = %effect.purpose);
    async {
        if row.redelivery {
            warn!(attempts = row.attempts, "performing an effect again after an interrupted attempt; the receiver may get it twice");
            metrics::counter!("switchboard_effect_redeliveries_total").increment(1);
        }
        let started = Instant::now();
        let attempted = match effect.kind {
            EffectKind::Email => email_effect(services, row.tenant_id, &effect, &settings).await,
            EffectKind::Telegram => {
                telegram_effect(services, row.tenant_id, &effect, &settings).await
            }
            EffectKind::Webhook => webhook_effect(services, row.tenant_id, &effect, &settings).await,
        };
        let retry_at = (attempted.outcome == Outcome::Transient && row.attempts < effect.max_attempts)
            .then(|| {
                let wait = backoff(&services.effects, row.attempts);
                Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default()
            });
        match attempted.outcome {
            Outcome::Ok => info!("effect delivered"),
            Outcome::Skipped => warn!(reason = %attempted.detail, "effect skipped"),
            _ if retry_at.is_some() => warn!(error = %attempted.detail, attempts = row.attempts, "effect failed; will retry"),
            _ => warn!(error = %attempted.detail, attempts = row.attempts, "effect failed for good"),
        }
        let outcome = match attempted.outcome {
            Outcome::Ok => "ok",
            Outcome::Skipped => "skipped",
            _ if retry_at.is_some() => "retry",
            _ => "failed",
        };
        metrics::counter!("switchboard_effects_total", "kind" => effect.kind.as_str(), "result" => outcome)
            .increment(1);
        let mut tx = services.db.tenant(row.tenant_id).await?;
        effects::record(
            &mut tx,
            effect.id,
            &AttemptRecord {
                attempt: row.attempts,
                outcome: attempted.outcome,
                status_code: attempted.status_code,
                detail: &attempted.detail,
                duration_ms: started.elapsed().as_millis().min(i32::MAX as u128) as i32,
                retry_at,
            },
        )
        .await?;
        tx.commit().await
    }
    .instrument(span)
    .await
}

/// The wait after failed attempt `attempts` (1-based): `backoff_base` doubled per attempt, at
/// most `max_backoff`.
fn backoff(config: &EffectsConfig, attempts: i32) -> Duration {
    Backoff::new(config.backoff_base, config.max_backoff).delay(attempts.max(1) as u32 - 1)
}

/// The settings of the channel an effect leaves through: the one it names, else the tenant's
/// notification channel of that kind, else its first enabled channel of that kind.
async fn channel_settings(
    services: &Services,
    tenant: TenantId,
    kind: ChannelKind,
    named: Option<ChannelId>,
) -> Result<Option<ChannelSettings>, String> {
    let open = async {
        let mut tx: TenantTx = services.db.tenant(tenant).await?;
        let record = match named {
            Some(id) => channels::get(&mut tx, id).await?,
            None => channels::list_records(&mut tx)
                .await?
                .into_iter()
                .find(|r| r.channel.kind == kind && r.channel.enabled),
        };
        tx.commit().await?;
        Ok::<_, DbError>(record)
    };
    let record = open.await.map_err(|e| e.to_string())?;
    let Some(record) = record.filter(|r| r.channel.kind == kind) else {
        return Ok(None);
    };
    ChannelSettings::open(
        kind,
        tenant,
        &record.config,
        record.secrets_enc.as_deref(),
        services.embedders.master_key(),
    )
    .map(Some)
    .map_err(|e| format!("channel settings: {e}"))
}

fn channel_in(payload: &Value) -> Option<ChannelId> {
    payload["channel_id"]
        .as_str()
        .and_then(|s| s.parse::<uuid::Uuid>().ok())
        .map(ChannelId)
}

async fn email_effect(
    services: &Services,
    tenant: TenantId,
    effect: &Effect,
    settings: &actions::ActionSettings,
) -> Attempted {
    let p = &effect.payload;
    let to: Vec<String> = p["to"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    if to.is_empty() {
        return Attempted::skipped("no recipient");
    }
    let named = channel_in(p).or(settings.notify_email_channel_id.map(ChannelId));
    let channel = match channel_settings(services, tenant, ChannelKind::Email, named).await {
        Ok(Some(ChannelSettings::Email(s))) => s,
        Ok(_) => {
            return Attempted::skipped(
                "no email channel is configured to send notifications (add an email channel or set notify_email_channel_id)",
            )
        }
        Err(e) => {
            return Attempted {
                outcome: Outcome::Permanent,
                status_code: None,
                detail: e,
            }
        }
    };
    let ics = match (p["ics"]["method"].as_str(), p["ics"]["content"].as_str()) {
        (Some(m), Some(c)) => Some((m, c)),
        _ => None,
    };
    let notice = Notice {
        to: &to,
        subject: p["subject"].as_str().unwrap_or("Switchboard"),
        text: p["text"].as_str().unwrap_or(""),
        ics,
        key: &effect.idempotency_key,
    };
    match email::send_notice(&channel, services.outbound.egress, &notice).await {
        Ok(r) => Attempted::ok(format!(
            "accepted by the SMTP server as {}",
            r.provider_ref.unwrap_or_default()
        )),
        Err(e) => Attempted::from_send(e),
    }
}

async fn telegram_effect(
    services: &Services,
    tenant: TenantId,
    effect: &Effect,
    settings: &actions::ActionSettings,
) -> Attempted {
    let p = &effect.payload;
    let Some(chat) = p["chat_id"].as_str() else {
        return Attempted::skipped("no chat id");
    };
    let named = channel_in(p).or(settings.notify_telegram_channel_id.map(ChannelId));
    let channel = match channel_settings(services, tenant, ChannelKind::Telegram, named).await {
        Ok(Some(s @ ChannelSettings::Telegram(_))) => s,
        Ok(_) => {
            return Attempted::skipped(
                "no Telegram channel is configured to send notifications (add a Telegram channel or set notify_telegram_channel_id)",
            )
        }
        Err(e) => {
            return Attempted {
                outcome: Outcome::Permanent,
                status_code: None,
                detail: e,
            }
        }
    };
    let delivery = Delivery {
        settings: &channel,
        last_inbound_at: None,
        status_callback_url: None,
        last_inbound_payload: None,
    };
    let msg = OutboundMessage {
        channel_id: None,
        to: chat.to_owned(),
        text: p["text"].as_str().unwrap_or("").to_owned(),
        message_id: None,
        choices: Vec::new(),
    };
    match services
        .outbound
        .send(ChannelKind::Telegram, &delivery, &msg)
        .await
    {
        Ok(r) => Attempted::ok(format!(
            "sent as {}",
            r.provider_ref.unwrap_or_else(|| "?".into())
        )),
        Err(e) => Attempted::from_send(e),
    }
}

/// The signature header value of a webhook body sent at `timestamp`:
/// `t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn sign_webhook(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    format!("t={timestamp},v1={}", hex(&hmac_sha256(secret, &signed)))
}

/// The HTTP client of CRM webhooks. Unlike the channels' client it never follows redirects:
/// on a 301/302/303 reqwest would repeat the request as a GET without the body, the new
/// location would answer 200, and a lead the CRM never received would be logged as delivered.
/// A redirect is recorded as a failed attempt instead, with its status, for an admin to fix
/// the URL. Timeouts match the channels' client (a hung CRM must not hold the worker).
fn crm_client(egress: Egress) -> &'static reqwest::Client {
    static PUBLIC: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    static ANY: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let cell = match egress {
        Egress::PublicOnly => &PUBLIC,
        Egress::Unrestricted => &ANY,
    };
    cell.get_or_init(|| {
        egress
            .http(
                reqwest::Client::builder()
                    .timeout(Duration::from_secs(15))
                    .connect_timeout(Duration::from_secs(5)),
                0,
            )
            .build()
            .expect("the HTTP client builds with static settings")
    })
}

async fn webhook_effect(
    services: &Services,
    tenant: TenantId,
    effect: &Effect,
    settings: &actions::ActionSettings,
) -> Attempted {
    let p = &effect.payload;
    // The URL is taken from the settings at send time unless the effect names one, so a
    // corrected URL also serves effects queued before the fix.
    let Some(url) = p["url"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| settings.crm_webhook_url.clone())
    else {
        return Attempted::skipped("no CRM webhook URL is configured");
    };
    let secret = match settings.crm_secret(services.embedders.master_key(), tenant) {
        Ok(Some(s)) => s,
        Ok(None) => return Attempted::skipped("no CRM secret is configured"),
        Err(e) => {
            return Attempted {
                outcome: Outcome::Permanent,
                status_code: None,
                detail: format!("the CRM secret cannot be opened: {e}"),
            }
        }
    };
    let body = serde_json::json!({
        "id": effect.id,
        "event": p["event"],
        "created_at": effect.created_at,
        "data": p["body"],
    });
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let signature = sign_webhook(
        secret.expose_secret().as_bytes(),
        Utc::now().timestamp(),
        &bytes,
    );
    // A literal address skips the resolver's check: checked here, before every attempt.
    let egress = services.outbound.egress;
    if let Err(refused) = egress.check_url(&url) {
        return Attempted {
            outcome: Outcome::Permanent,
            status_code: None,
            detail: format!("the CRM webhook URL is refused: {refused}"),
        };
    }
    let sent = crm_client(egress)
        .post(&url)
        .header("content-type", "application/json")
        .header(SIGNATURE_HEADER, signature)
        .header(
            "x-switchboard-event",
            p["event"].as_str().unwrap_or("event"),
        )
        .header("x-switchboard-delivery", effect.id.to_string())
        .header("idempotency-key", &effect.idempotency_key)
        .body(bytes)
        .send()
        .await;
    match sent {
        Ok(resp) => {
            // Only the status line is kept: the body of whatever answered is not stored or
            // shown (a misdirected webhook must not become a way to read another server).
            let status = resp.status();
            let outcome = if status.is_success() {
                Outcome::Ok
            } else if status.as_u16() == 429 || status.as_u16() == 408 || status.is_server_error() {
                Outcome::Transient
            } else {
                Outcome::Permanent
            };
            Attempted {
                outcome,
                status_code: Some(status.as_u16() as i32),
                detail: format!(
                    "HTTP {} {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("")
                )
                .trim_end()
                .to_owned(),
            }
        }
        Err(e) => match switchboard_core::egress::refusal(&e) {
            Some(refused) => Attempted {
                outcome: Outcome::Permanent,
                status_code: None,
                detail: format!("the CRM webhook URL is refused: {refused}"),
            },
            None => Attempted {
                outcome: Outcome::Transient,
                status_code: None,
                detail: format!("the CRM endpoint is unreachable: {}", e.without_url()),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_signatures_are_hmac_sha256_of_timestamp_and_body() {
        // Reference value from Python's hmac module:
        // hmac.new(b'whsec_test_secret_123', b'1700000000.{"a":1}', hashlib.sha256).hexdigest()
        let s = sign_webhook(b"whsec_test_secret_123", 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(
            s,
            "t=1700000000,v1=e89dcbfdce3392fb275033fb083d8c81e095a63bf687d9a2cd50e7d5f55e21f6"
        );
        assert_ne!(s, sign_webhook(b"other", 1_700_000_000, br#"{"a":1}"#));
        assert_ne!(
            s,
            sign_webhook(b"whsec_test_secret_123", 1_700_000_001, br#"{"a":1}"#)
        );
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let c = EffectsConfig::default();
        assert_eq!(backoff(&c, 1), Duration::from_secs(2));
        assert_eq!(backoff(&c, 2), Duration::from_secs(4));
        assert_eq!(backoff(&c, 20), Duration::from_secs(600));
    }
}
