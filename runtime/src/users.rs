//! People and API keys from the command line (`switchboard user …`, `switchboard key …`): how the
//! first administrator of a platform or a tenant comes to exist, before anyone can sign in to
//! invite the rest. Every change is written to the audit log as done by the CLI.

use anyhow::{bail, Context};
use serde_json::json;
use switchboard_core::model::Tenant;
use switchboard_core::store::audit::{self, Actor, NewEntry};
use switchboard_core::store::identity::{self, ApiKey, NewApiKey, NewUser, Role, User};
use switchboard_core::store::platform;
use switchboard_core::{Db, DbError};
use uuid::Uuid;

use crate::auth::secrets::{self, new_token, token_digest, TokenKind};

fn cli_actor() -> Actor {
    let who = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    Actor {
        kind: "cli",
        id: None,
        label: format!("command line ({who})"),
    }
}

async fn tenant(db: &Db, slug_or_id: &str) -> anyhow::Result<Tenant> {
    platform::find_tenant(db.pool(), slug_or_id)
        .await?
        .with_context(|| format!("no tenant `{slug_or_id}` (see `switchboard tenant list`)"))
}

/// What `user create` did.
pub struct Created {
    pub user: User,
    /// The password, when the command chose it.
    pub generated_password: Option<String>,
    pub existed: bool,
}

/// Creates a user (or finds the one with this email), optionally a platform administrator, and
/// makes them a member of `membership`'s tenant with its role. A password is set only for a new
/// user: the given one, or a generated one that is returned to be shown once.
pub async fn create_user(
    db: &Db,
    email: &str,
    name: &str,
    password: Option<String>,
    platform_admin: bool,
    membership: Option<(&str, Role)>,
) -> anyhow::Result<Created> {
    let pool = db.pool();
    let tenant = match membership {
        Some((t, _)) => Some(tenant(db, t).await?),
        None => None,
    };
    let (user, generated, existed) = match identity::user_by_email(pool, email).await? {
        Some((user, _)) => {
            if platform_admin && !user.platform_admin {
                bail!(
                    "{} already exists and is not a platform administrator; \
                     platform administrators are created, not promoted",
                    user.email
                );
            }
            (user, None, true)
        }
        None => {
            let (password, generated) = match password {
                Some(p) => (p, None),
                None => {
                    let p = new_token(TokenKind::Link)[4..24].to_owned();
                    (p.clone(), Some(p))
                }
            };
            secrets::check_password(&password)?;
            let hash = secrets::hash_password(password).await;
            let user = identity::create_user(
                pool,
                &NewUser {
                    email,
                    display_name: name,
                    password_hash: Some(&hash),
                    platform_admin,
                },
            )
            .await
            .map_err(|e| match e {
                DbError::Invalid(m) => anyhow::anyhow!(m),
                other => other.into(),
            })?;
            audit::record_platform(
                pool,
                &cli_actor(),
                &NewEntry {
                    action: "user.create".into(),
                    resource_type: Some("user".into()),
                    resource_id: Some(user.id.to_string()),
                    after: Some(json!({"email": user.email, "platform_admin": platform_admin})),
                    ..NewEntry::default()
                },
            )
            .await?;
            (user, generated, false)
        }
    };
    if let (Some(t), Some((_, role))) = (tenant, membership) {
        let mut tx = db.tenant(t.id).await?;
        identity::add_member(&mut tx, user.id, role).await?;
        audit::record(
            &mut tx,
            &cli_actor(),
            &NewEntry {
                action: "user.add".into(),
                resource_type: Some("user".into()),
                resource_id: Some(user.id.to_string()),
                after: Some(json!({"email": user.email, "role": role})),
                ..NewEntry::default()
            },
        )
        .await?;
        tx.commit().await?;
    }
    Ok(Created {
        user,
        generated_password: generated,
        existed,
    })
}

/// Users of one tenant with their roles, or every user.
pub async fn list_users(
    db: &Db,
    tenant_ref: Option<&str>,
) -> anyhow::Result<Vec<(User, Option<Role>)>> {
    match tenant_ref {
        Some(t) => {
            let t = tenant(db, t).await?;
            let mut tx = db.tenant(t.id).await?;
            let members = identity::members(&mut tx).await?;
            tx.commit().await?;
            Ok(members
                .into_iter()
                .map(|m| (m.user, Some(m.role)))
                .collect())
        }
        None => Ok(identity::list_users(db.pool())
            .await?
            .into_iter()
            .map(|u| (u, None))
            .collect()),
    }
}

/// Creates an API key of `tenant_ref` with `role`; returns it and its secret (shown once).
pub async fn create_key(
    db: &Db,
    tenant_ref: &str,
    name: &str,
    role: Role,
) -> anyhow::Result<(ApiKey, String)> {
    let t = tenant(db, tenant_ref).await?;
    let secret = new_token(TokenKind::ApiKey);
    let prefix: String = secret.chars().take(12).collect();
    let mut tx = db.tenant(t.id).await?;
    let key = identity::create_key(
        &mut tx,
        &NewApiKey {
            name,
            role,
            prefix: &prefix,
            key_sha256: &token_digest(&secret),
            created_by: &cli_actor().label,
        },
    )
    .await
    .map_err(|e| match e {
        DbError::Invalid(m) => anyhow::anyhow!(m),
        other => other.into(),
    })?;
    audit::record(
        &mut tx,
        &cli_actor(),
        &NewEntry {
            action: "key.create".into(),
            resource_type: Some("api_key".into()),
            resource_id: Some(key.id.to_string()),
            after: Some(json!({"name": key.name, "role": key.role, "prefix": key.prefix})),
            ..NewEntry::default()
        },
    )
    .await?;
    tx.commit().await?;
    Ok((key, secret))
}

/// Revokes a key of `tenant_ref` by id or prefix.
pub async fn revoke_key(db: &Db, tenant_ref: &str, key_ref: &str) -> anyhow::Result<ApiKey> {
    let t = tenant(db, tenant_ref).await?;
    let mut tx = db.tenant(t.id).await?;
    let keys = identity::list_keys(&mut tx).await?;
    let id = key_ref
        .parse::<Uuid>()
        .ok()
        .or_else(|| {
            keys.iter()
                .find(|k| k.prefix == key_ref || key_ref.starts_with(&k.prefix))
                .map(|k| k.id)
        })
        .with_context(|| {
            format!(
                "no key `{key_ref}` in {} (see `switchboard key list`)",
                t.slug
            )
        })?;
    let key = identity::revoke_key(&mut tx, id)
        .await?
        .with_context(|| format!("no key `{key_ref}` in {}", t.slug))?;
    audit::record(
        &mut tx,
        &cli_actor(),
        &NewEntry {
            action: "key.revoke".into(),
            resource_type: Some("api_key".into()),
            resource_id: Some(key.id.to_string()),
            before: Some(json!({"name": key.name, "role": key.role})),
            ..NewEntry::default()
        },
    )
    .await?;
    tx.commit().await?;
    Ok(key)
}

/// A tenant's keys.
pub async fn list_keys(db: &Db, tenant_ref: &str) -> anyhow::Result<Vec<ApiKey>> {
    let t = tenant(db, tenant_ref).await?;
    let mut tx = db.tenant(t.id).await?;
    let keys = identity::list_keys(&mut tx).await?;
    tx.commit().await?;
    Ok(keys)
}
