//! Static pages embedded in the binary: the landing page, the web-chat page and its widget, and
//! the page behind the links of invitation and password-reset emails.

use axum::http::header;
use axum::response::{Html, IntoResponse};

pub async fn index() -> Html<&'static str> {
    Html(include_str!("../../assets/index.html"))
}

/// The chat page reads its channel id from the URL; the API answers 404 for unknown channels.
pub async fn chat() -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-cache")],
        Html(include_str!("../../assets/chat.html")),
    )
}

pub async fn widget() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        include_str!("../../assets/widget.js"),
    )
}

/// `/console/accept-invitation` and `/console/reset-password`: where the emailed links lead.
/// The token travels in the URL's fragment, which the browser keeps to itself.
pub async fn link() -> impl IntoResponse {
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        Html(include_str!("../../assets/link.html")),
    )
}
