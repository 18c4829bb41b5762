//! Provider webhooks, one URL per configured channel: `/webhooks/{provider}/{channel_id}`.
//!
//! The order is the security argument: resolve the channel, open its settings, let the adapter
//! **verify** the request (signature, token) over the raw bytes, and only then store. A request
//! that fails verification is answered 401/403, counted in
//! `switchboard_webhook_rejected_total{kind,reason}` and logged without its body; nothing is
//! written. An authentic request is stored in one transaction (messages with their unique
//! provider ids, delivery reports, opt-outs) and committed before the provider gets its answer.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response as HttpResponse};
use switchboard_actors::RootMsg;
use switchboard_channels::{
    ChannelSettings, Headers, InboundItem, Reply, Response, WebhookError, WebhookRequest,
};
use switchboard_core::model::ChannelKind;
use switchboard_core::store::{channels, contacts, ingest, messages, outbox, turns};
use switchboard_core::{ChannelId, ConversationId, TenantId};
use tracing::{info, instrument, warn};

use super::error::ApiError;
use super::AppState;

/// Largest webhook body (WhatsApp sends up to 3 MB).
pub const MAX_WEBHOOK_BYTES: usize = 3 * 1024 * 1024 + 64 * 1024;
/// How often a synchronous channel (voice) looks for the agent's reply.
const ANSWER_POLL: Duration = Duration::from_millis(100);
/// Longest wait for a voice note's transcription before answering "please type".
const TRANSCRIBE_BUDGET: Duration = Duration::from_secs(15);

macro_rules! webhook_route {
    ($name:ident, $kind:expr) => {
        pub async fn $name(
            State(state): State<AppState>,
            Path(raw): Path<String>,
            method: Method,
            uri: Uri,
            headers: HeaderMap,
            body: Result<Bytes, BytesRejection>,
        ) -> Result<HttpResponse, ApiError> {
            handle(state, $kind, raw, method, uri, headers, body).await
        }
    };
}

webhook_route!(whatsapp, ChannelKind::Whatsapp);
webhook_route!(telegram, ChannelKind::Telegram);
webhook_route!(sms, ChannelKind::Sms);
webhook_route!(voice, ChannelKind::Voice);
webhook_route!(email, ChannelKind::Email);

#[instrument(skip_all, fields(channel = %kind, channel_id = %raw, tenant_id))]
async fn handle(
    state: AppState,
    kind: ChannelKind,
    raw: String,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<HttpResponse, ApiError> {
    let unknown = || ApiError::not_found(format!("no {kind} channel with id `{raw}`"));
    let channel: ChannelId = raw.parse().map_err(|_| unknown())?;
    let route = state
        .routes
        .resolve(state.services.db.pool(), channel)
        .await?
        .ok_or_else(unknown)?;
    if route.kind != kind {
        return Err(unknown());
    }
    let tenant = route.tenant_id;
    tracing::Span::current().record("tenant_id", tracing::field::display(tenant));
    if !route.enabled {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "channel_disabled",
            "this channel is switched off",
        ));
    }
    let body = body.map_err(|r| {
        let status = r.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(status, "payload_too_large", "the webhook body is too large")
        } else {
            ApiError::bad_request("unreadable_body", "the request body could not be read")
        }
    })?;
    let settings = load_settings(&state, tenant, channel).await?;

    let public_url = format!(
        "{}{}",
        state.public_base_url,
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let headers = Headers::new(
        headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?.to_owned()))),
    );
    let request = WebhookRequest {
        method: method.as_str(),
        public_url: &public_url,
        query: uri.query().unwrap_or(""),
        headers: &headers,
        body: &body,
    };
    let output = match settings.handle_webhook(channel, &request) {
        Ok(output) => output,
        Err(WebhookError::Rejected(rejection)) => {
            metrics::counter!("switchboard_webhook_rejected_total", "kind" => kind.as_str(), "reason" => rejection.reason())
                .increment(1);
            // Never the body: it is unauthenticated input.
            warn!(
                reason = rejection.reason(),
                bytes = body.len(),
                "webhook rejected before anything was stored"
            );
            let status = StatusCode::from_u16(rejection.status()).unwrap_or(StatusCode::FORBIDDEN);
            return Err(ApiError::new(
                status,
                if status == StatusCode::UNAUTHORIZED {
                    "unauthorized"
                } else {
                    "forbidden"
                },
                "the request's signature or token is missing or wrong",
            ));
        }
        Err(WebhookError::Malformed(why)) => {
            metrics::counter!("switchboard_webhook_rejected_total", "kind" => kind.as_str(), "reason" => "malformed")
                .increment(1);
            warn!(%why, "authentic webhook could not be read");
            return Err(ApiError::bad_request("malformed_webhook", why));
        }
    };

    let items = transcribe_voice_notes(&state, &settings, output.items).await;
    let woken = store(&state, tenant, channel, kind, &items).await?;
    wake(&state, tenant, woken);
    Ok(match output.response {
        Response::Now(reply) => render(reply),
        Response::AwaitAnswer {
            provider_message_id,
            budget,
            render: make,
        } => {
            let answer =
                await_answer(&state, tenant, channel, &provider_message_id, budget).await?;
            render(make(answer.as_deref()))
        }
    })
}

/// Turns voice notes into text messages where speech to text is configured and works (bounded
/// by [`TRANSCRIBE_BUDGET`]); the others stay voice notes and get the "please type" answer.
/// This runs before the request is acknowledged, so a crash here loses nothing: the provider
/// delivers again.
pub(crate) async fn transcribe_voice_notes(
    state: &AppState,
    settings: &ChannelSettings,
    items: Vec<InboundItem>,
) -> Vec<InboundItem> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let InboundItem::VoiceNote { message, media } = item else {
            out.push(item);
            continue;
        };
        if state.services.outbound.speech_to_text.is_none() {
            out.push(InboundItem::VoiceNote { message, media });
            continue;
        }
        let result = tokio::time::timeout(
            TRANSCRIBE_BUDGET,
            state.services.outbound.transcribe(settings, &media),
        )
        .await
        .unwrap_or_else(|_| Err("transcription took too long".into()));
        match result {
            Ok(text) => {
                let mut message = message;
                message.text = text;
                message.payload["transcribed"] = serde_json::Value::Bool(true);
                out.push(InboundItem::Message(message));
            }
            Err(why) => {
                warn!(%why, "voice note not transcribed");
                out.push(InboundItem::VoiceNote { message, media });
            }
        }
    }
    out
}

/// Wakes the agents of conversations with new messages (best effort: a lost wake-up is
/// repaired by the resume at the next start).
pub(crate) fn wake(state: &AppState, tenant: TenantId, conversations: Vec<ConversationId>) {
    for conversation in conversations {
        if let Err(e) = state.root.send_message(RootMsg::Route {
            tenant,
            conversation,
        }) {
            warn!(error = %e, "could not wake the conversation agent");
        }
    }
}

/// Opens the channel's settings (its credentials are sealed for the tenant).
async fn load_settings(
    state: &AppState,
    tenant: TenantId,
    channel: ChannelId,
) -> Result<ChannelSettings, ApiError> {
    let mut tx = state.services.db.tenant(tenant).await?;
    let record = channels::get(&mut tx, channel)
        .await?
        .ok_or_else(|| ApiError::not_found("no such channel"))?;
    tx.commit().await?;
    state.configurator().open(&record).map_err(|e| {
        warn!(error = %e, "channel settings cannot be opened");
        ApiError::unavailable("this channel is misconfigured; its administrator has been told")
    })
}

/// Stores what an authentic webhook told us, in one transaction; returns the conversations
/// with new customer messages.
pub(crate) async fn store(
    state: &AppState,
    tenant: TenantId,
    channel: ChannelId,
    kind: ChannelKind,
    items: &[InboundItem],
) -> Result<Vec<ConversationId>, ApiError> {
    let mut tx = state.services.db.tenant(tenant).await?;
    let mut woken = Vec::new();
    let mut kick_dispatcher = false;
    for item in items {
        match item {
            InboundItem::Message(_) | InboundItem::Threaded { .. } => {
                let msg = match item {
                    InboundItem::Threaded {
                        message,
                        references,
                    } => {
                        let mut msg = message.clone();
                        if let Some(owner) =
                            contacts::thread_owner(&mut tx, channel, references).await?
                        {
                            msg.contact_external_id = owner;
                        }
                        msg
                    }
                    InboundItem::Message(m) => m.clone(),
                    _ => unreachable!("matched above"),
                };
                let msg = &msg;
                let recorded = ingest::record(&mut tx, msg).await?;
                let result = if recorded.duplicate {
                    "duplicate"
                } else {
                    contacts::touch_inbound(&mut tx, channel, &msg.contact_external_id).await?;
                    if !woken.contains(&recorded.conversation_id) {
                        woken.push(recorded.conversation_id);
                    }
                    "accepted"
                };
                metrics::counter!("switchboard_inbound_total", "channel" => kind.as_str(), "result" => result)
                    .increment(1);
            }
            InboundItem::VoiceNote { message, .. } => {
                // Not transcribed: stored as a voice note and answered at once, in the same
                // transaction, with a clear request to type (the agent is not woken for it).
                let recorded = ingest::record(&mut tx, message).await?;
                if !recorded.duplicate {
                    contacts::touch_inbound(&mut tx, channel, &message.contact_external_id).await?;
                    let conversation =
                        turns::conversation(&mut tx, recorded.conversation_id).await?;
                    // While a human owns the conversation the bot says nothing, not even this:
                    // the voice note waits in the transcript for the human.
                    let owner = switchboard_core::store::handoff::ownership(
                        &mut tx,
                        recorded.conversation_id,
                        true,
                    )
                    .await?;
                    if owner.state == switchboard_core::store::handoff::HandoffState::Bot {
                        turns::commit(
                            &mut tx,
                            turns::TurnCommit {
                                conversation: &conversation,
                                events: &[recorded.event_id],
                                reply: switchboard_channels::speech::UNSUPPORTED_REPLY,
                                responder: "channel",
                                intent: Some("voice_note_untranscribed"),
                                metadata: serde_json::json!({"voice_note": true}),
                                prompt_version_id: None,
                                usage: &[],
                                choices: None,
                            },
                        )
                        .await?;
                        kick_dispatcher = true;
                    } else {
                        turns::commit_silent(
                            &mut tx,
                            &conversation,
                            &[recorded.event_id],
                            "human_owned",
                        )
                        .await?;
                    }
                }
                metrics::counter!("switchboard_inbound_total", "channel" => kind.as_str(), "result" => if recorded.duplicate { "duplicate" } else { "voice_untranscribed" })
                    .increment(1);
            }
            InboundItem::Status(s) => {
                let applied = outbox::apply_delivery_status(
                    &mut tx,
                    channel,
                    &s.provider_ref,
                    s.state.as_str(),
                    s.error.as_deref(),
                )
                .await?;
                if s.state == switchboard_channels::DeliveryState::Failed {
                    let error = s.error.as_deref().unwrap_or("delivery failed");
                    channels::record_error(&mut tx, channel, &format!("delivery failed: {error}"))
                        .await?;
                }
                metrics::counter!("switchboard_delivery_reports_total", "channel" => kind.as_str(), "state" => s.state.as_str())
                    .increment(1);
                if !applied {
                    info!(
                        state = s.state.as_str(),
                        "delivery report for no (or an older) outbound message"
                    );
                }
            }
            InboundItem::OptOut(address) => {
                contacts::set_opted_out(&mut tx, channel, address, true).await?;
                info!("contact opted out");
            }
            InboundItem::OptIn(address) => {
                contacts::set_opted_out(&mut tx, channel, address, false).await?;
                info!("contact opted back in");
            }
        }
    }
    channels::touch_inbound(&mut tx, channel).await?;
    tx.commit().await?;
    if kick_dispatcher {
        state.services.outbox_kick.notify_one();
    }
    Ok(woken)
}

/// Waits up to `budget` for the agent's reply to one inbound message.
async fn await_answer(
    state: &AppState,
    tenant: TenantId,
    channel: ChannelId,
    provider_message_id: &str,
    budget: Duration,
) -> Result<Option<String>, ApiError> {
    let end = Instant::now() + budget;
    loop {
        let mut tx = state.services.db.tenant(tenant).await?;
        let answer = messages::answer_to(&mut tx, channel, provider_message_id).await?;
        tx.commit().await?;
        if answer.is_some() || Instant::now() >= end {
            return Ok(answer);
        }
        tokio::time::sleep(ANSWER_POLL.min(end - Instant::now())).await;
    }
}

fn render(reply: Reply) -> HttpResponse {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    (
        status,
        [(header::CONTENT_TYPE, reply.content_type)],
        reply.body,
    )
        .into_response()
}
