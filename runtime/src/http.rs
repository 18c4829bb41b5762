//! The HTTP surface: health, the public web-chat API and pages, signing in, and the API of
//! tenants and the platform, every route with the access it needs ([`router`]).
//! `runtime` is the only crate that knows about HTTP.

pub mod admin;
pub mod agent;
pub mod analytics;
pub mod bookings;
pub mod channels;
pub mod conversations;
pub mod error;
pub mod health;
pub mod identity;
pub mod inbox;
pub mod knowledge;
pub mod leads;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod pages;
pub mod route_cache;
pub mod serve;
pub mod table;
pub mod webchat;
pub mod webhooks;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::routing::{post, put};
use axum::Router;
use ractor::ActorRef;
use secrecy::SecretString;
use switchboard_actors::{RootMsg, Services};
use switchboard_knowledge::Indexer;
use tokio::sync::watch;
use tower_http::trace::TraceLayer;

use self::error::ApiError;
pub use self::table::RouteSpec;
use self::table::Table;

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
    /// Sessions, links and sign-in throttling.
    pub auth: Arc<crate::auth::AuthConfig>,
    /// The public web chat's rate limits and stream caps.
    pub limits: Arc<limits::InboundLimits>,
}

impl AppState {
    /// Channel configuration with this server's key and public URL.
    pub fn configurator(&self) -> crate::channels::ChannelConfigurator<'_> {
        crate::channels::ChannelConfigurator {
            db: &self.services.db,
            key: self.services.embedders.master_key(),
            public_base_url: &self.public_base_url,
            egress: self.services.outbound.egress,
        }
    }
}

/// Every route of the server, with what it needs. This table is the one place where access is
/// decided: the `Access` given with a route is enforced before its handler runs
/// ([`crate::auth::enforce`]), and the returned list of [`RouteSpec`]s is what the tests walk.
pub fn router(
    state: AppState,
    max_body_bytes: usize,
    body_read: std::time::Duration,
) -> (Router, Vec<RouteSpec>) {
    use crate::auth::Access::{Authenticated, Platform, Public, Signed, Tenant, TenantOrPlatform};
    use switchboard_core::store::identity::Role::{SalesAgent, TenantAdmin, Viewer};
    let document_limit = || {
        DefaultBodyLimit::max(switchboard_knowledge::documents::MAX_DOCUMENT_BYTES + 1024 * 1024)
    };
    let (api, mut specs) = Table::new(state.clone(), "/api/v1")
        // Web chat: public, per session.
        .get("/webchat-demo", Public, webchat::demo_channels)
        .get("/webchat/{channel_id}", Public, webchat::channel_info)
        .post(
            "/webchat/{channel_id}/messages",
            Public,
            webchat::post_message,
        )
        .get(
            "/webchat/{channel_id}/sessions/{session_id}/messages",
            Public,
            webchat::history,
        )
        .get(
            "/webchat/{channel_id}/sessions/{session_id}/events",
            Public,
            webchat::events,
        )
        // Signing in and what comes with it.
        .post("/auth/sign-in", Public, identity::sign_in)
        .post("/auth/sign-out", Authenticated, identity::sign_out)
        .get("/auth/me", Authenticated, identity::me)
        .post("/auth/password", Authenticated, identity::change_password)
        .post(
            "/auth/password-reset",
            Public,
            identity::request_password_reset,
        )
        .post(
            "/auth/password-reset/confirm",
            Public,
            identity::confirm_password_reset,
        )
        .post(
            "/auth/invitations/accept",
            Public,
            identity::accept_invitation,
        )
        // The platform.
        .get("/tenants", Platform, admin::list_tenants)
        .post("/tenants", Platform, admin::create_tenant)
        .get("/platform/users", Platform, identity::list_all_users)
        // A tenant's people, keys and audit log.
        .get("/users", Tenant(TenantAdmin), identity::list_members)
        .get(
            "/users/invitations",
            Tenant(TenantAdmin),
            identity::list_invitations,
        )
        .post("/users/invitations", Tenant(TenantAdmin), identity::invite)
        .delete(
            "/users/invitations/{invitation_id}",
            Tenant(TenantAdmin),
            identity::revoke_invitation,
        )
        .get(
            "/users/{user_id}",
            Tenant(TenantAdmin),
            identity::show_member,
        )
        .patch(
            "/users/{user_id}",
            Tenant(TenantAdmin),
            identity::update_member,
        )
        .delete(
            "/users/{user_id}",
            Tenant(TenantAdmin),
            identity::remove_member,
        )
        .get("/keys", Tenant(TenantAdmin), identity::list_keys)
        .post("/keys", Tenant(TenantAdmin), identity::create_key)
        .delete("/keys/{key_id}", Tenant(TenantAdmin), identity::revoke_key)
        .get("/audit", Tenant(TenantAdmin), identity::list_audit)
        .get("/analytics", Tenant(Viewer), analytics::get)
        .get("/analytics/series", Tenant(Viewer), analytics::series)
        // Channels.
        .get("/channels", TenantOrPlatform(Viewer), admin::list_channels)
        .post("/channels", Tenant(TenantAdmin), channels::create)
        .get("/channels/{channel_id}", Tenant(Viewer), channels::show)
        .patch(
            "/channels/{channel_id}",
            Tenant(TenantAdmin),
            channels::patch,
        )
        .delete(
            "/channels/{channel_id}",
            Tenant(TenantAdmin),
            channels::remove,
        )
        .get(
            "/channels/{channel_id}/health",
            Tenant(Viewer),
            channels::health,
        )
        // Bookings.
        .get("/availability", Tenant(Viewer), bookings::get_availability)
        .put(
            "/availability",
            Tenant(TenantAdmin),
            bookings::put_availability,
        )
        .get("/availability/slots", Tenant(Viewer), bookings::list_slots)
        .get("/bookings", Tenant(Viewer), bookings::list)
        .post("/bookings", Tenant(SalesAgent), bookings::create)
        .get("/bookings/{booking_id}", Tenant(Viewer), bookings::show)
        .post(
            "/bookings/{booking_id}/cancel",
            Tenant(SalesAgent),
            bookings::cancel,
        )
        .post(
            "/bookings/{booking_id}/reschedule",
            Tenant(SalesAgent),
            bookings::reschedule,
        )
        // The inbox.
        .get("/inbox/events", Tenant(Viewer), inbox::events)
        .get("/conversations", Tenant(Viewer), conversations::list)
        .get(
            "/conversations/{conversation_id}",
            Tenant(Viewer),
            conversations::show,
        )
        .post(
            "/conversations/{conversation_id}/messages",
            Tenant(SalesAgent),
            conversations::reply,
        )
        .post(
            "/conversations/{conversation_id}/claim",
            Tenant(SalesAgent),
            conversations::claim,
        )
        .post(
            "/conversations/{conversation_id}/handback",
            Tenant(SalesAgent),
            conversations::hand_back,
        )
        .post(
            "/conversations/{conversation_id}/close",
            Tenant(SalesAgent),
            conversations::close,
        )
        .get(
            "/escalations",
            Tenant(Viewer),
            conversations::list_escalations,
        )
        .get(
            "/escalations/{escalation_id}",
            Tenant(Viewer),
            conversations::show_escalation,
        )
        .get(
            "/events/parked",
            TenantOrPlatform(Viewer),
            admin::list_parked,
        )
        .post(
            "/events/{event_id}/retry",
            Tenant(TenantAdmin),
            admin::retry_parked,
        )
        // Knowledge.
        .get(
            "/knowledge/documents",
            Tenant(Viewer),
            knowledge::list_documents,
        )
        .route(
            Method::POST,
            "/knowledge/documents",
            Tenant(TenantAdmin),
            post(knowledge::create_document).layer(document_limit()),
        )
        .get(
            "/knowledge/documents/{document_id}",
            Tenant(Viewer),
            knowledge::get_document,
        )
        .patch(
            "/knowledge/documents/{document_id}",
            Tenant(TenantAdmin),
            knowledge::patch_document,
        )
        .delete(
            "/knowledge/documents/{document_id}",
            Tenant(TenantAdmin),
            knowledge::delete_document,
        )
        .route(
            Method::PUT,
            "/knowledge/documents/{document_id}/content",
            Tenant(TenantAdmin),
            put(knowledge::put_content).layer(document_limit()),
        )
        .post(
            "/knowledge/documents/{document_id}/reindex",
            Tenant(TenantAdmin),
            knowledge::reindex_document,
        )
        .post_query("/knowledge/search", Tenant(Viewer), knowledge::search)
        .get(
            "/knowledge/settings",
            Tenant(Viewer),
            knowledge::get_settings,
        )
        .put(
            "/knowledge/settings",
            Tenant(TenantAdmin),
            knowledge::put_settings,
        )
        // The agent and its prompts.
        .get("/agent/settings", Tenant(Viewer), agent::get_settings)
        .put("/agent/settings", Tenant(TenantAdmin), agent::put_settings)
        .get("/agent/usage", Tenant(Viewer), agent::get_usage)
        .get("/agent/alerts", Tenant(Viewer), agent::list_alerts)
        .get("/agent/tools", Authenticated, agent::list_tools)
        .get("/prompts", Tenant(Viewer), agent::list_prompts)
        .post("/prompts", Tenant(TenantAdmin), agent::create_prompt)
        .get("/prompts/diff", Tenant(Viewer), agent::diff_prompts)
        .post(
            "/prompts/rollback",
            Tenant(TenantAdmin),
            agent::rollback_prompt,
        )
        .post_query("/prompts/preview", Tenant(TenantAdmin), agent::preview)
        .get("/prompts/{version_id}", Tenant(Viewer), agent::get_prompt)
        .put(
            "/prompts/{version_id}",
            Tenant(TenantAdmin),
            agent::update_prompt,
        )
        .delete(
            "/prompts/{version_id}",
            Tenant(TenantAdmin),
            agent::delete_prompt,
        )
        .post(
            "/prompts/{version_id}/publish",
            Tenant(TenantAdmin),
            agent::publish_prompt,
        )
        // Leads and the CRM.
        .get("/leads", Tenant(Viewer), leads::list)
        .get("/leads/{contact_id}", Tenant(Viewer), leads::show)
        .get("/crm/deliveries", Tenant(Viewer), leads::deliveries)
        .post(
            "/crm/deliveries/{effect_id}/retry",
            Tenant(TenantAdmin),
            leads::retry,
        )
        .get("/actions/settings", Tenant(Viewer), leads::get_settings)
        .put(
            "/actions/settings",
            Tenant(TenantAdmin),
            leads::put_settings,
        )
        // This API's own description (built below from the handlers and this table).
        .get("/openapi.json", Public, openapi::document)
        .finish();
    let api = api
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            health::database_gate,
        ))
        .fallback(api_not_found);

    let (webhooks, webhook_specs) = Table::new(state.clone(), "")
        .get(
            "/webhooks/whatsapp/{channel_id}",
            Signed,
            webhooks::whatsapp_verify,
        )
        .post(
            "/webhooks/whatsapp/{channel_id}",
            Signed,
            webhooks::whatsapp,
        )
        .post(
            "/webhooks/telegram/{channel_id}",
            Signed,
            webhooks::telegram,
        )
        .post("/webhooks/twilio/sms/{channel_id}", Signed, webhooks::sms)
        .post(
            "/webhooks/twilio/voice/{channel_id}",
            Signed,
            webhooks::voice,
        )
        .post(
            "/webhooks/voice/{channel_id}/transcript",
            Signed,
            webhooks::voice_transcript,
        )
        .post("/webhooks/email/{channel_id}", Signed, webhooks::email)
        .finish();
    specs.extend(webhook_specs);
    let webhooks = webhooks
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            health::database_gate,
        ))
        .layer(DefaultBodyLimit::max(webhooks::MAX_WEBHOOK_BYTES));

    let (site, site_specs) = Table::new(state.clone(), "")
        .get("/healthz", Public, health::healthz)
        .get("/readyz", Public, health::readyz)
        .get("/metrics", Platform, metrics::render)
        .get("/", Public, pages::index)
        .get("/chat/widget.js", Public, pages::widget)
        .get("/chat/{channel_id}", Public, pages::chat)
        .get(
            "/console/accept-invitation",
            Public,
            pages::accept_invitation,
        )
        .get("/console/reset-password", Public, pages::reset_password)
        .get("/console", Public, pages::console)
        .get("/console/assets/{file}", Public, pages::console_asset)
        .get("/docs", Public, pages::docs)
        .finish();
    specs.extend(site_specs);
    // The OpenAPI document describes exactly this table: built once, served by
    // `openapi::document`.
    let document = openapi::Document::build(&specs);

    let router = site
        .merge(webhooks)
        .nest("/api/v1", api)
        .fallback(api_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            body_read,
            serve::body_deadline,
        ))
        .layer(axum::Extension(document))
        .layer(TraceLayer::new_for_http())
        .with_state(state);
    (router, specs)
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
