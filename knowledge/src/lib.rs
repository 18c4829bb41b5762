//! Tenant knowledge: documents, their chunks, and retrieval inside PostgreSQL.
//!
//! This is the deliberately simple first version: documents are split on paragraphs and searched
//! with PostgreSQL full text over text normalised by [`switchboard_prompts::normalize_for_index`]
//! (so Arabic letter variants and prefixes match), ranked with `ts_rank_cd`. Every query runs in
//! a [`TenantTx`], so row-level security confines it to one tenant. Embeddings and hybrid
//! retrieval replace the ranking later without changing the callers.

pub mod embed;

use serde::Serialize;
use switchboard_core::{DbError, TenantTx};
use switchboard_prompts::{normalize_for_index, search_terms, Lang};
use uuid::Uuid;

/// Target chunk size in characters; paragraphs are packed up to it, never split mid-paragraph
/// unless a single paragraph is longer.
const CHUNK_CHARS: usize = 1600;

/// A passage found for a query, with what is needed to cite it.
#[derive(Clone, Debug, Serialize)]
pub struct Passage {
    pub document_id: Uuid,
    pub title: String,
    pub lang: Lang,
    pub position: i32,
    pub text: String,
    pub score: f32,
}

/// Stores a document and its chunks in the current tenant; returns the document id.
pub async fn add_document(
    tx: &mut TenantTx,
    title: &str,
    lang: Lang,
    text: &str,
) -> Result<Uuid, DbError> {
    let tenant = tx.tenant_id();
    let doc = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO documents (id, tenant_id, title, language) VALUES ($1, $2, $3, $4)",
        doc,
        tenant.0,
        title,
        lang.code()
    )
    .execute(tx.conn())
    .await?;
    for (position, chunk) in chunk_text(text, CHUNK_CHARS).into_iter().enumerate() {
        let search_text = normalize_for_index(&format!("{title}\n{chunk}"));
        sqlx::query!(
            r#"INSERT INTO chunks (id, tenant_id, document_id, position, text, search_text)
               VALUES ($1, $2, $3, $4, $5, $6)"#,
            Uuid::now_v7(),
            tenant.0,
            doc,
            position as i32,
            chunk,
            search_text
        )
        .execute(tx.conn())
        .await?;
    }
    Ok(doc)
}

/// The `k` best passages of the current tenant for `query`; empty when nothing matches.
pub async fn retrieve(tx: &mut TenantTx, query: &str, k: i64) -> Result<Vec<Passage>, DbError> {
    let terms = search_terms(query);
    if terms.is_empty() {
        return Ok(Vec::new());
    }
    // Each term becomes a quoted lexeme OR-ed with the others; quoting makes any character safe.
    let tsquery = terms
        .iter()
        .map(|t| format!("'{}'", t.replace('\\', "").replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(" | ");
    let rows = sqlx::query!(
        r#"SELECT c.document_id, d.title, d.language, c.position, c.text,
                  ts_rank_cd(c.tsv, q, 1)::real AS "score!"
             FROM chunks c
             JOIN documents d ON d.id = c.document_id,
                  to_tsquery('simple', $1) q
            WHERE c.tsv @@ q
            ORDER BY 6 DESC, c.document_id, c.position
            LIMIT $2"#,
        tsquery,
        k
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Passage {
            document_id: r.document_id,
            title: r.title,
            lang: Lang::from_code(&r.language).unwrap_or(Lang::En),
            position: r.position,
            text: r.text,
            score: r.score,
        })
        .collect())
}

/// Splits text into chunks of about `max_chars` characters on paragraph boundaries, falling back
/// to sentence and then word boundaries for oversized paragraphs. Works on characters, never
/// bytes, so multi-byte scripts are never cut inside a character.
pub fn chunk_text(text: &str, max_chars: usize) -> Vec<String> {
    let mut packer = Packer::new(max_chars);
    for para in text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
        if len(para) <= max_chars {
            packer.add(para, "\n\n");
            continue;
        }
        // An oversized paragraph: pack its sentences, and the words of oversized sentences.
        packer.flush();
        for sentence in sentences(para) {
            if len(sentence) <= max_chars {
                packer.add(sentence, " ");
            } else {
                for word in sentence.split_whitespace() {
                    packer.add(word, " ");
                }
            }
        }
        packer.flush();
    }
    packer.finish()
}

fn len(s: &str) -> usize {
    s.chars().count()
}

/// Sentences of a paragraph: text up to and including `.`, `!`, `?`, `؟` or `۔` followed by
/// white space (so "5.5 kWp" and "e.g." inside a word stay whole).
fn sentences(para: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = para.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let ends = matches!(c, '.' | '!' | '?' | '؟' | '۔');
        if ends && chars.peek().is_some_and(|(_, next)| next.is_whitespace()) {
            let end = i + c.len_utf8();
            out.push(para[start..end].trim());
            start = end;
        }
    }
    let rest = para[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out.retain(|s| !s.is_empty());
    out
}

/// Packs pieces into chunks of at most `max` characters.
struct Packer {
    max: usize,
    current: String,
    chunks: Vec<String>,
}

impl Packer {
    fn new(max: usize) -> Self {
        Self {
            max,
            current: String::new(),
            chunks: Vec::new(),
        }
    }

    fn add(&mut self, piece: &str, separator: &str) {
        if !self.current.is_empty() && len(&self.current) + len(separator) + len(piece) > self.max {
            self.flush();
        }
        if !self.current.is_empty() {
            self.current.push_str(separator);
        }
        self.current.push_str(piece);
    }

    fn flush(&mut self) {
        let t = self.current.trim();
        if !t.is_empty() {
            self.chunks.push(t.to_owned());
        }
        self.current.clear();
    }

    fn finish(mut self) -> Vec<String> {
        self.flush();
        self.chunks
    }
}

#[cfg(test)]
mod tests {
    use super::chunk_text;

    #[test]
    fn chunks_pack_paragraphs_and_never_split_characters() {
        let para = "نقدم خدمات تركيب الألواح الشمسية للمنازل والشركات. ".repeat(30);
        let text = format!("First paragraph.\n\nSecond paragraph.\n\n{para}");
        let chunks = chunk_text(&text, 200);
        assert_eq!(chunks[0], "First paragraph.\n\nSecond paragraph.");
        assert!(chunks.len() > 3);
        for c in &chunks {
            assert!(
                c.chars().count() <= 200,
                "chunk too long: {}",
                c.chars().count()
            );
        }
        let rejoined: String = chunks[1..].join(" ");
        assert_eq!(
            rejoined.split_whitespace().collect::<Vec<_>>(),
            para.split_whitespace().collect::<Vec<_>>()
        );
        // Oversized paragraphs are cut between sentences, never inside one.
        for c in &chunks[1..] {
            assert!(c.ends_with('.'), "chunk does not end a sentence: {c}");
        }
    }

    #[test]
    fn sentences_split_on_terminal_punctuation_followed_by_space() {
        let para = "Prices start at AED 17,900. Is 5.5 kWp enough? ما هي المدة؟ Yes!";
        assert_eq!(
            super::sentences(para),
            [
                "Prices start at AED 17,900.",
                "Is 5.5 kWp enough?",
                "ما هي المدة؟",
                "Yes!"
            ]
        );
    }
}
