//! Documents of a tenant's knowledge base: what admins upload, list, edit and delete.
//!
//! Creating or changing a document stores its content and queues it; the indexer
//! ([`crate::indexer`]) parses, chunks and embeds it in the background and swaps its chunks in one
//! transaction. Deleting a document removes it, its chunks and their vectors in one transaction,
//! and takes its words out of the full-text statistics.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use switchboard_core::{DbError, TenantTx};
use uuid::Uuid;

use crate::parse::Format;

/// Largest accepted document, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 20 * 1024 * 1024;
/// Most tags a document may carry, and their longest length.
const MAX_TAGS: usize = 32;
const MAX_TAG_CHARS: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = DocumentStatus))]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Queued,
    Indexing,
    Indexed,
    Failed,
}

impl Status {
    fn parse(s: &str) -> Status {
        match s {
            "indexing" => Status::Indexing,
            "indexed" => Status::Indexed,
            "failed" => Status::Failed,
            _ => Status::Queued,
        }
    }
}

/// A document as admins see it (content excluded).
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Document {
    pub id: Uuid,
    pub title: String,
    pub source: Option<String>,
    pub format: String,
    pub content_type: Option<String>,
    /// `auto`, or a language code given by the admin.
    pub language: String,
    pub tags: Vec<String>,
    pub version: i32,
    pub indexed_version: Option<i32>,
    pub status: Status,
    pub error: Option<String>,
    pub size_bytes: i32,
    pub chunk_count: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub indexed_at: Option<DateTime<Utc>>,
}

/// A document to create.
#[derive(Clone, Debug, Default)]
pub struct NewDocument {
    /// Defaults to the file name without its extension.
    pub title: Option<String>,
    /// File name or URL; its extension picks the format unless `content_type` does.
    pub source: String,
    pub content_type: Option<String>,
    pub content: Vec<u8>,
    /// `None` or `auto` to detect per chunk; otherwise a language code such as `en` or `ar`.
    pub language: Option<String>,
    pub tags: Vec<String>,
}

/// Changes to a document; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct DocumentPatch {
    pub title: Option<String>,
    pub tags: Option<Vec<String>>,
    pub language: Option<String>,
    /// New content, with the file name or URL and content type it came with.
    pub content: Option<(Vec<u8>, Option<String>, Option<String>)>,
}

#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("{0}")]
    Invalid(String),
    #[error("document not found")]
    NotFound,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for DocumentError {
    fn from(e: sqlx::Error) -> Self {
        DocumentError::Db(e.into())
    }
}

const COLUMNS: &str = "id, title, source, format, content_type, language, tags, version, \
    indexed_version, status, error, size_bytes, chunk_count, created_at, updated_at, indexed_at";

fn from_row(r: &sqlx::postgres::PgRow) -> Result<Document, sqlx::Error> {
    Ok(Document {
        id: r.try_get("id")?,
        title: r.try_get("title")?,
        source: r.try_get("source")?,
        format: r.try_get("format")?,
        content_type: r.try_get("content_type")?,
        language: r.try_get("language")?,
        tags: r.try_get("tags")?,
        version: r.try_get("version")?,
        indexed_version: r.try_get("indexed_version")?,
        status: Status::parse(r.try_get::<&str, _>("status")?),
        error: r.try_get("error")?,
        size_bytes: r.try_get("size_bytes")?,
        chunk_count: r.try_get("chunk_count")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        indexed_at: r.try_get("indexed_at")?,
    })
}

/// Checks what can be checked before storing: size, format, title, tags, language.
fn validate(
    source: &str,
    content_type: Option<&str>,
    content: &[u8],
) -> Result<Format, DocumentError> {
    let name = source.trim();
    if name.is_empty() || name.chars().count() > 1000 {
        return Err(DocumentError::Invalid(
            "source (the file name or URL) must be 1 to 1000 characters".into(),
        ));
    }
    if content.is_empty() {
        return Err(DocumentError::Invalid(format!("{name}: the file is empty")));
    }
    if content.len() > MAX_DOCUMENT_BYTES {
        return Err(DocumentError::Invalid(format!(
            "{name}: {} bytes is more than the {} MiB limit",
            content.len(),
            MAX_DOCUMENT_BYTES / (1024 * 1024)
        )));
    }
    Format::detect(name, content_type).ok_or_else(|| {
        DocumentError::Invalid(format!(
            "{name}: unsupported format{}; accepted: .txt, .md, .html, .pdf, .csv and .json (question/answer pairs)",
            content_type.map(|t| format!(" ({t})")).unwrap_or_default()
        ))
    })
}

fn clean_title(title: Option<&str>, source: &str) -> Result<String, DocumentError> {
    let title = match title.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => t.to_owned(),
        None => {
            // The file name without directories, query strings or extension.
            let last = source
                .trim()
                .trim_end_matches('/')
                .rsplit(['/', '\\'])
                .next()
                .unwrap_or(source);
            let last = last.split(['?', '#']).next().unwrap_or(last);
            let stem = match last.rfind('.') {
                Some(i) if i > 0 => &last[..i],
                _ => last,
            };
            let stem = stem.replace(['_', '-'], " ");
            if stem.trim().is_empty() {
                "Untitled".to_owned()
            } else {
                stem.trim().to_owned()
            }
        }
    };
    if title.chars().count() > 500 {
        return Err(DocumentError::Invalid(
            "title must be at most 500 characters".into(),
        ));
    }
    Ok(title)
}

fn clean_tags(tags: &[String]) -> Result<Vec<String>, DocumentError> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let t = t.trim();
        if t.is_empty() {
            continue;
        }
        if t.chars().count() > MAX_TAG_CHARS {
            return Err(DocumentError::Invalid(format!(
                "tag `{t}` is longer than {MAX_TAG_CHARS} characters"
            )));
        }
        if !out.iter().any(|o| o == t) {
            out.push(t.to_owned());
        }
    }
    if out.len() > MAX_TAGS {
        return Err(DocumentError::Invalid(format!(
            "at most {MAX_TAGS} tags per document"
        )));
    }
    Ok(out)
}

fn clean_language(language: Option<&str>) -> Result<String, DocumentError> {
    match language.map(str::trim).filter(|l| !l.is_empty()) {
        None => Ok("auto".into()),
        Some(l) => {
            let l = l.to_ascii_lowercase();
            if l == "auto" || crate::fts_config_for(&l).is_some() {
                Ok(l)
            } else {
                Err(DocumentError::Invalid(format!(
                    "language `{l}` is not supported; use auto or one of: {}",
                    crate::SUPPORTED_LANGUAGES.join(", ")
                )))
            }
        }
    }
}

/// Stores a new document, queued for indexing.
pub async fn create(tx: &mut TenantTx, doc: &NewDocument) -> Result<Document, DocumentError> {
    let format = validate(&doc.source, doc.content_type.as_deref(), &doc.content)?;
    let title = clean_title(doc.title.as_deref(), &doc.source)?;
    let tags = clean_tags(&doc.tags)?;
    let language = clean_language(doc.language.as_deref())?;
    let row = sqlx::query(&format!(
        "INSERT INTO documents (id, tenant_id, title, source, format, content_type, content,
                                size_bytes, language, tags, status)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'queued')
         RETURNING {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(tx.tenant_id().0)
    .bind(&title)
    .bind(doc.source.trim())
    .bind(format.as_str())
    .bind(doc.content_type.as_deref())
    .bind(&doc.content)
    .bind(doc.content.len() as i32)
    .bind(&language)
    .bind(&tags)
    .fetch_one(tx.conn())
    .await?;
    Ok(from_row(&row)?)
}

/// Filters for [`list`].
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    pub status: Option<String>,
    pub tag: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

/// The tenant's documents, newest first.
pub async fn list(tx: &mut TenantTx, filter: &ListFilter) -> Result<Vec<Document>, DocumentError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM documents
          WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2)
            AND ($3::text IS NULL OR tags @> ARRAY[$3])
          ORDER BY created_at DESC, id DESC
          LIMIT $4 OFFSET $5"
    ))
    .bind(tx.tenant_id().0)
    .bind(filter.status.as_deref())
    .bind(filter.tag.as_deref())
    .bind(filter.limit.clamp(1, 500))
    .bind(filter.offset.max(0))
    .fetch_all(tx.conn())
    .await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}

pub async fn get(tx: &mut TenantTx, id: Uuid) -> Result<Document, DocumentError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM documents WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tx.tenant_id().0)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?
    .ok_or(DocumentError::NotFound)?;
    Ok(from_row(&row)?)
}

/// A stored chunk of a document, for admins checking how it was split.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredChunk {
    pub id: Uuid,
    pub position: i32,
    pub heading_path: Vec<String>,
    pub char_start: i32,
    pub char_end: i32,
    pub language: String,
    pub text: String,
}

pub async fn chunks(tx: &mut TenantTx, id: Uuid) -> Result<Vec<StoredChunk>, DocumentError> {
    let rows = sqlx::query(
        "SELECT id, position, heading_path, char_start, char_end, language, text
           FROM chunks WHERE tenant_id = $1 AND document_id = $2 ORDER BY position",
    )
    .bind(tx.tenant_id().0)
    .bind(id)
    .fetch_all(tx.conn())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(StoredChunk {
                id: r.try_get(0)?,
                position: r.try_get(1)?,
                heading_path: r.try_get(2)?,
                char_start: r.try_get(3)?,
                char_end: r.try_get(4)?,
                language: r.try_get(5)?,
                text: r.try_get(6)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Applies `patch`. New content, a new title or a new language queue the document for indexing
/// again (its current chunks stay searchable until the new ones replace them); tags apply at once.
pub async fn update(
    tx: &mut TenantTx,
    id: Uuid,
    patch: &DocumentPatch,
) -> Result<Document, DocumentError> {
    let current = get(tx, id).await?;
    let title = match &patch.title {
        Some(t) if t.trim().is_empty() => {
            return Err(DocumentError::Invalid("title must not be blank".into()))
        }
        Some(t) => Some(clean_title(Some(t), "")?),
        None => None,
    };
    let tags = patch.tags.as_deref().map(clean_tags).transpose()?;
    let language = patch
        .language
        .as_deref()
        .map(|l| clean_language(Some(l)))
        .transpose()?;
    let content = match &patch.content {
        Some((bytes, source, content_type)) => {
            let source = source
                .clone()
                .or_else(|| current.source.clone())
                .unwrap_or_default();
            let format = validate(&source, content_type.as_deref(), bytes)?;
            Some((bytes, source, content_type.clone(), format))
        }
        None => None,
    };
    let reindex = content.is_some()
        || title.as_ref().is_some_and(|t| *t != current.title)
        || language.as_ref().is_some_and(|l| *l != current.language);
    let row = sqlx::query(&format!(
        "UPDATE documents
            SET title = coalesce($3, title),
                tags = coalesce($4, tags),
                language = coalesce($5, language),
                content = coalesce($6, content),
                size_bytes = coalesce($7, size_bytes),
                source = coalesce($8, source),
                content_type = CASE WHEN $6::bytea IS NULL THEN content_type ELSE $9 END,
                format = coalesce($10, format),
                version = version + CASE WHEN $11 THEN 1 ELSE 0 END,
                status = CASE WHEN $11 THEN 'queued' ELSE status END,
                attempts = CASE WHEN $11 THEN 0 ELSE attempts END,
                next_attempt_at = CASE WHEN $11 THEN now() ELSE next_attempt_at END,
                error = CASE WHEN $11 THEN NULL ELSE error END,
                updated_at = now()
          WHERE tenant_id = $1 AND id = $2
          RETURNING {COLUMNS}"
    ))
    .bind(tx.tenant_id().0)
    .bind(id)
    .bind(title)
    .bind(tags)
    .bind(language)
    .bind(content.as_ref().map(|c| c.0.as_slice()))
    .bind(content.as_ref().map(|c| c.0.len() as i32))
    .bind(content.as_ref().map(|c| c.1.trim().to_owned()))
    .bind(content.as_ref().and_then(|c| c.2.clone()))
    .bind(content.as_ref().map(|c| c.3.as_str()))
    .bind(reindex)
    .fetch_optional(tx.conn())
    .await?
    .ok_or(DocumentError::NotFound)?;
    Ok(from_row(&row)?)
}

/// Queues the document to be parsed, chunked and embedded again.
pub async fn reindex(tx: &mut TenantTx, id: Uuid) -> Result<Document, DocumentError> {
    let row = sqlx::query(&format!(
        "UPDATE documents
            SET version = version + 1, status = 'queued', attempts = 0, next_attempt_at = now(),
                error = NULL, updated_at = now()
          WHERE tenant_id = $1 AND id = $2
          RETURNING {COLUMNS}"
    ))
    .bind(tx.tenant_id().0)
    .bind(id)
    .fetch_optional(tx.conn())
    .await?
    .ok_or(DocumentError::NotFound)?;
    Ok(from_row(&row)?)
}

/// Deletes a document with its chunks and vectors, and takes its words out of the statistics.
pub async fn delete(tx: &mut TenantTx, id: Uuid) -> Result<(), DocumentError> {
    crate::index::lock_tenant(tx).await?;
    crate::index::remove_chunks(tx, id).await?;
    let deleted = sqlx::query("DELETE FROM documents WHERE tenant_id = $1 AND id = $2")
        .bind(tx.tenant_id().0)
        .bind(id)
        .execute(tx.conn())
        .await?
        .rows_affected();
    if deleted == 0 {
        return Err(DocumentError::NotFound);
    }
    Ok(())
}
