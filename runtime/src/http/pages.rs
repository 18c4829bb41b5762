//! Static pages embedded in the binary: the landing page, the web-chat page and its widget, the
//! page behind the links of invitation and password-reset emails, the API reference, and the
//! console (a single-page app of plain ES modules under `assets/console/`, built into the binary
//! with `include_str!`: no bundler, no CDN, nothing fetched from elsewhere).

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use super::error::ApiError;

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

/// `(name, content type, content)` of a file of `assets/console/`, embedded at build time.
macro_rules! console_asset {
    ($name:literal, $content_type:expr) => {
        (
            $name,
            $content_type,
            include_str!(concat!("../../assets/console/", $name)),
        )
    };
}

/// The console's files: name, content type, content. The shell (`index.html`) names only files of
/// this list, and every module imports only files of this list (`tests/console.rs` checks both).
pub const CONSOLE_ASSETS: &[(&str, &str, &str)] = &[
    console_asset!("console.css", CSS),
    console_asset!("app.js", JS),
    console_asset!("api.js", JS),
    console_asset!("i18n.js", JS),
    console_asset!("ui.js", JS),
    console_asset!("page-signin.js", JS),
    console_asset!("page-inbox.js", JS),
    console_asset!("page-escalations.js", JS),
    console_asset!("page-prompts.js", JS),
    console_asset!("page-knowledge.js", JS),
    console_asset!("page-channels.js", JS),
    console_asset!("page-people.js", JS),
    console_asset!("page-audit.js", JS),
    console_asset!("page-analytics.js", JS),
    console_asset!("page-bookings.js", JS),
    console_asset!("page-leads.js", JS),
    console_asset!("page-tenants.js", JS),
];

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The console's pages load only this server's scripts, styles and API: no inline script, no
/// other origin, no framing.
const CONSOLE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// `/console`: the console's shell. Its scripts draw every page (hash routes such as
/// `#/inbox`) from the JSON API with the session cookie; the shell itself is public.
#[utoipa::path(
    get,
    path = "/console",
    tag = "pages",
    responses((status = 200, description = "The console (a single-page app; it signs people in)", content_type = "text/html"))
)]
pub async fn console(headers: HeaderMap) -> impl IntoResponse {
    (
        [
            (header::CACHE_CONTROL, "no-cache"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CONTENT_SECURITY_POLICY, CONSOLE_CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::VARY, "Cookie, Accept-Language"),
        ],
        Html(console_shell(&headers)),
    )
}

/// The shell as this browser will show it, so nothing moves when the script takes over: with a
/// session cookie the navigation's column is in place, and the language (the `sb_lang` cookie
/// the console sets, else the first language the browser asks for) sets `lang` and `dir` —
/// Arabic is laid out right to left from the first paint.
fn console_shell(headers: &HeaderMap) -> String {
    let cookies: Vec<(&str, &str)> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .collect();
    let has_session = cookies
        .iter()
        .any(|(name, value)| *name == crate::auth::SESSION_COOKIE && !value.is_empty());
    let arabic = match cookies.iter().find(|(name, _)| *name == LANG_COOKIE) {
        Some((_, lang)) => *lang == "ar",
        None => headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("ar")),
    };
    let mut html = CONSOLE_SHELL.to_owned();
    if has_session {
        html = html.replacen(NAV_HIDDEN, NAV_SHOWN, 1);
    }
    if arabic {
        html = html.replacen(HTML_EN, HTML_AR, 1);
    }
    html
}

const CONSOLE_SHELL: &str = include_str!("../../assets/console/index.html");
const NAV_HIDDEN: &str = r#"<nav id="nav" aria-label="Main" hidden></nav>"#;
const NAV_SHOWN: &str = r#"<nav id="nav" aria-label="Main"></nav>"#;
const HTML_EN: &str = r#"<html lang="en" dir="ltr">"#;
const HTML_AR: &str = r#"<html lang="ar" dir="rtl">"#;
/// The console's language, mirrored from its local storage so the server can serve the shell
/// already in it.
const LANG_COOKIE: &str = "sb_lang";

/// `/console/assets/{file}`: a script or style sheet of the console. Answered with an `ETag` of
/// its content and `no-cache`, so browsers revalidate (a cheap 304) and never run a script of
/// an older binary next to one of a newer.
#[utoipa::path(
    get,
    path = "/console/assets/{file}",
    tag = "pages",
    params(("file" = String, Path, description = "A file of the console, e.g. `app.js`")),
    responses(
        (status = 200, description = "The file (with an `ETag`; a request with `If-None-Match` naming it gets `304` and no body)", content_type = "text/javascript"),
        (status = 404, description = "The console has no such file"),
    )
)]
pub async fn console_asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some((_, content_type, body)) = CONSOLE_ASSETS.iter().find(|(name, _, _)| *name == file)
    else {
        return ApiError::not_found(format!("the console has no file `{file}`")).into_response();
    };
    let etag = format!("\"{:016x}\"", fnv1a(body.as_bytes()));
    let cache = [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::ETAG,
            HeaderValue::from_str(&etag).expect("an ETag is ASCII"),
        ),
    ];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    if fresh {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (
        cache,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        *body,
    )
        .into_response()
}

/// FNV-1a, 64 bits: a stable fingerprint of an embedded file for its ETag (not a security
/// measure; the files are public).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod console_tests {
    use super::*;

    #[test]
    fn the_shell_is_served_as_the_browser_will_show_it() {
        let shell = |cookie: Option<&str>, accept: Option<&str>| {
            let mut h = HeaderMap::new();
            if let Some(c) = cookie {
                h.insert(header::COOKIE, HeaderValue::from_str(c).unwrap());
            }
            if let Some(a) = accept {
                h.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_str(a).unwrap());
            }
            console_shell(&h)
        };
        let plain = shell(None, None);
        assert!(plain.contains(NAV_HIDDEN) && plain.contains(HTML_EN));
        let signed = shell(Some("sb_csrf=x; sb_session=sbs_abc"), Some("en-GB,en"));
        assert!(signed.contains(NAV_SHOWN) && signed.contains(HTML_EN));
        assert!(shell(None, Some("ar-EG,ar;q=0.9,en;q=0.5")).contains(HTML_AR));
        // The console's own choice wins over the browser's.
        assert!(shell(Some("sb_lang=en"), Some("ar")).contains(HTML_EN));
        assert!(shell(Some("sb_session=; sb_lang=ar"), None).contains(HTML_AR));
        assert!(shell(Some("sb_session=; sb_lang=ar"), None).contains(NAV_HIDDEN));
    }
}
