//! Channels of a tenant.

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
