//! Provider webhooks, one URL per configured channel: `/webhooks/{provider}/{channel_id}`.
//!
//! The order is the security argument: resolve the channel, open its settings, let the adapter
//! **verify** the request (signature, token) over the raw bytes, and only then store. A request
//! that fails verification is answered 401/403, counted in
//! `switchboard_webhook_rejected_total{kind,reason}` and logged without its body; nothing is
//! written. An authentic request is stored in one transaction (messages with their unique
//! provider ids, delivery reports, opt-outs) and committed before the provider gets its answer.
//!
//! Two checks need the database and so happen here, in that transaction. A signature that does
//! not cover the body (Mailgun's) hands over its token ([`Nonce`]), which is remembered for the
//! signature's window: the same token with other content is a replay, refused like a forgery
//! (401, `replayed_token`) with nothing stored. And an email that continues a thread whose owner
//! has another address is filed under the owner's contact but marked as from an unverified
//! sender ([`UnverifiedSender::NotThreadOwner`]), so its turn cannot act for the owner.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response as HttpResponse};
use switchboard_actors::inbox::{ConversationReason, InboxEvent};
use switchboard_actors::RootMsg;
use switchboard_channels::{
    ChannelSettings, Headers, InboundItem, Nonce, Rejection, Reply, Response, WebhookError,
    WebhookRequest,
};
use switchboard_core::metrics::{Family, TenantMetrics};
use switchboard_core::model::{ChannelKind, UnverifiedSender};
use switchboard_core::store::webhook_tokens::{self, TokenUse};
use switchboard_core::store::{channels, contacts, ingest, messages, outbox, turns};
use switchboard_core::{ChannelId, ConversationId, TenantId};
use tracing::{info, instrument, warn, Instrument};

use super::error::ApiError;
use super::AppState;

/// Largest webhook body (WhatsApp sends up to 3 MB).
pub const MAX_WEBHOOK_BYTES: usize = 3 * 1024 * 1024 + 64 * 1024;
/// How often a synchronous channel (voice) looks for the agent's reply.
const ANSWER_POLL: Duration = Duration::from_millis(100);
/// Longest wait for a voice note's transcription before answering "please type".
const TRANSCRIBE_BUDGET: Duration = Duration::from_secs(15);

macro_rules! webhook_route {
    ($(#[$attr:meta])* $name:ident, $kind:expr) => {
        $(#[$attr])*
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

webhook_route!(
    /// WhatsApp Cloud API's verification handshake (`hub.mode=subscribe`, `hub.verify_token`,
    /// `hub.challenge`): answers the challenge when the token is the channel's.
    #[utoipa::path(
        get,
        path = "/webhooks/whatsapp/{channel_id}",
        tag = "webhooks",
        params(
            ("channel_id" = String, Path, description = "The WhatsApp channel's id"),
            ("hub.mode" = String, Query, description = "`subscribe`"),
            ("hub.verify_token" = String, Query, description = "The channel's `verify_token`"),
            ("hub.challenge" = String, Query, description = "Echoed back when the token matches"),
        ),
        responses(
            (status = 200, description = "The challenge, echoed", content_type = "text/plain", body = String),
            (status = 400, description = "`malformed_webhook`: not a verification request"),
            (status = 401, description = "The verify token is missing"),
            (status = 403, description = "The verify token is wrong, or the channel is switched off"),
            (status = 404, description = "No WhatsApp channel has this id"),
        )
    )]
    whatsapp_verify,
    ChannelKind::Whatsapp
);
webhook_route!(
    /// WhatsApp Cloud API notifications (messages, statuses), signed with
    /// `X-Hub-Signature-256: sha256=<HMAC-SHA256 of the raw body under the app secret>`.
    #[utoipa::path(
        post,
        path = "/webhooks/whatsapp/{channel_id}",
        tag = "webhooks",
        params(
            ("channel_id" = String, Path, description = "The WhatsApp channel's id"),
            ("X-Hub-Signature-256" = String, Header, description = "`sha256=` and the hex HMAC-SHA256 of the raw body under the app secret"),
        ),
        request_body(content = Object, description = "Meta's webhook notification (`object`, `entry[].changes[].value`)", content_type = "application/json"),
        responses(
            (status = 200, description = "Stored (or a redelivery); `{\"ok\": true}`", body = Object),
            (status = 400, description = "`malformed_webhook`: authentic but unreadable"),
            (status = 401, description = "The signature is missing"),
            (status = 403, description = "The signature is wrong, or the channel is switched off"),
            (status = 404, description = "No WhatsApp channel has this id"),
            (status = 413, description = "`payload_too_large`"),
        )
    )]
    whatsapp,
    ChannelKind::Whatsapp
);
webhook_route!(
    /// Telegram Bot API updates, authenticated by the secret token given to `setWebhook`.
    #[utoipa::path(
        post,
        path = "/webhooks/telegram/{channel_id}",
        tag = "webhooks",
        params(
            ("channel_id" = String, Path, description = "The Telegram channel's id"),
            ("X-Telegram-Bot-Api-Secret-Token" = String, Header, description = "The channel's webhook secret"),
        ),
        request_body(content = Object, description = "A Telegram `Update`", content_type = "application/json"),
        responses(
            (status = 200, description = "Stored (or a redelivery); `{\"ok\": true}`", body = Object),
            (status = 400, description = "`malformed_webhook`: authentic but unreadable"),
            (status = 401, description = "The secret token is missing"),
            (status = 403, description = "The secret token is wrong, or the channel is switched off"),
            (status = 404, description = "No Telegram channel has this id"),
            (status = 413, description = "`payload_too_large`"),
        )
    )]
    telegram,
    ChannelKind::Telegram
);
webhook_route!(
    /// Twilio Messaging webhooks (inbound SMS and status callbacks), signed with
    /// `X-Twilio-Signature` over the public URL and the form parameters.
    #[utoipa::path(
        post,
        path = "/webhooks/twilio/sms/{channel_id}",
        tag = "webhooks",
        params(
            ("channel_id" = String, Path, description = "The SMS channel's id"),
            ("X-Twilio-Signature" = String, Header, description = "Base64 HMAC-SHA1 of the URL and the sorted parameters under the auth token"),
        ),
        request_body(content = Object, description = "Twilio's form parameters (`MessageSid`, `From`, `Body`, … or `MessageStatus`)", content_type = "application/x-www-form-urlencoded"),
        responses(
            (status = 200, description = "Stored; an empty TwiML `<Response/>`", content_type = "text/xml", body = String),
            (status = 400, description = "`malformed_webhook`: authentic but unreadable"),
            (status = 401, description = "The signature is missing"),
            (status = 403, description = "The signature is wrong, or the channel is switched off"),
            (status = 404, description = "No SMS channel has this id"),
            (status = 413, description = "`payload_too_large`"),
        )
    )]
    sms,
    ChannelKind::Sms
);
webhook_route!(
    /// Twilio Voice webhooks (speech already turned into text by `<Gather input="speech">`),
    /// signed with `X-Twilio-Signature`. The answer waits for the agent's reply within the
    /// channel's budget, else holds and redirects.
    #[utoipa::path(
        post,
        path = "/webhooks/twilio/voice/{channel_id}",
        tag = "webhooks",
        params(
            ("channel_id" = String, Path, description = "The voice channel's id"),
            ("X-Twilio-Signature" = String, Header, description = "Base64 HMAC-SHA1 of the URL and the sorted parameters under the auth token"),
        ),
        request_body(content = Object, description = "Twilio's form parameters (`CallSid`, `From`, `SpeechResult`, …)", content_type = "application/x-www-form-urlencoded"),
        responses(
            (status = 200, description = "TwiML that says the reply and listens again (or a holding phrase and a `<Redirect>`)", content_type = "text/xml", body = String),
            (status = 400, description = "`malformed_webhook`: authentic but unreadable"),
            (status = 401, description = "The signature is missing"),
            (status = 403, description = "The signature is wrong, or the channel is switched off"),
            (status = 404, description = "No voice channel has this id"),
            (status = 413, description = "`payload_too_large`"),
        )
    )]
    voice,
    ChannelKind::Voice
);
webhook_route!(
    /// The generic transcript webhook of a voice channel (speech-to-text providers other than
    /// Twilio), signed with `X-Switchboard-Signature: sha256=<hex HMAC-SHA256 of the raw body
    /// under transcript_secret>`.
    #[utoipa::path(
        post,
        path = "/webhooks/voice/{channel_id}/transcript",
        tag = "webhooks",
        params(
            ("channel_id" = String, Path, description = "The voice channel's id"),
            ("X-Switchboard-Signature" = String, Header, description = "`sha256=` and the hex HMAC-SHA256 of the raw body under the channel's `transcript_secret`"),
        ),
        request_body(content = Object, description = "`{\"call_id\", \"turn\", \"text\", \"caller\"}` (without `text`: fetch the pending reply)", content_type = "application/json"),
        responses(
            (status = 200, description = "`{\"call_id\", \"turn\", \"reply\", \"pending\"}`, with `holding_phrase` while the reply is pending", body = Object),
            (status = 400, description = "`malformed_webhook`: authentic but unreadable"),
            (status = 401, description = "The signature is missing"),
            (status = 403, description = "The signature is wrong, or the channel is switched off"),
            (status = 404, description = "No voice channel has this id"),
            (status = 413, description = "`payload_too_large`"),
        )
    )]
    voice_transcript,
    ChannelKind::Voice
);
webhook_route!(
    /// Inbound email from a provider: Mailgun-style form posts signed with HMAC-SHA256 of the
    /// timestamp and token (a stale timestamp is refused, and a token already used with other
    /// content is a replay), or Postmark-style JSON behind HTTP basic auth.
    #[utoipa::path(
        post,
        path = "/webhooks/email/{channel_id}",
        tag = "webhooks",
        params(
            ("channel_id" = String, Path, description = "The email channel's id"),
            ("Authorization" = Option<String>, Header, description = "`Basic …` (JSON posts)"),
        ),
        request_body(
            description = "Mailgun-style form fields (`timestamp`, `token`, `signature`, `sender`, `body-plain`, …) or Postmark-style JSON",
            content(
                (Object = "application/x-www-form-urlencoded"),
                (Object = "multipart/form-data"),
                (Object = "application/json"),
            )
        ),
        responses(
            (status = 200, description = "Stored (or a redelivery); `{\"ok\": true}`", body = Object),
            (status = 400, description = "`malformed_webhook`: authentic but unreadable"),
            (status = 401, description = "The signature or the credentials are missing, or the signed token was already used for other content (a replay)"),
            (status = 403, description = "The signature is wrong or stale, or the channel is switched off"),
            (status = 404, description = "No email channel has this id"),
            (status = 413, description = "`payload_too_large`"),
        )
    )]
    email,
    ChannelKind::Email
);

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
            return Err(rejected(&state, tenant, kind, rejection, Some(body.len())))
        }
        Err(WebhookError::Malformed(why)) => {
            state
                .services
                .metrics
                .webhook_rejected(tenant, kind, "malformed");
            warn!(%why, "authentic webhook could not be read");
            return Err(ApiError::bad_request("malformed_webhook", why));
        }
    };

    let items = transcribe_voice_notes(&state, &settings, output.items).await;
    let nonce = output.nonce;
    // Stored and announced in a task of its own: a provider that hangs up while the webhook is
    // being stored must not leave its messages stored but unannounced until the next start.
    let task_state = state.clone();
    let stored = tokio::spawn(
        async move {
            let woken = store(&task_state, tenant, channel, kind, &items, nonce.as_ref()).await?;
            wake(&task_state, tenant, woken);
            Ok::<_, ApiError>(())
        }
        .in_current_span(),
    );
    stored.await.map_err(|e| {
        warn!(error = %e, "the webhook's task failed");
        ApiError::unavailable("the webhook could not be stored; please deliver it again")
    })??;
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

/// The answer to a request refused as not authentic (nothing was stored): counted, logged once
/// without the body (it is unauthenticated input; `bytes` is its size when known), and
/// answered 401/403 with the usual error.
fn rejected(
    state: &AppState,
    tenant: TenantId,
    kind: ChannelKind,
    rejection: Rejection,
    bytes: Option<usize>,
) -> ApiError {
    state
        .services
        .metrics
        .webhook_rejected(tenant, kind, rejection.reason());
    warn!(
        reason = rejection.reason(),
        bytes, "webhook rejected before anything was stored"
    );
    let status = StatusCode::from_u16(rejection.status()).unwrap_or(StatusCode::FORBIDDEN);
    ApiError::new(
        status,
        if status == StatusCode::UNAUTHORIZED {
            "unauthorized"
        } else {
            "forbidden"
        },
        match rejection {
            Rejection::Replayed => "the request's signature was already used for other content",
            _ => "the request's signature or token is missing or wrong",
        },
    )
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
/// with new customer messages. Its `nonce` is remembered first: a replay is refused (401,
/// `replayed_token`) with nothing stored. An email that continues a thread is filed under the
/// thread's owner, and marked as from an unverified sender when the owner has another address.
pub(crate) async fn store(
    state: &AppState,
    tenant: TenantId,
    channel: ChannelId,
    kind: ChannelKind,
    items: &[InboundItem],
    nonce: Option<&Nonce>,
) -> Result<Vec<ConversationId>, ApiError> {
    let mut tx = state.services.db.tenant(tenant).await?;
    if let Some(n) = nonce {
        let expires_at = chrono::DateTime::from_timestamp(n.expires_at, 0)
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
        let seen = webhook_tokens::remember(&mut tx, channel, &n.value, &n.body_sha256, expires_at)
            .await?;
        if seen == TokenUse::Replay {
            tx.rollback().await?;
            return Err(rejected(state, tenant, kind, Rejection::Replayed, None));
        }
    }
    let mut woken = Vec::new();
    let mut kick_dispatcher = false;
    // What the messages came to, counted once the transaction has committed.
    let mut results = InboundTally::default();
    // The inbox's hints, published once the transaction has committed.
    let mut hints = Vec::new();
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
                            // The thread continues in the owner's conversation, but a stranger
                            // who replies into it does not become the owner.
                            if owner != msg.contact_external_id {
                                msg.mark_unverified(UnverifiedSender::NotThreadOwner);
                                msg.contact_external_id = owner;
                            }
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
                    hints.push(super::inbox::message_hint(&recorded));
                    if !woken.contains(&recorded.conversation_id) {
                        woken.push(recorded.conversation_id);
                    }
                    "accepted"
                };
                results.add(result);
            }
            InboundItem::VoiceNote { message, .. } => {
                // Not transcribed: stored as a voice note and answered at once, in the same
                // transaction, with a clear request to type (the agent is not woken for it).
                let recorded = ingest::record(&mut tx, message).await?;
                if !recorded.duplicate {
                    contacts::touch_inbound(&mut tx, channel, &message.contact_external_id).await?;
                    hints.push(super::inbox::message_hint(&recorded));
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
                                conversation_locked: true,
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
                results.add(if recorded.duplicate {
                    "duplicate"
                } else {
                    "voice_untranscribed"
                });
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
                if let Some(conversation) = applied {
                    hints.push(InboxEvent::conversation(
                        conversation,
                        ConversationReason::Delivery,
                    ));
                } else {
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
    results.record(&state.services.metrics, tenant, kind);
    state.services.inbox.publish_all(tenant, hints);
    if kick_dispatcher {
        state.services.outbox_kick.notify_one();
    }
    Ok(woken)
}

/// The messages one webhook stored, by their `result` label (no allocation per webhook).
#[derive(Default)]
struct InboundTally([u64; 3]);

impl InboundTally {
    const RESULTS: [&'static str; 3] = ["accepted", "duplicate", "voice_untranscribed"];

    fn add(&mut self, result: &'static str) {
        if let Some(i) = Self::RESULTS.iter().position(|r| *r == result) {
            self.0[i] += 1;
        }
    }

    fn record(self, metrics: &TenantMetrics, tenant: TenantId, kind: ChannelKind) {
        for (result, n) in Self::RESULTS.into_iter().zip(self.0) {
            if n > 0 {
                metrics
                    .counter(Family::Inbound, tenant, kind, result)
                    .increment(n);
            }
        }
    }
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
