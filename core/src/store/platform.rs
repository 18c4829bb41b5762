//! The cross-tenant doors: thin wrappers over the `platform_*` SQL functions. They answer ids and
//! tenant metadata, never conversation content.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};
use crate::ids::{ChannelId, ConversationId, OutboxId, TenantId};
use crate::model::{ChannelKind, Tenant};

/// Creates the tenant of `tx` (its id is the transaction's tenant), so that the tenant and
/// whatever the caller adds to it in the same transaction appear together or not at all. The
/// slug must be unique: lower-case letters, digits and dashes.
pub async fn create_tenant(
    tx: &mut TenantTx,
    slug: &str,
    name: &str,
    language: &str,
) -> Result<Tenant, DbError> {
    let id = tx.tenant_id();
    let res = sqlx::query!(
        "SELECT platform_create_tenant($1, $2, $3, $4)",
        id.0,
        slug,
        name,
        language
    )
    .fetch_one(tx.conn())
    .await;
    match res {
        Ok(_) => {}
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Err(DbError::Conflict(format!(
                "a tenant with slug `{slug}` already exists"
            )))
        }
        Err(sqlx::Error::Database(e)) if e.is_check_violation() => {
            return Err(DbError::Invalid(
                "slug must be 1-63 lower-case letters, digits or dashes (starting with a letter or digit) and name 1-200 characters"
                    .into(),
            ))
        }
        Err(e) => return Err(e.into()),
    }
    let created_at = sqlx::query_scalar!("SELECT created_at FROM tenants WHERE id = $1", id.0)
        .fetch_one(tx.conn())
        .await?;
    Ok(Tenant {
        id,
        slug: slug.to_owned(),
        name: name.to_owned(),
        default_language: language.to_owned(),
        created_at,
    })
}

pub async fn list_tenants(pool: &PgPool) -> Result<Vec<Tenant>, DbError> {
    let rows = sqlx::query!(
        r#"SELECT id AS "id!", slug AS "slug!", name AS "name!", default_language AS "default_language!",
                  created_at AS "created_at!" FROM platform_list_tenants()"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Tenant {
            id: TenantId(r.id),
            slug: r.slug,
            name: r.name,
            default_language: r.default_language,
            created_at: r.created_at,
        })
        .collect())
}

/// Finds a tenant by slug or id (either spelling is accepted on the command line and in
/// `?tenant=`); one indexed lookup, whatever the number of tenants.
pub async fn find_tenant(pool: &PgPool, slug_or_id: &str) -> Result<Option<Tenant>, DbError> {
    let row = sqlx::query(
        "SELECT id, slug, name, default_language, created_at FROM platform_find_tenant($1)",
    )
    .bind(slug_or_id.trim())
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        use sqlx::Row;
        Ok(Tenant {
            id: TenantId(r.try_get("id")?),
            slug: r.try_get("slug")?,
            name: r.try_get("name")?,
            default_language: r.try_get("default_language")?,
            created_at: r.try_get("created_at")?,
        })
    })
    .transpose()
}

/// Deletes a tenant and everything it owns; false when there was no such tenant.
pub async fn delete_tenant(pool: &PgPool, tenant: TenantId) -> Result<bool, DbError> {
    Ok(sqlx::query_scalar("SELECT platform_delete_tenant($1)")
        .bind(tenant.0)
        .fetch_one(pool)
        .await?)
}

/// Where a channel id from a public URL belongs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelRoute {
    pub tenant_id: TenantId,
    pub kind: ChannelKind,
    pub enabled: bool,
}

pub async fn resolve_channel(
    pool: &PgPool,
    channel: ChannelId,
) -> Result<Option<ChannelRoute>, DbError> {
    let row = sqlx::query!(
        r#"SELECT tenant_id AS "tenant_id!", kind AS "kind!", enabled AS "enabled!"
             FROM platform_resolve_channel($1)"#,
        channel.0
    )
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        Ok(ChannelRoute {
            tenant_id: TenantId(r.tenant_id),
            kind: r.kind.parse().map_err(DbError::Invalid)?,
            enabled: r.enabled,
        })
    })
    .transpose()
}

/// Conversations with unfinished inbound events, to resume after a restart.
pub async fn pending_conversations(
    pool: &PgPool,
) -> Result<Vec<(TenantId, ConversationId)>, DbError> {
    let rows = sqlx::query!(
        r#"SELECT tenant_id AS "tenant_id!", conversation_id AS "conversation_id!"
             FROM platform_pending_conversations()"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (TenantId(r.tenant_id), ConversationId(r.conversation_id)))
        .collect())
}

/// An outbox row claimed for delivery.
#[derive(Clone, Copy, Debug)]
pub struct ClaimedOutbox {
    pub id: OutboxId,
    pub tenant_id: TenantId,
    pub channel_id: ChannelId,
    pub conversation_id: ConversationId,
    /// Attempts including this one.
    pub attempts: i32,
    /// The previous attempt's lease expired mid-send: the provider may already have it.
    pub redelivery: bool,
}

/// Claims up to `limit` due outbox rows for `lease`; rows whose lease expired are due again.
pub async fn claim_outbox(
    pool: &PgPool,
    limit: i32,
    lease: std::time::Duration,
) -> Result<Vec<ClaimedOutbox>, DbError> {
    let lease = sqlx::postgres::types::PgInterval {
        months: 0,
        days: 0,
        microseconds: lease.as_micros() as i64,
    };
    let rows = sqlx::query!(
        r#"SELECT id AS "id!", tenant_id AS "tenant_id!", channel_id AS "channel_id!",
                  conversation_id AS "conversation_id!", attempts AS "attempts!",
                  redelivery AS "redelivery!"
             FROM platform_claim_outbox($1, $2)"#,
        limit,
        lease
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ClaimedOutbox {
            id: OutboxId(r.id),
            tenant_id: TenantId(r.tenant_id),
            channel_id: ChannelId(r.channel_id),
            conversation_id: ConversationId(r.conversation_id),
            attempts: r.attempts,
            redelivery: r.redelivery,
        })
        .collect())
}

/// When the next outbox row becomes due, if any is waiting.
pub async fn next_outbox_due(pool: &PgPool) -> Result<Option<DateTime<Utc>>, DbError> {
    Ok(sqlx::query_scalar!("SELECT platform_next_outbox_due()")
        .fetch_one(pool)
        .await?)
}

/// Enabled channels of `kind` across tenants (ids only).
pub async fn channels_of_kind(
    pool: &PgPool,
    kind: ChannelKind,
) -> Result<Vec<(ChannelId, TenantId)>, DbError> {
    let rows: Vec<(Uuid, Uuid)> =
        sqlx::query_as("SELECT id, tenant_id FROM platform_channels_of_kind($1)")
            .bind(kind.as_str())
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(c, t)| (ChannelId(c), TenantId(t)))
        .collect())
}

/// A claimed effect: which one and whose.
#[derive(Clone, Copy, Debug)]
pub struct ClaimedEffect {
    pub id: Uuid,
    pub tenant_id: TenantId,
    /// Attempts including this one.
    pub attempts: i32,
    /// The previous attempt's lease expired mid-send: the receiver may already have it.
    pub redelivery: bool,
}

/// Claims up to `limit` due effects for `lease`; effects whose lease expired are due again.
pub async fn claim_effects(
    pool: &PgPool,
    limit: i32,
    lease: std::time::Duration,
) -> Result<Vec<ClaimedEffect>, DbError> {
    let lease = sqlx::postgres::types::PgInterval {
        months: 0,
        days: 0,
        microseconds: lease.as_micros() as i64,
    };
    let rows: Vec<(Uuid, Uuid, i32, bool)> = sqlx::query_as(
        "SELECT id, tenant_id, attempts, redelivery FROM platform_claim_effects($1, $2)",
    )
    .bind(limit)
    .bind(lease)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, t, attempts, redelivery)| ClaimedEffect {
            id,
            tenant_id: TenantId(t),
            attempts,
            redelivery,
        })
        .collect())
}

/// When the next effect becomes due, if any is waiting.
pub async fn next_effect_due(pool: &PgPool) -> Result<Option<DateTime<Utc>>, DbError> {
    Ok(sqlx::query_scalar("SELECT platform_next_effect_due()")
        .fetch_one(pool)
        .await?)
}

/// Waiting escalations whose reminder is due, across tenants (ids only).
pub async fn due_escalation_reminders(
    pool: &PgPool,
    limit: i32,
) -> Result<Vec<(Uuid, TenantId)>, DbError> {
    let rows: Vec<(Uuid, Uuid)> =
        sqlx::query_as("SELECT id, tenant_id FROM platform_due_escalation_reminders($1)")
            .bind(limit)
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(|(e, t)| (e, TenantId(t))).collect())
}

/// What the pipeline has waiting, across tenants (counts only), for `GET /metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Backlog {
    /// Outbox rows not yet delivered (pending, deferred, or being sent).
    pub outbox: i64,
    /// Age of the oldest of them, in seconds (0 when there is none).
    pub outbox_oldest_seconds: f64,
    /// Inbound events waiting for a turn.
    pub events_pending: i64,
    /// Inbound events parked after repeated failures, waiting for an admin.
    pub events_parked: i64,
    /// Effects (notifications, invites, CRM webhooks) not yet done.
    pub effects: i64,
}

/// The pipeline's backlog in one statement (`platform_pipeline_backlog`, partial indexes only).
pub async fn backlog(pool: &PgPool) -> Result<Backlog, DbError> {
    let (outbox, outbox_oldest_seconds, events_pending, events_parked, effects): (
        i64,
        f64,
        i64,
        i64,
        i64,
    ) = sqlx::query_as(
        "SELECT outbox_backlog, outbox_oldest_seconds, events_pending, events_parked, \
         effects_backlog FROM platform_pipeline_backlog()",
    )
    .fetch_one(pool)
    .await?;
    Ok(Backlog {
        outbox,
        outbox_oldest_seconds,
        events_pending,
        events_parked,
        effects,
    })
}
