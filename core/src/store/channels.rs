//! Channels of a tenant.

use chrono::{DateTime, Utc};

use crate::db::{DbError, TenantTx};
use crate::ids::{ChannelId, TenantId};
use crate::model::{Channel, ChannelKind};

pub async fn create(tx: &mut TenantTx, kind: ChannelKind, name: &str) -> Result<Channel, DbError> {
    let id = ChannelId::new();
    let tenant = tx.tenant_id();
    let row = sqlx::query!(
        "INSERT INTO channels (id, tenant_id, kind, name) VALUES ($1, $2, $3, $4) RETURNING created_at",
        id.0,
        tenant.0,
        kind.as_str(),
        name
    )
    .fetch_one(tx.conn())
    .await?;
    Ok(Channel {
        id,
        tenant_id: tenant,
        kind,
        name: name.to_owned(),
        enabled: true,
        created_at: row.created_at,
    })
}

pub async fn list(tx: &mut TenantTx) -> Result<Vec<Channel>, DbError> {
    let rows = sqlx::query!(
        "SELECT id, tenant_id, kind, name, enabled, created_at FROM channels ORDER BY created_at, id"
    )
    .fetch_all(tx.conn())
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Channel {
                id: ChannelId(r.id),
                tenant_id: TenantId(r.tenant_id),
                kind: r.kind.parse().map_err(DbError::Invalid)?,
                name: r.name,
                enabled: r.enabled,
                created_at: r.created_at,
            })
        })
        .collect()
}

/// The tenant's display name, as the agent introduces the business.
pub async fn tenant_name(tx: &mut TenantTx) -> Result<String, DbError> {
    let name = sqlx::query_scalar!("SELECT name FROM tenants WHERE id = app_tenant_id()")
        .fetch_optional(tx.conn())
        .await?;
    name.ok_or_else(|| DbError::NotFound("tenant".into()))
}

/// A channel with its settings and health, as configuration sees it. The sealed credentials
/// stay sealed here; only the runtime opens them, with the tenant's key.
#[derive(Clone, Debug)]
pub struct ChannelRecord {
    pub channel: Channel,
    /// Public settings.
    pub config: serde_json::Map<String, serde_json::Value>,
    /// Credentials sealed with [`MasterKey::seal`](crate::MasterKey::seal) for this tenant.
    pub secrets_enc: Option<Vec<u8>>,
    pub updated_at: DateTime<Utc>,
    pub last_inbound_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

/// Creates a channel with its settings.
pub async fn create_configured(
    tx: &mut TenantTx,
    kind: ChannelKind,
    name: &str,
    config: &serde_json::Map<String, serde_json::Value>,
    secrets_enc: Option<&[u8]>,
) -> Result<ChannelRecord, DbError> {
    let id = ChannelId::new();
    let tenant = tx.tenant_id();
    sqlx::query(
        "INSERT INTO channels (id, tenant_id, kind, name, config, secrets_enc) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id.0)
    .bind(tenant.0)
    .bind(kind.as_str())
    .bind(name)
    .bind(serde_json::Value::Object(config.clone()))
    .bind(secrets_enc)
    .execute(tx.conn())
    .await?;
    get(tx, id)
        .await?
        .ok_or_else(|| DbError::NotFound(format!("channel {id}")))
}

const RECORD_COLUMNS: &str =
    "id, tenant_id, kind, name, enabled, created_at, config, secrets_enc, updated_at, \
     last_inbound_at, last_error, last_error_at";

fn record_from_row(r: sqlx::postgres::PgRow) -> Result<ChannelRecord, DbError> {
    use sqlx::Row;
    let kind: String = r.try_get("kind")?;
    let config: serde_json::Value = r.try_get("config")?;
    Ok(ChannelRecord {
        channel: Channel {
            id: ChannelId(r.try_get("id")?),
            tenant_id: TenantId(r.try_get("tenant_id")?),
            kind: kind.parse().map_err(DbError::Invalid)?,
            name: r.try_get("name")?,
            enabled: r.try_get("enabled")?,
            created_at: r.try_get("created_at")?,
        },
        config: match config {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        },
        secrets_enc: r.try_get("secrets_enc")?,
        updated_at: r.try_get("updated_at")?,
        last_inbound_at: r.try_get("last_inbound_at")?,
        last_error: r.try_get("last_error")?,
        last_error_at: r.try_get("last_error_at")?,
    })
}

/// One channel of the tenant, with settings and health.
pub async fn get(tx: &mut TenantTx, id: ChannelId) -> Result<Option<ChannelRecord>, DbError> {
    let row = sqlx::query(&format!(
        "SELECT {RECORD_COLUMNS} FROM channels WHERE id = $1"
    ))
    .bind(id.0)
    .fetch_optional(tx.conn())
    .await?;
    row.map(record_from_row).transpose()
}

/// Every channel of the tenant, with settings and health.
pub async fn list_records(tx: &mut TenantTx) -> Result<Vec<ChannelRecord>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {RECORD_COLUMNS} FROM channels ORDER BY created_at, id"
    ))
    .fetch_all(tx.conn())
    .await?;
    rows.into_iter().map(record_from_row).collect()
}

/// A change to a channel; `None` fields stay as they are.
#[derive(Clone, Debug, Default)]
pub struct ChannelUpdate<'a> {
    pub name: Option<&'a str>,
    pub enabled: Option<bool>,
    pub config: Option<&'a serde_json::Map<String, serde_json::Value>>,
    pub secrets_enc: Option<&'a [u8]>,
}

/// Applies `change`; false when there is no such channel.
pub async fn update(
    tx: &mut TenantTx,
    id: ChannelId,
    change: ChannelUpdate<'_>,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE channels SET name = COALESCE($2, name), enabled = COALESCE($3, enabled),
                config = COALESCE($4, config), secrets_enc = COALESCE($5, secrets_enc),
                updated_at = now()
          WHERE id = $1",
    )
    .bind(id.0)
    .bind(change.name)
    .bind(change.enabled)
    .bind(change.config.map(|c| serde_json::Value::Object(c.clone())))
    .bind(change.secrets_enc)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes a channel with its contacts, conversations and messages; false when there was none.
pub async fn delete(tx: &mut TenantTx, id: ChannelId) -> Result<bool, DbError> {
    let done = sqlx::query("DELETE FROM channels WHERE id = $1")
        .bind(id.0)
        .execute(tx.conn())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Records that a verified inbound request arrived: a health figure to the second, not data.
///
/// Every request of a channel would otherwise lock the channel's row until its transaction is
/// on disk, so that a busy channel's webhooks went through one at a time. The row is written
/// at most once every [`INBOUND_TOUCH_EVERY`] seconds, and a request that finds it locked by
/// another one (which is recording the same thing) leaves it alone instead of waiting.
pub async fn touch_inbound(tx: &mut TenantTx, id: ChannelId) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE channels SET last_inbound_at = now()
          WHERE id = (SELECT id FROM channels
                       WHERE id = $1
                         AND (last_inbound_at IS NULL
                              OR last_inbound_at < now() - make_interval(secs => $2))
                         FOR UPDATE SKIP LOCKED)",
    )
    .bind(id.0)
    .bind(INBOUND_TOUCH_EVERY)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Resolution of a channel's `last_inbound_at`, in seconds.
pub const INBOUND_TOUCH_EVERY: f64 = 2.0;

/// Records the channel's latest problem (never a secret or a request body).
pub async fn record_error(tx: &mut TenantTx, id: ChannelId, error: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE channels SET last_error = $2, last_error_at = now() WHERE id = $1")
        .bind(id.0)
        .bind(error)
        .execute(tx.conn())
        .await?;
    Ok(())
}
