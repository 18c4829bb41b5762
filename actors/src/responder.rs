//! Producing the text of a reply. Today: the deterministic offline responder, which answers from
//! the tenant's knowledge and recognises requests for a human or a meeting. The LLM agent loop
//! will sit behind the same function.

use serde_json::json;
use switchboard_core::store::turns::ConversationInfo;
use switchboard_core::{DbError, TenantTx};
use switchboard_knowledge::Passage;
use switchboard_prompts::{offline_reply, ReplyContext, Snippet};

/// A reply ready to be committed.
#[derive(Clone, Debug)]
pub struct Reply {
    pub text: String,
    pub responder: &'static str,
    pub intent: String,
    pub metadata: serde_json::Value,
}

/// Passages of the tenant's knowledge that may answer `customer_text`, read through the turn's
/// tenant transaction.
pub async fn ground(tx: &mut TenantTx, customer_text: &str) -> Result<Vec<Passage>, DbError> {
    switchboard_knowledge::retrieve(tx, customer_text, 3).await
}

/// Answers `customer_text` with the offline responder from the retrieved `passages`. No IO:
/// everything it needs was read before the turn's attempt was committed.
pub fn offline(
    conversation: &ConversationInfo,
    customer_text: &str,
    passages: &[Passage],
) -> Reply {
    let snippets: Vec<Snippet> = passages
        .iter()
        .map(|p| Snippet {
            title: p.title.clone(),
            text: p.text.clone(),
            lang: p.lang,
        })
        .collect();
    let reply = offline_reply(&ReplyContext {
        business_name: &conversation.tenant_name,
        customer_text,
        snippets: &snippets,
    });
    let citations: Vec<_> = reply
        .cited
        .iter()
        .filter_map(|&i| passages.get(i))
        .map(|p| json!({"document_id": p.document_id, "title": p.title, "position": p.position, "score": p.score}))
        .collect();
    let intent = serde_json::to_value(reply.intent)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "question".into());
    Reply {
        text: reply.text,
        responder: "offline",
        metadata: json!({"intent": intent, "lang": reply.lang.code(), "citations": citations}),
        intent,
    }
}
