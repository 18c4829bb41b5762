//! Tenant knowledge: documents, their chunks, embeddings and hybrid retrieval inside PostgreSQL.
//!
//! * [`documents`]: what admins upload, list, edit and delete; content is kept so a document can
//!   be indexed again.
//! * [`parse`] and [`chunk`]: pure functions from bytes (text, Markdown, HTML, PDF, CSV/JSON FAQ)
//!   to structure-aware chunks with heading paths and offsets for citations.
//! * [`embed`]: the embedders (a local model by default, any OpenAI-compatible endpoint per
//!   tenant) and [`settings`]: which one a tenant uses, with its key sealed at rest.
//! * [`index`] and [`indexer`]: the background worker that turns queued documents into chunks and
//!   swaps them in atomically, and re-embeds a tenant whose model changed.
//! * [`search`]: BM25 full text and vector similarity fused with reciprocal rank fusion, the
//!   threshold applied after fusion, the tenant filter inside every query.
//!
//! Every query runs in a [`switchboard_core::TenantTx`], so row-level security confines it to
//! one tenant.

pub mod chunk;
pub mod documents;
pub mod embed;
pub mod fts;
pub mod index;
pub mod indexer;
pub mod parse;
#[cfg(any(test, feature = "promises"))]
pub mod promises;
pub mod retrieve;
pub mod search;
pub mod settings;
pub mod tenant_indexes;

pub use indexer::{Indexer, IndexerConfig};
pub use retrieve::{retrieve, Retrieved};
pub use search::{search, Fusion, Hit, QueryVector, SearchMode, SearchParams};
pub use settings::Embedders;

/// Language codes an admin may set on a document (besides `auto`), with the PostgreSQL
/// text-search configuration each is indexed with.
pub const SUPPORTED_LANGUAGES: [&str; 15] = [
    "en", "ar", "fr", "de", "es", "it", "pt", "nl", "ru", "tr", "sv", "da", "fi", "id", "simple",
];

/// The text-search configuration for a language code, `None` for unknown codes.
pub fn fts_config_for(code: &str) -> Option<&'static str> {
    Some(match code {
        "en" => "english",
        "ar" => "arabic",
        "fr" => "french",
        "de" => "german",
        "es" => "spanish",
        "it" => "italian",
        "pt" => "portuguese",
        "nl" => "dutch",
        "ru" => "russian",
        "tr" => "turkish",
        "sv" => "swedish",
        "da" => "danish",
        "fi" => "finnish",
        "id" => "indonesian",
        "simple" => "simple",
        _ => return None,
    })
}

/// A vector in pgvector's text form, `[0.1,0.2,…]`.
pub fn vector_literal(v: &[f32]) -> String {
    let mut s = String::with_capacity(v.len() * 10 + 2);
    s.push('[');
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        // Non-finite values would be rejected by PostgreSQL; embedders never produce them.
        let x = if x.is_finite() { *x } else { 0.0 };
        s.push_str(&format!("{x}"));
    }
    s.push(']');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_language_has_a_configuration() {
        for code in SUPPORTED_LANGUAGES {
            assert!(fts_config_for(code).is_some(), "{code}");
        }
        assert_eq!(fts_config_for("xx"), None);
    }

    #[test]
    fn vectors_render_for_pgvector() {
        assert_eq!(vector_literal(&[0.5, -1.0, f32::NAN]), "[0.5,-1,0]");
    }

    /// Compile-time check that the futures actors hold across awaits are `Send` (a regression here
    /// shows up far away, as an inscrutable error in the actor that spawns the turn).
    #[allow(dead_code)]
    fn send_checks(
        db: &switchboard_core::Db,
        tx: &mut switchboard_core::TenantTx,
        e: &Embedders,
        p: &SearchParams,
        emb: &embed::Embedder,
    ) {
        fn is_send<T: Send>(_: T) {}
        is_send(search(tx, p, None));
        is_send(indexer::active_embedder(e, tx));
        is_send(settings::get(tx));
        is_send(e.for_tenant(tx));
        is_send(retrieve::embed_query(
            e,
            switchboard_core::TenantId(uuid::Uuid::nil()),
            emb,
            String::new(),
            "x",
        ));
        is_send(emb.embed(&[], embed::EmbedKind::Query));
        is_send(retrieve(
            db,
            e,
            switchboard_core::TenantId(uuid::Uuid::nil()),
            p,
            None,
        ));
    }
}
