//! Versioned prompts. A tenant has any number of drafts, at most one published version (a
//! partial unique index enforces it), and archived history. Published and archived versions are
//! immutable; publishing a draft archives the previous published version in the same
//! transaction; rolling back to version N publishes a *new* version copying N, so history only
//! grows and every stored turn's `prompt_version_id` keeps pointing at the text that produced it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};

/// A stored version.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PromptVersion {
    pub id: Uuid,
    pub version: i32,
    pub status: String,
    pub persona: String,
    pub instructions: String,
    pub guardrails: String,
    /// Channel kind → style text.
    pub channel_styles: serde_json::Value,
    pub note: Option<String>,
    pub author: String,
    pub based_on: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
}

/// The editable fields of a draft.
#[derive(Clone, Debug, Default)]
pub struct PromptFields {
    pub persona: String,
    pub instructions: String,
    pub guardrails: String,
    pub channel_styles: serde_json::Value,
    pub note: Option<String>,
}

const COLUMNS: &str = "id, version, status, persona, instructions, guardrails, channel_styles, \
                       note, author, based_on, created_at, updated_at, published_at";

/// Every version, newest first.
pub async fn list(tx: &mut TenantTx) -> Result<Vec<PromptVersion>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM prompt_versions ORDER BY version DESC"
    ))
    .fetch_all(tx.conn())
    .await?)
}

pub async fn get(tx: &mut TenantTx, id: Uuid) -> Result<Option<PromptVersion>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM prompt_versions WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

pub async fn by_number(tx: &mut TenantTx, version: i32) -> Result<Option<PromptVersion>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM prompt_versions WHERE version = $1"
    ))
    .bind(version)
    .fetch_optional(tx.conn())
    .await?)
}

/// The version the agent answers with, if any was published.
pub async fn published(tx: &mut TenantTx) -> Result<Option<PromptVersion>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM prompt_versions WHERE status = 'published'"
    ))
    .fetch_optional(tx.conn())
    .await?)
}

/// Locks the tenant's version numbering, so two concurrent creations cannot pick one number.
async fn next_number(tx: &mut TenantTx) -> Result<i32, DbError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('prompt_versions:' || $1::text))")
        .bind(tx.tenant_id().0)
        .execute(tx.conn())
        .await?;
    let n: Option<i32> = sqlx::query_scalar("SELECT max(version) FROM prompt_versions")
        .fetch_one(tx.conn())
        .await?;
    Ok(n.unwrap_or(0) + 1)
}

async fn insert(
    tx: &mut TenantTx,
    fields: &PromptFields,
    status: &str,
    author: &str,
    based_on: Option<i32>,
) -> Result<PromptVersion, DbError> {
    let version = next_number(tx).await?;
    let id = Uuid::now_v7();
    Ok(sqlx::query_as(&format!(
        "INSERT INTO prompt_versions (id, tenant_id, version, status, persona, instructions,
                guardrails, channel_styles, note, author, based_on, published_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
                 CASE WHEN $4 = 'published' THEN now() END)
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(tx.tenant_id().0)
    .bind(version)
    .bind(status)
    .bind(&fields.persona)
    .bind(&fields.instructions)
    .bind(&fields.guardrails)
    .bind(&fields.channel_styles)
    .bind(&fields.note)
    .bind(author)
    .bind(based_on)
    .fetch_one(tx.conn())
    .await?)
}

/// A new draft.
pub async fn create_draft(
    tx: &mut TenantTx,
    fields: &PromptFields,
    author: &str,
    based_on: Option<i32>,
) -> Result<PromptVersion, DbError> {
    insert(tx, fields, "draft", author, based_on).await
}

/// Replaces a draft's fields. Published and archived versions cannot change (`Conflict`).
pub async fn update_draft(
    tx: &mut TenantTx,
    id: Uuid,
    fields: &PromptFields,
) -> Result<PromptVersion, DbError> {
    let updated: Option<PromptVersion> = sqlx::query_as(&format!(
        "UPDATE prompt_versions
            SET persona = $2, instructions = $3, guardrails = $4, channel_styles = $5,
                note = $6, updated_at = now()
          WHERE id = $1 AND status = 'draft'
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(&fields.persona)
    .bind(&fields.instructions)
    .bind(&fields.guardrails)
    .bind(&fields.channel_styles)
    .bind(&fields.note)
    .fetch_optional(tx.conn())
    .await?;
    match updated {
        Some(v) => Ok(v),
        None => match get(tx, id).await? {
            Some(v) => Err(DbError::Conflict(format!(
                "version {} is {}; only drafts can be edited (create a new draft from it)",
                v.version, v.status
            ))),
            None => Err(DbError::NotFound(format!("prompt version {id}"))),
        },
    }
}

/// Publishes a draft; the previous published version becomes archived.
pub async fn publish(tx: &mut TenantTx, id: Uuid) -> Result<PromptVersion, DbError> {
    let v = get(tx, id)
        .await?
        .ok_or_else(|| DbError::NotFound(format!("prompt version {id}")))?;
    if v.status != "draft" {
        return Err(DbError::Conflict(format!(
            "version {} is {}; only drafts can be published (use rollback for older versions)",
            v.version, v.status
        )));
    }
    archive_published(tx).await?;
    Ok(sqlx::query_as(&format!(
        "UPDATE prompt_versions SET status = 'published', published_at = now(), updated_at = now()
          WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .fetch_one(tx.conn())
    .await?)
}

async fn archive_published(tx: &mut TenantTx) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE prompt_versions SET status = 'archived', updated_at = now() WHERE status = 'published'",
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Publishes a new version copying version `target` (any status), archiving the current one.
pub async fn rollback(
    tx: &mut TenantTx,
    target: i32,
    author: &str,
) -> Result<PromptVersion, DbError> {
    let v = by_number(tx, target)
        .await?
        .ok_or_else(|| DbError::NotFound(format!("prompt version {target}")))?;
    archive_published(tx).await?;
    let fields = PromptFields {
        persona: v.persona,
        instructions: v.instructions,
        guardrails: v.guardrails,
        channel_styles: v.channel_styles,
        note: Some(format!("rollback to version {target}")),
    };
    insert(tx, &fields, "published", author, Some(target)).await
}

/// Deletes a draft (published and archived versions are history and stay).
pub async fn delete_draft(tx: &mut TenantTx, id: Uuid) -> Result<bool, DbError> {
    let done = sqlx::query("DELETE FROM prompt_versions WHERE id = $1 AND status = 'draft'")
        .bind(id)
        .execute(tx.conn())
        .await?;
    Ok(done.rows_affected() == 1)
}
