//! Who is calling and what they may do.
//!
//! Three kinds of credential open the API, all in `Authorization: Bearer`, the first also as a
//! browser cookie:
//!
//! - a **session** (`sbs_…`), made by signing in as a user: the `sb_session` cookie (secure,
//!   HttpOnly, SameSite=Strict) for browsers, or the token itself for scripts. A request that
//!   authenticates with the cookie and changes something must carry the session's CSRF token in
//!   `X-CSRF-Token` (double submit: the token is also readable in the `sb_csrf` cookie), so another
//!   site cannot make a signed-in browser act;
//! - an **API key** (`sbk_…`) of one tenant, with a role;
//! - the **bootstrap token** (`SWITCHBOARD_ADMIN_TOKEN`), a platform administrator.
//!
//! Every route declares what it needs in the route table ([`crate::http::router`]) as an
//! [`Access`]; [`enforce`] runs before the handler, resolves the caller and, for tenant routes,
//! the tenant (from the credential, or `?tenant=` for people and platform administrators who
//! act for several), and puts a [`Scope`] in the request for the handler. Handlers never check
//! roles themselves. A credential of one tenant asking for another is answered 404, as if the
//! tenant did not exist.

pub mod mail;
pub mod secrets;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, OptionalFromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use switchboard_core::model::Tenant;
use switchboard_core::store::audit::Actor;
use switchboard_core::store::identity::{self, Membership, Role, User};
use switchboard_core::store::platform;
use switchboard_core::TenantId;
use uuid::Uuid;

use crate::http::error::ApiError;
use crate::http::AppState;
use secrets::{constant_time_eq, token_digest, TokenKind};

/// Name of the session cookie (HttpOnly).
pub const SESSION_COOKIE: &str = "sb_session";
/// Name of the cookie that carries the CSRF token to the page's scripts (readable).
pub const CSRF_COOKIE: &str = "sb_csrf";
/// Header that must repeat the CSRF token on state-changing requests made with the cookie.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// What a route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// Nobody needs to sign in (web chat, sign-in itself, links from emails).
    Public,
    /// Providers' webhooks: no Switchboard credential; the adapter verifies the provider's
    /// signature instead.
    Signed,
    /// Any valid credential (a person's own account, signing out).
    Authenticated,
    /// A platform administrator (every tenant, the tenants themselves).
    Platform,
    /// At least this role in the request's tenant (platform administrators have every role).
    Tenant(Role),
    /// Like `Tenant`, but a platform administrator who names no tenant acts on all of them
    /// (platform-wide lists); the handler then gets no [`Scope`].
    TenantOrPlatform(Role),
}

impl Access {
    /// How the route table and the OpenAPI document name it.
    pub fn label(self) -> String {
        match self {
            Access::Public => "public".into(),
            Access::Signed => "provider signature".into(),
            Access::Authenticated => "signed in".into(),
            Access::Platform => "platform_admin".into(),
            Access::Tenant(r) => r.as_str().into(),
            Access::TenantOrPlatform(r) => format!("{} (platform_admin: all tenants)", r.as_str()),
        }
    }
}

/// Who is calling.
#[derive(Clone, Debug)]
pub enum Principal {
    /// The bootstrap token: a platform administrator.
    Bootstrap,
    /// A person, signed in.
    User {
        user: User,
        session: Uuid,
        /// The session's CSRF token (cookie-authenticated changes must repeat it).
        csrf_token: String,
        memberships: Vec<Membership>,
    },
    /// A tenant's API key.
    ApiKey {
        id: Uuid,
        name: String,
        tenant: TenantId,
        role: Role,
    },
}

/// The authenticated caller of a request.
#[derive(Clone, Debug)]
pub struct Caller {
    pub principal: Principal,
    /// The credential came in the session cookie (so CSRF rules apply).
    pub via_cookie: bool,
    pub ip: Option<String>,
}

impl Caller {
    pub fn is_platform_admin(&self) -> bool {
        match &self.principal {
            Principal::Bootstrap => true,
            Principal::User { user, .. } => user.platform_admin,
            Principal::ApiKey { .. } => false,
        }
    }

    /// The caller's role in `tenant` (platform administrators: `tenant_admin` everywhere).
    pub fn role_in(&self, tenant: TenantId) -> Option<Role> {
        if self.is_platform_admin() {
            return Some(Role::TenantAdmin);
        }
        match &self.principal {
            Principal::Bootstrap => Some(Role::TenantAdmin),
            Principal::User { memberships, .. } => memberships
                .iter()
                .find(|m| m.tenant_id == tenant)
                .map(|m| m.role),
            Principal::ApiKey {
                tenant: t, role, ..
            } => (*t == tenant).then_some(*role),
        }
    }

    /// How the audit log and transcripts name the caller.
    pub fn actor(&self) -> Actor {
        match &self.principal {
            Principal::Bootstrap => Actor {
                kind: "bootstrap",
                id: None,
                label: "platform admin (bootstrap token)".into(),
            },
            Principal::User { user, .. } => Actor {
                kind: "user",
                id: Some(user.id),
                label: user.label(),
            },
            Principal::ApiKey { id, name, .. } => Actor {
                kind: "api_key",
                id: Some(*id),
                label: format!("API key \"{name}\""),
            },
        }
    }

    /// The signed-in user, when the caller is one.
    pub fn user(&self) -> Option<&User> {
        match &self.principal {
            Principal::User { user, .. } => Some(user),
            _ => None,
        }
    }
}

/// The tenant a request acts for and the caller's role there; set by [`enforce`] on tenant
/// routes, read by handlers with this extractor.
#[derive(Clone, Debug)]
pub struct Scope {
    pub tenant: Tenant,
    pub role: Role,
    pub caller: Arc<Caller>,
}

impl Scope {
    pub fn tenant_id(&self) -> TenantId {
        self.tenant.id
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Scope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Scope>().cloned().ok_or_else(|| {
            ApiError::internal(&std::io::Error::other(
                "a tenant handler ran on a route whose access is not a tenant role",
            ))
        })
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Scope {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Scope>().cloned())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Arc<Caller>>()
            .map(|c| (**c).clone())
            .ok_or_else(ApiError::unauthorized)
    }
}

/// What the route table says about one method of one route.
#[derive(Clone, Copy, Debug)]
pub struct Guard {
    pub access: Access,
    /// Successful calls by an authenticated caller are written to the audit log.
    pub audited: bool,
}

/// What a handler tells the audit log about the change it made, as a response extension:
/// the action's name, the resource, and the state before and after (secrets are redacted when
/// the entry is written). Without it, the entry names the route and keeps the request body as
/// the state after.
#[derive(Clone, Debug, Default)]
pub struct AuditDetail {
    pub action: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

impl AuditDetail {
    pub fn new(action: &str, resource_type: &str, resource_id: impl Into<String>) -> Self {
        Self {
            action: action.to_owned(),
            resource_type: Some(resource_type.to_owned()),
            resource_id: Some(resource_id.into()),
            ..Self::default()
        }
    }

    pub fn before(mut self, v: serde_json::Value) -> Self {
        self.before = Some(v);
        self
    }

    pub fn after(mut self, v: serde_json::Value) -> Self {
        self.after = Some(v);
        self
    }

    /// The state before, as the resource serializes (the API's own view, which never holds a
    /// secret in clear; keys named like secrets are redacted again when the entry is written).
    pub fn before_state(self, v: &impl serde::Serialize) -> Self {
        self.before(serde_json::to_value(v).unwrap_or(serde_json::Value::Null))
    }

    /// The state after, as the resource serializes.
    pub fn after_state(self, v: &impl serde::Serialize) -> Self {
        self.after(serde_json::to_value(v).unwrap_or(serde_json::Value::Null))
    }
}

/// The largest request body the audit layer reads (the route's own limit, smaller, still
/// applies to the handler).
const AUDIT_BODY_LIMIT: usize = 64 * 1024 * 1024;
/// The largest request body kept in an audit entry.
const AUDIT_BODY_KEPT: usize = 64 * 1024;

/// The middleware of every route: authenticate, check CSRF, resolve the tenant, check the role,
/// then run the handler with [`Caller`] and [`Scope`] in the request's extensions; and after a
/// successful change by an authenticated caller, write the audit entry.
///
/// The entry is written right after the handler's own commit, in a transaction of its own: a
/// crash in between loses the entry, not the change (and is logged as such on the next start by
/// nothing — the window is one INSERT long; routes whose entry must be atomic with the change
/// write it themselves, as accepting an invitation does).
pub async fn enforce(
    State((state, guard)): State<(AppState, Guard)>,
    mut req: Request,
    next: Next,
) -> Response {
    if let Err(e) = authorize(&state, guard.access, &mut req).await {
        return e.into_response();
    }
    let audited = guard.audited;
    let caller = req.extensions().get::<Arc<Caller>>().cloned();
    let (true, Some(caller)) = (audited, caller) else {
        return next.run(req).await;
    };
    let scope = req.extensions().get::<Scope>().cloned();
    let template = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| req.uri().path().to_owned());
    // Inside a nested router the URI has lost its prefix; the original keeps it.
    let path = req
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map(|u| u.0.path().to_owned())
        .unwrap_or_else(|| req.uri().path().to_owned());
    let method = req.method().to_string();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, AUDIT_BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is larger than the server accepts",
            )
            .into_response()
        }
    };
    let requested = request_summary(&bytes, is_json);
    let response = next
        .run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await;
    if !response.status().is_success() {
        return response;
    }
    let detail = response.extensions().get::<AuditDetail>().cloned();
    let (param_type, param_id) = path_resource(&template, &path);
    let detail = detail.unwrap_or_default();
    let entry = switchboard_core::store::audit::NewEntry {
        action: if detail.action.is_empty() {
            default_action(&method, &template)
        } else {
            detail.action
        },
        method: Some(method),
        path: Some(path),
        resource_type: detail.resource_type.or(param_type),
        resource_id: detail.resource_id.or(param_id),
        status: Some(i32::from(response.status().as_u16())),
        before: detail.before,
        after: detail.after.or(requested),
        request_id,
        ip: caller.ip.clone(),
    };
    let actor = caller.actor();
    let written = match &scope {
        Some(s) => {
            async {
                let mut tx = state.services.db.tenant(s.tenant_id()).await?;
                switchboard_core::store::audit::record(&mut tx, &actor, &entry).await?;
                tx.commit().await
            }
            .await
        }
        None => {
            switchboard_core::store::audit::record_platform(
                state.services.db.pool(),
                &actor,
                &entry,
            )
            .await
        }
    };
    if let Err(e) = written {
        metrics::counter!("switchboard_audit_failures_total").increment(1);
        tracing::error!(error = %e, action = %entry.action, "could not write an audit entry for a change that was made");
    }
    response
}

/// What a request asked for, for the audit log: its JSON body (secrets are redacted when the
/// entry is written), or the size of any other body.
fn request_summary(bytes: &[u8], is_json: bool) -> Option<serde_json::Value> {
    if bytes.is_empty() {
        return None;
    }
    if is_json && bytes.len() <= AUDIT_BODY_KEPT {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) {
            return Some(v);
        }
    }
    Some(serde_json::json!({"body_bytes": bytes.len()}))
}

/// `PUT /api/v1/prompts/{version_id}` → `put prompts.{version_id}`-like names are hard to read;
/// the default action is the route itself: `PUT /prompts/{version_id}`.
fn default_action(method: &str, template: &str) -> String {
    format!(
        "{method} {}",
        template.strip_prefix("/api/v1").unwrap_or(template)
    )
}

/// The resource a path names: its last `{param}` and the segment before it
/// (`/channels/{channel_id}/health` → `channel_id`, the id).
fn path_resource(template: &str, path: &str) -> (Option<String>, Option<String>) {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    if t.len() != p.len() {
        return (None, None);
    }
    t.iter()
        .zip(&p)
        .rev()
        .find_map(|(t, p)| {
            let name = t.strip_prefix('{')?.strip_suffix('}')?;
            let kind = name.strip_suffix("_id").unwrap_or(name);
            Some((Some(kind.to_owned()), Some((*p).to_owned())))
        })
        .unwrap_or((None, None))
}

async fn authorize(state: &AppState, access: Access, req: &mut Request) -> Result<(), ApiError> {
    if matches!(access, Access::Public | Access::Signed) {
        // Public routes still learn who calls when a credential comes along (signing out,
        // accepting an invitation while signed in), but never require one.
        if let Ok(Some(caller)) = authenticate(state, req.headers(), client_ip(req)).await {
            req.extensions_mut().insert(Arc::new(caller));
        }
        return Ok(());
    }
    let caller = authenticate(state, req.headers(), client_ip(req))
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    if caller.via_cookie && !is_safe(req.method()) {
        check_csrf(&caller, req.headers())?;
    }
    match access {
        Access::Public | Access::Signed | Access::Authenticated => {}
        Access::Platform => {
            if !caller.is_platform_admin() {
                return Err(forbidden("this needs a platform administrator"));
            }
        }
        Access::TenantOrPlatform(_)
            if caller.is_platform_admin() && asked_tenant(req.uri().query()).is_none() => {}
        Access::Tenant(needed) | Access::TenantOrPlatform(needed) => {
            let tenant = resolve_tenant(state, &caller, req.uri().query()).await?;
            let role = caller
                .role_in(tenant.id)
                .ok_or_else(|| ApiError::not_found(format!("no tenant `{}`", tenant.slug)))?;
            if role < needed {
                return Err(forbidden(&format!(
                    "this needs the {needed} role in {}; you have {role}",
                    tenant.slug
                )));
            }
            let caller = Arc::new(caller);
            req.extensions_mut().insert(Scope {
                tenant,
                role,
                caller: caller.clone(),
            });
            req.extensions_mut().insert(caller);
            return Ok(());
        }
    }
    req.extensions_mut().insert(Arc::new(caller));
    Ok(())
}

fn forbidden(message: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The peer address of the connection (the server is started with connect info).
fn client_ip(req: &Request) -> Option<String> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string())
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

/// The caller behind the request's credential: `Ok(None)` when there is none, `Err(401)` when
/// one was presented and is not valid (a wrong, revoked or expired credential is never
/// silently treated as no credential).
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    ip: Option<String>,
) -> Result<Option<Caller>, ApiError> {
    let db = state.services.db.pool();
    if let Some(token) = bearer(headers) {
        if token.starts_with(TokenKind::ApiKey.prefix()) {
            let key = identity::find_key(db, &token_digest(token))
                .await?
                .filter(|k| !k.revoked)
                .ok_or_else(ApiError::unauthorized)?;
            let db = state.services.db.clone();
            let id = key.id;
            // Last-used time, off the request's path (at most one write a minute per key).
            tokio::spawn(async move {
                if let Err(e) = identity::touch_key(db.pool(), id).await {
                    tracing::warn!(error = %e, "could not record an API key's use");
                }
            });
            return Ok(Some(Caller {
                principal: Principal::ApiKey {
                    id: key.id,
                    name: key.name,
                    tenant: key.tenant_id,
                    role: key.role,
                },
                via_cookie: false,
                ip,
            }));
        }
        if token.starts_with(TokenKind::Session.prefix()) {
            let caller = session_caller(state, token, false, ip).await?;
            return caller.map(Some).ok_or_else(ApiError::unauthorized);
        }
        if constant_time_eq(
            token.as_bytes(),
            state.admin_token.expose_secret().as_bytes(),
        ) {
            return Ok(Some(Caller {
                principal: Principal::Bootstrap,
                via_cookie: false,
                ip,
            }));
        }
        return Err(ApiError::unauthorized());
    }
    if let Some(token) = cookie(headers, SESSION_COOKIE) {
        let caller = session_caller(state, token, true, ip).await?;
        return caller.map(Some).ok_or_else(ApiError::unauthorized);
    }
    Ok(None)
}

async fn session_caller(
    state: &AppState,
    token: &str,
    via_cookie: bool,
    ip: Option<String>,
) -> Result<Option<Caller>, ApiError> {
    let db = state.services.db.pool();
    let Some(session) =
        identity::live_session(db, &token_digest(token), state.auth.session_idle).await?
    else {
        return Ok(None);
    };
    let memberships = identity::memberships_of(db, session.user.id).await?;
    Ok(Some(Caller {
        principal: Principal::User {
            user: session.user,
            session: session.id,
            csrf_token: session.csrf_token,
            memberships,
        },
        via_cookie,
        ip,
    }))
}

/// A state-changing request made with the session cookie must repeat the session's CSRF token
/// in `X-CSRF-Token`.
fn check_csrf(caller: &Caller, headers: &HeaderMap) -> Result<(), ApiError> {
    let refused = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "a state-changing request signed in with the session cookie needs the X-CSRF-Token header (the sb_csrf cookie's value)",
        )
    };
    let Principal::User { csrf_token, .. } = &caller.principal else {
        return Err(refused());
    };
    let presented = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(refused)?;
    if constant_time_eq(presented.as_bytes(), csrf_token.as_bytes()) {
        Ok(())
    } else {
        Err(refused())
    }
}

/// The tenant a tenant route acts for: an API key's own; else `?tenant=` (slug or id), which a
/// person must be a member of; else a person's only tenant.
async fn resolve_tenant(
    state: &AppState,
    caller: &Caller,
    query: Option<&str>,
) -> Result<Tenant, ApiError> {
    let asked = asked_tenant(query);
    let pool = state.services.db.pool();
    let not_found = |t: &str| ApiError::not_found(format!("no tenant `{t}`"));
    let own = match &caller.principal {
        Principal::ApiKey { tenant, .. } => Some(*tenant),
        Principal::User { memberships, .. } if asked.is_none() => match memberships.as_slice() {
            [only] => Some(only.tenant_id),
            [] if caller.is_platform_admin() => None,
            [] => return Err(forbidden(
                "you are not a member of any tenant; ask a tenant administrator for an invitation",
            )),
            _ => {
                return Err(ApiError::bad_request(
                    "missing_tenant",
                    "you belong to several tenants: pass ?tenant=<slug or id>",
                ))
            }
        },
        _ => None,
    };
    match (asked.as_deref(), own) {
        (Some(t), Some(own)) => {
            let tenant = platform::find_tenant(pool, t)
                .await?
                .ok_or_else(|| not_found(t))?;
            if tenant.id != own {
                return Err(not_found(t));
            }
            Ok(tenant)
        }
        (Some(t), None) => platform::find_tenant(pool, t)
            .await?
            .ok_or_else(|| not_found(t)),
        (None, Some(own)) => platform::find_tenant(pool, &own.to_string())
            .await?
            .ok_or_else(|| not_found(&own.to_string())),
        (None, None) => Err(ApiError::bad_request(
            "missing_tenant",
            "pass ?tenant=<slug or id>",
        )),
    }
}

/// The `tenant` named in the query string, if any.
fn asked_tenant(query: Option<&str>) -> Option<String> {
    query.and_then(|q| form_urlencoded_value(q, "tenant").filter(|v| !v.is_empty()))
}

/// The first value of `key` in a URL query string, percent-decoded.
fn form_urlencoded_value(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k) == key).then(|| decode(v))
    })
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 3 <= bytes.len())
            .then(|| std::str::from_utf8(&bytes[i + 1..i + 3]).ok())
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[i], escaped) {
            (_, Some(b)) => {
                out.push(b);
                i += 3;
                continue;
            }
            (b'+', None) => out.push(b' '),
            (b, None) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Settings of sign-in and sessions.
#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// A session ends this long after sign-in, whatever happens.
    pub session_ttl: std::time::Duration,
    /// A session unused for this long ends.
    pub session_idle: std::time::Duration,
    /// How long an invitation link works.
    pub invitation_ttl: std::time::Duration,
    /// How long a password-reset link works.
    pub reset_ttl: std::time::Duration,
    /// Failed sign-ins per account before it is locked for a while.
    pub account_rule: identity::ThrottleRule,
    /// Failed sign-ins per client address before it is locked for a while.
    pub ip_rule: identity::ThrottleRule,
    /// Cookies get `Secure` (the browser sends them over HTTPS only; localhost counts).
    pub secure_cookies: bool,
    /// The platform's SMTP account for identity emails of tenants without an email channel.
    pub platform_smtp: Option<mail::PlatformSmtp>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        use std::time::Duration;
        Self {
            session_ttl: Duration::from_secs(12 * 3600),
            session_idle: Duration::from_secs(2 * 3600),
            invitation_ttl: Duration::from_secs(7 * 24 * 3600),
            reset_ttl: Duration::from_secs(3600),
            account_rule: identity::ThrottleRule {
                max_failures: 5,
                window: Duration::from_secs(15 * 60),
                lock: Duration::from_secs(15 * 60),
            },
            ip_rule: identity::ThrottleRule {
                max_failures: 20,
                window: Duration::from_secs(15 * 60),
                lock: Duration::from_secs(15 * 60),
            },
            secure_cookies: true,
            platform_smtp: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_found_and_decoded() {
        assert_eq!(
            form_urlencoded_value("tenant=demo&x=1", "tenant").as_deref(),
            Some("demo")
        );
        assert_eq!(
            form_urlencoded_value("a=1&tenant=nour%2Dcafe", "tenant").as_deref(),
            Some("nour-cafe")
        );
        assert_eq!(
            form_urlencoded_value("tenant", "tenant").as_deref(),
            Some("")
        );
        assert_eq!(form_urlencoded_value("x=1", "tenant"), None);
        assert_eq!(decode("a+b%20c%zz%"), "a b c%zz%");
    }

    #[test]
    fn cookies_are_read_from_every_cookie_header() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "a=1; sb_session=sbs_x".parse().unwrap());
        h.append(header::COOKIE, "sb_csrf=tok".parse().unwrap());
        assert_eq!(cookie(&h, "sb_session"), Some("sbs_x"));
        assert_eq!(cookie(&h, "sb_csrf"), Some("tok"));
        assert_eq!(cookie(&h, "missing"), None);
    }

    #[test]
    fn audited_requests_name_their_resource() {
        assert_eq!(
            path_resource(
                "/api/v1/channels/{channel_id}/health",
                "/api/v1/channels/abc/health"
            ),
            (Some("channel".into()), Some("abc".into()))
        );
        assert_eq!(
            path_resource("/api/v1/prompts", "/api/v1/prompts"),
            (None, None)
        );
        assert_eq!(
            default_action("PUT", "/api/v1/prompts/{version_id}"),
            "PUT /prompts/{version_id}"
        );
        assert_eq!(
            request_summary(b"{\"a\":1}", true),
            Some(serde_json::json!({"a": 1}))
        );
        assert_eq!(
            request_summary(b"%PDF", false),
            Some(serde_json::json!({"body_bytes": 4}))
        );
        assert_eq!(request_summary(b"", true), None);
    }

    #[test]
    fn roles_include_the_lower_ones() {
        let key = Caller {
            principal: Principal::ApiKey {
                id: Uuid::nil(),
                name: "k".into(),
                tenant: TenantId(Uuid::from_u128(1)),
                role: Role::SalesAgent,
            },
            via_cookie: false,
            ip: None,
        };
        assert_eq!(
            key.role_in(TenantId(Uuid::from_u128(1))),
            Some(Role::SalesAgent)
        );
        assert_eq!(key.role_in(TenantId(Uuid::from_u128(2))), None);
        assert!(!key.is_platform_admin());
        let boot = Caller {
            principal: Principal::Bootstrap,
            via_cookie: false,
            ip: None,
        };
        assert_eq!(
            boot.role_in(TenantId(Uuid::from_u128(2))),
            Some(Role::TenantAdmin)
        );
        assert_eq!(Access::Tenant(Role::Viewer).label(), "viewer");
    }
}
