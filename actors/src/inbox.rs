//! The live inbox's hints: an in-process hub that tells a tenant's open consoles "this
//! conversation or escalation changed, fetch it again".
//!
//! Writers publish *after* their transaction commits, so a console that re-fetches on a hint
//! reads what caused it. A hint carries ids and a reason, never content: the database stays the
//! only copy of the data, and a console that missed hints (not connected yet, too slow) loses
//! nothing but freshness — it re-reads the list when it (re)connects.
//!
//! Each tenant has its own `tokio::sync::broadcast` channel, created by the first subscriber and
//! dropped once nobody listens, so a tenant's stream can only ever receive that tenant's hints.
//! Publishing is a mutex-guarded map lookup and, when someone listens, a `send`: no I/O, no
//! database round trip, nothing that can fail the write that caused it. PostgreSQL
//! `LISTEN/NOTIFY` is deliberately not used: it serialises commits on a global lock, and the
//! hints only need to reach consoles connected to this process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use switchboard_core::{ConversationId, TenantId};
use tokio::sync::broadcast;
use uuid::Uuid;

/// Hints a slow console may fall behind by before it is told to re-read everything.
const CAPACITY: usize = 256;

/// Why a conversation's hint was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationReason {
    /// A new message: the customer's, the agent's or a human's.
    Message,
    /// Its handoff state or status changed (escalated, claimed, handed back, closed).
    State,
    /// The delivery status of one of its outgoing messages changed.
    Delivery,
    /// The conversation was just opened by its first customer message.
    Created,
}

/// An escalation's status, as the hint reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationStatus {
    Waiting,
    Claimed,
    Resolved,
}

/// One hint to a tenant's consoles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InboxEvent {
    Conversation {
        conversation_id: ConversationId,
        reason: ConversationReason,
    },
    Escalation {
        escalation_id: Uuid,
        conversation_id: ConversationId,
        status: EscalationStatus,
    },
}

impl InboxEvent {
    /// The server-sent event's name.
    pub fn name(&self) -> &'static str {
        match self {
            InboxEvent::Conversation { .. } => "conversation",
            InboxEvent::Escalation { .. } => "escalation",
        }
    }

    /// The server-sent event's data.
    pub fn data(&self) -> serde_json::Value {
        match self {
            InboxEvent::Conversation {
                conversation_id,
                reason,
            } => serde_json::json!({"conversation_id": conversation_id, "reason": reason}),
            InboxEvent::Escalation {
                escalation_id,
                conversation_id,
                status,
            } => serde_json::json!({
                "escalation_id": escalation_id,
                "conversation_id": conversation_id,
                "status": status,
            }),
        }
    }

    pub fn conversation(conversation_id: ConversationId, reason: ConversationReason) -> Self {
        InboxEvent::Conversation {
            conversation_id,
            reason,
        }
    }

    pub fn escalation(
        escalation_id: Uuid,
        conversation_id: ConversationId,
        status: EscalationStatus,
    ) -> Self {
        InboxEvent::Escalation {
            escalation_id,
            conversation_id,
            status,
        }
    }

    /// The hints of a newly opened escalation: the escalation waits, and its conversation's
    /// state changed.
    pub fn escalation_opened(escalation_id: Uuid, conversation_id: ConversationId) -> [Self; 2] {
        [
            InboxEvent::escalation(escalation_id, conversation_id, EscalationStatus::Waiting),
            InboxEvent::conversation(conversation_id, ConversationReason::State),
        ]
    }
}

/// One broadcast sender per tenant that has a listener.
type Tenants = HashMap<TenantId, broadcast::Sender<InboxEvent>>;

/// The per-tenant hub of inbox hints. Cloning shares it.
#[derive(Clone, Debug, Default)]
pub struct InboxHub {
    tenants: Arc<Mutex<Tenants>>,
}

impl InboxHub {
    /// Subscribes to `tenant`'s hints (and only to them).
    pub fn subscribe(&self, tenant: TenantId) -> broadcast::Receiver<InboxEvent> {
        let mut map = self.tenants.lock().expect("inbox hub lock poisoned");
        // Drop the senders nobody listens to any more, so the map follows live streams.
        map.retain(|_, tx| tx.receiver_count() > 0);
        map.entry(tenant)
            .or_insert_with(|| broadcast::channel(CAPACITY).0)
            .subscribe()
    }

    /// Tells `tenant`'s consoles about `event`. Never fails and never waits: without a listener
    /// it does nothing.
    pub fn publish(&self, tenant: TenantId, event: InboxEvent) {
        let map = self.tenants.lock().expect("inbox hub lock poisoned");
        if let Some(tx) = map.get(&tenant) {
            let _ = tx.send(event);
        }
    }

    /// Publishes several hints of one tenant (what one transaction wrote).
    pub fn publish_all(&self, tenant: TenantId, events: impl IntoIterator<Item = InboxEvent>) {
        let map = self.tenants.lock().expect("inbox hub lock poisoned");
        if let Some(tx) = map.get(&tenant) {
            for e in events {
                let _ = tx.send(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_tenant_hears_only_its_own_hints() {
        let hub = InboxHub::default();
        let (a, b) = (TenantId(Uuid::now_v7()), TenantId(Uuid::now_v7()));
        let mut ra = hub.subscribe(a);
        let mut rb = hub.subscribe(b);
        let conv = ConversationId(Uuid::now_v7());
        hub.publish(
            a,
            InboxEvent::conversation(conv, ConversationReason::Message),
        );
        assert_eq!(
            ra.try_recv().unwrap(),
            InboxEvent::conversation(conv, ConversationReason::Message)
        );
        assert!(rb.try_recv().is_err());
        // Nobody listening: publishing is a no-op.
        hub.publish(
            TenantId(Uuid::now_v7()),
            InboxEvent::conversation(conv, ConversationReason::State),
        );
    }

    #[test]
    fn hints_serialise_as_the_console_expects() {
        let conv = ConversationId(Uuid::nil());
        let e = InboxEvent::escalation(Uuid::nil(), conv, EscalationStatus::Claimed);
        assert_eq!(e.name(), "escalation");
        assert_eq!(e.data()["status"], "claimed");
        let c = InboxEvent::conversation(conv, ConversationReason::Delivery);
        assert_eq!(c.name(), "conversation");
        assert_eq!(
            c.data(),
            serde_json::json!({"conversation_id": Uuid::nil(), "reason": "delivery"})
        );
    }
}
