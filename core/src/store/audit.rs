//! The audit log: one append-only row per change made through the API — who made it (a user, an
//! API key, the bootstrap credential, the CLI), when, what, in which tenant, and the state before
//! and after with secrets redacted. The table refuses updates and deletes (a grant the
//! application role lacks, and a trigger for everyone else), so a row, once written, stays.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::db::{DbError, TenantTx};

/// Who made a change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Actor {
    /// `user`, `api_key`, `bootstrap` or `cli`.
    pub kind: &'static str,
    pub id: Option<Uuid>,
    pub label: String,
}

/// A change to record.
#[derive(Clone, Debug, Default)]
pub struct NewEntry {
    pub action: String,
    pub method: Option<String>,
    pub path: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub status: Option<i32>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub request_id: Option<String>,
    pub ip: Option<String>,
}

/// A recorded change.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = AuditEntry))]
pub struct Entry {
    pub id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub at: DateTime<Utc>,
    pub actor_kind: String,
    pub actor_id: Option<Uuid>,
    pub actor_label: String,
    pub action: String,
    pub method: Option<String>,
    pub path: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub status: Option<i32>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub request_id: Option<String>,
    pub ip: Option<String>,
}

const INSERT: &str = "INSERT INTO audit_log (id, tenant_id, actor_kind, actor_id, actor_label, action,
                                             method, path, resource_type, resource_id, status,
                                             before, after, request_id, ip)
                      VALUES ($1, app_tenant_id(), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";

fn bind_entry<'q>(
    q: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    actor: &'q Actor,
    e: &'q NewEntry,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    q.bind(Uuid::now_v7())
        .bind(actor.kind)
        .bind(actor.id)
        .bind(&actor.label)
        .bind(&e.action)
        .bind(&e.method)
        .bind(&e.path)
        .bind(&e.resource_type)
        .bind(&e.resource_id)
        .bind(e.status)
        .bind(e.before.as_ref().map(redacted))
        .bind(e.after.as_ref().map(redacted))
        .bind(&e.request_id)
        .bind(&e.ip)
}

/// Records a change of the current tenant, in the transaction that makes it.
pub async fn record(tx: &mut TenantTx, actor: &Actor, entry: &NewEntry) -> Result<(), DbError> {
    bind_entry(sqlx::query(INSERT), actor, entry)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Records a platform change (no tenant: a tenant created, a platform user).
pub async fn record_platform(
    pool: &PgPool,
    actor: &Actor,
    entry: &NewEntry,
) -> Result<(), DbError> {
    bind_entry(sqlx::query(INSERT), actor, entry)
        .execute(pool)
        .await?;
    Ok(())
}

/// Which entries to read.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// An actor's id or label.
    pub actor: Option<String>,
    /// Actions starting with this text (`prompt.` for every prompt change).
    pub action: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Entries older than this one (the cursor of the previous page).
    pub before: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

fn entry_from(r: &sqlx::postgres::PgRow) -> Result<Entry, DbError> {
    Ok(Entry {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        at: r.try_get("at")?,
        actor_kind: r.try_get("actor_kind")?,
        actor_id: r.try_get("actor_id")?,
        actor_label: r.try_get("actor_label")?,
        action: r.try_get("action")?,
        method: r.try_get("method")?,
        path: r.try_get("path")?,
        resource_type: r.try_get("resource_type")?,
        resource_id: r.try_get("resource_id")?,
        status: r.try_get("status")?,
        before: r.try_get("before")?,
        after: r.try_get("after")?,
        request_id: r.try_get("request_id")?,
        ip: r.try_get("ip")?,
    })
}

/// The current tenant's entries, newest first.
pub async fn list(tx: &mut TenantTx, f: &Filter) -> Result<Vec<Entry>, DbError> {
    let (before_at, before_id) = f.before.unzip();
    sqlx::query(
        "SELECT * FROM audit_log
          WHERE ($1::text IS NULL OR actor_label = $1 OR actor_id::text = $1)
            AND ($2::text IS NULL OR starts_with(action, $2))
            AND ($3::text IS NULL OR resource_type = $3)
            AND ($4::text IS NULL OR resource_id = $4)
            AND ($5::timestamptz IS NULL OR at >= $5)
            AND ($6::timestamptz IS NULL OR at < $6)
            AND ($7::timestamptz IS NULL OR (at, id) < ($7, $8))
          ORDER BY at DESC, id DESC
          LIMIT $9",
    )
    .bind(&f.actor)
    .bind(&f.action)
    .bind(&f.resource_type)
    .bind(&f.resource_id)
    .bind(f.from)
    .bind(f.to)
    .bind(before_at)
    .bind(before_id)
    .bind(f.limit.clamp(1, 500))
    .fetch_all(tx.conn())
    .await?
    .iter()
    .map(entry_from)
    .collect()
}

/// Names of fields whose values never reach the log.
const SECRET_FIELDS: [&str; 12] = [
    "password",
    "api_key",
    "secret",
    "token",
    "key",
    "auth_token",
    "access_token",
    "app_secret",
    "verify_token",
    "webhook_secret",
    "crm_secret",
    "signing_secret",
];

fn is_secret(field: &str) -> bool {
    let f = field.to_ascii_lowercase();
    SECRET_FIELDS.contains(&f.as_str())
        || f.ends_with("_password")
        || f.ends_with("_secret")
        || f.ends_with("_token")
        || f.ends_with("_key") && f != "idempotency_key"
}

/// `value` with the values of secret-looking fields replaced by `"[REDACTED]"`, at any depth.
pub fn redacted(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    // Whether a secret is set (`has_api_key: true`) is not the secret.
                    let v = if is_secret(k) && !v.is_null() && !v.is_boolean() {
                        Value::String("[REDACTED]".into())
                    } else {
                        redacted(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redacted).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn secrets_are_redacted_at_any_depth_and_nothing_else() {
        let v = json!({
            "name": "WhatsApp",
            "api_key": "sk-123",
            "settings": {"access_token": "EAAG", "app_secret": "s", "phone_number_id": "1",
                         "smtp_password": "p", "verify_token": "v", "api_base_url": "https://x"},
            "list": [{"password": "hunter2", "email": "a@b.example"}],
            "idempotency_key": "reply:1",
            "key": null,
            "has_api_key": true
        });
        let r = redacted(&v);
        assert_eq!(r["name"], "WhatsApp");
        assert_eq!(r["api_key"], "[REDACTED]");
        assert_eq!(r["settings"]["access_token"], "[REDACTED]");
        assert_eq!(r["settings"]["app_secret"], "[REDACTED]");
        assert_eq!(r["settings"]["smtp_password"], "[REDACTED]");
        assert_eq!(r["settings"]["verify_token"], "[REDACTED]");
        assert_eq!(r["settings"]["phone_number_id"], "1");
        assert_eq!(r["settings"]["api_base_url"], "https://x");
        assert_eq!(r["list"][0]["password"], "[REDACTED]");
        assert_eq!(r["list"][0]["email"], "a@b.example");
        assert_eq!(r["idempotency_key"], "reply:1");
        assert!(r["key"].is_null(), "an absent secret stays visibly absent");
        assert_eq!(
            r["has_api_key"], true,
            "whether a secret is set is not secret"
        );
        assert!(!r.to_string().contains("hunter2"));
    }
}
