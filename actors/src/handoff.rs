//! Human handoff, the actor side: opening an escalation inside the turn's commit with the sales
//! team's notifications (email and Telegram, through the effects outbox), what the customer is
//! told to expect, and the reminders of escalations nobody claimed.
//!
//! The state machine itself (bot → waiting → human → bot, closed) lives in
//! `switchboard_core::store::handoff`; this module decides *when* to escalate and *who hears
//! about it*. Everything an escalation causes — the holding message, the escalation row, the
//! notifications — commits in one transaction, keyed by the request, so a turn redone after a
//! crash can neither notify twice nor leave an escalation nobody heard of.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use switchboard_core::store::actions::{self, ActionSettings};
use switchboard_core::store::effects::{self, EffectKind, NewEffect};
use switchboard_core::store::handoff::{self, Escalation, EscalationRequest};
use switchboard_core::store::{bookings, inbox, messages, platform};
use switchboard_core::{ConversationId, DbError, TenantTx};
use switchboard_prompts::booking::long_when;
use switchboard_prompts::handoff::{still_waiting_message, Expectation};
use switchboard_prompts::{detect_language, Lang};
use tracing::{info, warn};

use crate::context::TurnContext;
use crate::Services;

/// What brought a human in (stored as `escalations.trigger`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The customer asked for a person.
    Customer,
    /// The model called `escalate_to_human`.
    Tool,
    /// The customer's message contains one of the tenant's keywords.
    Keyword,
    /// The agent could not answer several messages in a row.
    Failures,
    /// A qualified lead.
    LeadScore,
    /// The agent gave up on a message after repeated technical failures (its events were
    /// parked; see [`crate::parked`]).
    TechnicalFailure,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Customer => "customer",
            Trigger::Tool => "tool",
            Trigger::Keyword => "keyword",
            Trigger::Failures => "failures",
            Trigger::LeadScore => "lead_score",
            Trigger::TechnicalFailure => "technical_failure",
        }
    }
}

/// Why a turn brings a human in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub trigger: Trigger,
    pub reason: String,
    /// The customer did not ask: keep the answer and add that the team will follow up.
    pub keep_answer: bool,
}

/// What the sales team is told about the customer.
#[derive(Clone, Debug, Default)]
pub struct LeadInfo {
    pub score: Option<i32>,
    pub reasons: Vec<String>,
    pub fields: Value,
}

/// When the customer can expect a human: within the configured wait during business hours (the
/// tenant's availability; none configured means always), otherwise when the team is back, in
/// the tenant's local time and the customer's language. The flag says "after hours".
pub async fn expectation(
    tx: &mut TenantTx,
    settings: &ActionSettings,
    now: DateTime<Utc>,
    lang: Lang,
) -> Result<(Expectation, bool), DbError> {
    let hours = bookings::availability(tx).await?;
    Ok(match hours {
        Some(h) if !h.is_open(now) => match h.next_opening(now) {
            Some(at) => (
                Expectation::BackAt(format!(
                    "{} {}",
                    long_when(lang, h.local(at)),
                    h.timezone_name()
                )),
                true,
            ),
            None => (Expectation::Later, true),
        },
        _ => (Expectation::Within(settings.expected_wait_minutes), false),
    })
}

/// An escalation to open, besides what the turn's context says.
pub struct Opening<'a> {
    pub plan: &'a Plan,
    /// The key of the request that opens it: a redone turn finds the escalation its first run
    /// opened instead of opening another.
    pub request_key: &'a str,
    pub after_hours: bool,
    pub lead: &'a LeadInfo,
    pub now: DateTime<Utc>,
}

/// Opens the escalation (or finds the one this request opened) of the turn's conversation and,
/// when it is new, queues the team's notifications — all in `tx`, the turn's commit.
pub async fn escalate(
    tx: &mut TenantTx,
    ctx: &TurnContext<'_>,
    opening: &Opening<'_>,
) -> Result<(Escalation, bool), DbError> {
    let conversation = ctx
        .conversation
        .ok_or_else(|| DbError::Invalid("only a conversation can be escalated".into()))?;
    let summary = summary(tx, conversation).await?;
    let remind_at = (ctx.settings.max_renotify > 0).then(|| {
        opening.now + chrono::Duration::minutes(ctx.settings.renotify_after_minutes.into())
    });
    let trigger = opening.plan.trigger.as_str();
    let (escalation, created) = handoff::open(
        tx,
        &EscalationRequest {
            conversation,
            trigger,
            reason: &opening.plan.reason,
            summary: &summary,
            request_key: opening.request_key,
            after_hours: opening.after_hours,
            remind_at,
        },
    )
    .await?;
    if created {
        notify(
            tx,
            ctx.services,
            ctx.settings,
            ctx.tenant_name,
            &escalation,
            opening.lead,
            0,
        )
        .await?;
        metrics::counter!("switchboard_escalations_total", "trigger" => trigger).increment(1);
        info!(escalation_id = %escalation.id, trigger, "conversation escalated to a human");
    }
    Ok((escalation, created))
}

/// The last messages of the conversation, one line each, for the team.
async fn summary(tx: &mut TenantTx, conversation: ConversationId) -> Result<String, DbError> {
    let lines: Vec<String> = messages::recent(tx, conversation, 8)
        .await?
        .into_iter()
        .map(|(role, text)| {
            let t = text.split_whitespace().collect::<Vec<_>>().join(" ");
            let t: String = t.chars().take(240).collect();
            format!("{role}: {t}")
        })
        .collect();
    Ok(lines.join("\n"))
}

/// Queues the notifications of `escalation` (reminder `n`; 0 is the first notice).
async fn notify(
    tx: &mut TenantTx,
    services: &Services,
    settings: &ActionSettings,
    tenant_name: &str,
    escalation: &Escalation,
    lead: &LeadInfo,
    n: i32,
) -> Result<(), DbError> {
    let (name, email, external, channel) =
        match inbox::conversation(tx, escalation.conversation_id).await? {
            Some(c) => (
                c.contact_name,
                c.contact_email,
                c.contact_external_id,
                c.channel_kind,
            ),
            None => (None, None, "?".into(), "?".into()),
        };
    let who = name.clone().unwrap_or_else(|| external.clone());
    let base = services
        .outbound
        .public_base_url
        .clone()
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let tenant = tx.tenant_id();
    // The console's page of the conversation: sign-in first if needed, then the transcript.
    let link = format!(
        "{base}/console?tenant={tenant}#/inbox/{}",
        escalation.conversation_id
    );
    let mut lead_lines = Vec::new();
    if let Some(s) = lead.score {
        lead_lines.push(format!("Lead score: {s}/100 ({})", lead.reasons.join("; ")));
    }
    let mut fields = vec![format!("Name: {}", name.as_deref().unwrap_or("unknown"))];
    if let Some(e) = email.or_else(|| lead.fields["email"].as_str().map(str::to_owned)) {
        fields.push(format!("Email: {e}"));
    }
    for key in ["phone", "company", "interest"] {
        if let Some(v) = lead.fields[key].as_str() {
            fields.push(format!("{}{}: {v}", key[..1].to_uppercase(), &key[1..]));
        }
    }
    fields.push(format!("Channel: {channel} ({external})"));
    let heading = if n == 0 {
        format!("A customer needs a human — {tenant_name}")
    } else {
        format!("Reminder {n}: a customer is still waiting for a human — {tenant_name}")
    };
    let when = if escalation.after_hours {
        "Raised outside business hours; the customer was told when the team is back."
    } else {
        "The customer was told a colleague will reply shortly."
    };
    let text = format!(
        "{heading}\n\nReason: {} (trigger: {})\n{when}\n\n{}\n{}\n\nRecent messages:\n{}\n\nOpen it in the console: {link}\nTake it: POST {base}/api/v1/conversations/{}/claim?tenant={tenant}\n",
        escalation.reason,
        escalation.trigger,
        fields.join("\n"),
        lead_lines.join("\n"),
        if escalation.summary.is_empty() { "(none)" } else { &escalation.summary },
        escalation.conversation_id,
    );
    let subject: String = format!(
        "{}{who}: {}",
        if n == 0 {
            "[Escalation] "
        } else {
            "[Reminder] "
        },
        escalation.reason
    )
    .chars()
    .take(150)
    .collect();
    let purpose = if n == 0 {
        "escalation"
    } else {
        "escalation_reminder"
    };
    if !settings.notify_emails.is_empty() {
        effects::enqueue(
            tx,
            &NewEffect {
                conversation: Some(escalation.conversation_id),
                kind: EffectKind::Email,
                purpose: purpose.into(),
                idempotency_key: format!("escalation:{}:{n}:email", escalation.id),
                payload: json!({"to": settings.notify_emails, "subject": subject, "text": text}),
                max_attempts: None,
            },
        )
        .await?;
    }
    if let Some(chat) = &settings.notify_telegram_chat_id {
        effects::enqueue(
            tx,
            &NewEffect {
                conversation: Some(escalation.conversation_id),
                kind: EffectKind::Telegram,
                purpose: purpose.into(),
                idempotency_key: format!("escalation:{}:{n}:telegram", escalation.id),
                payload: json!({"chat_id": chat, "text": text}),
                max_attempts: None,
            },
        )
        .await?;
    }
    if settings.notify_emails.is_empty() && settings.notify_telegram_chat_id.is_none() {
        warn!(escalation_id = %escalation.id, "an escalation was raised but no notification target is configured (notify_emails, notify_telegram_chat_id)");
    }
    Ok(())
}

/// Sends the reminders of unclaimed escalations that are due: the team is notified again and
/// the customer is told what to expect — once per reminder, in one transaction.
pub async fn send_due_reminders(services: &Services) -> Result<(), DbError> {
    let due = platform::due_escalation_reminders(services.db.pool(), 32).await?;
    let mut sent = false;
    for (id, tenant) in due {
        let mut tx = services.db.tenant(tenant).await?;
        let settings = actions::get(&mut tx).await?;
        let now = Utc::now();
        let max = settings.max_renotify;
        let every = chrono::Duration::minutes(settings.renotify_after_minutes.into());
        // `notifications` counts the first notice too: reminders stop after `max`.
        let Some(e) =
            handoff::take_reminder(&mut tx, id, |done| (done < max).then_some(now + every)).await?
        else {
            tx.rollback().await?;
            continue;
        };
        let n = e.notifications - 1;
        let tenant_name = switchboard_core::store::channels::tenant_name(&mut tx).await?;
        notify(
            &mut tx,
            services,
            &settings,
            &tenant_name,
            &e,
            &LeadInfo::default(),
            n,
        )
        .await?;
        let last_customer = messages::last_customer_text(&mut tx, e.conversation_id).await?;
        let lang = last_customer
            .as_deref()
            .map(detect_language)
            .unwrap_or(Lang::En);
        let (expect, _) = expectation(&mut tx, &settings, now, lang).await?;
        handoff::outgoing(
            &mut tx,
            e.conversation_id,
            "agent",
            &still_waiting_message(lang, &expect),
            json!({"event": "escalation_reminder", "escalation_id": e.id, "reminder": n}),
            &format!("escalation:{}:{n}:customer", e.id),
            None,
        )
        .await?;
        tx.commit().await?;
        services.inbox.publish(
            tenant,
            crate::inbox::InboxEvent::conversation(
                e.conversation_id,
                crate::inbox::ConversationReason::Message,
            ),
        );
        info!(escalation_id = %e.id, reminder = n, "reminded the team of an unclaimed escalation");
        sent = true;
    }
    if sent {
        services.outbox_kick.notify_one();
    }
    Ok(())
}
