//! Identity: users, their memberships in tenants, browser sessions, API keys, invitations,
//! password resets and sign-in throttling.
//!
//! Users, sessions, password resets and the throttle are not a tenant's data (one person may work
//! for several tenants), so their functions take the pool. Memberships, keys and invitations are a
//! tenant's, so theirs take a [`TenantTx`]; the two lookups that start from a secret (an API key,
//! an invitation link) and must find the tenant first call the `platform_*` functions, which
//! return ids. Secrets never reach this module in clear except to be hashed by the caller: it
//! stores SHA-256 digests of tokens and argon2id strings of passwords.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::db::{DbError, TenantTx};
use crate::ids::TenantId;

/// What a person or a key may do inside one tenant. Each role includes the ones below it:
/// a `tenant_admin` can do everything a `sales_agent` can, who can do everything a `viewer` can.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads the tenant's data.
    Viewer,
    /// Works the inbox: replies, claims, hands back and closes conversations, books meetings.
    SalesAgent,
    /// Everything in the tenant: settings, channels, prompts, knowledge, people and keys.
    TenantAdmin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::TenantAdmin, Role::SalesAgent, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::SalesAgent => "sales_agent",
            Role::TenantAdmin => "tenant_admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "sales_agent" => Ok(Role::SalesAgent),
            "tenant_admin" => Ok(Role::TenantAdmin),
            other => Err(format!(
                "unknown role `{other}` (one of tenant_admin, sales_agent, viewer)"
            )),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Role {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

fn role_of(row: &sqlx::postgres::PgRow, column: &str) -> Result<Role, DbError> {
    let s: String = row.try_get(column)?;
    s.parse().map_err(DbError::Invalid)
}

/// A person who signs in.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub platform_admin: bool,
    pub has_password: bool,
    pub created_at: DateTime<Utc>,
    pub disabled: bool,
}

impl User {
    /// How the person is named in transcripts and the audit log.
    pub fn label(&self) -> String {
        if self.display_name.trim().is_empty() {
            self.email.clone()
        } else {
            self.display_name.clone()
        }
    }
}

const USER_COLUMNS: &str =
    "id, email, display_name, platform_admin, password_hash IS NOT NULL AS has_password, \
                            created_at, disabled_at IS NOT NULL AS disabled";

fn user_from(row: &sqlx::postgres::PgRow) -> Result<User, DbError> {
    Ok(User {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        display_name: row.try_get("display_name")?,
        platform_admin: row.try_get("platform_admin")?,
        has_password: row.try_get("has_password")?,
        created_at: row.try_get("created_at")?,
        disabled: row.try_get("disabled")?,
    })
}

/// Normalises an email address for storage and lookup (trimmed, lower-case), refusing text that
/// cannot be one.
pub fn normalize_email(raw: &str) -> Result<String, DbError> {
    let email = raw.trim().to_lowercase();
    if crate::validate::email(&email) {
        Ok(email)
    } else {
        Err(DbError::Invalid(format!(
            "`{}` is not an email address",
            raw.trim()
        )))
    }
}

/// A user to create.
#[derive(Clone, Debug)]
pub struct NewUser<'a> {
    pub email: &'a str,
    pub display_name: &'a str,
    /// argon2id PHC string, or `None` for someone who will set a password from a link.
    pub password_hash: Option<&'a str>,
    pub platform_admin: bool,
}

/// Creates a user; `Conflict` when the email is taken.
pub async fn create_user(pool: &PgPool, new: &NewUser<'_>) -> Result<User, DbError> {
    let email = normalize_email(new.email)?;
    let row = sqlx::query(&format!(
        "INSERT INTO users (id, email, display_name, password_hash, platform_admin, password_changed_at)
         VALUES ($1, $2, $3, $4, $5, CASE WHEN $4 IS NULL THEN NULL ELSE now() END)
         ON CONFLICT (email) DO NOTHING
         RETURNING {USER_COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(&email)
    .bind(new.display_name.trim())
    .bind(new.password_hash)
    .bind(new.platform_admin)
    .fetch_optional(pool)
    .await?;
    match row {
        Some(row) => user_from(&row),
        None => Err(DbError::Conflict(format!(
            "a user with email {email} exists"
        ))),
    }
}

pub async fn user_by_id(pool: &PgPool, id: Uuid) -> Result<Option<User>, DbError> {
    sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(user_from)
        .transpose()
}

/// The user with this email and their password hash (for signing in).
pub async fn user_by_email(
    pool: &PgPool,
    email: &str,
) -> Result<Option<(User, Option<String>)>, DbError> {
    let Ok(email) = normalize_email(email) else {
        return Ok(None);
    };
    let row = sqlx::query(&format!(
        "SELECT {USER_COLUMNS}, password_hash FROM users WHERE email = $1"
    ))
    .bind(email)
    .fetch_optional(pool)
    .await?;
    row.map(|r| Ok((user_from(&r)?, r.try_get("password_hash")?)))
        .transpose()
}

/// Every user (platform administration).
pub async fn list_users(pool: &PgPool) -> Result<Vec<User>, DbError> {
    sqlx::query(&format!(
        "SELECT {USER_COLUMNS} FROM users ORDER BY created_at, email"
    ))
    .fetch_all(pool)
    .await?
    .iter()
    .map(user_from)
    .collect()
}

/// Sets a user's password (and display name when given) and ends all their sessions.
pub async fn set_password(
    pool: &PgPool,
    user: Uuid,
    password_hash: &str,
    display_name: Option<&str>,
) -> Result<(), DbError> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE users SET password_hash = $2, password_changed_at = now(),
                display_name = COALESCE($3, display_name)
          WHERE id = $1",
    )
    .bind(user)
    .bind(password_hash)
    .bind(display_name.map(str::trim))
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL")
        .bind(user)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// A user's role in one tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Membership {
    pub tenant_id: TenantId,
    pub role: Role,
}

/// The tenants a user belongs to, oldest membership first.
pub async fn memberships_of(pool: &PgPool, user: Uuid) -> Result<Vec<Membership>, DbError> {
    sqlx::query("SELECT tenant_id, role FROM platform_user_memberships($1)")
        .bind(user)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| {
            Ok(Membership {
                tenant_id: TenantId(r.try_get("tenant_id")?),
                role: role_of(r, "role")?,
            })
        })
        .collect()
}

/// A member of the current tenant.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Member {
    #[serde(flatten)]
    pub user: User,
    pub role: Role,
    pub member_since: DateTime<Utc>,
}

fn member_from(row: &sqlx::postgres::PgRow) -> Result<Member, DbError> {
    Ok(Member {
        user: user_from(row)?,
        role: role_of(row, "role")?,
        member_since: row.try_get("member_since")?,
    })
}

const MEMBER_QUERY: &str = "SELECT u.id, u.email, u.display_name, u.platform_admin,
                                   u.password_hash IS NOT NULL AS has_password, u.created_at,
                                   u.disabled_at IS NOT NULL AS disabled,
                                   m.role, m.created_at AS member_since
                              FROM memberships m JOIN users u ON u.id = m.user_id";

/// The people of the current tenant.
pub async fn members(tx: &mut TenantTx) -> Result<Vec<Member>, DbError> {
    sqlx::query(&format!("{MEMBER_QUERY} ORDER BY m.created_at, u.email"))
        .fetch_all(tx.conn())
        .await?
        .iter()
        .map(member_from)
        .collect()
}

/// One person of the current tenant (`None` for someone who is not a member).
pub async fn member(tx: &mut TenantTx, user: Uuid) -> Result<Option<Member>, DbError> {
    sqlx::query(&format!("{MEMBER_QUERY} WHERE m.user_id = $1"))
        .bind(user)
        .fetch_optional(tx.conn())
        .await?
        .as_ref()
        .map(member_from)
        .transpose()
}

/// Makes `user` a member of the current tenant with `role` (or changes the role).
pub async fn add_member(tx: &mut TenantTx, user: Uuid, role: Role) -> Result<(), DbError> {
    let tenant = tx.tenant_id();
    sqlx::query(
        "INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id, user_id) DO UPDATE SET role = EXCLUDED.role",
    )
    .bind(tenant.0)
    .bind(user)
    .bind(role.as_str())
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Changes a member's role; false when the user is not a member of the current tenant.
pub async fn set_member_role(tx: &mut TenantTx, user: Uuid, role: Role) -> Result<bool, DbError> {
    let done = sqlx::query("UPDATE memberships SET role = $2 WHERE user_id = $1")
        .bind(user)
        .bind(role.as_str())
        .execute(tx.conn())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Removes a member from the current tenant; false when there was no such member.
pub async fn remove_member(tx: &mut TenantTx, user: Uuid) -> Result<bool, DbError> {
    let done = sqlx::query("DELETE FROM memberships WHERE user_id = $1")
        .bind(user)
        .execute(tx.conn())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// How many tenant administrators the current tenant has (the last one cannot be removed).
pub async fn count_admins(tx: &mut TenantTx) -> Result<i64, DbError> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM memberships WHERE role = 'tenant_admin'")
            .fetch_one(tx.conn())
            .await?,
    )
}

// ---------------------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------------------

/// A session to open.
#[derive(Clone, Debug)]
pub struct NewSession<'a> {
    pub user: Uuid,
    pub token_sha256: &'a [u8; 32],
    pub csrf_token: &'a str,
    pub expires_at: DateTime<Utc>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

pub async fn create_session(pool: &PgPool, s: &NewSession<'_>) -> Result<Uuid, DbError> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO sessions (id, user_id, token_sha256, csrf_token, expires_at, ip, user_agent)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(s.user)
    .bind(&s.token_sha256[..])
    .bind(s.csrf_token)
    .bind(s.expires_at)
    .bind(s.ip)
    .bind(
        s.user_agent
            .map(|ua| ua.chars().take(512).collect::<String>()),
    )
    .execute(pool)
    .await?;
    Ok(id)
}

/// A live session and its user.
#[derive(Clone, Debug)]
pub struct LiveSession {
    pub id: Uuid,
    pub user: User,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

/// The session behind a token if it is neither revoked, expired nor idle for longer than
/// `idle`, and its user is not disabled. Its last-seen time moves forward (at most once a
/// minute, so a busy browser does not write on every request).
pub async fn live_session(
    pool: &PgPool,
    token_sha256: &[u8; 32],
    idle: std::time::Duration,
) -> Result<Option<LiveSession>, DbError> {
    let idle_secs = idle.as_secs_f64();
    let row = sqlx::query(
        "SELECT s.id AS session_id, s.csrf_token, s.expires_at, s.last_seen_at,
                u.id, u.email, u.display_name, u.platform_admin,
                u.password_hash IS NOT NULL AS has_password, u.created_at,
                u.disabled_at IS NOT NULL AS disabled
           FROM sessions s JOIN users u ON u.id = s.user_id
          WHERE s.token_sha256 = $1 AND s.revoked_at IS NULL AND s.expires_at > now()
            AND s.last_seen_at > now() - make_interval(secs => $2)
            AND u.disabled_at IS NULL",
    )
    .bind(&token_sha256[..])
    .bind(idle_secs)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let id: Uuid = row.try_get("session_id")?;
    let last_seen: DateTime<Utc> = row.try_get("last_seen_at")?;
    if Utc::now() - last_seen > chrono::Duration::seconds(60) {
        sqlx::query("UPDATE sessions SET last_seen_at = now() WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await?;
    }
    Ok(Some(LiveSession {
        id,
        user: user_from(&row)?,
        csrf_token: row.try_get("csrf_token")?,
        expires_at: row.try_get("expires_at")?,
    }))
}

/// Ends one session; false when it was not live.
pub async fn revoke_session(pool: &PgPool, id: Uuid) -> Result<bool, DbError> {
    let done =
        sqlx::query("UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .execute(pool)
            .await?;
    Ok(done.rows_affected() == 1)
}

// ---------------------------------------------------------------------------------------------
// API keys
// ---------------------------------------------------------------------------------------------

/// An API key as listed (its secret is never kept).
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    pub role: Role,
    pub prefix: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

fn key_from(row: &sqlx::postgres::PgRow) -> Result<ApiKey, DbError> {
    Ok(ApiKey {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        role: role_of(row, "role")?,
        prefix: row.try_get("prefix")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

const KEY_COLUMNS: &str =
    "id, name, role, prefix, created_by, created_at, last_used_at, revoked_at";

/// A key to create in the current tenant.
#[derive(Clone, Debug)]
pub struct NewApiKey<'a> {
    pub name: &'a str,
    pub role: Role,
    pub prefix: &'a str,
    pub key_sha256: &'a [u8; 32],
    pub created_by: &'a str,
}

pub async fn create_key(tx: &mut TenantTx, k: &NewApiKey<'_>) -> Result<ApiKey, DbError> {
    let name = k.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(DbError::Invalid("name must be 1 to 100 characters".into()));
    }
    let tenant = tx.tenant_id();
    let row = sqlx::query(&format!(
        "INSERT INTO api_keys (id, tenant_id, name, role, prefix, key_sha256, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {KEY_COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(tenant.0)
    .bind(name)
    .bind(k.role.as_str())
    .bind(k.prefix)
    .bind(&k.key_sha256[..])
    .bind(k.created_by)
    .fetch_one(tx.conn())
    .await?;
    key_from(&row)
}

/// The current tenant's keys, newest first (revoked ones too, marked).
pub async fn list_keys(tx: &mut TenantTx) -> Result<Vec<ApiKey>, DbError> {
    sqlx::query(&format!(
        "SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at DESC, id DESC"
    ))
    .fetch_all(tx.conn())
    .await?
    .iter()
    .map(key_from)
    .collect()
}

pub async fn get_key(tx: &mut TenantTx, id: Uuid) -> Result<Option<ApiKey>, DbError> {
    sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1"))
        .bind(id)
        .fetch_optional(tx.conn())
        .await?
        .as_ref()
        .map(key_from)
        .transpose()
}

/// Revokes a key of the current tenant; the key as it is now, `None` when there is none.
pub async fn revoke_key(tx: &mut TenantTx, id: Uuid) -> Result<Option<ApiKey>, DbError> {
    sqlx::query(&format!(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1
         RETURNING {KEY_COLUMNS}"
    ))
    .bind(id)
    .fetch_optional(tx.conn())
    .await?
    .as_ref()
    .map(key_from)
    .transpose()
}

/// A key found by its digest, wherever it belongs.
#[derive(Clone, Debug)]
pub struct FoundKey {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub name: String,
    pub role: Role,
    pub revoked: bool,
}

pub async fn find_key(pool: &PgPool, key_sha256: &[u8; 32]) -> Result<Option<FoundKey>, DbError> {
    let row =
        sqlx::query("SELECT id, tenant_id, name, role, revoked FROM platform_find_api_key($1)")
            .bind(&key_sha256[..])
            .fetch_optional(pool)
            .await?;
    row.map(|r| {
        Ok(FoundKey {
            id: r.try_get("id")?,
            tenant_id: TenantId(r.try_get("tenant_id")?),
            name: r.try_get("name")?,
            role: role_of(&r, "role")?,
            revoked: r.try_get("revoked")?,
        })
    })
    .transpose()
}

/// Records that a key was used (at most once a minute per key).
pub async fn touch_key(pool: &PgPool, id: Uuid) -> Result<(), DbError> {
    sqlx::query("SELECT platform_touch_api_key($1)")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Invitations
// ---------------------------------------------------------------------------------------------

/// An invitation as listed.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Invitation {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    pub invited_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const INVITATION_COLUMNS: &str =
    "id, email, role, invited_by, created_at, expires_at, accepted_at, revoked_at";

fn invitation_from(row: &sqlx::postgres::PgRow) -> Result<Invitation, DbError> {
    Ok(Invitation {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        role: role_of(row, "role")?,
        invited_by: row.try_get("invited_by")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        accepted_at: row.try_get("accepted_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

/// An invitation to create in the current tenant.
#[derive(Clone, Debug)]
pub struct NewInvitation<'a> {
    pub email: &'a str,
    pub role: Role,
    pub token_sha256: &'a [u8; 32],
    pub invited_by: &'a str,
    pub expires_at: DateTime<Utc>,
}

/// Creates an invitation, revoking any open one for the same person (its link stops working).
pub async fn create_invitation(
    tx: &mut TenantTx,
    inv: &NewInvitation<'_>,
) -> Result<Invitation, DbError> {
    let email = normalize_email(inv.email)?;
    sqlx::query(
        "UPDATE invitations SET revoked_at = now()
          WHERE email = $1 AND accepted_at IS NULL AND revoked_at IS NULL",
    )
    .bind(&email)
    .execute(tx.conn())
    .await?;
    let tenant = tx.tenant_id();
    let row = sqlx::query(&format!(
        "INSERT INTO invitations (id, tenant_id, email, role, token_sha256, invited_by, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {INVITATION_COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(tenant.0)
    .bind(&email)
    .bind(inv.role.as_str())
    .bind(&inv.token_sha256[..])
    .bind(inv.invited_by)
    .bind(inv.expires_at)
    .fetch_one(tx.conn())
    .await?;
    invitation_from(&row)
}

/// The current tenant's invitations that are still open, newest first.
pub async fn open_invitations(tx: &mut TenantTx) -> Result<Vec<Invitation>, DbError> {
    sqlx::query(&format!(
        "SELECT {INVITATION_COLUMNS} FROM invitations
          WHERE accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()
          ORDER BY created_at DESC"
    ))
    .fetch_all(tx.conn())
    .await?
    .iter()
    .map(invitation_from)
    .collect()
}

/// Revokes an open invitation of the current tenant; the invitation, `None` when there is no
/// open one with this id.
pub async fn revoke_invitation(tx: &mut TenantTx, id: Uuid) -> Result<Option<Invitation>, DbError> {
    sqlx::query(&format!(
        "UPDATE invitations SET revoked_at = now()
          WHERE id = $1 AND accepted_at IS NULL AND revoked_at IS NULL
          RETURNING {INVITATION_COLUMNS}"
    ))
    .bind(id)
    .fetch_optional(tx.conn())
    .await?
    .as_ref()
    .map(invitation_from)
    .transpose()
}

/// An invitation found by its link.
#[derive(Clone, Debug)]
pub struct FoundInvitation {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub email: String,
    pub role: Role,
    /// Open: not accepted, revoked or expired.
    pub open: bool,
}

pub async fn find_invitation(
    pool: &PgPool,
    token_sha256: &[u8; 32],
) -> Result<Option<FoundInvitation>, DbError> {
    let row = sqlx::query(
        "SELECT id, tenant_id, email, role,
                accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now() AS open
           FROM platform_find_invitation($1)",
    )
    .bind(&token_sha256[..])
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        Ok(FoundInvitation {
            id: r.try_get("id")?,
            tenant_id: TenantId(r.try_get("tenant_id")?),
            email: r.try_get("email")?,
            role: role_of(&r, "role")?,
            open: r.try_get("open")?,
        })
    })
    .transpose()
}

/// Marks an open invitation of the current tenant accepted and makes `user` a member with its
/// role; false (nothing written) when it is no longer open.
pub async fn accept_invitation(tx: &mut TenantTx, id: Uuid, user: Uuid) -> Result<bool, DbError> {
    let role: Option<String> = sqlx::query_scalar(
        "UPDATE invitations SET accepted_at = now()
          WHERE id = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()
          RETURNING role",
    )
    .bind(id)
    .fetch_optional(tx.conn())
    .await?;
    let Some(role) = role else { return Ok(false) };
    add_member(tx, user, role.parse().map_err(DbError::Invalid)?).await?;
    Ok(true)
}

// ---------------------------------------------------------------------------------------------
// Password resets
// ---------------------------------------------------------------------------------------------

pub async fn create_password_reset(
    pool: &PgPool,
    user: Uuid,
    token_sha256: &[u8; 32],
    expires_at: DateTime<Utc>,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO password_resets (id, user_id, token_sha256, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(Uuid::now_v7())
    .bind(user)
    .bind(&token_sha256[..])
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Uses a reset link once: sets the new password, ends every session of the user and spends
/// every other open link. The user, `None` when the link is unknown, used or expired.
pub async fn use_password_reset(
    pool: &PgPool,
    token_sha256: &[u8; 32],
    password_hash: &str,
) -> Result<Option<Uuid>, DbError> {
    let mut tx = pool.begin().await?;
    let user: Option<Uuid> = sqlx::query_scalar(
        "UPDATE password_resets SET used_at = now()
          WHERE token_sha256 = $1 AND used_at IS NULL AND expires_at > now()
          RETURNING user_id",
    )
    .bind(&token_sha256[..])
    .fetch_optional(&mut *tx)
    .await?;
    let Some(user) = user else {
        tx.rollback().await?;
        return Ok(None);
    };
    sqlx::query(
        "UPDATE password_resets SET used_at = now() WHERE user_id = $1 AND used_at IS NULL",
    )
    .bind(user)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE users SET password_hash = $2, password_changed_at = now() WHERE id = $1")
        .bind(user)
        .bind(password_hash)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL")
        .bind(user)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(user))
}

// ---------------------------------------------------------------------------------------------
// Sign-in throttling
// ---------------------------------------------------------------------------------------------

/// How many failures in how long lock a key, and for how long.
#[derive(Clone, Copy, Debug)]
pub struct ThrottleRule {
    pub max_failures: i32,
    pub window: std::time::Duration,
    pub lock: std::time::Duration,
}

/// The latest lock still in force among `keys`, if any.
pub async fn locked_until(
    pool: &PgPool,
    keys: &[String],
) -> Result<Option<DateTime<Utc>>, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT max(locked_until) FROM auth_throttle WHERE key = ANY($1) AND locked_until > now()",
    )
    .bind(keys)
    .fetch_one(pool)
    .await?)
}

/// Counts a failure against `key` (a new window when the old one is over); returns the lock
/// end when this failure crossed the rule's limit.
pub async fn record_failure(
    pool: &PgPool,
    key: &str,
    rule: ThrottleRule,
) -> Result<Option<DateTime<Utc>>, DbError> {
    let row = sqlx::query(
        "INSERT INTO auth_throttle AS t (key, failures, window_start)
         VALUES ($1, 1, now())
         ON CONFLICT (key) DO UPDATE SET
             failures = CASE WHEN t.window_start < now() - make_interval(secs => $2)
                             THEN 1 ELSE t.failures + 1 END,
             window_start = CASE WHEN t.window_start < now() - make_interval(secs => $2)
                                 THEN now() ELSE t.window_start END
         RETURNING failures",
    )
    .bind(key)
    .bind(rule.window.as_secs_f64())
    .fetch_one(pool)
    .await?;
    let failures: i32 = row.try_get("failures")?;
    if failures < rule.max_failures {
        return Ok(None);
    }
    let until: DateTime<Utc> = sqlx::query_scalar(
        "UPDATE auth_throttle SET locked_until = now() + make_interval(secs => $2),
                failures = 0, window_start = now()
          WHERE key = $1 RETURNING locked_until",
    )
    .bind(key)
    .bind(rule.lock.as_secs_f64())
    .fetch_one(pool)
    .await?;
    Ok(Some(until))
}

/// Forgets the failures of `key` (after a successful sign-in).
pub async fn clear_failures(pool: &PgPool, key: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM auth_throttle WHERE key = $1 AND (locked_until IS NULL OR locked_until <= now())")
        .bind(key)
        .execute(pool)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_by_power_and_round_trip() {
        assert!(Role::TenantAdmin > Role::SalesAgent && Role::SalesAgent > Role::Viewer);
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
        assert!("platform_admin".parse::<Role>().is_err());
        assert!("Admin".parse::<Role>().is_err());
    }

    #[test]
    fn emails_are_normalised_or_refused() {
        assert_eq!(
            normalize_email("  Layla@Sahara.Example ").unwrap(),
            "layla@sahara.example"
        );
        for bad in [
            "",
            "layla",
            "@x.example",
            "a@b",
            "a@.example",
            "a b@x.example",
            "a@x.example@y",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }
}
