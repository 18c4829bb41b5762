//! `switchboard kb …`: feed a tenant's knowledge base from files, and measure retrieval quality.
//!
//! * `kb ingest TENANT PATH…` uploads files (folders are walked) through the running server's
//!   admin API when one is listening, or stores them directly otherwise, then waits while the
//!   indexer parses, chunks and embeds them, with a progress bar and a per-file summary. A file
//!   that cannot be read fails alone; the others are still ingested.
//! * `kb eval DATASET_DIR` ingests a BEIR-layout dataset into a scratch tenant through the same
//!   ingestion path, runs every query through the same search path, and prints JSON with
//!   nDCG@10, recall@10, recall@100 and latency percentiles for hybrid, full-text-only and
//!   vector-only retrieval.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use switchboard_core::store::platform;
use switchboard_core::{Db, TenantId};
use switchboard_knowledge::documents::{self, NewDocument, Status};
use switchboard_knowledge::indexer::active_embedder;
use switchboard_knowledge::retrieve::embed_query;
use switchboard_knowledge::{SearchMode, SearchParams};

use crate::app::{admin_token, open_database, running_server};
use crate::config::Settings;
use crate::knowledge::stack as knowledge_stack;

/// Largest number of files one `kb ingest` takes (a guard against pointing it at `/`).
const MAX_FILES: usize = 100_000;

fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {what} [{{bar:30}}] {{pos}}/{{len}} {{msg}} ({{elapsed}}, eta {{eta}})"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

/// Files under `paths` (folders walked, hidden entries skipped), in a stable order.
fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = paths.iter().rev().cloned().collect();
    while let Some(p) = stack.pop() {
        let meta =
            std::fs::metadata(&p).with_context(|| format!("{}: cannot read", p.display()))?;
        if meta.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&p)
                .with_context(|| format!("{}: cannot list", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|e| {
                    !e.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with('.'))
                })
                .collect();
            entries.sort();
            stack.extend(entries.into_iter().rev());
        } else {
            out.push(p);
        }
        if out.len() > MAX_FILES {
            bail!("more than {MAX_FILES} files; ingest a narrower folder");
        }
    }
    Ok(out)
}

/// One file's result.
struct FileResult {
    path: PathBuf,
    outcome: Result<i32, String>,
}

pub async fn ingest(settings: Settings, tenant: &str, paths: &[PathBuf]) -> anyhow::Result<()> {
    if paths.is_empty() {
        bail!("give at least one file or folder");
    }
    let files = collect_files(paths)?;
    if files.is_empty() {
        bail!("no files found under the given paths");
    }
    let started = Instant::now();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let results = if let Some(running) = running_server(&http, &settings).await {
        ingest_over_http(&settings, &http, &running, tenant, &files).await?
    } else {
        ingest_in_process(&settings, tenant, &files).await?
    };
    let ok: Vec<&FileResult> = results.iter().filter(|r| r.outcome.is_ok()).collect();
    let failed: Vec<&FileResult> = results.iter().filter(|r| r.outcome.is_err()).collect();
    let chunks: i32 = ok.iter().filter_map(|r| r.outcome.as_ref().ok()).sum();
    println!(
        "ingested {} of {} files into `{tenant}` ({chunks} chunks) in {:.1}s",
        ok.len(),
        results.len(),
        started.elapsed().as_secs_f64()
    );
    for r in &failed {
        if let Err(e) = &r.outcome {
            println!("  failed: {}: {e}", r.path.display());
        }
    }
    if !failed.is_empty() {
        bail!("{} file(s) could not be ingested (see above)", failed.len());
    }
    Ok(())
}

async fn ingest_over_http(
    settings: &Settings,
    http: &reqwest::Client,
    base: &str,
    tenant: &str,
    files: &[PathBuf],
) -> anyhow::Result<Vec<FileResult>> {
    let token = admin_token(settings)?;
    let bar = progress(files.len() as u64, "ingesting");
    let mut results = Vec::new();
    let mut pending: Vec<(usize, String)> = Vec::new();
    for (i, path) in files.iter().enumerate() {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("file")
            .to_owned();
        bar.set_message(name.clone());
        let bytes = match tokio::fs::read(path).await {
            Ok(b) => b,
            Err(e) => {
                results.push(FileResult {
                    path: path.clone(),
                    outcome: Err(format!("cannot read: {e}")),
                });
                bar.inc(1);
                continue;
            }
        };
        // The format follows from the file name in `source`.
        let resp = http
            .post(format!("{base}/api/v1/knowledge/documents"))
            .query(&[("tenant", tenant), ("source", name.as_str())])
            .bearer_auth(token.expose_secret())
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes)
            .send()
            .await
            .context("the server did not answer")?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or_default();
        if status.is_success() {
            let id = body["document"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            pending.push((i, id));
        } else {
            let message = body["error"]["message"]
                .as_str()
                .unwrap_or("refused")
                .to_owned();
            if status == reqwest::StatusCode::NOT_FOUND
                && body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("no tenant"))
            {
                bar.finish_and_clear();
                bail!("{message}; `switchboard tenant list` shows them");
            }
            results.push(FileResult {
                path: path.clone(),
                outcome: Err(message),
            });
            bar.inc(1);
        }
    }
    // Wait for the indexer.
    while !pending.is_empty() {
        let mut still = Vec::new();
        for (i, id) in pending {
            let resp = http
                .get(format!("{base}/api/v1/knowledge/documents/{id}"))
                .query(&[("tenant", tenant)])
                .bearer_auth(token.expose_secret())
                .send()
                .await?;
            let body: Value = resp.json().await.unwrap_or_default();
            match body["document"]["status"].as_str() {
                Some("indexed") => {
                    let n = body["document"]["chunk_count"].as_i64().unwrap_or(0) as i32;
                    results.push(FileResult {
                        path: files[i].clone(),
                        outcome: Ok(n),
                    });
                    bar.inc(1);
                }
                Some("failed") => {
                    let e = body["document"]["error"]
                        .as_str()
                        .unwrap_or("failed")
                        .to_owned();
                    results.push(FileResult {
                        path: files[i].clone(),
                        outcome: Err(e),
                    });
                    bar.inc(1);
                }
                Some(_) => still.push((i, id)),
                None => {
                    results.push(FileResult {
                        path: files[i].clone(),
                        outcome: Err("the document disappeared".into()),
                    });
                    bar.inc(1);
                }
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    bar.finish_and_clear();
    Ok(results)
}

async fn ingest_in_process(
    settings: &Settings,
    tenant: &str,
    files: &[PathBuf],
) -> anyhow::Result<Vec<FileResult>> {
    let database = open_database(settings).await?;
    let db = database.db.clone();
    let result = async {
        let t = platform::find_tenant(db.pool(), tenant)
            .await?
            .ok_or_else(|| anyhow!("no tenant `{tenant}`; `switchboard tenant list` shows them"))?;
        let (_, indexer) = knowledge_stack(settings, &db)?;
        let bar = progress(files.len() as u64, "ingesting");
        let mut results = Vec::new();
        for path in files {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("file")
                .to_owned();
            bar.set_message(name.clone());
            let outcome = match tokio::fs::read(path).await {
                Err(e) => Err(format!("cannot read: {e}")),
                Ok(bytes) => {
                    let mut tx = db.tenant(t.id).await?;
                    let created = documents::create(
                        &mut tx,
                        &NewDocument {
                            source: name,
                            content: bytes,
                            ..NewDocument::default()
                        },
                    )
                    .await;
                    match created {
                        Ok(doc) => {
                            tx.commit().await?;
                            indexer.drain().await?;
                            let mut tx = db.tenant(t.id).await?;
                            let doc = documents::get(&mut tx, doc.id).await?;
                            tx.commit().await?;
                            match doc.status {
                                Status::Indexed => Ok(doc.chunk_count),
                                _ => Err(doc.error.unwrap_or_else(|| "not indexed".into())),
                            }
                        }
                        Err(e) => {
                            tx.rollback().await?;
                            Err(e.to_string())
                        }
                    }
                }
            };
            results.push(FileResult {
                path: path.clone(),
                outcome,
            });
            bar.inc(1);
        }
        bar.finish_and_clear();
        anyhow::Ok(results)
    }
    .await;
    database.db.close().await;
    if let Some(pg) = database.embedded {
        pg.stop().await?;
    }
    result
}

/// A BEIR-layout dataset.
struct Dataset {
    corpus: Vec<(String, String, String)>,
    queries: Vec<(String, String)>,
    qrels: HashMap<String, HashMap<String, i32>>,
}

fn read_jsonl(path: &Path) -> anyhow::Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{}: line {} is not JSON", path.display(), i + 1))
        })
        .collect()
}

fn load_dataset(dir: &Path) -> anyhow::Result<Dataset> {
    let corpus = read_jsonl(&dir.join("corpus.jsonl"))?
        .into_iter()
        .map(|v| {
            let id = json_id(&v["_id"]).ok_or_else(|| anyhow!("corpus entry without _id"))?;
            Ok((
                id,
                v["title"].as_str().unwrap_or("").to_owned(),
                v["text"].as_str().unwrap_or("").to_owned(),
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let queries = read_jsonl(&dir.join("queries.jsonl"))?
        .into_iter()
        .map(|v| {
            let id = json_id(&v["_id"]).ok_or_else(|| anyhow!("query without _id"))?;
            Ok((id, v["text"].as_str().unwrap_or("").to_owned()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let qrels_path = dir.join("qrels").join("test.tsv");
    let text = std::fs::read_to_string(&qrels_path)
        .with_context(|| format!("cannot read {}", qrels_path.display()))?;
    let mut qrels: HashMap<String, HashMap<String, i32>> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let cols: Vec<&str> = line.split('\t').collect();
        if i == 0 && cols.first().is_some_and(|c| c.contains("query")) {
            continue;
        }
        if cols.len() < 3 {
            continue;
        }
        let score: i32 = cols[2]
            .trim()
            .parse()
            .with_context(|| format!("{}: line {}: bad score", qrels_path.display(), i + 1))?;
        qrels
            .entry(cols[0].to_owned())
            .or_default()
            .insert(cols[1].to_owned(), score);
    }
    if corpus.is_empty() || queries.is_empty() || qrels.is_empty() {
        bail!(
            "{} is not a BEIR dataset (corpus.jsonl, queries.jsonl, qrels/test.tsv)",
            dir.display()
        );
    }
    Ok(Dataset {
        corpus,
        queries,
        qrels,
    })
}

fn json_id(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// nDCG@k with graded gains (trec_eval's formula: gain = relevance, discount log2(rank + 1)).
fn ndcg_at(ranked: &[String], rels: &HashMap<String, i32>, k: usize) -> f64 {
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, d)| rels.get(d).copied().unwrap_or(0).max(0) as f64 / ((i + 2) as f64).log2())
        .sum();
    let mut ideal: Vec<i32> = rels.values().copied().filter(|r| *r > 0).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, r)| *r as f64 / ((i + 2) as f64).log2())
        .sum();
    if idcg == 0.0 {
        0.0
    } else {
        dcg / idcg
    }
}

fn recall_at(ranked: &[String], rels: &HashMap<String, i32>, k: usize) -> f64 {
    let relevant: HashSet<&String> = rels
        .iter()
        .filter(|(_, r)| **r > 0)
        .map(|(d, _)| d)
        .collect();
    if relevant.is_empty() {
        return 0.0;
    }
    let found = ranked
        .iter()
        .take(k)
        .filter(|d| relevant.contains(d))
        .count();
    found as f64 / relevant.len() as f64
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Options of `kb eval`.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    pub max_docs: Option<usize>,
    pub max_queries: Option<usize>,
    pub modes: Vec<SearchMode>,
    /// Leave the scratch tenant in place (with `DATABASE_URL`, to inspect it afterwards).
    pub keep_tenant: bool,
    /// Write every query's candidates (both retrievers' ranks and scores) to this JSONL file,
    /// for studying fusion offline.
    pub dump: Option<PathBuf>,
}

pub async fn eval(mut settings: Settings, dir: &Path, opts: EvalOptions) -> anyhow::Result<Value> {
    let mut data = load_dataset(dir)?;
    if let Some(n) = opts.max_docs {
        // Keep every judged document so a shortened run still has answers to find.
        let judged: HashSet<String> = data
            .qrels
            .values()
            .flat_map(|m| m.keys().cloned())
            .collect();
        let mut kept = 0;
        data.corpus.retain(|(id, _, _)| {
            let keep = judged.contains(id) || kept < n;
            if keep && !judged.contains(id) {
                kept += 1;
            }
            keep
        });
    }
    let scratch = std::env::temp_dir().join(format!(
        "switchboard-eval-{}",
        uuid::Uuid::new_v4().simple()
    ));
    if settings.database_url.is_none() {
        std::fs::create_dir_all(&scratch)?;
        settings.data_dir = scratch.clone();
        // A throwaway database: durability buys nothing here.
        settings.pg.durable = false;
    }
    let database = open_database(&settings).await?;
    let db = database.db.clone();
    let result = run_eval(&settings, &db, &database.owner_url, dir, &data, &opts).await;
    database.db.close().await;
    if let Some(pg) = database.embedded {
        pg.stop().await?;
    }
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

async fn run_eval(
    settings: &Settings,
    db: &Db,
    owner_url: &secrecy::SecretString,
    dir: &Path,
    data: &Dataset,
    opts: &EvalOptions,
) -> anyhow::Result<Value> {
    let slug = format!("eval-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let (tenant, _) =
        crate::tenants::create_with_webchat(db, &slug, "Retrieval evaluation", "en").await?;
    let outcome = async {
        let (embedders, indexer) = knowledge_stack(settings, db)?;
        // Ingest: every corpus entry is a document, through the normal path.
        let started = Instant::now();
        let bar = progress(data.corpus.len() as u64, "ingesting");
        let mut by_doc: HashMap<uuid::Uuid, String> = HashMap::new();
        for batch in data.corpus.chunks(500) {
            let mut tx = db.tenant(tenant.id).await?;
            for (id, title, text) in batch {
                let doc = documents::create(
                    &mut tx,
                    &NewDocument {
                        title: Some(if title.trim().is_empty() { id.clone() } else { title.chars().take(500).collect() }),
                        source: format!("{id}.txt"),
                        content_type: Some("text/plain".into()),
                        content: text.clone().into_bytes(),
                        language: None,
                        tags: Vec::new(),
                    },
                )
                .await
                .map_err(|e| anyhow!("document {id}: {e}"))?;
                by_doc.insert(doc.id, id.clone());
            }
            tx.commit().await?;
            let mut n = 0;
            while n < batch.len() && indexer.step().await? {
                n += 1;
                bar.inc(1);
            }
        }
        while indexer.step().await? {
            bar.inc(1);
        }
        bar.finish_and_clear();
        let ingest_secs = started.elapsed().as_secs_f64();
        // The indexes a server's index keeper would give a tenant of this size.
        let indexes = crate::knowledge::keep_indexes_once(db, owner_url, settings.knowledge.tenant_index_min_chunks).await?;
        let mut tx = db.tenant(tenant.id).await?;
        let failed = documents::list(&mut tx, &documents::ListFilter { status: Some("failed".into()), tag: None, limit: 10, offset: 0 }).await?;
        let chunk_count: i64 = sqlx::query_scalar("SELECT count(*) FROM chunks WHERE tenant_id = $1").bind(tenant.id.0).fetch_one(tx.conn()).await?;
        let model = active_embedder(&embedders, &mut tx).await?;
        tx.commit().await?;

        let queries: Vec<&(String, String)> = data
            .queries
            .iter()
            .filter(|(id, _)| data.qrels.contains_key(id))
            .take(opts.max_queries.unwrap_or(usize::MAX))
            .collect();
        if let Some(path) = &opts.dump {
            use std::io::Write;
            let mut out = std::io::BufWriter::new(std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?);
            for (qid, text) in &queries {
                let vector = match &model {
                    Some((e, m)) => embed_query(&embedders, tenant.id, e, m.clone(), text).await,
                    None => None,
                };
                let params = SearchParams { candidates: 200, ..SearchParams::new(text.as_str(), 400) };
                let mut tx = db.tenant(tenant.id).await?;
                let hits = switchboard_knowledge::search(&mut tx, &params, vector.as_ref()).await?;
                tx.commit().await?;
                let rows: Vec<Value> = hits
                    .iter()
                    .map(|h| json!({"doc": by_doc.get(&h.document_id), "f": h.full_text, "v": h.vector}))
                    .collect();
                writeln!(out, "{}", json!({"qid": qid, "hits": rows}))?;
            }
        }
        let mut modes = serde_json::Map::new();
        for &mode in &opts.modes {
            let bar = progress(queries.len() as u64, &format!("{mode:?} queries"));
            let (mut nd, mut r10, mut r100, mut lat) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (qid, text) in &queries {
                let t = Instant::now();
                let ranked = eval_query(db, &embedders, tenant.id, &model, text, mode, &by_doc).await?;
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                let rels = &data.qrels[qid];
                nd.push(ndcg_at(&ranked, rels, 10));
                r10.push(recall_at(&ranked, rels, 10));
                r100.push(recall_at(&ranked, rels, 100));
                bar.inc(1);
            }
            bar.finish_and_clear();
            lat.sort_by(|a, b| a.total_cmp(b));
            let mean = |v: &[f64]| if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 };
            let round = |x: f64| (x * 10000.0).round() / 10000.0;
            let key = match mode {
                SearchMode::Hybrid => "hybrid",
                SearchMode::FullText => "full_text",
                SearchMode::Vector => "vector",
            };
            modes.insert(
                key.into(),
                json!({
                    "ndcg@10": round(mean(&nd)),
                    "recall@10": round(mean(&r10)),
                    "recall@100": round(mean(&r100)),
                    "latency_ms": {"p50": round(percentile(&lat, 0.5)), "p99": round(percentile(&lat, 0.99))},
                }),
            );
        }
        anyhow::Ok(json!({
            "dataset": dir.display().to_string(),
            "documents": data.corpus.len(),
            "chunks": chunk_count,
            "tenant_indexes": indexes.created,
            "failed_documents": failed.len(),
            "queries": queries.len(),
            "embedding_model": model.as_ref().map(|(_, m)| m.clone()),
            "chunking": {"max_chars": settings.knowledge.chunk_max_chars, "overlap_chars": settings.knowledge.chunk_overlap_chars},
            "ingest_seconds": (ingest_secs * 10.0).round() / 10.0,
            "results": Value::Object(modes),
        }))
    }
    .await;
    if opts.keep_tenant {
        eprintln!("kept the scratch tenant `{slug}`");
    } else if let Err(e) = platform::delete_tenant(db.pool(), tenant.id).await {
        tracing::warn!(error = %e, "could not delete the scratch tenant");
    } else if let Err(e) = crate::knowledge::keep_indexes_once(
        db,
        owner_url,
        settings.knowledge.tenant_index_min_chunks,
    )
    .await
    {
        tracing::warn!(error = %format!("{e:#}"), "could not drop the scratch tenant's indexes");
    }
    outcome
}

/// Runs one query through the normal search path and returns the corpus ids of the documents
/// found, best first, each once.
async fn eval_query(
    db: &Db,
    embedders: &switchboard_knowledge::Embedders,
    tenant: TenantId,
    model: &Option<(switchboard_knowledge::embed::Embedder, String)>,
    text: &str,
    mode: SearchMode,
    by_doc: &HashMap<uuid::Uuid, String>,
) -> anyhow::Result<Vec<String>> {
    let vector = match (mode, model) {
        (SearchMode::FullText, _) | (_, None) => None,
        (_, Some((e, m))) => embed_query(embedders, tenant, e, m.clone(), text).await,
    };
    let params = SearchParams {
        mode,
        candidates: 200,
        ..SearchParams::new(text, 200)
    };
    let mut tx = db.tenant(tenant).await?;
    let hits = switchboard_knowledge::search(&mut tx, &params, vector.as_ref()).await?;
    tx.commit().await?;
    let mut seen = HashSet::new();
    Ok(hits
        .into_iter()
        .filter_map(|h| by_doc.get(&h.document_id).cloned())
        .filter(|d| seen.insert(d.clone()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndcg_and_recall_match_hand_computed_values() {
        let rels: HashMap<String, i32> = [("a".to_owned(), 1), ("b".to_owned(), 1)].into();
        let ranked: Vec<String> = ["x", "a", "y", "b"].iter().map(|s| s.to_string()).collect();
        let dcg = 1.0 / 3f64.log2() + 1.0 / 5f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2();
        assert!((ndcg_at(&ranked, &rels, 10) - dcg / idcg).abs() < 1e-12);
        assert_eq!(recall_at(&ranked, &rels, 2), 0.5);
        assert_eq!(recall_at(&ranked, &rels, 10), 1.0);
        let perfect: Vec<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        assert!((ndcg_at(&perfect, &rels, 10) - 1.0).abs() < 1e-12);
        assert_eq!(ndcg_at(&[], &rels, 10), 0.0);
    }
}
