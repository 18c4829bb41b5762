//! Admin API for the knowledge base: documents (upload, list, read, edit, delete, re-index), the
//! search console, and the tenant's embedding settings. Each route acts for the tenant of
//! the request ([`crate::auth::Scope`]).
//!
//! Uploads are the raw file as the request body (`curl --data-binary @faq.pdf`), with the file
//! name in `?source=` (or `X-Filename`) and optional `title`, `language` and comma-separated
//! `tags` query parameters; or JSON `{"source", "content" | "content_base64", "title",
//! "content_type", "language", "tags"}`. The document is stored and queued at once (202); the
//! indexer parses, chunks and embeds it in the background.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::{Extension, Json};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use switchboard_knowledge::documents::{
    self, Document, DocumentError, DocumentPatch, ListFilter, NewDocument, StoredChunk,
};
use switchboard_knowledge::search::{Hit, VectorStrategy};
use switchboard_knowledge::settings::{
    self, KnowledgeSettings, Provider, SettingsError, SettingsUpdate,
};
use switchboard_knowledge::{Fusion, SearchMode, SearchParams};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::error::{ApiError, ApiJson};
use super::AppState;
use crate::auth::{AuditDetail, Scope};

impl From<DocumentError> for ApiError {
    fn from(e: DocumentError) -> Self {
        match e {
            DocumentError::Invalid(m) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_document", m)
            }
            DocumentError::NotFound => ApiError::not_found("no such document"),
            DocumentError::Db(e) => e.into(),
        }
    }
}

impl From<SettingsError> for ApiError {
    fn from(e: SettingsError) -> Self {
        match e {
            SettingsError::Invalid(m) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_settings", m)
            }
            SettingsError::Db(e) => e.into(),
            other => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_settings",
                other.to_string(),
            ),
        }
    }
}

/// One document.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentOne {
    pub document: Document,
    /// With `?include=chunks`: the stored chunks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunks: Option<Vec<StoredChunk>>,
}

/// Documents, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentList {
    pub documents: Vec<Document>,
}

/// The search console's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResult {
    /// The query as searched (trimmed).
    pub query: String,
    /// The embedding model of the vector search (`null` for full text only).
    pub model: Option<String>,
    pub took_ms: f64,
    /// Ranked chunks with the fused score and each retriever's rank and score.
    pub hits: Vec<Hit>,
}

/// The tenant's embedding settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct KnowledgeSettingsOne {
    pub settings: KnowledgeSettings,
    /// The id of the built-in local model.
    pub local_model: String,
}

/// Knowledge settings as saved.
#[derive(Debug, Serialize, ToSchema)]
pub struct KnowledgeSettingsSaved {
    pub settings: KnowledgeSettings,
}

fn document_id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::not_found(format!("no document `{raw}`")))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadParams {
    /// The file name or URL the content comes from (raw uploads; or the `X-Filename` header).
    source: Option<String>,
    title: Option<String>,
    /// The content's language (e.g. `en`, `ar`); guessed when absent.
    language: Option<String>,
    /// Comma-separated tags.
    tags: Option<String>,
}

/// A document sent as JSON, its content inside.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonUpload {
    /// The file name or URL the content comes from.
    source: String,
    /// The content as text (exactly one of `content` and `content_base64`).
    content: Option<String>,
    /// The content as standard base64 (binary files such as PDFs).
    content_base64: Option<String>,
    /// The content's media type (default: guessed from `source`).
    content_type: Option<String>,
    title: Option<String>,
    language: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
}

fn split_tags(tags: Option<&str>) -> Vec<String> {
    tags.map(|t| {
        t.split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    })
    .unwrap_or_default()
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty() && v != "application/octet-stream")
}

fn is_json(ct: Option<&str>) -> bool {
    ct.is_some_and(|c| {
        c.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
    })
}

/// Reads an upload: JSON with the content inside when the body is JSON *and* no `source` is in
/// the query (a `.json` FAQ file is uploaded raw with `?source=faq.json`), else the raw bytes.
fn read_upload(
    params: &UploadParams,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<NewDocument, ApiError> {
    let ct = content_type(headers);
    let source = params.source.clone().or_else(|| {
        headers
            .get("x-filename")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    });
    if is_json(ct.as_deref()) && source.is_none() {
        let upload: JsonUpload = serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(
                "malformed_json",
                format!("{e}; send {{\"source\", \"content\" or \"content_base64\", …}}, or the raw file with ?source=<file name>"),
            )
        })?;
        let content = match (upload.content, upload.content_base64) {
            (Some(text), None) => text.into_bytes(),
            (None, Some(b64)) => decode_base64(&b64).ok_or_else(|| {
                ApiError::bad_request("invalid_base64", "content_base64 is not valid base64")
            })?,
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_body",
                    "give exactly one of content and content_base64",
                ))
            }
        };
        return Ok(NewDocument {
            title: upload.title.or_else(|| params.title.clone()),
            source: upload.source,
            content_type: upload.content_type,
            content,
            language: upload.language.or_else(|| params.language.clone()),
            tags: if upload.tags.is_empty() {
                split_tags(params.tags.as_deref())
            } else {
                upload.tags
            },
        });
    }
    let Some(source) = source else {
        return Err(ApiError::bad_request(
            "missing_source",
            "name the file: ?source=<file name or URL> (or the X-Filename header)",
        ));
    };
    Ok(NewDocument {
        title: params.title.clone(),
        source,
        content_type: ct,
        content: body.to_vec(),
        language: params.language.clone(),
        tags: split_tags(params.tags.as_deref()),
    })
}

/// Standard base64, padding optional, white space ignored.
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let clean: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(clean.trim_end_matches('='))
        .ok()
}

/// `POST /api/v1/knowledge/documents?tenant=…`
///
/// Send the raw file as the body (text, Markdown, HTML, PDF, CSV or JSON FAQ) with its name in
/// `?source=` (or `X-Filename`), or JSON with the content inside. The document is stored and
/// queued at once; the indexer parses, chunks and embeds it in the background.
#[utoipa::path(
    post,
    path = "/api/v1/knowledge/documents",
    summary = "Uploads a document and queues it for indexing.",
    tag = "knowledge",
    params(
        UploadParams,
        ("X-Filename" = Option<String>, Header, description = "The file name, instead of `?source=`"),
    ),
    request_body(
        description = "JSON with the content inside (no `?source=`), or the raw file (with `?source=`)",
        content(
            (JsonUpload = "application/json"),
            (String = "text/plain"),
            ([u8] = "application/octet-stream"),
        )
    ),
    responses(
        (status = 202, description = "Stored and queued for indexing", body = DocumentOne),
        (status = 400, description = "`missing_source`, `malformed_json`, `invalid_base64` or `invalid_body`"),
        (status = 413, description = "`payload_too_large`: the document is larger than the server accepts"),
        (status = 422, description = "`invalid_document`: empty, unsupported type, …"),
    )
)]
pub async fn create_document(
    scope: Scope,
    State(state): State<AppState>,
    Query(params): Query<UploadParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<DocumentOne>), ApiError> {
    let tenant = scope.tenant_id();
    let new = read_upload(&params, &headers, body)?;
    let mut tx = state.services.db.tenant(tenant).await?;
    let doc = documents::create(&mut tx, &new).await?;
    tx.commit().await?;
    state.indexer.notify();
    Ok((StatusCode::ACCEPTED, Json(DocumentOne::new(doc))))
}

impl DocumentOne {
    fn new(document: Document) -> Self {
        Self {
            document,
            chunks: None,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `queued`, `indexing`, `indexed` or `failed`.
    status: Option<String>,
    /// Only documents with this tag.
    tag: Option<String>,
    /// Page size (default 100).
    limit: Option<i64>,
    /// Documents to skip (default 0).
    offset: Option<i64>,
}

/// `GET /api/v1/knowledge/documents?tenant=…[&status=&tag=&limit=&offset=]`
#[utoipa::path(
    get,
    path = "/api/v1/knowledge/documents",
    summary = "Lists the knowledge base's documents.",
    tag = "knowledge",
    params(ListParams),
    responses(
        (status = 200, description = "Documents", body = DocumentList),
        (status = 400, description = "`invalid_status`"),
    )
)]
pub async fn list_documents(
    scope: Scope,
    State(state): State<AppState>,
    Query(p): Query<ListParams>,
) -> Result<Json<DocumentList>, ApiError> {
    let tenant = scope.tenant_id();
    if let Some(s) = &p.status {
        if !["queued", "indexing", "indexed", "failed"].contains(&s.as_str()) {
            return Err(ApiError::bad_request(
                "invalid_status",
                "status is one of queued, indexing, indexed, failed",
            ));
        }
    }
    let mut tx = state.services.db.tenant(tenant).await?;
    let docs = documents::list(
        &mut tx,
        &ListFilter {
            status: p.status,
            tag: p.tag,
            limit: p.limit.unwrap_or(100),
            offset: p.offset.unwrap_or(0),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(DocumentList { documents: docs }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GetParams {
    /// `chunks` to include the stored chunks.
    include: Option<String>,
}

/// `GET /api/v1/knowledge/documents/{id}?tenant=…[&include=chunks]`
#[utoipa::path(
    get,
    path = "/api/v1/knowledge/documents/{document_id}",
    summary = "Shows a document (and its chunks with `include=chunks`).",
    tag = "knowledge",
    params(("document_id" = String, Path, description = "The document's id"), GetParams),
    responses(
        (status = 200, description = "The document (and its chunks with `include=chunks`)", body = DocumentOne),
        (status = 404, description = "No document has this id"),
    )
)]
pub async fn get_document(
    scope: Scope,
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Query(p): Query<GetParams>,
) -> Result<Json<DocumentOne>, ApiError> {
    let tenant = scope.tenant_id();
    let id = document_id(&raw)?;
    let mut tx = state.services.db.tenant(tenant).await?;
    let doc = documents::get(&mut tx, id).await?;
    let mut body = DocumentOne::new(doc);
    if p.include.as_deref() == Some("chunks") {
        body.chunks = Some(documents::chunks(&mut tx, id).await?);
    }
    tx.commit().await?;
    Ok(Json(body))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    title: Option<String>,
    /// Replaces the tags.
    tags: Option<Vec<String>>,
    language: Option<String>,
}

/// `PATCH /api/v1/knowledge/documents/{id}?tenant=…` with `{"title", "tags", "language"}`.
#[utoipa::path(
    patch,
    path = "/api/v1/knowledge/documents/{document_id}",
    summary = "Changes a document's title, tags or language.",
    tag = "knowledge",
    params(("document_id" = String, Path, description = "The document's id")),
    request_body = PatchBody,
    responses(
        (status = 200, description = "The document as changed", body = DocumentOne),
        (status = 404, description = "No document has this id"),
        (status = 422, description = "`invalid_document`"),
    )
)]
pub async fn patch_document(
    scope: Scope,
    State(state): State<AppState>,
    Path(raw): Path<String>,
    ApiJson(body): ApiJson<PatchBody>,
) -> Result<(Extension<AuditDetail>, Json<DocumentOne>), ApiError> {
    let tenant = scope.tenant_id();
    let id = document_id(&raw)?;
    let mut tx = state.services.db.tenant(tenant).await?;
    let before = documents::get(&mut tx, id).await?;
    let doc = documents::update(
        &mut tx,
        id,
        &DocumentPatch {
            title: body.title,
            tags: body.tags,
            language: body.language,
            content: None,
        },
    )
    .await?;
    tx.commit().await?;
    state.indexer.notify();
    let detail = AuditDetail::new("document.update", "document", id.to_string())
        .before_state(&before)
        .after_state(&doc);
    Ok((Extension(detail), Json(DocumentOne::new(doc))))
}

/// `PUT /api/v1/knowledge/documents/{id}/content?tenant=…[&source=]`: replaces the content (raw
/// body, as for uploads); the document is indexed again.
#[utoipa::path(
    put,
    path = "/api/v1/knowledge/documents/{document_id}/content",
    tag = "knowledge",
    params(
        ("document_id" = String, Path, description = "The document's id"),
        UploadParams,
        ("X-Filename" = Option<String>, Header, description = "The file name, instead of `?source=`"),
    ),
    request_body(
        description = "The new content: the raw file",
        content(
            (String = "text/plain"),
            ([u8] = "application/octet-stream"),
        )
    ),
    responses(
        (status = 202, description = "Replaced and queued for indexing", body = DocumentOne),
        (status = 404, description = "No document has this id"),
        (status = 413, description = "`payload_too_large`: the document is larger than the server accepts"),
        (status = 422, description = "`invalid_document`"),
    )
)]
pub async fn put_content(
    scope: Scope,
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Query(params): Query<UploadParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<DocumentOne>), ApiError> {
    let tenant = scope.tenant_id();
    let id = document_id(&raw)?;
    let source = params.source.clone().or_else(|| {
        headers
            .get("x-filename")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    });
    let mut tx = state.services.db.tenant(tenant).await?;
    let doc = documents::update(
        &mut tx,
        id,
        &DocumentPatch {
            title: params.title.clone(),
            tags: params.tags.as_deref().map(|t| split_tags(Some(t))),
            language: params.language.clone(),
            content: Some((body.to_vec(), source, content_type(&headers))),
        },
    )
    .await?;
    tx.commit().await?;
    state.indexer.notify();
    Ok((StatusCode::ACCEPTED, Json(DocumentOne::new(doc))))
}

/// `DELETE /api/v1/knowledge/documents/{id}?tenant=…`
#[utoipa::path(
    delete,
    path = "/api/v1/knowledge/documents/{document_id}",
    summary = "Deletes a document and its chunks.",
    tag = "knowledge",
    params(("document_id" = String, Path, description = "The document's id")),
    responses(
        (status = 204, description = "Deleted with its chunks"),
        (status = 404, description = "No document has this id"),
    )
)]
pub async fn delete_document(
    scope: Scope,
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<(StatusCode, Extension<AuditDetail>), ApiError> {
    let tenant = scope.tenant_id();
    let id = document_id(&raw)?;
    let mut tx = state.services.db.tenant(tenant).await?;
    let before = documents::get(&mut tx, id).await?;
    documents::delete(&mut tx, id).await?;
    tx.commit().await?;
    let detail =
        AuditDetail::new("document.delete", "document", id.to_string()).before_state(&before);
    Ok((StatusCode::NO_CONTENT, Extension(detail)))
}

/// `POST /api/v1/knowledge/documents/{id}/reindex?tenant=…`
#[utoipa::path(
    post,
    path = "/api/v1/knowledge/documents/{document_id}/reindex",
    summary = "Indexes a document again.",
    tag = "knowledge",
    params(("document_id" = String, Path, description = "The document's id")),
    responses(
        (status = 202, description = "Queued for indexing again", body = DocumentOne),
        (status = 404, description = "No document has this id"),
    )
)]
pub async fn reindex_document(
    scope: Scope,
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<(StatusCode, Json<DocumentOne>), ApiError> {
    let tenant = scope.tenant_id();
    let id = document_id(&raw)?;
    let mut tx = state.services.db.tenant(tenant).await?;
    let doc = documents::reindex(&mut tx, id).await?;
    tx.commit().await?;
    state.indexer.notify();
    Ok((StatusCode::ACCEPTED, Json(DocumentOne::new(doc))))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchBody {
    /// 1 to 2000 characters.
    query: String,
    /// How many chunks, 1 to 200.
    #[serde(default = "default_k")]
    #[schema(default = 10)]
    k: usize,
    /// A fused score between 0 and 1 below which hits are dropped.
    #[serde(default)]
    min_score: f64,
    #[serde(default)]
    mode: SearchMode,
    #[serde(default)]
    strategy: VectorStrategy,
    #[serde(default)]
    fusion: Fusion,
    fts_weight: Option<f64>,
    vector_weight: Option<f64>,
    candidates: Option<usize>,
    #[serde(default)]
    tags: Vec<String>,
}

fn default_k() -> usize {
    10
}

/// `POST /api/v1/knowledge/search?tenant=…` with `{"query", "k", "min_score", "mode", "tags"}`:
/// the ranked chunks with the fused score and each retriever's rank and score.
#[utoipa::path(
    post,
    path = "/api/v1/knowledge/search",
    summary = "Searches the knowledge base: ranked chunks with the fused score and each retriever's rank and score.",
    tag = "knowledge",
    request_body = SearchBody,
    responses(
        (status = 200, description = "Ranked chunks", body = SearchResult),
        (status = 422, description = "`invalid_query`: a parameter is out of range"),
    )
)]
pub async fn search(
    scope: Scope,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SearchBody>,
) -> Result<Json<SearchResult>, ApiError> {
    let tenant = scope.tenant_id();
    let query = body.query.trim();
    if query.is_empty() || query.chars().count() > 2000 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_query",
            "query must be 1 to 2000 characters",
        ));
    }
    if !(1..=200).contains(&body.k) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_query",
            "k must be between 1 and 200",
        ));
    }
    if !(0.0..=1.0).contains(&body.min_score) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_query",
            "min_score is a fused score between 0 and 1",
        ));
    }
    for w in [body.fts_weight, body.vector_weight].into_iter().flatten() {
        if !(0.0..=100.0).contains(&w) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_query",
                "fts_weight and vector_weight are between 0 and 100",
            ));
        }
    }
    let started = Instant::now();
    let defaults = SearchParams::new(query, body.k);
    let params = SearchParams {
        min_score: body.min_score,
        mode: body.mode,
        strategy: body.strategy,
        fusion: body.fusion,
        fts_weight: body.fts_weight.unwrap_or(defaults.fts_weight),
        vector_weight: body.vector_weight.unwrap_or(defaults.vector_weight),
        candidates: body.candidates.unwrap_or(50).clamp(body.k, 1000),
        tags: body.tags,
        ..defaults
    };
    let found = switchboard_knowledge::retrieve(
        &state.services.db,
        &state.services.embedders,
        tenant,
        &params,
        None,
    )
    .await?;
    Ok(Json(SearchResult {
        query: query.to_owned(),
        model: found.model,
        took_ms: started.elapsed().as_secs_f64() * 1000.0,
        hits: found.hits,
    }))
}

/// `GET /api/v1/knowledge/settings?tenant=…`
#[utoipa::path(
    get,
    path = "/api/v1/knowledge/settings",
    summary = "Shows the tenant's embedding settings.",
    tag = "knowledge",
    responses((status = 200, description = "The tenant's embedding settings", body = KnowledgeSettingsOne))
)]
pub async fn get_settings(
    scope: Scope,
    State(state): State<AppState>,
) -> Result<Json<KnowledgeSettingsOne>, ApiError> {
    let tenant = scope.tenant_id();
    let mut tx = state.services.db.tenant(tenant).await?;
    let s = settings::get(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(KnowledgeSettingsOne {
        settings: s,
        local_model: state.services.embedders.local().model_id(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsBody {
    provider: Provider,
    model: Option<String>,
    /// OpenAI-compatible embeddings endpoint (provider `openai`).
    base_url: Option<String>,
    /// Write-only: sealed at rest, never returned.
    #[schema(value_type = Option<String>, write_only)]
    api_key: Option<SecretString>,
    dimensions: Option<i32>,
}

/// `PUT /api/v1/knowledge/settings?tenant=…` with `{"provider": "local"|"openai", "model",
/// "base_url", "api_key", "dimensions"}`. A change of model re-embeds in the background.
#[utoipa::path(
    put,
    path = "/api/v1/knowledge/settings",
    summary = "Sets the tenant's embedding provider; a change of model re-embeds in the background.",
    tag = "knowledge",
    request_body = SettingsBody,
    responses(
        (status = 200, description = "The settings as saved; a new model re-embeds in the background", body = KnowledgeSettingsSaved),
        (status = 422, description = "`invalid_settings`"),
    )
)]
pub async fn put_settings(
    scope: Scope,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SettingsBody>,
) -> Result<(Extension<AuditDetail>, Json<KnowledgeSettingsSaved>), ApiError> {
    let tenant = scope.tenant_id();
    let mut tx = state.services.db.tenant(tenant).await?;
    let before = settings::get(&mut tx).await?;
    let s = settings::put(
        &mut tx,
        &state.services.embedders,
        &SettingsUpdate {
            provider: body.provider,
            model: body.model,
            base_url: body.base_url,
            api_key: body.api_key,
            dimensions: body.dimensions,
        },
    )
    .await?;
    tx.commit().await?;
    state.indexer.notify();
    let detail = AuditDetail::new("knowledge.settings", "tenant", tenant.to_string())
        .before_state(&before)
        .after_state(&s);
    Ok((
        Extension(detail),
        Json(KnowledgeSettingsSaved { settings: s }),
    ))
}

#[cfg(test)]
mod tests {
    use super::decode_base64;

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aGVsbG8").unwrap(), b"hello");
        assert_eq!(
            decode_base64("2KfZhNiz2YTYp9mF").unwrap(),
            "السلام".as_bytes()
        );
        assert!(decode_base64("a$==").is_none());
        assert!(decode_base64("a").is_none());
    }
}
