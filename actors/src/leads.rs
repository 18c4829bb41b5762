//! Lead capture: contact fields, the lead score with its reasons, and the CRM webhook.
//!
//! Two doors lead in, and both go through [`apply`]: [`observe`], which the turn calls on every
//! bot turn with the customer's text (offline extraction, `switchboard_prompts::lead`), and the
//! `capture_lead` tool, through which a model records what it understood. [`apply`] merges the
//! new details into the contact of the turn's conversation (never one named by a model),
//! rescores it from all its fields and every buying signal it ever gave, and — in the same
//! transaction — queues one signed CRM webhook (`lead.created` / `lead.updated`) when the
//! tenant configured a CRM and the lead's state differs from the last one queued.
//!
//! Exactly once: the CRM effect's idempotency key is `crm_lead:<contact>:<chain>`, where the
//! chain hashes the previous chain with the fingerprint of the new state. A redone turn (crash,
//! cancellation, replay) reaches the state already stored, so either nothing changed (no
//! effect) or it derives the same key (the outbox refuses a second row); a lead that changes
//! and later changes back gets a new link of the chain and is sent again, as it should be.
//! The contact row is locked while this happens, so two updates of one lead never race.

use std::sync::Arc;

use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_channels::webhook::{hex, hmac_sha256};
use switchboard_core::store::actions::{Action, ActionSettings};
use switchboard_core::store::effects::{self, EffectKind, NewEffect};
use switchboard_core::store::leads::{self, Lead, CRM_PURPOSE};
use switchboard_core::{ConversationId, Db, DbError, TenantId};
use switchboard_prompts::lead::{
    extract, normalize_email, normalize_phone, score, LeadFields, Signal,
};
use tracing::info;

use crate::tools::{Tool, ToolError, TurnContext, TypedTool};

/// The lead tools (`capture_lead`), of action `leads`.
pub fn tools() -> Vec<Arc<dyn Tool>> {
    vec![Arc::new(CaptureLead)]
}

/// The lead as it stands after a turn.
#[derive(Clone, Debug, Default)]
pub struct LeadState {
    /// 0–100, when scored.
    pub score: Option<i32>,
    pub reasons: Vec<String>,
    /// Contact fields for notifications (`name`, `email`, `phone`, `company`, `interest`).
    pub fields: Value,
}

/// Reads lead details the customer gave in `ctx.customer_text` (offline: email, phone, name,
/// company, interest, buying signals), stores them, rescores, and enqueues the CRM webhook
/// when the lead changed.
///
/// `current` is the contact's lead as the turn read it. A contact that is not a lead and whose
/// message gives no detail or signal stays as it is: that common case needs no transaction.
/// Nor does a turn whose sender is not verified as the contact: what a stranger writes into
/// the contact's thread changes nothing about the contact.
pub async fn observe(
    ctx: &TurnContext<'_>,
    conversation: ConversationId,
    current: &Lead,
) -> Result<LeadState, DbError> {
    if !ctx.sender.is_verified() {
        return Ok(state_of(current));
    }
    let change = Change::from_text(ctx.customer_text);
    if current.score.is_none() && change.is_empty() {
        return Ok(state_of(current));
    }
    let applied = apply(ctx.db(), ctx.tenant, conversation, &change, ctx.settings).await?;
    if applied.crm == CrmOutcome::Queued {
        ctx.services.effects_kick.notify_one();
    }
    Ok(applied.state)
}

/// [`observe`] without the turn around it: what one customer text tells about the lead of
/// `conversation`. (The effects worker finds a queued webhook on its next poll; [`observe`]
/// also wakes it.)
pub async fn observe_text(
    db: &Db,
    tenant: TenantId,
    conversation: ConversationId,
    customer_text: &str,
    settings: &ActionSettings,
) -> Result<Applied, DbError> {
    let change = Change::from_text(customer_text);
    apply(db, tenant, conversation, &change, settings).await
}

/// New details about a lead.
#[derive(Clone, Debug, Default)]
pub struct Change {
    pub fields: LeadFields,
    pub notes: Option<String>,
    pub signals: Vec<Signal>,
}

impl Change {
    /// The details and signals the offline reader finds in a customer's text.
    fn from_text(text: &str) -> Change {
        let found = extract(text);
        Change {
            fields: found.fields,
            notes: None,
            signals: found.signals,
        }
    }

    fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.notes.is_none() && self.signals.is_empty()
    }
}

/// What [`apply`] did.
#[derive(Clone, Debug)]
pub struct Applied {
    pub state: LeadState,
    /// Whether the stored lead changed.
    pub changed: bool,
    pub crm: CrmOutcome,
}

/// What happened on the CRM side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrmOutcome {
    /// A webhook was queued for the new state.
    Queued,
    /// The CRM already has (or is being sent) this state.
    Unchanged,
    /// The tenant has no CRM webhook.
    NotConfigured,
    /// The contact is not a lead (it never gave a detail or a signal).
    NotALead,
}

/// Merges `change` into the lead of `conversation`, rescores it, and queues the CRM webhook
/// when its state differs from the last one queued — all in one transaction.
pub async fn apply(
    db: &Db,
    tenant: TenantId,
    conversation: ConversationId,
    change: &Change,
    settings: &ActionSettings,
) -> Result<Applied, DbError> {
    let mut tx = db.tenant(tenant).await?;
    let mut lead = leads::for_conversation(&mut tx, conversation, true).await?;
    let before = lead.clone();
    let mut fields = fields_of(&lead);
    fields.merge(&change.fields);
    lead.name = fields.name.clone();
    lead.email = fields.email.clone();
    lead.phone = fields.phone.clone();
    lead.company = fields.company.clone();
    lead.interest = fields.interest.clone();
    if let Some(n) = &change.notes {
        lead.notes = Some(n.clone());
    }
    let mut signals: Vec<Signal> = lead
        .signals
        .iter()
        .filter_map(|s| Signal::parse(s))
        .chain(change.signals.iter().copied())
        .collect();
    signals.sort();
    signals.dedup();
    lead.signals = signals.iter().map(|s| s.as_str().to_owned()).collect();
    // A contact becomes a lead with its first detail or signal; after that it is rescored on
    // every change (the weights may also have changed since it was stored).
    if lead.score.is_some() || !change.is_empty() {
        let s = score(&fields, &signals);
        lead.score = Some(s.score);
        lead.reasons = s.reasons;
    }
    let changed = lead != before;
    if changed {
        leads::save(&mut tx, &lead).await?;
    }
    let crm = if lead.score.is_none() {
        CrmOutcome::NotALead
    } else if settings.crm_webhook_url.is_none() {
        CrmOutcome::NotConfigured
    } else {
        let state = crm_state(&lead);
        let state_hash = fingerprint(b"switchboard/lead-state", state.to_string().as_bytes());
        if lead.crm_state_hash.as_deref() == Some(state_hash.as_str()) {
            CrmOutcome::Unchanged
        } else {
            let previous = lead.crm_chain.clone();
            let chain = fingerprint(
                b"switchboard/lead-chain",
                format!("{}:{state_hash}", previous.as_deref().unwrap_or("")).as_bytes(),
            );
            let event = if previous.is_none() {
                "lead.created"
            } else {
                "lead.updated"
            };
            let mut body = state;
            body["tenant_id"] = json!(tenant);
            body["conversation_id"] = json!(conversation);
            body["updated_at"] = json!(chrono::Utc::now());
            let queued = effects::enqueue(
                &mut tx,
                &NewEffect {
                    conversation: Some(conversation),
                    kind: EffectKind::Webhook,
                    purpose: CRM_PURPOSE.into(),
                    idempotency_key: format!(
                        "{}{}",
                        leads::crm_key_prefix(lead.contact_id),
                        &chain[..32]
                    ),
                    payload: json!({"event": event, "body": body}),
                    max_attempts: None,
                },
            )
            .await?;
            leads::mark_crm_queued(&mut tx, lead.contact_id, &state_hash, &chain).await?;
            match queued {
                Some(id) => {
                    info!(effect_id = %id, contact_id = %lead.contact_id, event, "CRM webhook queued");
                    CrmOutcome::Queued
                }
                None => CrmOutcome::Unchanged,
            }
        }
    };
    tx.commit().await?;
    Ok(Applied {
        state: state_of(&lead),
        changed,
        crm,
    })
}

fn fields_of(lead: &Lead) -> LeadFields {
    LeadFields {
        name: lead.name.clone(),
        email: lead.email.clone(),
        phone: lead.phone.clone(),
        company: lead.company.clone(),
        interest: lead.interest.clone(),
    }
}

fn fields_json(lead: &Lead) -> Value {
    json!({
        "name": lead.name,
        "email": lead.email,
        "phone": lead.phone,
        "company": lead.company,
        "interest": lead.interest,
    })
}

fn state_of(lead: &Lead) -> LeadState {
    LeadState {
        score: lead.score,
        reasons: lead.reasons.clone(),
        fields: fields_json(lead),
    }
}

/// What the CRM is told about a lead, without timestamps (so equal states fingerprint alike).
fn crm_state(lead: &Lead) -> Value {
    json!({
        "contact_id": lead.contact_id,
        "channel": lead.channel,
        "fields": fields_json(lead),
        "notes": lead.notes,
        "score": lead.score,
        "reasons": lead.reasons,
        "signals": lead.signals,
    })
}

/// A keyed SHA-256 fingerprint (hex). HMAC with a fixed, public key is used as a plain hash
/// here: it is the SHA-256 the crate graph already has, and nothing secret depends on it.
fn fingerprint(domain: &[u8], bytes: &[u8]) -> String {
    hex(&hmac_sha256(domain, bytes))
}

/// `capture_lead`: records what the model learned about the customer as a lead.
pub struct CaptureLead;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureArgs {
    #[schemars(length(min = 1, max = 100))]
    name: Option<String>,
    #[schemars(email, length(max = 254))]
    email: Option<String>,
    /// With the country code when the customer gave it, e.g. +971501234567.
    #[schemars(length(max = 32))]
    phone: Option<String>,
    #[schemars(length(min = 1, max = 200))]
    company: Option<String>,
    /// The product or service the customer wants.
    #[schemars(length(min = 1, max = 500))]
    interest: Option<String>,
    /// Anything the sales team should know (budget, timeline, needs).
    #[schemars(length(min = 1, max = 2000))]
    notes: Option<String>,
}

/// Checks and normalises the tool's arguments (emails lower-cased, phones as digits with an
/// optional `+`); their lengths were checked against the schema already.
fn validate(a: CaptureArgs) -> Result<Change, ToolError> {
    fn text(v: Option<String>, field: &str) -> Result<Option<String>, ToolError> {
        let Some(v) = v else { return Ok(None) };
        let v = v.trim();
        if v.chars().any(char::is_control) {
            return Err(ToolError::InvalidArguments(format!(
                "`{field}` must be text without control characters"
            )));
        }
        Ok(Some(v.to_owned()))
    }
    let email = match a.email.as_deref().map(str::trim) {
        None => None,
        Some(e) => Some(
            normalize_email(e)
                .filter(|n| n.len() == e.len())
                .ok_or_else(|| {
                    ToolError::InvalidArguments("`email` is not a valid email address".into())
                })?,
        ),
    };
    let phone = match a.phone.as_deref() {
        None => None,
        Some(p) => Some(normalize_phone(p).ok_or_else(|| {
            ToolError::InvalidArguments(
                "`phone` must be a phone number: an optional + and 7 to 15 digits".into(),
            )
        })?),
    };
    let change = Change {
        fields: LeadFields {
            name: text(a.name, "name")?,
            email,
            phone,
            company: text(a.company, "company")?,
            interest: text(a.interest, "interest")?,
        },
        notes: text(a.notes, "notes")?,
        signals: Vec::new(),
    };
    if change.is_empty() {
        return Err(ToolError::InvalidArguments(
            "give at least one of `name`, `email`, `phone`, `company`, `interest`, `notes`".into(),
        ));
    }
    Ok(change)
}

impl TypedTool for CaptureLead {
    type Args = CaptureArgs;
    fn name(&self) -> &'static str {
        "capture_lead"
    }
    fn owner_only(&self) -> bool {
        true
    }
    fn action(&self) -> Option<Action> {
        Some(Action::Leads)
    }
    fn description(&self) -> &'static str {
        "Record what the customer told you about themselves as a sales lead: name, email, \
         phone, company, what they are interested in, and short notes for the sales team. \
         Only record what the customer actually said; omit what you do not know. Acts only on \
         the customer of this conversation. Returns the lead's score."
    }
    fn run<'a>(
        &'a self,
        ctx: &'a TurnContext<'a>,
        a: CaptureArgs,
    ) -> BoxFuture<'a, Result<Value, ToolError>> {
        Box::pin(async move {
            let change = validate(a)?;
            let would_set = json!({
                "name": change.fields.name,
                "email": change.fields.email,
                "phone": change.fields.phone,
                "company": change.fields.company,
                "interest": change.fields.interest,
                "notes": change.notes,
            });
            let (Some(conversation), false) = (ctx.conversation, ctx.dry_run) else {
                return Ok(json!({"saved": false, "dry_run": true, "would_set": would_set}));
            };
            let applied = apply(ctx.db(), ctx.tenant, conversation, &change, ctx.settings).await?;
            if let Some(s) = applied.state.score {
                ctx.actions.note("lead_score", json!(s));
            }
            Ok(json!({
                "saved": true,
                "lead": applied.state.fields,
                "score": applied.state.score,
                "reasons": applied.state.reasons,
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: Value) -> Result<Change, ToolError> {
        validate(crate::tools::parse_args::<CaptureArgs>(v)?)
    }

    #[test]
    fn capture_arguments_are_validated_and_normalised() {
        let c = args(
            json!({"name": " Sara ", "email": "Sara@Acme.Example", "phone": "+971 50 123 4567"}),
        )
        .unwrap();
        assert_eq!(c.fields.name.as_deref(), Some("Sara"));
        assert_eq!(c.fields.email.as_deref(), Some("sara@acme.example"));
        assert_eq!(c.fields.phone.as_deref(), Some("+971501234567"));
        for bad in [
            json!({}),
            json!({"email": "not an email"}),
            json!({"email": "<a@b.example>"}),
            json!({"phone": "call me"}),
            json!({"name": ""}),
            json!({"name": "x".repeat(101)}),
            json!({"notes": "a\u{0}b"}),
            json!({"name": "Sara", "contact_id": "0190..."}),
        ] {
            assert!(args(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn fingerprints_separate_domains_and_inputs() {
        let a = fingerprint(b"d1", b"x");
        assert_eq!(a.len(), 64);
        assert_eq!(a, fingerprint(b"d1", b"x"));
        assert_ne!(a, fingerprint(b"d2", b"x"));
        assert_ne!(a, fingerprint(b"d1", b"y"));
    }
}
