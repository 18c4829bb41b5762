//! Signing in and out, invitations, password resets, a tenant's people and API keys, and the
//! audit log. What each route needs is in the route table (`crate::http::router`); the rules of
//! credentials (cookies, CSRF, throttling) are in [`crate::auth`].

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_core::model::Tenant;
use switchboard_core::store::audit::{self, Actor, Entry, NewEntry};
use switchboard_core::store::identity::{
    self, ApiKey, Invitation, Member, NewApiKey, NewInvitation, NewSession, Role, User,
};
use switchboard_core::store::platform;
use switchboard_core::{DbError, TenantId};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::error::{ApiError, ApiJson};
use super::AppState;
use crate::auth::mail::{self, Mail};
use crate::auth::secrets::{self, new_token, token_digest, TokenKind};
use crate::auth::{AuditDetail, Caller, Principal, Scope, CSRF_COOKIE, SESSION_COOKIE};

fn unprocessable(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

fn weak_password(e: secrets::PasswordError) -> ApiError {
    unprocessable("weak_password", e.to_string())
}

// ---------------------------------------------------------------------------------------------
// What the answers look like
// ---------------------------------------------------------------------------------------------

/// A tenant a person (or key) belongs to, with the role there.
#[derive(Debug, Serialize, ToSchema)]
pub struct MembershipView {
    pub tenant_id: TenantId,
    /// Absent for an API key (its own tenant).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub role: Role,
}

/// A new session.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignedIn {
    pub user: User,
    pub memberships: Vec<MembershipView>,
    /// Repeat it in `X-CSRF-Token` on changes made with the session cookie.
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
    /// The session as a bearer token (`sbs_…`), only when `return_token` was asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_token: Option<String>,
}

/// Who a credential belongs to and what it may do where.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// `bootstrap`, `user` or `api_key`.
    pub kind: &'static str,
    /// The person (kind `user`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    /// The key (kind `api_key`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<KeyName>,
    pub platform_admin: bool,
    pub memberships: Vec<MembershipView>,
}

/// An API key's id and name.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyName {
    pub id: Uuid,
    pub name: String,
}

/// A sentence saying what happened.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusNote {
    pub status: &'static str,
}

/// A tenant's id, slug and name.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantRef {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
}

/// An accepted invitation: the account and where it now belongs.
#[derive(Debug, Serialize, ToSchema)]
pub struct Joined {
    pub user: User,
    pub tenant: TenantRef,
    pub role: Role,
}

/// Invitations still open.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationList {
    pub invitations: Vec<Invitation>,
}

/// A new invitation and how its email left.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationSent {
    pub invitation: Invitation,
    /// How the email left: "the tenant's email channel" or "the platform SMTP account".
    pub sent_via: &'static str,
}

/// Every account.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<User>,
}

/// A tenant's people and their roles.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberList {
    pub users: Vec<Member>,
}

/// One of a tenant's people.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberOne {
    pub user: Option<Member>,
}

/// A tenant's API keys (never their secrets).
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<ApiKey>,
}

/// One API key.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyOne {
    pub key: ApiKey,
}

/// A new API key with its secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyCreated {
    pub key: ApiKey,
    /// The bearer credential (`sbk_…`): store it now, it is never shown again.
    pub secret: String,
    pub note: &'static str,
}

/// A page of the audit log, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub entries: Vec<Entry>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Signing in and out
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    email: String,
    password: String,
    /// Scripts that will send the session as a bearer token ask for it here; browsers use the
    /// HttpOnly cookie and never see it.
    #[serde(default)]
    return_token: bool,
}

/// `POST /api/v1/auth/sign-in`: a session for a person, in the `sb_session` cookie (and the
/// CSRF token in `sb_csrf` and in the body). Failed attempts are counted per account and per
/// client address; past the limit, sign-in answers 429 until the lock ends.
#[utoipa::path(
    post,
    path = "/api/v1/auth/sign-in",
    summary = "Signs a person in: a session in the `sb_session` cookie (or as a token).",
    tag = "auth",
    request_body = SignIn,
    responses(
        (status = 200, description = "Signed in: the session is in the `sb_session` cookie (HttpOnly) and the CSRF token in `sb_csrf` and in the body", body = SignedIn,
            headers(("Set-Cookie" = String, description = "`sb_session` (HttpOnly) and `sb_csrf`"))),
        (status = 401, description = "`invalid_credentials`: the email or the password is wrong"),
        (status = 429, description = "`too_many_attempts`: too many failed sign-ins; see `Retry-After`"),
    )
)]
pub async fn sign_in(
    State(state): State<AppState>,
    caller_ip: ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SignIn>,
) -> Result<Response, ApiError> {
    let pool = state.services.db.pool();
    let email = body.email.trim().to_lowercase();
    let account_key = format!("account:{email}");
    let ip_key = format!("ip:{}", caller_ip.0.as_deref().unwrap_or("unknown"));
    if let Some(until) =
        identity::locked_until(pool, &[account_key.clone(), ip_key.clone()]).await?
    {
        return Err(too_many_attempts(until));
    }
    let found = identity::user_by_email(pool, &email).await?;
    // Unknown accounts cost the same argon2id verification as known ones (no enumeration by
    // timing), and every failure looks the same from outside.
    let (user, hash) = match found {
        Some((u, Some(h))) if !u.disabled => (Some(u), h),
        _ => (None, secrets::dummy_hash().to_owned()),
    };
    let matches = secrets::verify_password(body.password, hash).await;
    let Some(user) = user.filter(|_| matches) else {
        let a = identity::record_failure(pool, &account_key, state.auth.account_rule).await?;
        let b = identity::record_failure(pool, &ip_key, state.auth.ip_rule).await?;
        let _ = audit::record_platform(
            pool,
            &Actor {
                kind: "user",
                id: None,
                label: email.clone(),
            },
            &NewEntry {
                action: "auth.sign_in_failed".into(),
                method: Some("POST".into()),
                path: Some("/api/v1/auth/sign-in".into()),
                status: Some(401),
                ip: caller_ip.0.clone(),
                ..NewEntry::default()
            },
        )
        .await;
        if let Some(until) = a.into_iter().chain(b).max() {
            return Err(too_many_attempts(until));
        }
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "the email or the password is wrong",
        ));
    };
    identity::clear_failures(pool, &account_key).await?;
    let token = new_token(TokenKind::Session);
    let csrf = new_token(TokenKind::Link);
    let expires_at = Utc::now()
        + chrono::Duration::from_std(state.auth.session_ttl).unwrap_or(chrono::Duration::hours(12));
    identity::create_session(
        pool,
        &NewSession {
            user: user.id,
            token_sha256: &token_digest(&token),
            csrf_token: &csrf,
            expires_at,
            ip: caller_ip.0.as_deref(),
            user_agent: headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok()),
        },
    )
    .await?;
    audit::record_platform(
        pool,
        &Actor {
            kind: "user",
            id: Some(user.id),
            label: user.label(),
        },
        &NewEntry {
            action: "auth.sign_in".into(),
            method: Some("POST".into()),
            path: Some("/api/v1/auth/sign-in".into()),
            status: Some(200),
            ip: caller_ip.0.clone(),
            ..NewEntry::default()
        },
    )
    .await?;
    let memberships = memberships_view(&state, user.id).await?;
    let out = SignedIn {
        user,
        memberships,
        csrf_token: csrf.clone(),
        expires_at,
        session_token: body.return_token.then(|| token.clone()),
    };
    let mut response = Json(out).into_response();
    let max_age = state.auth.session_ttl.as_secs();
    set_cookie(
        &mut response,
        &cookie_line(
            SESSION_COOKIE,
            &token,
            max_age,
            true,
            state.auth.secure_cookies,
        ),
    );
    set_cookie(
        &mut response,
        &cookie_line(
            CSRF_COOKIE,
            &csrf,
            max_age,
            false,
            state.auth.secure_cookies,
        ),
    );
    Ok(response)
}

fn too_many_attempts(until: DateTime<Utc>) -> ApiError {
    metrics::counter!("switchboard_rate_limited_total", "what" => "sign_in").increment(1);
    let secs = (until - Utc::now()).num_seconds().max(1);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
        format!("too many failed sign-ins; try again in {secs} s"),
    )
    .with_retry_after(secs as u64)
}

/// A `Set-Cookie` value: Path=/, SameSite=Lax (a link from an email opens signed in; other
/// sites' forms and scripts cannot use the cookie to change anything — that needs the CSRF
/// header), HttpOnly for the session, Secure unless turned off for plain-HTTP deployments.
pub fn cookie_line(name: &str, value: &str, max_age: u64, http_only: bool, secure: bool) -> String {
    let mut line = format!("{name}={value}; Path=/; Max-Age={max_age}; SameSite=Lax");
    if http_only {
        line.push_str("; HttpOnly");
    }
    if secure {
        line.push_str("; Secure");
    }
    line
}

fn set_cookie(response: &mut Response, line: &str) {
    if let Ok(v) = HeaderValue::from_str(line) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// `POST /api/v1/auth/sign-out`: ends the session and clears its cookies.
#[utoipa::path(
    post,
    path = "/api/v1/auth/sign-out",
    tag = "auth",
    responses(
        (status = 204, description = "The session ended; its cookies are cleared"),
        (status = 400, description = "`not_a_session`: the credential is not a person's session"),
    )
)]
pub async fn sign_out(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let Principal::User { session, .. } = &caller.principal else {
        return Err(ApiError::bad_request(
            "not_a_session",
            "only a signed-in person can sign out; revoke an API key instead",
        ));
    };
    identity::revoke_session(state.services.db.pool(), *session).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    let secure = state.auth.secure_cookies;
    set_cookie(
        &mut response,
        &cookie_line(SESSION_COOKIE, "", 0, true, secure),
    );
    set_cookie(
        &mut response,
        &cookie_line(CSRF_COOKIE, "", 0, false, secure),
    );
    Ok(response)
}

async fn memberships_view(state: &AppState, user: Uuid) -> Result<Vec<MembershipView>, ApiError> {
    let pool = state.services.db.pool();
    let tenants = platform::list_tenants(pool).await?;
    Ok(identity::memberships_of(pool, user)
        .await?
        .into_iter()
        .filter_map(|m| {
            tenants
                .iter()
                .find(|t| t.id == m.tenant_id)
                .map(|t| MembershipView {
                    tenant_id: t.id,
                    slug: Some(t.slug.clone()),
                    name: Some(t.name.clone()),
                    role: m.role,
                })
        })
        .collect())
}

/// `GET /api/v1/auth/me`: who the credential belongs to and what it may do where.
#[utoipa::path(
    get,
    path = "/api/v1/auth/me",
    tag = "auth",
    responses((status = 200, description = "The caller: a person, an API key or the bootstrap token, with their tenants and roles", body = Me))
)]
pub async fn me(State(state): State<AppState>, caller: Caller) -> Result<Json<Me>, ApiError> {
    Ok(Json(match &caller.principal {
        Principal::Bootstrap => Me {
            kind: "bootstrap",
            user: None,
            key: None,
            platform_admin: true,
            memberships: Vec::new(),
        },
        Principal::User { user, .. } => Me {
            kind: "user",
            platform_admin: user.platform_admin,
            memberships: memberships_view(&state, user.id).await?,
            user: Some(user.clone()),
            key: None,
        },
        Principal::ApiKey {
            id,
            name,
            tenant,
            role,
        } => Me {
            kind: "api_key",
            user: None,
            key: Some(KeyName {
                id: *id,
                name: name.clone(),
            }),
            platform_admin: false,
            memberships: vec![MembershipView {
                tenant_id: *tenant,
                slug: None,
                name: None,
                role: *role,
            }],
        },
    }))
}

/// The client's address, from the connection.
pub struct ClientIp(pub Option<String>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip().to_string()),
        ))
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    current_password: String,
    new_password: String,
}

/// `POST /api/v1/auth/password`: a signed-in person changes their password (the current one
/// is asked again). Every session of the account ends, this one included: sign in again.
#[utoipa::path(
    post,
    path = "/api/v1/auth/password",
    tag = "auth",
    request_body = ChangePassword,
    responses(
        (status = 204, description = "Changed; every session of the account ended (sign in again)"),
        (status = 400, description = "`not_a_session`: only a signed-in person has a password"),
        (status = 403, description = "`wrong_password`: the current password is wrong; or the credential lacks the access"),
        (status = 422, description = "`weak_password`: the new password is too short, too long or too common"),
    )
)]
pub async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ChangePassword>,
) -> Result<Response, ApiError> {
    let Principal::User { user, .. } = &caller.principal else {
        return Err(ApiError::bad_request(
            "not_a_session",
            "only a signed-in person has a password",
        ));
    };
    let pool = state.services.db.pool();
    let hash = identity::user_by_email(pool, &user.email)
        .await?
        .and_then(|(_, h)| h)
        .unwrap_or_else(|| secrets::dummy_hash().to_owned());
    if !secrets::verify_password(body.current_password, hash).await {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong_password",
            "the current password is wrong",
        ));
    }
    secrets::check_password(&body.new_password).map_err(weak_password)?;
    let new_hash = secrets::hash_password(body.new_password).await;
    identity::set_password(pool, user.id, &new_hash, None).await?;
    let detail = AuditDetail::new("auth.password_change", "user", user.id.to_string());
    let mut response = (Extension(detail), StatusCode::NO_CONTENT).into_response();
    let secure = state.auth.secure_cookies;
    set_cookie(
        &mut response,
        &cookie_line(SESSION_COOKIE, "", 0, true, secure),
    );
    set_cookie(
        &mut response,
        &cookie_line(CSRF_COOKIE, "", 0, false, secure),
    );
    Ok(response)
}

// ---------------------------------------------------------------------------------------------
// Password resets
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    email: String,
}

/// `POST /api/v1/auth/password-reset`: emails a one-hour link to the account, if there is one.
/// The answer is the same either way (202), so it tells nobody whether an address has an
/// account; requests count against the client address like failed sign-ins.
#[utoipa::path(
    post,
    path = "/api/v1/auth/password-reset",
    tag = "auth",
    request_body = ResetRequest,
    responses(
        (status = 202, description = "The same answer whether the address has an account or not", body = StatusNote),
        (status = 429, description = "`too_many_attempts`: too many requests from this address; see `Retry-After`"),
    )
)]
pub async fn request_password_reset(
    State(state): State<AppState>,
    caller_ip: ClientIp,
    ApiJson(body): ApiJson<ResetRequest>,
) -> Result<(StatusCode, Json<StatusNote>), ApiError> {
    let pool = state.services.db.pool();
    let ip_key = format!("reset-ip:{}", caller_ip.0.as_deref().unwrap_or("unknown"));
    if let Some(until) = identity::locked_until(pool, std::slice::from_ref(&ip_key)).await? {
        return Err(too_many_attempts(until));
    }
    identity::record_failure(pool, &ip_key, state.auth.ip_rule).await?;
    let accepted = (
        StatusCode::ACCEPTED,
        Json(StatusNote {
            status: "if the address has an account, a link is on its way",
        }),
    );
    let Some((user, _)) = identity::user_by_email(pool, &body.email).await? else {
        return Ok(accepted);
    };
    if user.disabled {
        return Ok(accepted);
    }
    let token = new_token(TokenKind::Link);
    let expires_at = Utc::now()
        + chrono::Duration::from_std(state.auth.reset_ttl).unwrap_or(chrono::Duration::hours(1));
    identity::create_password_reset(pool, user.id, &token_digest(&token), expires_at).await?;
    let tenant = identity::memberships_of(pool, user.id)
        .await?
        .first()
        .map(|m| m.tenant_id);
    let link = format!(
        "{}/console/reset-password#token={token}",
        state.public_base_url
    );
    let text = format!(
        "Someone (hopefully you) asked to reset the password of {email} on Switchboard.\n\n\
         Choose a new password here (the link works once, for an hour):\n{link}\n\n\
         Or send {{\"token\": \"{token}\", \"password\": \"...\"}} to \
         POST {base}/api/v1/auth/password-reset/confirm\n\n\
         If it was not you, ignore this message: your password stays as it is.\n",
        email = user.email,
        base = state.public_base_url,
    );
    let sent = mail::send(
        &state,
        tenant,
        &Mail {
            to: &user.email,
            subject: "Reset your Switchboard password",
            text: &text,
            key: &format!("password-reset:{}", Uuid::now_v7()),
        },
    )
    .await;
    if let Err(e) = sent {
        // The answer stays the same (it must not reveal the account); the operator sees why.
        tracing::warn!(error = %e, "could not send a password-reset email");
    }
    Ok(accepted)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirm {
    token: String,
    password: String,
}

/// `POST /api/v1/auth/password-reset/confirm`: sets the new password, once per link; every
/// session of the account ends.
#[utoipa::path(
    post,
    path = "/api/v1/auth/password-reset/confirm",
    tag = "auth",
    request_body = ResetConfirm,
    responses(
        (status = 200, description = "The password is changed; every session of the account ended", body = StatusNote),
        (status = 400, description = "`invalid_link`: the token is unknown, used or expired"),
        (status = 422, description = "`weak_password`: the new password is too short, too long or too common"),
    )
)]
pub async fn confirm_password_reset(
    State(state): State<AppState>,
    caller_ip: ClientIp,
    ApiJson(body): ApiJson<ResetConfirm>,
) -> Result<Json<StatusNote>, ApiError> {
    secrets::check_password(&body.password).map_err(weak_password)?;
    let hash = secrets::hash_password(body.password).await;
    let pool = state.services.db.pool();
    let user = identity::use_password_reset(pool, &token_digest(body.token.trim()), &hash)
        .await?
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_link",
                "this link is unknown, used or expired; ask for a new one",
            )
        })?;
    if let Some(u) = identity::user_by_id(pool, user).await? {
        audit::record_platform(
            pool,
            &Actor {
                kind: "user",
                id: Some(u.id),
                label: u.label(),
            },
            &NewEntry {
                action: "auth.password_reset".into(),
                method: Some("POST".into()),
                path: Some("/api/v1/auth/password-reset/confirm".into()),
                status: Some(200),
                ip: caller_ip.0,
                ..NewEntry::default()
            },
        )
        .await?;
    }
    Ok(Json(StatusNote {
        status: "password changed; sign in with it",
    }))
}

// ---------------------------------------------------------------------------------------------
// Invitations
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Invite {
    email: String,
    role: Role,
}

/// `POST /api/v1/users/invitations`: emails a colleague a link to join the tenant with a role
/// (through the tenant's email channel, else the platform SMTP account). The invitation exists
/// only if the email left; inviting the same address again replaces the earlier link.
#[utoipa::path(
    post,
    path = "/api/v1/users/invitations",
    tag = "users",
    request_body = Invite,
    responses(
        (status = 201, description = "The invitation, emailed", body = InvitationSent),
        (status = 400, description = "`invalid`: the address is not an email address"),
        (status = 422, description = "`no_email_sender`: neither the tenant nor the platform can send email"),
        (status = 502, description = "`email_failed`: the mail server refused the message; no invitation was made"),
    )
)]
pub async fn invite(
    State(state): State<AppState>,
    scope: Scope,
    ApiJson(body): ApiJson<Invite>,
) -> Result<Response, ApiError> {
    let email = identity::normalize_email(&body.email)?;
    let token = new_token(TokenKind::Link);
    let by = scope.caller.actor().label;
    let expires_at = Utc::now()
        + chrono::Duration::from_std(state.auth.invitation_ttl)
            .unwrap_or(chrono::Duration::days(7));
    let mut tx = state.services.db.tenant(scope.tenant_id()).await?;
    let invitation = identity::create_invitation(
        &mut tx,
        &NewInvitation {
            email: &email,
            role: body.role,
            token_sha256: &token_digest(&token),
            invited_by: &by,
            expires_at,
        },
    )
    .await?;
    let link = format!(
        "{}/console/accept-invitation#token={token}",
        state.public_base_url
    );
    let text = format!(
        "{by} invites you to work in {tenant} on Switchboard as {role}.\n\n\
         Accept and choose your password here (the link works for {days} days):\n{link}\n\n\
         Or send {{\"token\": \"{token}\", \"password\": \"...\"}} to \
         POST {base}/api/v1/auth/invitations/accept\n",
        tenant = scope.tenant.name,
        role = body.role,
        days = state.auth.invitation_ttl.as_secs() / 86_400,
        base = state.public_base_url,
    );
    let via = mail::send(
        &state,
        Some(scope.tenant_id()),
        &Mail {
            to: &email,
            subject: &format!("Join {} on Switchboard", scope.tenant.name),
            text: &text,
            key: &format!("invitation:{}", invitation.id),
        },
    )
    .await
    .map_err(|e| match e {
        mail::MailError::NoSender => unprocessable("no_email_sender", e.to_string()),
        mail::MailError::Failed(_) => {
            ApiError::new(StatusCode::BAD_GATEWAY, "email_failed", e.to_string())
        }
    })?;
    tx.commit().await?;
    let detail = AuditDetail::new("user.invite", "invitation", invitation.id.to_string())
        .after(json!({"email": invitation.email, "role": invitation.role}));
    Ok((
        StatusCode::CREATED,
        Extension(detail),
        Json(InvitationSent {
            invitation,
            sent_via: via,
        }),
    )
        .into_response())
}

/// `GET /api/v1/users/invitations`: invitations still open.
#[utoipa::path(
    get,
    path = "/api/v1/users/invitations",
    tag = "users",
    responses((status = 200, description = "Invitations still open", body = InvitationList))
)]
pub async fn list_invitations(
    State(state): State<AppState>,
    scope: Scope,
) -> Result<Json<InvitationList>, ApiError> {
    let mut tx = state.services.db.tenant(scope.tenant_id()).await?;
    let list = identity::open_invitations(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(InvitationList { invitations: list }))
}

/// `DELETE /api/v1/users/invitations/{id}`: the link stops working.
#[utoipa::path(
    delete,
    path = "/api/v1/users/invitations/{invitation_id}",
    tag = "users",
    params(("invitation_id" = String, Path, description = "The invitation's id")),
    responses(
        (status = 204, description = "Revoked: the link stops working"),
        (status = 404, description = "No open invitation has this id"),
    )
)]
pub async fn revoke_invitation(
    State(state): State<AppState>,
    scope: Scope,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(format!("no open invitation `{raw}`"));
    let id: Uuid = raw.parse().map_err(|_| not_found())?;
    let mut tx = state.services.db.tenant(scope.tenant_id()).await?;
    let inv = identity::revoke_invitation(&mut tx, id)
        .await?
        .ok_or_else(not_found)?;
    tx.commit().await?;
    let detail = AuditDetail::new("user.invitation_revoke", "invitation", id.to_string())
        .before(json!({"email": inv.email, "role": inv.role}));
    Ok((StatusCode::NO_CONTENT, Extension(detail)).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Accept {
    token: String,
    /// Needed when the address has no account yet (it becomes its password).
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
}

/// `POST /api/v1/auth/invitations/accept`: the invited person joins the tenant — creating their
/// account with the password given, or, when the address already has one, adding the tenant to
/// it (the link proves the address; the existing password stays).
#[utoipa::path(
    post,
    path = "/api/v1/auth/invitations/accept",
    tag = "auth",
    request_body = Accept,
    responses(
        (status = 200, description = "Joined: the account and the tenant it now belongs to", body = Joined),
        (status = 400, description = "`invalid_link`: the invitation is unknown, used, revoked or expired"),
        (status = 422, description = "`password_required`, `weak_password` or `invalid_display_name`"),
    )
)]
pub async fn accept_invitation(
    State(state): State<AppState>,
    caller_ip: ClientIp,
    ApiJson(body): ApiJson<Accept>,
) -> Result<Json<Joined>, ApiError> {
    let pool = state.services.db.pool();
    let invalid = || {
        ApiError::bad_request(
            "invalid_link",
            "this invitation is unknown, used, revoked or expired; ask for a new one",
        )
    };
    let inv = identity::find_invitation(pool, &token_digest(body.token.trim()))
        .await?
        .filter(|i| i.open)
        .ok_or_else(invalid)?;
    if let Some(name) = &body.display_name {
        if name.trim().chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(unprocessable(
                "invalid_display_name",
                "display_name must be at most 200 characters",
            ));
        }
    }
    let user = match identity::user_by_email(pool, &inv.email).await? {
        Some((user, _)) => user,
        None => {
            let password = body.password.ok_or_else(|| {
                unprocessable(
                    "password_required",
                    "choose a password for your new account (10 to 200 characters)",
                )
            })?;
            secrets::check_password(&password).map_err(weak_password)?;
            let hash = secrets::hash_password(password).await;
            match identity::create_user(
                pool,
                &identity::NewUser {
                    email: &inv.email,
                    display_name: body.display_name.as_deref().unwrap_or(""),
                    password_hash: Some(&hash),
                    platform_admin: false,
                },
            )
            .await
            {
                Ok(u) => u,
                // Accepted twice at once: the other request made the account.
                Err(DbError::Conflict(_)) => identity::user_by_email(pool, &inv.email)
                    .await?
                    .map(|(u, _)| u)
                    .ok_or_else(invalid)?,
                Err(e) => return Err(e.into()),
            }
        }
    };
    let mut tx = state.services.db.tenant(inv.tenant_id).await?;
    if !identity::accept_invitation(&mut tx, inv.id, user.id).await? {
        return Err(invalid());
    }
    audit::record(
        &mut tx,
        &Actor {
            kind: "user",
            id: Some(user.id),
            label: user.label(),
        },
        &NewEntry {
            action: "user.join".into(),
            method: Some("POST".into()),
            path: Some("/api/v1/auth/invitations/accept".into()),
            resource_type: Some("user".into()),
            resource_id: Some(user.id.to_string()),
            status: Some(200),
            after: Some(json!({"email": user.email, "role": inv.role})),
            ip: caller_ip.0,
            ..NewEntry::default()
        },
    )
    .await?;
    tx.commit().await?;
    let tenant = tenant_by_id(&state, inv.tenant_id).await?;
    Ok(Json(Joined {
        user,
        tenant: TenantRef {
            id: tenant.id,
            slug: tenant.slug,
            name: tenant.name,
        },
        role: inv.role,
    }))
}

async fn tenant_by_id(state: &AppState, id: TenantId) -> Result<Tenant, ApiError> {
    platform::list_tenants(state.services.db.pool())
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no tenant `{id}`")))
}

// ---------------------------------------------------------------------------------------------
// People of a tenant
// ---------------------------------------------------------------------------------------------

/// `GET /api/v1/platform/users`: every account (platform administrators).
#[utoipa::path(
    get,
    path = "/api/v1/platform/users",
    tag = "users",
    responses((status = 200, description = "Every account", body = UserList))
)]
pub async fn list_all_users(State(state): State<AppState>) -> Result<Json<UserList>, ApiError> {
    let users = identity::list_users(state.services.db.pool()).await?;
    Ok(Json(UserList { users }))
}

/// `GET /api/v1/users`: the tenant's people and their roles.
#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "users",
    responses((status = 200, description = "The tenant's people and their roles", body = MemberList))
)]
pub async fn list_members(
    State(state): State<AppState>,
    scope: Scope,
) -> Result<Json<MemberList>, ApiError> {
    let mut tx = state.services.db.tenant(scope.tenant_id()).await?;
    let list = identity::members(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(MemberList { users: list }))
}

fn user_id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::not_found(format!("no user `{raw}` in this tenant")))
}

/// `GET /api/v1/users/{id}`: one of the tenant's people (404 for anyone else).
#[utoipa::path(
    get,
    path = "/api/v1/users/{user_id}",
    tag = "users",
    params(("user_id" = String, Path, description = "The person's user id")),
    responses(
        (status = 200, description = "The person and their role here", body = MemberOne),
        (status = 404, description = "No such person in this tenant"),
    )
)]
pub async fn show_member(
    State(state): State<AppState>,
    scope: Scope,
    Path(raw): Path<String>,
) -> Result<Json<MemberOne>, ApiError> {
    let id = user_id(&raw)?;
    let mut tx = state.services.db.tenant(scope.tenant_id()).await?;
    let member = identity::member(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user `{raw}` in this tenant")))?;
    tx.commit().await?;
    Ok(Json(MemberOne { user: Some(member) }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMember {
    role: Role,
}

/// `PATCH /api/v1/users/{id}`: changes a person's role in the tenant. The last tenant
/// administrator cannot be demoted.
#[utoipa::path(
    patch,
    path = "/api/v1/users/{user_id}",
    tag = "users",
    params(("user_id" = String, Path, description = "The person's user id")),
    request_body = UpdateMember,
    responses(
        (status = 200, description = "The person with their new role", body = MemberOne),
        (status = 404, description = "No such person in this tenant"),
        (status = 409, description = "`last_admin`: the tenant's last administrator cannot be demoted"),
    )
)]
pub async fn update_member(
    State(state): State<AppState>,
    scope: Scope,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<UpdateMember>,
) -> Result<Response, ApiError> {
    let id = user_id(&raw)?;
    let mut tx = state.services.db.tenant(scope.tenant_id()).await?;
    let before = identity::member(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user `{raw}` in this tenant")))?;
    if before.role == Role::TenantAdmin
        && body.role != Role::TenantAdmin
        && identity::count_admins(&mut tx).await? <= 1
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "last_admin",
            "this is the tenant's last administrator; make someone else one first",
        ));
    }
    identity::set_member_role(&mut tx, id, body.role).await?;
    let after = identity::member(&mut tx, id).await?;
    tx.commit().await?;
    let detail = AuditDetail::new("user.role", "user", id.to_string())
        .before(json!({"role": before.role}))
        .after(json!({"role": body.role}));
    Ok((Extension(detail), Json(MemberOne { user: after })).into_response())
}

/// `DELETE /api/v1/users/{id}`: removes a person from the tenant (their account stays, with
/// their other tenants). The last tenant administrator cannot be removed.
#[utoipa::path(
    delete,
    path = "/api/v1/users/{user_id}",
    tag = "users",
    params(("user_id" = String, Path, description = "The person's user id")),
    responses(
        (status = 204, description = "Removed from the tenant (the account stays)"),
        (status = 404, description = "No such person in this tenant"),
        (status = 409, description = "`last_admin`: the tenant's last administrator cannot be removed"),
    )
)]
pub async fn remove_member(
    State(state): State<AppState>,
    scope: Scope,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let id = user_id(&raw)?;
    let mut tx = state.services.db.tenant(scope.tenant_id()).await?;
    let before = identity::member(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user `{raw}` in this tenant")))?;
    if before.role == Role::TenantAdmin && identity::count_admins(&mut tx).await? <= 1 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "last_admin",
            "this is the tenant's last administrator; make someone else one first",
        ));
    }
    identity::remove_member(&mut tx, id).await?;
    tx.commit().await?;
    let detail = AuditDetail::new("user.remove", "user", id.to_string())
        .before(json!({"email": before.user.email, "role": before.role}));
    Ok((StatusCode::NO_CONTENT, Extension(detail)).into_response())
}

// ---------------------------------------------------------------------------------------------
// API keys
// ---------------------------------------------------------------------------------------------

/// `GET /api/v1/keys`: the tenant's keys (never their secrets).
#[utoipa::path(
    get,
    path = "/api/v1/keys",
    tag = "keys",
    responses((status = 200, description = "The tenant's keys, revoked ones included (never their secrets)", body = KeyList))
)]
pub async fn list_keys(
    State(state): State<AppState>,
    scope: Scope,
) -> Result<Json<KeyList>, ApiError> {
    let mut tx = state.services.db.tenant(scope.tenant_id()).await?;
    let keys = identity::list_keys(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(KeyList { keys }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    name: String,
    role: Role,
}

/// `POST /api/v1/keys`: a new key with a role; its secret is in this answer and nowhere else.
#[utoipa::path(
    post,
    path = "/api/v1/keys",
    tag = "keys",
    request_body = CreateKey,
    responses(
        (status = 201, description = "The key and its secret, shown this once", body = KeyCreated),
        (status = 403, description = "`forbidden`: a key cannot have more rights than whoever creates it"),
    )
)]
pub async fn create_key(
    State(state): State<AppState>,
    scope: Scope,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<Response, ApiError> {
    if body.role > scope.role {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "a key cannot have more rights than whoever creates it",
        ));
    }
    let secret = new_token(TokenKind::ApiKey);
    let prefix: String = secret.chars().take(12).collect();
    let mut tx = state.services.db.tenant(scope.tenant_id()).await?;
    let key = identity::create_key(
        &mut tx,
        &NewApiKey {
            name: &body.name,
            role: body.role,
            prefix: &prefix,
            key_sha256: &token_digest(&secret),
            created_by: &scope.caller.actor().label,
        },
    )
    .await?;
    tx.commit().await?;
    let detail = AuditDetail::new("key.create", "api_key", key.id.to_string())
        .after(json!({"name": key.name, "role": key.role, "prefix": key.prefix}));
    Ok((
        StatusCode::CREATED,
        Extension(detail),
        Json(KeyCreated {
            key,
            secret,
            note: "this is the only time the key is shown; store it now",
        }),
    )
        .into_response())
}

/// `DELETE /api/v1/keys/{id}`: the key stops working at once.
#[utoipa::path(
    delete,
    path = "/api/v1/keys/{key_id}",
    tag = "keys",
    params(("key_id" = String, Path, description = "The key's id")),
    responses(
        (status = 200, description = "The key, revoked", body = KeyOne),
        (status = 404, description = "The tenant has no key with this id"),
    )
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    scope: Scope,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(format!("no key `{raw}`"));
    let id: Uuid = raw.parse().map_err(|_| not_found())?;
    let mut tx = state.services.db.tenant(scope.tenant_id()).await?;
    let key = identity::revoke_key(&mut tx, id)
        .await?
        .ok_or_else(not_found)?;
    tx.commit().await?;
    let detail = AuditDetail::new("key.revoke", "api_key", id.to_string())
        .before(json!({"name": key.name, "role": key.role}));
    Ok((Extension(detail), Json(KeyOne { key })).into_response())
}

// ---------------------------------------------------------------------------------------------
// The audit log
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only entries of this actor (its label or id).
    actor: Option<String>,
    /// Only this action (e.g. `key.create`, `PUT /prompts/{version_id}`).
    action: Option<String>,
    /// Only changes to this kind of resource (e.g. `api_key`, `channel`).
    resource_type: Option<String>,
    /// Only changes to this resource.
    resource_id: Option<String>,
    /// Entries at or after this time (RFC 3339).
    from: Option<DateTime<Utc>>,
    /// Entries before this time (RFC 3339).
    to: Option<DateTime<Utc>>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Entries per page, 1 to 500 (default 50).
    limit: Option<i64>,
}

/// `GET /api/v1/audit`: the tenant's changes, newest first, filtered, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of entries, newest first", body = AuditPage),
        (status = 400, description = "`invalid_cursor`, or a malformed time"),
        (status = 422, description = "`invalid_limit`: limit is 1 to 500"),
    )
)]
pub async fn list_audit(
    State(state): State<AppState>,
    scope: Scope,
    Query(q): Query<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(unprocessable("invalid_limit", "limit is 1 to 500"));
    }
    let before = match q.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(parse_cursor(c).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_cursor",
                "cursor is the next_cursor of a previous page",
            )
        })?),
    };
    let mut tx = state.services.db.tenant(scope.tenant_id()).await?;
    let entries = audit::list(
        &mut tx,
        &audit::Filter {
            actor: q.actor,
            action: q.action,
            resource_type: q.resource_type,
            resource_id: q.resource_id,
            from: q.from,
            to: q.to,
            before,
            limit,
        },
    )
    .await?;
    tx.commit().await?;
    let next_cursor = (entries.len() as i64 == limit)
        .then(|| {
            entries
                .last()
                .map(|e| format!("{}_{}", e.at.timestamp_micros(), e.id))
        })
        .flatten();
    Ok(Json(AuditPage {
        entries,
        next_cursor,
    }))
}

fn parse_cursor(c: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let (micros, id) = c.split_once('_')?;
    Some((
        DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        id.parse().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_carry_the_security_attributes() {
        let s = cookie_line("sb_session", "sbs_x", 3600, true, true);
        assert_eq!(
            s,
            "sb_session=sbs_x; Path=/; Max-Age=3600; SameSite=Lax; HttpOnly; Secure"
        );
        let c = cookie_line("sb_csrf", "t", 10, false, false);
        assert!(!c.contains("HttpOnly") && !c.contains("Secure"));
    }

    #[test]
    fn cursors_round_trip() {
        let id = Uuid::now_v7();
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let c = format!("{}_{}", at.timestamp_micros(), id);
        assert_eq!(parse_cursor(&c), Some((at, id)));
        assert_eq!(parse_cursor("garbage"), None);
    }
}
