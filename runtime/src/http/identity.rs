//! Signing in and out, invitations, password resets, a tenant's people and API keys, and the
//! audit log. What each route needs is in the route table (`crate::http::router`); the rules of
//! credentials (cookies, CSRF, throttling) are in [`crate::auth`].

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_core::model::Tenant;
use switchboard_core::store::audit::{self, Actor, NewEntry};
use switchboard_core::store::identity::{self, NewApiKey, NewInvitation, NewSession, Role};
use switchboard_core::store::platform;
use switchboard_core::{DbError, TenantId};
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
// Signing in and out
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
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
    let mut out = json!({
        "user": user,
        "memberships": memberships,
        "csrf_token": csrf,
        "expires_at": expires_at,
    });
    if body.return_token {
        out["session_token"] = json!(token);
    }
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

async fn memberships_view(state: &AppState, user: Uuid) -> Result<Vec<Value>, ApiError> {
    let pool = state.services.db.pool();
    let tenants = platform::list_tenants(pool).await?;
    Ok(identity::memberships_of(pool, user)
        .await?
        .into_iter()
        .filter_map(|m| {
            tenants
                .iter()
                .find(|t| t.id == m.tenant_id)
                .map(|t| json!({"tenant_id": t.id, "slug": t.slug, "name": t.name, "role": m.role}))
        })
        .collect())
}

/// `GET /api/v1/auth/me`: who the credential belongs to and what it may do where.
pub async fn me(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    Ok(Json(match &caller.principal {
        Principal::Bootstrap => json!({
            "kind": "bootstrap", "platform_admin": true, "memberships": [],
        }),
        Principal::User { user, .. } => json!({
            "kind": "user",
            "user": user,
            "platform_admin": user.platform_admin,
            "memberships": memberships_view(&state, user.id).await?,
        }),
        Principal::ApiKey {
            id,
            name,
            tenant,
            role,
        } => json!({
            "kind": "api_key",
            "key": {"id": id, "name": name},
            "platform_admin": false,
            "memberships": [{"tenant_id": tenant, "role": role}],
        }),
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    current_password: String,
    new_password: String,
}

/// `POST /api/v1/auth/password`: a signed-in person changes their password (the current one
/// is asked again). Every session of the account ends, this one included: sign in again.
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    email: String,
}

/// `POST /api/v1/auth/password-reset`: emails a one-hour link to the account, if there is one.
/// The answer is the same either way (202), so it tells nobody whether an address has an
/// account; requests count against the client address like failed sign-ins.
pub async fn request_password_reset(
    State(state): State<AppState>,
    caller_ip: ClientIp,
    ApiJson(body): ApiJson<ResetRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let pool = state.services.db.pool();
    let ip_key = format!("reset-ip:{}", caller_ip.0.as_deref().unwrap_or("unknown"));
    if let Some(until) = identity::locked_until(pool, std::slice::from_ref(&ip_key)).await? {
        return Err(too_many_attempts(until));
    }
    identity::record_failure(pool, &ip_key, state.auth.ip_rule).await?;
    let accepted = (
        StatusCode::ACCEPTED,
        Json(json!({"status": "if the address has an account, a link is on its way"})),
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirm {
    token: String,
    password: String,
}

/// `POST /api/v1/auth/password-reset/confirm`: sets the new password, once per link; every
/// session of the account ends.
pub async fn confirm_password_reset(
    State(state): State<AppState>,
    caller_ip: ClientIp,
    ApiJson(body): ApiJson<ResetConfirm>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({"status": "password changed; sign in with it"})))
}

// ---------------------------------------------------------------------------------------------
// Invitations
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invite {
    email: String,
    role: Role,
}

/// `POST /api/v1/users/invitations`: emails a colleague a link to join the tenant with a role
/// (through the tenant's email channel, else the platform SMTP account). The invitation exists
/// only if the email left; inviting the same address again replaces the earlier link.
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
        Json(json!({"invitation": invitation, "sent_via": via})),
    )
        .into_response())
}

/// `GET /api/v1/users/invitations`: invitations still open.
pub async fn list_invitations(
    State(state): State<AppState>,
    scope: Scope,
) -> Result<Json<Value>, ApiError> {
    let mut tx = state.services.db.tenant(scope.tenant_id()).await?;
    let list = identity::open_invitations(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(json!({"invitations": list})))
}

/// `DELETE /api/v1/users/invitations/{id}`: the link stops working.
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

#[derive(Debug, Deserialize)]
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
pub async fn accept_invitation(
    State(state): State<AppState>,
    caller_ip: ClientIp,
    ApiJson(body): ApiJson<Accept>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({
        "user": user,
        "tenant": {"id": tenant.id, "slug": tenant.slug, "name": tenant.name},
        "role": inv.role,
    })))
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
pub async fn list_all_users(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let users = identity::list_users(state.services.db.pool()).await?;
    Ok(Json(json!({"users": users})))
}

/// `GET /api/v1/users`: the tenant's people and their roles.
pub async fn list_members(
    State(state): State<AppState>,
    scope: Scope,
) -> Result<Json<Value>, ApiError> {
    let mut tx = state.services.db.tenant(scope.tenant_id()).await?;
    let list = identity::members(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(json!({"users": list})))
}

fn user_id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::not_found(format!("no user `{raw}` in this tenant")))
}

/// `GET /api/v1/users/{id}`: one of the tenant's people (404 for anyone else).
pub async fn show_member(
    State(state): State<AppState>,
    scope: Scope,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = user_id(&raw)?;
    let mut tx = state.services.db.tenant(scope.tenant_id()).await?;
    let member = identity::member(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user `{raw}` in this tenant")))?;
    tx.commit().await?;
    Ok(Json(json!({"user": member})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateMember {
    role: Role,
}

/// `PATCH /api/v1/users/{id}`: changes a person's role in the tenant. The last tenant
/// administrator cannot be demoted.
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
    Ok((Extension(detail), Json(json!({"user": after}))).into_response())
}

/// `DELETE /api/v1/users/{id}`: removes a person from the tenant (their account stays, with
/// their other tenants). The last tenant administrator cannot be removed.
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
pub async fn list_keys(
    State(state): State<AppState>,
    scope: Scope,
) -> Result<Json<Value>, ApiError> {
    let mut tx = state.services.db.tenant(scope.tenant_id()).await?;
    let keys = identity::list_keys(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(json!({"keys": keys})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    name: String,
    role: Role,
}

/// `POST /api/v1/keys`: a new key with a role; its secret is in this answer and nowhere else.
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
        Json(json!({
            "key": key,
            "secret": secret,
            "note": "this is the only time the key is shown; store it now",
        })),
    )
        .into_response())
}

/// `DELETE /api/v1/keys/{id}`: the key stops working at once.
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
    Ok((Extension(detail), Json(json!({"key": key}))).into_response())
}

// ---------------------------------------------------------------------------------------------
// The audit log
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    resource_type: Option<String>,
    resource_id: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/v1/audit`: the tenant's changes, newest first, filtered, a page at a time.
pub async fn list_audit(
    State(state): State<AppState>,
    scope: Scope,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(
        json!({"entries": entries, "next_cursor": next_cursor}),
    ))
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
