//! Leads: a contact's lead fields (name, email, phone, company, interest, notes), its buying
//! signals, its score with reasons, and what was last queued for the tenant's CRM.
//!
//! A turn reaches its lead only through the conversation it answers ([`for_conversation`]),
//! never through an id a model could supply; admins address leads by contact id. The scoring
//! itself lives in `switchboard_prompts::lead` (pure); this module only stores its results.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use uuid::Uuid;

use crate::db::{DbError, TenantTx};
use crate::ids::{ContactId, ConversationId};
use crate::store::effects::{self, Attempt, Effect};

/// The purpose of CRM effects, and the prefix of their idempotency keys.
pub const CRM_PURPOSE: &str = "crm_lead";

/// A contact seen as a lead.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Lead {
    pub contact_id: ContactId,
    /// The contact's (only) conversation, for the transcript.
    pub conversation_id: Option<ConversationId>,
    /// The channel kind the contact writes on (`webchat`, `whatsapp`, …).
    pub channel: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub interest: Option<String>,
    pub notes: Option<String>,
    /// Buying signals ever seen (`meeting`, `budget`, `pricing`, `urgency`).
    pub signals: Vec<String>,
    /// `None` until the contact gave a detail or a signal (then it is a lead).
    pub score: Option<i32>,
    pub reasons: Vec<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    /// When the last state was queued for the CRM.
    pub crm_queued_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub crm_state_hash: Option<String>,
    #[serde(skip)]
    pub crm_chain: Option<String>,
}

const COLUMNS: &str = "k.id, (SELECT c.id FROM conversations c WHERE c.contact_id = k.id
                             ORDER BY c.created_at DESC LIMIT 1) AS conversation_id,
                       ch.kind AS channel, k.display_name, k.email, k.phone, k.company,
                       k.interest, k.lead_notes, k.lead_signals, k.lead_score, k.lead_reasons,
                       k.lead_created_at, k.lead_updated_at, k.crm_queued_at, k.crm_state_hash,
                       k.crm_chain";

pub(crate) fn lead_from(r: &sqlx::postgres::PgRow) -> Result<Lead, DbError> {
    let reasons: Value = r.try_get("lead_reasons")?;
    Ok(Lead {
        contact_id: ContactId(r.try_get("id")?),
        conversation_id: r
            .try_get::<Option<Uuid>, _>("conversation_id")?
            .map(ConversationId),
        channel: r.try_get("channel")?,
        name: r.try_get("display_name")?,
        email: r.try_get("email")?,
        phone: r.try_get("phone")?,
        company: r.try_get("company")?,
        interest: r.try_get("interest")?,
        notes: r.try_get("lead_notes")?,
        signals: r.try_get("lead_signals")?,
        score: r.try_get("lead_score")?,
        reasons: reasons
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        created_at: r.try_get("lead_created_at")?,
        updated_at: r.try_get("lead_updated_at")?,
        crm_queued_at: r.try_get("crm_queued_at")?,
        crm_state_hash: r.try_get("crm_state_hash")?,
        crm_chain: r.try_get("crm_chain")?,
    })
}

/// The lead of the contact `conversation` talks to, locked for the rest of the transaction
/// when `lock` (so two updates of one lead are applied one after the other and each sees the
/// other's result — the CRM fingerprint chain depends on it).
pub async fn for_conversation(
    tx: &mut TenantTx,
    conversation: ConversationId,
    lock: bool,
) -> Result<Lead, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM contacts k
           JOIN channels ch ON ch.id = k.channel_id
          WHERE k.id = (SELECT contact_id FROM conversations WHERE id = $1)
          {}",
        if lock { "FOR UPDATE OF k" } else { "" }
    );
    let row = sqlx::query(&sql)
        .bind(conversation.0)
        .fetch_optional(tx.conn())
        .await?;
    let mut lead = row
        .as_ref()
        .map(lead_from)
        .transpose()?
        .ok_or_else(|| DbError::NotFound(format!("conversation {conversation}")))?;
    lead.conversation_id = Some(conversation);
    Ok(lead)
}

/// One lead by contact id (admins).
pub async fn get(tx: &mut TenantTx, contact: ContactId) -> Result<Option<Lead>, DbError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM contacts k JOIN channels ch ON ch.id = k.channel_id
          WHERE k.id = $1 AND k.lead_score IS NOT NULL"
    ))
    .bind(contact.0)
    .fetch_optional(tx.conn())
    .await?;
    row.as_ref().map(lead_from).transpose()
}

/// Leads scoring at least `min_score`, best first (then most recently updated).
pub async fn list(tx: &mut TenantTx, min_score: i32, limit: i64) -> Result<Vec<Lead>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM contacts k JOIN channels ch ON ch.id = k.channel_id
          WHERE k.lead_score IS NOT NULL AND k.lead_score >= $1
          ORDER BY k.lead_score DESC, k.lead_updated_at DESC, k.id
          LIMIT $2"
    ))
    .bind(min_score)
    .bind(limit.clamp(1, 500))
    .fetch_all(tx.conn())
    .await?;
    rows.iter().map(lead_from).collect()
}

/// Stores the lead's fields, signals, score and reasons (its contact is `lead.contact_id`).
/// The caller decides that something changed; this stamps `lead_updated_at` (and
/// `lead_created_at` the first time).
pub async fn save(tx: &mut TenantTx, lead: &Lead) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE contacts SET display_name = $2, email = $3, phone = $4, company = $5,
                interest = $6, lead_notes = $7, lead_signals = $8, lead_score = $9,
                lead_reasons = $10, lead_created_at = COALESCE(lead_created_at, now()),
                lead_updated_at = now()
          WHERE id = $1",
    )
    .bind(lead.contact_id.0)
    .bind(&lead.name)
    .bind(&lead.email)
    .bind(&lead.phone)
    .bind(&lead.company)
    .bind(&lead.interest)
    .bind(&lead.notes)
    .bind(&lead.signals)
    .bind(lead.score)
    .bind(serde_json::json!(lead.reasons))
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Notes that the lead state `state_hash` was queued for the CRM, as link `chain` of the chain.
pub async fn mark_crm_queued(
    tx: &mut TenantTx,
    contact: ContactId,
    state_hash: &str,
    chain: &str,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE contacts SET crm_state_hash = $2, crm_chain = $3, crm_queued_at = now()
          WHERE id = $1",
    )
    .bind(contact.0)
    .bind(state_hash)
    .bind(chain)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The idempotency-key prefix of a contact's CRM effects.
pub fn crm_key_prefix(contact: ContactId) -> String {
    format!("{CRM_PURPOSE}:{contact}:")
}

/// A CRM delivery: the effect and its attempts (the delivery log).
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delivery {
    #[serde(flatten)]
    pub effect: Effect,
    pub event: Option<String>,
    /// The contact the delivery is about.
    pub contact_id: Option<ContactId>,
    pub attempt_log: Vec<Attempt>,
}

/// CRM deliveries, newest first: all of them, or one contact's; optionally of one status.
pub async fn deliveries(
    tx: &mut TenantTx,
    contact: Option<ContactId>,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<Delivery>, DbError> {
    let prefix = contact.map(|c| format!("{}%", crm_key_prefix(c)));
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM effects
          WHERE purpose = $1 AND ($2::text IS NULL OR idempotency_key LIKE $2)
            AND ($3::text IS NULL OR status = $3)
          ORDER BY created_at DESC, id DESC LIMIT $4",
    )
    .bind(CRM_PURPOSE)
    .bind(prefix)
    .bind(status)
    .bind(limit.clamp(1, 500))
    .fetch_all(tx.conn())
    .await?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(d) = delivery(tx, id).await? {
            out.push(d);
        }
    }
    Ok(out)
}

/// One CRM delivery with its attempts; `None` when `id` is not a CRM effect of this tenant.
pub async fn delivery(tx: &mut TenantTx, id: Uuid) -> Result<Option<Delivery>, DbError> {
    let Some(effect) = effects::load(tx, id).await? else {
        return Ok(None);
    };
    if effect.purpose != CRM_PURPOSE {
        return Ok(None);
    }
    let attempt_log = effects::attempts(tx, id).await?;
    let contact_id = effect
        .idempotency_key
        .strip_prefix(CRM_PURPOSE)
        .and_then(|rest| rest.strip_prefix(':'))
        .and_then(|rest| rest.split(':').next())
        .and_then(|c| c.parse::<Uuid>().ok())
        .map(ContactId);
    Ok(Some(Delivery {
        event: effect.payload["event"].as_str().map(str::to_owned),
        contact_id,
        attempt_log,
        effect,
    }))
}
