//! Static pages embedded in the binary: the landing page, the web-chat page and its widget, the
//! page behind the links of invitation and password-reset emails, and the API reference.

use axum::http::header;
use axum::response::{Html, IntoResponse};

/// The landing page with the demo chats.
#[utoipa::path(
    get,
    path = "/",
    tag = "pages",
    responses((status = 200, description = "The landing page", content_type = "text/html"))
)]
pub async fn index() -> Html<&'static str> {
    Html(include_str!("../../assets/index.html"))
}

/// The chat page reads its channel id from the URL; the API answers 404 for unknown channels.
#[utoipa::path(
    get,
    path = "/chat/{channel_id}",
    summary = "The web-chat demo page of a channel.",
    tag = "pages",
    params(("channel_id" = String, Path, description = "The web-chat channel's id")),
    responses((status = 200, description = "The web-chat demo page (any id: the page asks the API)", content_type = "text/html"))
)]
pub async fn chat() -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-cache")],
        Html(include_str!("../../assets/chat.html")),
    )
}

/// The embeddable widget's script.
#[utoipa::path(
    get,
    path = "/chat/widget.js",
    tag = "pages",
    responses((status = 200, description = "The web-chat widget", content_type = "text/javascript"))
)]
pub async fn widget() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        include_str!("../../assets/widget.js"),
    )
}

/// Where the links of invitation emails lead (the token is in the URL's fragment).
#[utoipa::path(
    get,
    path = "/console/accept-invitation",
    tag = "pages",
    responses((status = 200, description = "The page that accepts an invitation", content_type = "text/html"))
)]
pub async fn accept_invitation() -> impl IntoResponse {
    link()
}

/// Where the links of password-reset emails lead (the token is in the URL's fragment).
#[utoipa::path(
    get,
    path = "/console/reset-password",
    tag = "pages",
    responses((status = 200, description = "The page that sets a new password", content_type = "text/html"))
)]
pub async fn reset_password() -> impl IntoResponse {
    link()
}

/// `/console/accept-invitation` and `/console/reset-password`: where the emailed links lead.
/// The token travels in the URL's fragment, which the browser keeps to itself.
fn link() -> impl IntoResponse {
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        Html(include_str!("../../assets/link.html")),
    )
}

/// `/docs`: the interactive API reference. It reads `/api/v1/openapi.json` and renders it with
/// its own script and styles (no third-party assets, so it works offline).
#[utoipa::path(
    get,
    path = "/docs",
    tag = "pages",
    responses((status = 200, description = "The interactive API reference", content_type = "text/html"))
)]
pub async fn docs() -> impl IntoResponse {
    (
        [
            (header::CACHE_CONTROL, "no-cache"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        Html(include_str!("../../assets/docs.html")),
    )
}
