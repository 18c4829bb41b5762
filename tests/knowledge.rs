//! The knowledge base end to end: uploads of every format through the admin API, the background
//! indexer, hybrid search with its scores, tenant isolation inside the search query, atomic
//! re-indexing under concurrent searches, deletion, and a change of embedding model that
//! re-embeds in the background against a local OpenAI-compatible `/embeddings` server.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use sqlx::Connection;
use switchboard_core::TenantId;
use switchboard_knowledge::search::QueryVector;
use switchboard_knowledge::{SearchMode, SearchParams};

use crate::helpers::*;

/// A one-page PDF whose text layer says `text` (Helvetica, ASCII only), with a correct xref.
pub fn pdf_with_text(text: &str) -> Vec<u8> {
    let stream = format!("BT /F1 12 Tf 72 720 Td ({text}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{stream}\nendstream", stream.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

impl TestApp {
    /// Uploads a raw file to a tenant's knowledge base; returns status and body.
    pub async fn upload(
        &self,
        tenant: &str,
        source: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> (u16, Value) {
        let resp = self
            .http
            .post(self.url("/api/v1/knowledge/documents"))
            .query(&[("tenant", tenant), ("source", source)])
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", content_type)
            .body(bytes)
            .send()
            .await
            .expect("upload");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Waits until the document leaves the queue; returns its final JSON (with chunks).
    pub async fn wait_document(&self, tenant: &str, id: &str) -> Value {
        let path = format!("/api/v1/knowledge/documents/{id}?tenant={tenant}&include=chunks");
        let end = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let (_, body) = self.admin_get(&path).await;
            let status = body["document"]["status"].as_str().unwrap_or("");
            if status == "indexed" || status == "failed" {
                return body;
            }
            assert!(
                std::time::Instant::now() < end,
                "document {id} was not processed: {body:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn kb_search(&self, tenant: &str, body: Value) -> (u16, Value) {
        self.admin_post(&format!("/api/v1/knowledge/search?tenant={tenant}"), body)
            .await
    }

    /// Creates a tenant; returns its slug and id.
    pub async fn tenant(&self, slug: &str) -> TenantId {
        let (status, body) = self
            .admin_post("/api/v1/tenants", json!({"slug": slug, "name": slug}))
            .await;
        assert_eq!(status, 201, "{body}");
        body["tenant"]["id"].as_str().unwrap().parse().unwrap()
    }
}

fn chunk_texts(doc: &Value) -> Vec<String> {
    doc["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn every_format_is_ingested_chunked_and_searchable() {
    let app = spawn_app().await;
    app.tenant("formats").await;
    let files: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        ("notes.txt", "text/plain", b"Our depot in Sharjah stores spare inverters.\n\nDeliveries leave every Tuesday.".to_vec(), "spare inverters"),
        ("guide.md", "text/markdown", b"# Installation guide\n\n## Roof types\n\nFlat concrete roofs need ballast mounts.\n\n## Permits\n\nDEWA approval takes ten working days.".to_vec(), "ballast mounts"),
        ("page.html", "text/html", b"<html><head><title>Careers</title><script>var x='hidden';</script></head><body><h1>Careers</h1><p>We hire solar technicians in Abu Dhabi.</p></body></html>".to_vec(), "solar technicians"),
        ("brochure.pdf", "application/pdf", pdf_with_text("Battery storage keeps the lights on during outages."), "battery storage outages"),
        ("faq.csv", "text/csv", "question,answer\nDo you clean panels?,Yes: twice a year with deionised water.\nCan I pay in instalments?,Yes: up to 24 monthly payments.\n".as_bytes().to_vec(), "instalments monthly payments"),
        ("faq.json", "application/json", serde_json::to_vec(&json!([{"question": "Is there a warranty?", "answer": "Panels have a 25-year warranty."}, {"question": "هل تقدمون الصيانة؟", "answer": "نعم، نقدم عقود صيانة سنوية."}])).unwrap(), "warranty"),
    ];
    let mut ids = Vec::new();
    for (name, ct, bytes, _) in &files {
        let (status, body) = app.upload("formats", name, ct, bytes.clone()).await;
        assert_eq!(status, 202, "{name}: {body}");
        assert_eq!(body["document"]["status"], "queued");
        ids.push(body["document"]["id"].as_str().unwrap().to_owned());
    }
    for ((name, _, _, query), id) in files.iter().zip(&ids) {
        let doc = app.wait_document("formats", id).await;
        assert_eq!(doc["document"]["status"], "indexed", "{name}: {doc:#}");
        let texts = chunk_texts(&doc);
        assert!(!texts.is_empty(), "{name}");
        // The search console finds the file's content for its query, first.
        let (status, found) = app
            .kb_search("formats", json!({"query": query, "k": 3}))
            .await;
        assert_eq!(status, 200, "{found}");
        assert_eq!(
            found["hits"][0]["document_id"].as_str(),
            Some(id.as_str()),
            "{name}: {found:#}"
        );
        assert!(
            found["hits"][0]["full_text"]["rank"].as_u64().is_some(),
            "{found:#}"
        );
        assert!(
            found["hits"][0]["vector"]["score"].as_f64().is_some(),
            "{found:#}"
        );
    }
    let by_name = |n: &str| ids[files.iter().position(|f| f.0 == n).unwrap()].clone();
    // Markdown headings become the chunks' heading paths.
    let md = app.wait_document("formats", &by_name("guide.md")).await;
    let paths: Vec<Value> = md["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["heading_path"].clone())
        .collect();
    assert!(
        paths.contains(&json!(["Installation guide", "Permits"])),
        "{paths:?}"
    );
    // Scripts never reach the index.
    let html = app.wait_document("formats", &by_name("page.html")).await;
    assert!(chunk_texts(&html).iter().all(|t| !t.contains("hidden")));
    // Each question/answer pair is its own chunk, intact.
    for name in ["faq.csv", "faq.json"] {
        let faq = app.wait_document("formats", &by_name(name)).await;
        let texts = chunk_texts(&faq);
        assert_eq!(texts.len(), 2, "{name}: {texts:?}");
        assert!(
            texts.iter().all(|t| t.contains('?') || t.contains('؟')),
            "{texts:?}"
        );
    }
    let json_faq = app.wait_document("formats", &by_name("faq.json")).await;
    assert!(chunk_texts(&json_faq)
        .iter()
        .any(|t| t.contains("هل تقدمون الصيانة؟") && t.contains("عقود صيانة")));
    app.stop().await;
}

#[tokio::test]
async fn a_broken_pdf_fails_alone_with_a_clear_reason() {
    let app = spawn_app().await;
    app.tenant("batch").await;
    let mut broken = pdf_with_text("This part is fine");
    broken.truncate(60);
    let (s1, good) = app
        .upload(
            "batch",
            "ok.txt",
            "text/plain",
            b"Working hours are eight to five.".to_vec(),
        )
        .await;
    let (s2, bad) = app
        .upload("batch", "broken.pdf", "application/pdf", broken)
        .await;
    let (s3, garbage) = app
        .upload(
            "batch",
            "scan.pdf",
            "application/pdf",
            b"\x00\x01 definitely not a pdf".to_vec(),
        )
        .await;
    assert_eq!((s1, s2, s3), (202, 202, 202));
    // An unsupported format is refused at once, with what is accepted.
    let (s4, exe) = app
        .upload(
            "batch",
            "setup.exe",
            "application/x-msdownload",
            vec![0x4d, 0x5a, 0, 0],
        )
        .await;
    assert_eq!(s4, 422, "{exe}");
    assert!(
        exe["error"]["message"].as_str().unwrap().contains(".pdf"),
        "{exe}"
    );
    let good = app
        .wait_document("batch", good["document"]["id"].as_str().unwrap())
        .await;
    assert_eq!(good["document"]["status"], "indexed");
    for doc in [bad, garbage] {
        let doc = app
            .wait_document("batch", doc["document"]["id"].as_str().unwrap())
            .await;
        assert_eq!(doc["document"]["status"], "failed", "{doc:#}");
        let error = doc["document"]["error"].as_str().unwrap();
        assert!(error.to_lowercase().contains("pdf"), "{error}");
        assert_eq!(doc["chunks"], json!([]));
    }
    let (_, found) = app
        .kb_search("batch", json!({"query": "working hours"}))
        .await;
    assert_eq!(found["hits"].as_array().unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn arabic_documents_are_chunked_on_word_boundaries_and_found() {
    let app = spawn_app().await;
    app.tenant("arabic").await;
    let sentence = "تركّب شركتنا الألواح الشمسية على أسطح المنازل في دبي والشارقة، ونقدّم ضماناً لمدة خمس وعشرين سنة على الأداء.";
    let mut text = String::new();
    for i in 0..40 {
        text.push_str(&format!("{sentence} الفقرة رقم {i}.\n\n"));
    }
    text.push_str("تعمل خدمة العملاء من السبت إلى الخميس.");
    let (status, body) = app
        .upload(
            "arabic",
            "دليل.txt",
            "text/plain; charset=utf-8",
            text.clone().into_bytes(),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let doc = app
        .wait_document("arabic", body["document"]["id"].as_str().unwrap())
        .await;
    assert_eq!(doc["document"]["status"], "indexed");
    let words: std::collections::HashSet<&str> = text.split_whitespace().collect();
    let chunks = doc["chunks"].as_array().unwrap();
    assert!(chunks.len() > 3, "long text is split: {}", chunks.len());
    let all: Vec<char> = text.chars().collect();
    for c in chunks {
        let t = c["text"].as_str().unwrap();
        assert_eq!(c["language"], "ar");
        // No word is cut: every word of a chunk is a word of the document.
        for w in t.split_whitespace() {
            assert!(words.contains(w), "chunk cut a word: {w:?}");
        }
        // Offsets point at the chunk's text.
        let (start, end) = (
            c["char_start"].as_u64().unwrap() as usize,
            c["char_end"].as_u64().unwrap() as usize,
        );
        let span: String = all[start..end].iter().collect();
        assert_eq!(
            span.split_whitespace().collect::<Vec<_>>(),
            t.split_whitespace().collect::<Vec<_>>()
        );
    }
    // An Arabic question with other word forms (no diacritics, different alef/taa forms) finds it.
    let (_, found) = app
        .kb_search("arabic", json!({"query": "متى تعمل خدمه العملاء؟", "k": 1}))
        .await;
    assert!(
        found["hits"][0]["text"]
            .as_str()
            .unwrap()
            .contains("خدمة العملاء"),
        "{found:#}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_tenant_never_retrieves_another_tenants_chunks_even_its_nearest_neighbour() {
    let app = spawn_app().await;
    let a = app.tenant("tenant-a").await;
    app.tenant("tenant-b").await;
    let secret = "Project Falcon launch code is 7431 and the vault opens on Fridays.";
    let (_, b_doc) = app
        .upload(
            "tenant-b",
            "secret.txt",
            "text/plain",
            secret.as_bytes().to_vec(),
        )
        .await;
    let (_, a_doc) = app
        .upload(
            "tenant-a",
            "menu.txt",
            "text/plain",
            b"Our cafe serves cardamom coffee and dates.".to_vec(),
        )
        .await;
    app.wait_document("tenant-b", b_doc["document"]["id"].as_str().unwrap())
        .await;
    app.wait_document("tenant-a", a_doc["document"]["id"].as_str().unwrap())
        .await;

    // Through the API: B's exact sentence as A's query.
    for mode in ["hybrid", "full_text", "vector"] {
        let (status, found) = app
            .kb_search("tenant-a", json!({"query": secret, "k": 50, "mode": mode}))
            .await;
        assert_eq!(status, 200);
        for hit in found["hits"].as_array().unwrap() {
            assert_eq!(
                hit["document_id"], a_doc["document"]["id"],
                "{mode}: {found:#}"
            );
        }
    }
    // Through the library with B's own stored vector as the query: the nearest neighbour
    // (distance 0) belongs to B, and A still gets only its own chunk.
    let mut owner = app.owner().await;
    let (model, b_vec): (String, String) = sqlx::query_as(
        "SELECT e.model, e.embedding::text FROM chunk_embeddings e JOIN tenants t ON t.id = e.tenant_id WHERE t.slug = 'tenant-b'",
    )
    .fetch_one(&mut owner)
    .await
    .unwrap();
    let vector: Vec<f32> = serde_json::from_str(&b_vec).unwrap();
    let qv = QueryVector { model, vector };
    let mut tx = app.db.tenant(a).await.unwrap();
    let params = SearchParams {
        mode: SearchMode::Vector,
        candidates: 100,
        ..SearchParams::new(secret, 100)
    };
    let hits = switchboard_knowledge::search(&mut tx, &params, Some(&qv))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        hits.len(),
        1,
        "A has exactly one chunk and gets it: {hits:?}"
    );
    assert_eq!(
        hits[0].document_id.to_string(),
        a_doc["document"]["id"].as_str().unwrap()
    );
    app.stop().await;
}

#[tokio::test]
async fn the_threshold_applies_to_the_fused_score_after_fusion() {
    let app = spawn_app().await;
    app.tenant("fusion").await;
    let docs = [
        (
            "lexical.txt",
            "Zygomorphic blossoms attract specialised pollinators.",
        ),
        (
            "other.txt",
            "The delivery van leaves the warehouse at dawn.",
        ),
        (
            "third.txt",
            "Invoices are emailed on the first day of each month.",
        ),
    ];
    for (name, text) in docs {
        let (_, d) = app
            .upload("fusion", name, "text/plain", text.as_bytes().to_vec())
            .await;
        app.wait_document("fusion", d["document"]["id"].as_str().unwrap())
            .await;
    }
    // Reciprocal rank fusion: Σ 1/(60 + rank), normalised by first place in both.
    let (_, all) = app
        .kb_search(
            "fusion",
            json!({"query": "zygomorphic", "k": 10, "fusion": "rrf", "fts_weight": 1, "vector_weight": 1}),
        )
        .await;
    let hits = all["hits"].as_array().unwrap_or_else(|| panic!("{all}"));
    // Only one chunk contains the word; the vector retriever ranks all three.
    assert_eq!(hits.len(), 3, "{all:#}");
    let rrf = |r: f64| 1.0 / (60.0 + r);
    for h in hits {
        let f = h["full_text"]["rank"].as_f64().map(rrf).unwrap_or(0.0);
        let v = h["vector"]["rank"].as_f64().map(rrf).unwrap_or(0.0);
        let expected = (f + v) / (2.0 / 61.0);
        assert!(
            (h["score"].as_f64().unwrap() - expected).abs() < 1e-9,
            "{h:#}"
        );
    }
    assert!(hits[0]["text"].as_str().unwrap().contains("Zygomorphic"));
    assert!(hits[1]["full_text"].is_null() && hits[2]["full_text"].is_null());
    // The default convex fusion: weighted mean of each score over that retriever's best.
    let (_, convex) = app
        .kb_search(
            "fusion",
            json!({"query": "zygomorphic", "k": 10, "fts_weight": 0.7, "vector_weight": 0.3}),
        )
        .await;
    let c = convex["hits"].as_array().unwrap();
    assert_eq!(c.len(), 3);
    let vmax = c
        .iter()
        .map(|h| h["vector"]["score"].as_f64().unwrap().max(0.0))
        .fold(0.0, f64::max);
    let fmax = c
        .iter()
        .filter_map(|h| h["full_text"]["score"].as_f64())
        .fold(0.0, f64::max);
    for h in c {
        let f = h["full_text"]["score"]
            .as_f64()
            .map(|s| s / fmax)
            .unwrap_or(0.0);
        let v = h["vector"]["score"].as_f64().unwrap().max(0.0) / vmax;
        let expected = 0.7 * f + 0.3 * v;
        assert!(
            (h["score"].as_f64().unwrap() - expected).abs() < 1e-6,
            "{h:#}"
        );
    }
    // A threshold between the vector-only scores and the top fused score keeps exactly the
    // chunk both retrievers found, whatever its cosine similarity alone, with either fusion.
    for fusion in ["rrf", "convex"] {
        let (_, filtered) = app
            .kb_search("fusion", json!({"query": "zygomorphic", "k": 10, "min_score": 0.6, "fusion": fusion, "fts_weight": 0.7, "vector_weight": 0.3}))
            .await;
        let f = filtered["hits"].as_array().unwrap();
        assert_eq!(f.len(), 1, "{fusion}: {filtered:#}");
        assert_eq!(f[0]["chunk_id"], hits[0]["chunk_id"]);
    }
    // And a threshold nothing reaches returns nothing rather than an error.
    let (s, none) = app
        .kb_search("fusion", json!({"query": "zygomorphic", "min_score": 1.0}))
        .await;
    assert_eq!(s, 200);
    assert!(none["hits"].as_array().unwrap().len() <= 1);
    // Bad requests are explained.
    let (s, e) = app.kb_search("fusion", json!({"query": "  "})).await;
    assert_eq!(s, 422, "{e}");
    let (s, e) = app
        .kb_search("fusion", json!({"query": "x", "min_score": 3}))
        .await;
    assert_eq!(s, 422, "{e}");
    let (s, e) = app
        .kb_search("fusion", json!({"query": "x", "mode": "telepathy"}))
        .await;
    assert_eq!(s, 422, "{e}");
    let (s, _) = app.kb_search("nobody", json!({"query": "x"})).await;
    assert_eq!(s, 404);
    app.stop().await;
}

#[tokio::test]
async fn deleting_a_document_removes_it_from_search_and_statistics() {
    let app = spawn_app().await;
    let t = app.tenant("deleting").await;
    let (_, keep) = app
        .upload(
            "deleting",
            "keep.txt",
            "text/plain",
            b"Shipping to Oman takes four days.".to_vec(),
        )
        .await;
    let (_, gone) = app
        .upload(
            "deleting",
            "gone.txt",
            "text/plain",
            b"Quokka discounts apply to shipping on weekends.".to_vec(),
        )
        .await;
    let gone_id = gone["document"]["id"].as_str().unwrap().to_owned();
    app.wait_document("deleting", keep["document"]["id"].as_str().unwrap())
        .await;
    app.wait_document("deleting", &gone_id).await;
    let (_, before) = app
        .kb_search("deleting", json!({"query": "quokka shipping"}))
        .await;
    assert_eq!(before["hits"][0]["document_id"], json!(gone_id));

    let resp = app
        .http
        .delete(app.url(&format!(
            "/api/v1/knowledge/documents/{gone_id}?tenant=deleting"
        )))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let (_, after) = app
        .kb_search("deleting", json!({"query": "quokka shipping", "k": 20}))
        .await;
    assert!(
        after["hits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["document_id"] != json!(gone_id)),
        "{after:#}"
    );
    let mut owner = app.owner().await;
    let (chunks, vectors, quokka, stats): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM chunks WHERE document_id = $1::uuid),
                (SELECT count(*) FROM chunk_embeddings e WHERE e.tenant_id = $2 AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.id = e.chunk_id)),
                (SELECT count(*) FROM kb_terms WHERE tenant_id = $2 AND lexeme = 'quokka'),
                (SELECT chunk_count FROM kb_stats WHERE tenant_id = $2)",
    )
    .bind(&gone_id)
    .bind(t.0)
    .fetch_one(&mut owner)
    .await
    .unwrap();
    assert_eq!((chunks, vectors, quokka, stats), (0, 0, 0, 1));
    let (s, _) = app
        .admin_get(&format!(
            "/api/v1/knowledge/documents/{gone_id}?tenant=deleting"
        ))
        .await;
    assert_eq!(s, 404);
    app.stop().await;
}

#[tokio::test]
async fn reindexing_is_atomic_under_concurrent_searches() {
    let app = Arc::new(spawn_app().await);
    let t = app.tenant("atomic").await;
    let version = |marker: &str, paragraphs: usize| -> Vec<u8> {
        (0..paragraphs)
            .map(|i| format!("Section {i}. The heliostat calibration note {marker} explains step {i} of the procedure in detail, with enough words to fill a chunk of its own and then some more words about mirrors, tracking and sunlight."))
            .collect::<Vec<_>>()
            .join("\n\n")
            .into_bytes()
    };
    let (_, d) = app
        .upload(
            "atomic",
            "manual.txt",
            "text/plain",
            version("alphamarker", 12),
        )
        .await;
    let id = d["document"]["id"].as_str().unwrap().to_owned();
    let first = app.wait_document("atomic", &id).await;
    let v1_chunks = first["chunks"].as_array().unwrap().len();

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let searches = Arc::new(AtomicUsize::new(0));
    let mut searchers = Vec::new();
    for _ in 0..3 {
        let (db, stop, searches) = (app.db.clone(), stop.clone(), searches.clone());
        searchers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let mut tx = db.tenant(t).await.unwrap();
                let params = SearchParams {
                    mode: SearchMode::FullText,
                    candidates: 200,
                    ..SearchParams::new("heliostat calibration", 200)
                };
                let hits = switchboard_knowledge::search(&mut tx, &params, None)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                let alpha = hits
                    .iter()
                    .filter(|h| h.text.contains("alphamarker"))
                    .count();
                let beta = hits
                    .iter()
                    .filter(|h| h.text.contains("betamarker"))
                    .count();
                seen.push((alpha, beta, hits.len()));
                searches.fetch_add(1, Ordering::Relaxed);
            }
            seen
        }));
    }
    // Replace the content back and forth while the searches run.
    let mut v2_chunks = 0;
    for round in 0..6 {
        let (marker, n) = if round % 2 == 0 {
            ("betamarker", 20)
        } else {
            ("alphamarker", 12)
        };
        let resp = app
            .http
            .put(app.url(&format!(
                "/api/v1/knowledge/documents/{id}/content?tenant=atomic&source=manual.txt"
            )))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "text/plain")
            .body(version(marker, n))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
        let doc = app.wait_document("atomic", &id).await;
        if marker == "betamarker" {
            v2_chunks = doc["chunks"].as_array().unwrap().len();
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut observations = Vec::new();
    for s in searchers {
        observations.extend(s.await.unwrap());
    }
    assert!(
        searches.load(Ordering::Relaxed) >= 10,
        "searches ran during the re-indexing"
    );
    assert!(v2_chunks > v1_chunks);
    for (alpha, beta, total) in observations {
        // Every search saw one whole version: never a mix, never a partial set, never nothing.
        assert!(
            (alpha == v1_chunks && beta == 0 && total == v1_chunks) || (beta == v2_chunks && alpha == 0 && total == v2_chunks),
            "a search saw alpha={alpha} beta={beta} total={total} (versions have {v1_chunks} and {v2_chunks} chunks)"
        );
    }
    let app = Arc::try_unwrap(app).ok().expect("sole owner");
    app.stop().await;
}

/// A local OpenAI-compatible `/embeddings` server: deterministic 16-dimensional vectors from the
/// words of each input (shared words → similar vectors); counts the inputs it embedded.
async fn embeddings_stub() -> (String, Arc<AtomicUsize>, Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::routing::post;
    let count = Arc::new(AtomicUsize::new(0));
    let auth = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (c, a) = (count.clone(), auth.clone());
    let app = axum::Router::new().route(
        "/v1/embeddings",
        post(move |headers: axum::http::HeaderMap, axum::Json(body): axum::Json<Value>| {
            let (c, a) = (c.clone(), a.clone());
            async move {
                a.lock().unwrap().push(headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned());
                let inputs: Vec<String> = match &body["input"] {
                    Value::Array(items) => items.iter().map(|i| i.as_str().unwrap_or("").to_owned()).collect(),
                    Value::String(s) => vec![s.clone()],
                    _ => vec![],
                };
                c.fetch_add(inputs.len(), Ordering::Relaxed);
                let data: Vec<Value> = inputs
                    .iter()
                    .enumerate()
                    .map(|(i, text)| {
                        let mut v = vec![0.01f32; 16];
                        for w in text.to_lowercase().split(|c: char| !c.is_alphanumeric()).filter(|w| w.len() >= 2) {
                            let h = w.bytes().fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619));
                            v[(h % 16) as usize] += 1.0;
                        }
                        json!({"object": "embedding", "index": i, "embedding": v})
                    })
                    .collect();
                axum::Json(json!({"object": "list", "data": data, "model": body["model"], "usage": {"prompt_tokens": 1, "total_tokens": 1}}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v1"), count, auth)
}

/// Attack: a tenant points its embedding settings at a server of its own and gives no key,
/// hoping the platform's key comes along. It must not: the platform's key only ever goes to the
/// platform's endpoint.
#[tokio::test]
async fn a_tenants_own_embedding_url_never_receives_the_platform_key() {
    let (url, embedded, auth) = embeddings_stub().await;
    let app = spawn_app_with(
        |s| s.openai_api_key = Some("sk-platform-secret-77".to_owned().into()),
        None,
    )
    .await;
    app.tenant("keyless").await;
    let resp = app
        .http
        .put(app.url("/api/v1/knowledge/settings?tenant=keyless"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"provider": "openai", "base_url": url, "model": "stub-embed-16"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (_, d) = app
        .upload(
            "keyless",
            "pumps.txt",
            "text/plain",
            b"Irrigation pumps need servicing every six months.".to_vec(),
        )
        .await;
    app.wait_document("keyless", d["document"]["id"].as_str().unwrap())
        .await;
    let (status, _) = app
        .kb_search("keyless", json!({"query": "pump servicing"}))
        .await;
    assert_eq!(status, 200);
    assert!(
        embedded.load(Ordering::Relaxed) > 0,
        "the tenant's server was used"
    );
    let seen = auth.lock().unwrap().clone();
    assert!(!seen.is_empty());
    assert!(
        seen.iter().all(|a| !a.contains("sk-platform-secret-77")),
        "the platform key leaked to a tenant's URL: {seen:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn changing_the_embedding_model_re_embeds_in_the_background_while_search_works() {
    let app = spawn_app().await;
    let t = app.tenant("models").await;
    for i in 0..6 {
        let (_, d) = app
            .upload(
                "models",
                &format!("doc{i}.txt"),
                "text/plain",
                format!("Topic {i}: irrigation pumps model P{i} need servicing every {i} months.")
                    .into_bytes(),
            )
            .await;
        app.wait_document("models", d["document"]["id"].as_str().unwrap())
            .await;
    }
    let (_, s) = app
        .admin_get("/api/v1/knowledge/settings?tenant=models")
        .await;
    let local_model = s["settings"]["active_model"].as_str().unwrap().to_owned();
    assert_eq!(s["settings"]["active_model"], s["local_model"]);

    let (url, embedded, auth) = embeddings_stub().await;
    let resp = app
        .http
        .put(app.url("/api/v1/knowledge/settings?tenant=models"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"provider": "openai", "base_url": url, "model": "stub-embed-16", "api_key": "sk-tenant-secret-42"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["settings"]["has_api_key"], true);
    assert!(
        !body.to_string().contains("sk-tenant-secret-42"),
        "the key is never returned"
    );
    // The key is sealed at rest.
    let mut owner = app.owner().await;
    let sealed: Vec<u8> =
        sqlx::query_scalar("SELECT api_key_enc FROM knowledge_settings WHERE tenant_id = $1")
            .bind(t.0)
            .fetch_one(&mut owner)
            .await
            .unwrap();
    assert!(!sealed.windows(10).any(|w| w == b"sk-tenant-"));

    // Search keeps answering throughout; the switch happens once every chunk has a new vector.
    let switched = eventually(Duration::from_secs(30), || async {
        let (status, found) = app
            .kb_search(
                "models",
                json!({"query": "irrigation pumps servicing", "k": 3}),
            )
            .await;
        assert_eq!(status, 200);
        assert!(
            !found["hits"].as_array().unwrap().is_empty(),
            "search works during the change: {found}"
        );
        found["model"] != json!(local_model)
    })
    .await;
    assert!(switched, "the tenant switched to the new model");
    let (_, s) = app
        .admin_get("/api/v1/knowledge/settings?tenant=models")
        .await;
    let new_model = s["settings"]["active_model"].as_str().unwrap().to_owned();
    assert!(new_model.contains("stub-embed-16"), "{s}");
    assert!(s["settings"]["target_model"].is_null());
    let (old, new): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE model <> $2), count(*) FILTER (WHERE model = $2) FROM chunk_embeddings WHERE tenant_id = $1",
    )
    .bind(t.0)
    .bind(&new_model)
    .fetch_one(&mut owner)
    .await
    .unwrap();
    assert_eq!(
        (old, new),
        (0, 6),
        "old vectors are dropped after the switch"
    );
    assert!(embedded.load(Ordering::Relaxed) >= 6);
    assert!(auth
        .lock()
        .unwrap()
        .iter()
        .all(|a| a == "Bearer sk-tenant-secret-42"));
    // Queries now go to the stub too.
    let before = embedded.load(Ordering::Relaxed);
    let (_, found) = app
        .kb_search("models", json!({"query": "pumps model P3"}))
        .await;
    assert!(
        found["hits"][0]["text"].as_str().unwrap().contains("P3"),
        "{found:#}"
    );
    assert!(embedded.load(Ordering::Relaxed) > before);
    app.stop().await;
}

#[tokio::test]
async fn a_large_tenant_gets_its_own_indexes_and_loses_them_when_it_shrinks() {
    // Index keeper every second, "large" from 6 chunks (one chunk per document here).
    let app = spawn_app_with(
        |s| {
            s.knowledge.tenant_index_min_chunks = 6;
            s.knowledge.tenant_index_check_secs = 1;
        },
        None,
    )
    .await;
    let big = app.tenant("big").await;
    let small = app.tenant("small").await;
    let topics = [
        "Refunds are paid within five working days of the return.",
        "Shipping to Oman takes four days by courier.",
        "Our showroom in Muscat opens at nine in the morning.",
        "Solar panels carry a twenty-five year warranty.",
        "Installation teams work on weekdays only.",
        "Batteries are recycled free of charge.",
        "Quokka-themed gift cards never expire.",
    ];
    let mut ids = Vec::new();
    for (i, text) in topics.iter().enumerate() {
        let (status, body) = app
            .upload(
                "big",
                &format!("t{i}.txt"),
                "text/plain",
                text.as_bytes().to_vec(),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        ids.push(body["document"]["id"].as_str().unwrap().to_owned());
    }
    let (_, s) = app
        .upload(
            "small",
            "s.txt",
            "text/plain",
            b"Small tenant text.".to_vec(),
        )
        .await;
    for id in &ids {
        app.wait_document("big", id).await;
    }
    app.wait_document("small", s["document"]["id"].as_str().unwrap())
        .await;

    let names = |t: TenantId| format!("kb\\_t\\_{}\\_%", t.0.simple());
    let index_names = |pattern: String| {
        let url = app.owner_url.clone();
        async move {
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            let v: Vec<String> = sqlx::query_scalar(
                "SELECT indexname::text FROM pg_indexes WHERE indexname LIKE $1 ORDER BY 1",
            )
            .bind(pattern)
            .fetch_all(&mut c)
            .await
            .unwrap();
            v
        }
    };
    assert!(
        eventually(Duration::from_secs(30), || {
            let f = index_names(names(big));
            async move { f.await.len() == 2 }
        })
        .await,
        "the large tenant got no indexes: {:?}",
        index_names(names(big)).await
    );
    let got = index_names(names(big)).await;
    assert!(got.iter().any(|n| n.ends_with("_fts")), "{got:?}");
    let vector_index = got.iter().find(|n| n.contains("_v")).unwrap().clone();
    assert!(index_names(names(small)).await.is_empty());

    // Searches of the large tenant go through its HNSW index, and find what an exact scan finds.
    let scans = |name: String| {
        let url = app.owner_url.clone();
        async move {
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            let n: i64 = sqlx::query_scalar(
                "SELECT coalesce(sum(idx_scan), 0)::int8 FROM pg_stat_user_indexes WHERE indexrelname = $1",
            )
            .bind(name)
            .fetch_one(&mut c)
            .await
            .unwrap();
            n
        }
    };
    let before = scans(vector_index.clone()).await;
    let query = json!({"query": "how long does delivery to Oman take", "mode": "vector", "k": 7});
    let (status, auto) = app.kb_search("big", query.clone()).await;
    assert_eq!(status, 200, "{auto}");
    let mut exact_query = query.clone();
    exact_query["strategy"] = json!("exact");
    let (_, exact) = app.kb_search("big", exact_query).await;
    let hit_ids = |v: &Value| {
        v["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["chunk_id"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(hit_ids(&auto).len(), 7, "{auto:#}");
    assert_eq!(hit_ids(&auto), hit_ids(&exact));
    assert!(
        eventually(Duration::from_secs(10), || {
            let f = scans(vector_index.clone());
            async move { f.await > before }
        })
        .await,
        "the search did not use {vector_index}"
    );
    // Full text, through the tenant's own GIN index or not, still ranks the right chunk first.
    let (_, fts) = app
        .kb_search(
            "big",
            json!({"query": "quokka gift cards", "mode": "full_text"}),
        )
        .await;
    assert_eq!(fts["hits"][0]["document_id"], json!(ids[6]), "{fts:#}");

    // Shrinking below half the threshold drops the indexes.
    for id in &ids[..5] {
        let resp = app
            .http
            .delete(app.url(&format!("/api/v1/knowledge/documents/{id}?tenant=big")))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204);
    }
    assert!(
        eventually(Duration::from_secs(30), || {
            let f = index_names(names(big));
            async move { f.await.is_empty() }
        })
        .await,
        "indexes of a shrunk tenant were kept: {:?}",
        index_names(names(big)).await
    );
    let (_, after) = app
        .kb_search("big", json!({"query": "quokka gift cards"}))
        .await;
    assert_eq!(after["hits"][0]["document_id"], json!(ids[6]), "{after:#}");
    app.stop().await;
}

#[tokio::test]
async fn full_text_candidates_need_a_tenant_in_the_transaction() {
    let app = spawn_app().await;
    // The function runs with platform rights; without app.tenant_id it must refuse, not return
    // every tenant's chunks.
    let err = sqlx::query(
        "SELECT * FROM kb_fts_candidates('demo'::tsquery, '{}/16777216'::sparsevec, 10, '{}')",
    )
    .fetch_all(app.db.pool())
    .await
    .unwrap_err();
    assert!(err.to_string().contains("app.tenant_id"), "{err}");
    app.stop().await;
}

/// A repeated question reuses the earlier search (the turn's result cache), and a change of the
/// knowledge is seen by the very next question: results are keyed by the knowledge generation.
#[tokio::test]
async fn a_repeated_question_reuses_its_search_until_the_knowledge_changes() {
    let app = spawn_app().await;
    let (status, doc) = app
        .upload(
            "demo",
            "zorblax.txt",
            "text/plain",
            b"Zorblax warranty: every zorblax comes with a seven year warranty.".to_vec(),
        )
        .await;
    assert_eq!(status, 202, "{doc}");
    let id = doc["document"]["id"].as_str().unwrap().to_owned();
    app.wait_document("demo", &id).await;

    let cached = |metrics: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with("switchboard_retrievals_total{source=\"cache\"}"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let ask = |session: String| {
        let app = &app;
        async move {
            app.post_chat(
                app.demo_channel,
                &session,
                "c1",
                "How long is the zorblax warranty?",
            )
            .await;
            let history = app
                .wait_for_agent_replies(app.demo_channel, &session, 1)
                .await;
            history
                .iter()
                .rev()
                .find(|m| m["role"] == "agent")
                .map(|m| m["text"].as_str().unwrap_or("").to_owned())
                .unwrap()
        }
    };
    let before = cached(&app.metrics().await);
    let first = ask(session()).await;
    assert!(first.contains("seven year"), "{first}");
    let second = ask(session()).await;
    assert_eq!(second, first);
    let reused = cached(&app.metrics().await);
    assert!(reused >= before + 1.0, "the second question searched again");

    let resp = app
        .http
        .put(app.url(&format!(
            "/api/v1/knowledge/documents/{id}/content?tenant=demo"
        )))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "text/plain")
        .body("Zorblax warranty: every zorblax comes with a nine year warranty.")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    app.wait_document("demo", &id).await;
    let third = ask(session()).await;
    assert!(
        third.contains("nine year"),
        "stale knowledge after a change: {third}"
    );
    assert!(!third.contains("seven year"), "{third}");
    app.stop().await;
}
