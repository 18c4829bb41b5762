//! Producing the text of a reply without a model: the deterministic offline responder, which
//! answers from the tenant's knowledge and recognises requests for a human or a meeting. It is
//! the default when no model is configured, and the degraded answer when a model fails (see
//! [`crate::brain`]).

use serde_json::json;
use switchboard_core::{Db, DbError, TenantId};
use switchboard_knowledge::{Embedders, Hit, SearchParams};
use switchboard_prompts::{detect_language, offline_reply, Lang, ReplyContext, Snippet};

/// Passages a reply may draw on.
pub const GROUNDING_HITS: usize = 5;

/// Who composed a reply (stored with its turn as `turns.responder`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Responder {
    /// The deterministic offline responder (or its booking dialogue).
    Offline,
    /// The tenant's model.
    Llm,
    /// The tenant's monthly token budget is spent: a fixed reply.
    Budget,
    /// A human was brought in: the holding message.
    Handoff,
    /// The echo responder (benchmarks of the durable core).
    Echo,
}

impl Responder {
    pub const fn as_str(self) -> &'static str {
        match self {
            Responder::Offline => "offline",
            Responder::Llm => "llm",
            Responder::Budget => "budget",
            Responder::Handoff => "handoff",
            Responder::Echo => "echo",
        }
    }
}

/// A reply ready to be committed.
#[derive(Clone, Debug)]
pub struct Reply {
    pub text: String,
    pub responder: Responder,
    pub intent: String,
    pub metadata: serde_json::Value,
    /// The prompt version that produced a model's reply.
    pub prompt_version_id: Option<uuid::Uuid>,
}

/// The best `k` passages of the tenant's knowledge for `customer_text`: hybrid search (BM25 and
/// the tenant's embeddings, fused). With the tenant's knowledge `generation` (the turn reads it
/// with its state), an identical search of the same knowledge is reused (see
/// [`switchboard_knowledge::retrieve`]).
pub async fn ground(
    db: &Db,
    embedders: &Embedders,
    tenant: TenantId,
    customer_text: &str,
    k: usize,
    generation: Option<i64>,
) -> Result<Vec<Hit>, DbError> {
    let params = SearchParams::new(customer_text, k);
    Ok(
        switchboard_knowledge::retrieve(db, embedders, tenant, &params, generation)
            .await?
            .hits,
    )
}

/// Answers `customer_text` with the offline responder from the retrieved `passages`. No IO:
/// everything it needs was read before the turn's attempt was committed.
pub fn offline(business_name: &str, customer_text: &str, passages: &[Hit]) -> Reply {
    let snippets: Vec<Snippet> = passages
        .iter()
        .map(|p| Snippet {
            title: p.title.clone(),
            text: p.text.clone(),
            lang: Lang::from_code(&p.language).unwrap_or_else(|| detect_language(&p.text)),
        })
        .collect();
    let reply = offline_reply(&ReplyContext {
        business_name,
        customer_text,
        snippets: &snippets,
    });
    let citations: Vec<_> = reply
        .cited
        .iter()
        .filter_map(|&i| passages.get(i))
        .map(|p| {
            json!({
                "document_id": p.document_id,
                "chunk_id": p.chunk_id,
                "title": p.title,
                "source": p.source,
                "heading_path": p.heading_path,
                "position": p.position,
                "char_start": p.char_start,
                "char_end": p.char_end,
                "score": p.score,
            })
        })
        .collect();
    let intent = serde_json::to_value(reply.intent)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "question".into());
    Reply {
        text: reply.text,
        responder: Responder::Offline,
        metadata: json!({"intent": intent, "lang": reply.lang.code(), "citations": citations}),
        intent,
        prompt_version_id: None,
    }
}
