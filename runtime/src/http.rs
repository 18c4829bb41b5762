//! The HTTP surface: health, the public web-chat API and pages, and the admin API.
//! `runtime` is the only crate that knows about HTTP.

pub mod admin;
pub mod agent;
pub mod analytics;
pub mod bookings;
pub mod channels;
pub mod conversations;
pub mod error;
pub mod health;
pub mod knowledge;
pub mod leads;
pub mod metrics;
pub mod pages;
pub mod route_cache;
pub mod webchat;
pub mod webhooks;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use axum::Router;
use ractor::ActorRef;
use secrecy::SecretString;
use switchboard_actors::{RootMsg, Services};
use switchboard_knowledge::Indexer;
use tokio::sync::watch;
use tower_http::trace::TraceLayer;

use self::error::ApiError;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub services: Arc<Services>,
    pub root: ActorRef<RootMsg>,
    pub admin_token: Arc<SecretString>,
    /// Turns true when the server is shutting down; long-lived streams end on it.
    pub shutdown: watch::Receiver<bool>,
    /// Channel id → tenant, cached for a few seconds.
    pub routes: Arc<route_cache::RouteCache>,
    /// The knowledge indexer, woken when documents are queued.
    pub indexer: Indexer,
    /// The URL providers reach us at, without a trailing `/` (webhook URLs, signatures).
    pub public_base_url: Arc<str>,
    /// The embedded PostgreSQL's supervisor state (`None` with an external database): while it
    /// restarts a dead server, `/readyz` answers 503 at once.
    pub embedded_pg: Option<watch::Receiver<crate::embedded_pg::ServerState>>,
}

impl AppState {
    /// Channel configuration with this server's key and public URL.
    pub fn configurator(&self) -> crate::channels::ChannelConfigurator<'_> {
        crate::channels::ChannelConfigurator {
            db: &self.services.db,
            key: self.services.embedders.master_key(),
            public_base_url: &self.public_base_url,
        }
    }
}

pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    let admin = Router::new()
        .route(
            "/tenants",
            get(admin::list_tenants).post(admin::create_tenant),
        )
        .route(
            "/channels",
            get(admin::list_channels).post(channels::create),
        )
        .route(
            "/channels/{channel_id}",
            get(channels::show)
                .patch(channels::patch)
                .delete(channels::remove),
        )
        .route("/channels/{channel_id}/health", get(channels::health))
        .route(
            "/availability",
            get(bookings::get_availability).put(bookings::put_availability),
        )
        .route("/availability/slots", get(bookings::list_slots))
        .route("/bookings", get(bookings::list).post(bookings::create))
        .route("/bookings/{booking_id}", get(bookings::show))
        .route("/bookings/{booking_id}/cancel", post(bookings::cancel))
        .route(
            "/bookings/{booking_id}/reschedule",
            post(bookings::reschedule),
        )
        .route("/conversations", get(conversations::list))
        .route("/conversations/{conversation_id}", get(conversations::show))
        .route(
            "/conversations/{conversation_id}/messages",
            post(conversations::reply),
        )
        .route(
            "/conversations/{conversation_id}/claim",
            post(conversations::claim),
        )
        .route(
            "/conversations/{conversation_id}/handback",
            post(conversations::hand_back),
        )
        .route(
            "/conversations/{conversation_id}/close",
            post(conversations::close),
        )
        .route("/escalations", get(conversations::list_escalations))
        .route(
            "/escalations/{escalation_id}",
            get(conversations::show_escalation),
        )
        .route("/events/parked", get(admin::list_parked))
        .route("/events/{event_id}/retry", post(admin::retry_parked))
        .route(
            "/knowledge/documents",
            get(knowledge::list_documents)
                .post(knowledge::create_document)
                .layer(DefaultBodyLimit::max(
                    switchboard_knowledge::documents::MAX_DOCUMENT_BYTES + 1024 * 1024,
                )),
        )
        .route(
            "/knowledge/documents/{document_id}",
            get(knowledge::get_document)
                .patch(knowledge::patch_document)
                .delete(knowledge::delete_document),
        )
        .route(
            "/knowledge/documents/{document_id}/content",
            put(knowledge::put_content).layer(DefaultBodyLimit::max(
                switchboard_knowledge::documents::MAX_DOCUMENT_BYTES + 1024 * 1024,
            )),
        )
        .route(
            "/knowledge/documents/{document_id}/reindex",
            post(knowledge::reindex_document),
        )
        .route("/knowledge/search", post(knowledge::search))
        .route(
            "/knowledge/settings",
            get(knowledge::get_settings).put(knowledge::put_settings),
        )
        .route(
            "/agent/settings",
            get(agent::get_settings).put(agent::put_settings),
        )
        .route("/agent/usage", get(agent::get_usage))
        .route("/agent/alerts", get(agent::list_alerts))
        .route("/agent/tools", get(agent::list_tools))
        .route(
            "/prompts",
            get(agent::list_prompts).post(agent::create_prompt),
        )
        .route("/prompts/diff", get(agent::diff_prompts))
        .route("/prompts/rollback", post(agent::rollback_prompt))
        .route("/prompts/preview", post(agent::preview))
        .route(
            "/prompts/{version_id}",
            get(agent::get_prompt)
                .put(agent::update_prompt)
                .delete(agent::delete_prompt),
        )
        .route("/prompts/{version_id}/publish", post(agent::publish_prompt))
        .route("/analytics", get(analytics::get))
        .route("/leads", get(leads::list))
        .route("/leads/{contact_id}", get(leads::show))
        .route("/crm/deliveries", get(leads::deliveries))
        .route("/crm/deliveries/{effect_id}/retry", post(leads::retry))
        .route(
            "/actions/settings",
            get(leads::get_settings).put(leads::put_settings),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admin::require_admin,
        ));
    let api = Router::new()
        .route("/webchat-demo", get(webchat::demo_channels))
        .route("/webchat/{channel_id}", get(webchat::channel_info))
        .route(
            "/webchat/{channel_id}/messages",
            post(webchat::post_message),
        )
        .route(
            "/webchat/{channel_id}/sessions/{session_id}/messages",
            get(webchat::history),
        )
        .route(
            "/webchat/{channel_id}/sessions/{session_id}/events",
            get(webchat::events),
        )
        .merge(admin)
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            health::database_gate,
        ))
        .fallback(api_not_found);
    let metrics = Router::new()
        .route("/metrics", get(metrics::render))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admin::require_admin,
        ));
    let webhooks = Router::new()
        .route(
            "/webhooks/whatsapp/{channel_id}",
            get(webhooks::whatsapp).post(webhooks::whatsapp),
        )
        .route("/webhooks/telegram/{channel_id}", post(webhooks::telegram))
        .route("/webhooks/twilio/sms/{channel_id}", post(webhooks::sms))
        .route("/webhooks/twilio/voice/{channel_id}", post(webhooks::voice))
        .route(
            "/webhooks/voice/{channel_id}/transcript",
            post(webhooks::voice),
        )
        .route("/webhooks/email/{channel_id}", post(webhooks::email))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            health::database_gate,
        ))
        .layer(DefaultBodyLimit::max(webhooks::MAX_WEBHOOK_BYTES));
    Router::new()
        .route("/healthz", get(health::healthz))
        .merge(webhooks)
        .merge(metrics)
        .route("/readyz", get(health::readyz))
        .route("/", get(pages::index))
        .route("/chat/widget.js", get(pages::widget))
        .route("/chat/{channel_id}", get(pages::chat))
        .nest("/api/v1", api)
        .fallback(api_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn api_not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method",
    )
}
