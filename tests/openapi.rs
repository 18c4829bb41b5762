//! The OpenAPI document at `/api/v1/openapi.json` and the reference at `/docs`: the document
//! lists exactly the router's routes with the access the route table gives them, every
//! operation documents its answers with schemas, an independent validator
//! (`openapi-spec-validator`, a Python test peer) accepts it as OpenAPI 3.1, and the reference
//! page is served with no third-party assets.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{python_peer, spawn_app, TestApp};

const METHODS: [&str; 7] = ["get", "put", "post", "delete", "options", "head", "patch"];

/// Operations that answer something other than JSON on success, and why: their 2xx answers
/// need no JSON schema.
const NO_JSON_SUCCESS: [(&str, &str, &str); 13] = [
    ("get", "/", "an HTML page"),
    ("get", "/chat/{channel_id}", "an HTML page"),
    ("get", "/chat/widget.js", "a script"),
    ("get", "/console/accept-invitation", "an HTML page"),
    ("get", "/console/reset-password", "an HTML page"),
    ("get", "/docs", "an HTML page"),
    ("get", "/console", "the console's HTML shell"),
    (
        "get",
        "/console/assets/{file}",
        "a script or style sheet of the console",
    ),
    ("post", "/api/v1/auth/sign-out", "204, no body"),
    ("post", "/api/v1/auth/password", "204, no body"),
    (
        "delete",
        "/api/v1/users/invitations/{invitation_id}",
        "204, no body",
    ),
    ("delete", "/api/v1/users/{user_id}", "204, no body"),
    ("delete", "/api/v1/channels/{channel_id}", "204, no body"),
];
/// Also without a JSON body on success: deleting a document or a draft (204).
const NO_CONTENT_DELETES: [&str; 2] = [
    "/api/v1/knowledge/documents/{document_id}",
    "/api/v1/prompts/{version_id}",
];

async fn fetch_document(app: &TestApp) -> Value {
    let resp = app
        .http
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .expect("openapi.json");
    assert_eq!(resp.status(), 200);
    assert!(resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json")));
    resp.json().await.expect("the document is JSON")
}

/// Every `(method, path) → operation` of the document.
fn operations(doc: &Value) -> BTreeMap<(String, String), Value> {
    let mut out = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                out.insert((method.to_owned(), path.clone()), op.clone());
            }
        }
    }
    out
}

/// Resolves a local `$ref` (`#/components/schemas/Name`).
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r
                .strip_prefix("#/components/schemas/")
                .expect("a local ref");
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}

#[tokio::test]
async fn the_document_lists_exactly_the_routes_of_the_table() {
    let app = spawn_app().await;
    let doc = fetch_document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: BTreeSet<(String, String)> = operations(&doc).into_keys().collect();
    let served: BTreeSet<(String, String)> = app
        .routes
        .iter()
        .map(|r| (r.method.as_str().to_lowercase(), r.path.clone()))
        .collect();
    assert_eq!(
        served.len(),
        app.routes.len(),
        "the table names a route twice"
    );
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "routes of the table missing from the document: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "operations of the document the router does not serve: {unserved:?}"
    );
    // The document's path parameters are the template's, and each is declared.
    for ((method, path), op) in operations(&doc) {
        let in_template: BTreeSet<String> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(str::to_owned)
            .collect();
        let declared: BTreeSet<String> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path")
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(in_template, declared, "{method} {path}: path parameters");
    }
}

#[tokio::test]
async fn each_operation_declares_the_access_of_the_table() {
    let app = spawn_app().await;
    let doc = fetch_document(&app).await;
    let ops = operations(&doc);
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["session"]["type"], "apiKey");
    assert_eq!(schemes["session"]["in"], "cookie");
    assert_eq!(schemes["session"]["name"], "sb_session");
    use switchboard_runtime::auth::Access;
    for route in &app.routes {
        let key = (route.method.as_str().to_lowercase(), route.path.clone());
        let op = &ops[&key];
        let what = format!("{} {}", route.method, route.path);
        assert_eq!(
            op["x-switchboard-access"],
            route.access.label(),
            "{what}: declared access"
        );
        assert_eq!(
            op["x-switchboard-audited"], route.changes,
            "{what}: audited"
        );
        let expected_scopes: Vec<String> = match route.access {
            Access::Public | Access::Signed | Access::Authenticated => vec![],
            Access::Platform => vec!["platform_admin".into()],
            Access::Tenant(r) | Access::TenantOrPlatform(r) => vec![r.as_str().into()],
        };
        match route.access {
            Access::Public | Access::Signed => {
                assert!(
                    op.get("security")
                        .is_none_or(|s| s == &Value::Array(vec![])),
                    "{what}: public routes need no credential"
                );
            }
            _ => {
                let security = op["security"].as_array().expect("security");
                assert_eq!(
                    security,
                    &vec![
                        serde_json::json!({"bearer": expected_scopes}),
                        serde_json::json!({"session": expected_scopes}),
                    ],
                    "{what}: security"
                );
            }
        }
        let description = op["description"].as_str().unwrap_or_default();
        assert!(
            description.contains("**Access:**"),
            "{what}: the description says what is needed"
        );
        if route.access == Access::Signed {
            assert!(description.contains("signature"), "{what}");
        }
        if matches!(
            route.access,
            Access::Tenant(_) | Access::TenantOrPlatform(_)
        ) {
            assert!(
                op["parameters"].as_array().is_some_and(|ps| ps
                    .iter()
                    .any(|p| p["name"] == "tenant" && p["in"] == "query")),
                "{what}: ?tenant="
            );
        }
    }
}

#[tokio::test]
async fn every_operation_documents_its_answers_with_schemas() {
    let app = spawn_app().await;
    let doc = fetch_document(&app).await;
    let error = &doc["components"]["schemas"]["Error"];
    assert_eq!(error["required"], serde_json::json!(["error"]));
    let detail = resolve(&doc, &error["properties"]["error"]);
    for field in ["code", "message"] {
        assert_eq!(
            detail["properties"][field]["type"], "string",
            "Error.{field}"
        );
    }
    let exceptions: BTreeSet<(String, String)> = NO_JSON_SUCCESS
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .chain(
            NO_CONTENT_DELETES
                .iter()
                .map(|p| ("delete".to_owned(), p.to_string())),
        )
        .collect();
    let public: BTreeSet<(String, String)> = app
        .routes
        .iter()
        .filter(|r| {
            matches!(
                r.access,
                switchboard_runtime::auth::Access::Public
                    | switchboard_runtime::auth::Access::Signed
            )
        })
        .map(|r| (r.method.as_str().to_lowercase(), r.path.clone()))
        .collect();
    let mut ids = BTreeSet::new();
    for ((method, path), op) in operations(&doc) {
        let what = format!("{method} {path}");
        let id = op["operationId"].as_str().expect("an operation id");
        assert!(
            ids.insert(id.to_owned()),
            "{what}: operation id {id} repeats"
        );
        assert!(
            op["tags"].as_array().is_some_and(|t| !t.is_empty()),
            "{what}: tagged"
        );
        assert!(op["summary"].is_string(), "{what}: summary");
        let responses = op["responses"].as_object().expect("responses");
        let success: Vec<(&String, &Value)> = responses
            .iter()
            .filter(|(s, _)| s.starts_with('2'))
            .collect();
        assert!(!success.is_empty(), "{what}: a 2xx answer");
        let key = (method.clone(), path.clone());
        if exceptions.contains(&key) {
            for (status, r) in &success {
                assert!(
                    r.get("content")
                        .is_none_or(|c| c.get("application/json").is_none()),
                    "{what} {status}: listed as answering no JSON"
                );
            }
        } else {
            assert!(
                success.iter().any(|(_, r)| r["content"]
                    .as_object()
                    .is_some_and(|c| c.values().any(|m| m.get("schema").is_some()))),
                "{what}: a 2xx answer with a schema"
            );
        }
        // Every error answer has the one Error schema (but `/readyz`, whose 503 says what is
        // not ready in the same shape as its 200).
        for (status, r) in responses.iter().filter(|(s, _)| !s.starts_with('2')) {
            let expected = if path == "/readyz" {
                "#/components/schemas/Readiness"
            } else {
                "#/components/schemas/Error"
            };
            assert_eq!(
                r["content"]["application/json"]["schema"]["$ref"], expected,
                "{what} {status}: the error's schema"
            );
        }
        if !public.contains(&key) {
            for status in ["401", "403"] {
                assert!(responses.contains_key(status), "{what}: documents {status}");
            }
        }
        // Request bodies have a schema, or say what raw content they take.
        if let Some(body) = op.get("requestBody") {
            let content = body["content"].as_object().expect("request content");
            assert!(!content.is_empty(), "{what}: request content");
            for (ct, media) in content {
                assert!(media.get("schema").is_some(), "{what} {ct}: request schema");
            }
        }
    }
    // The raw upload of knowledge documents is described as such.
    let upload = &doc["paths"]["/api/v1/knowledge/documents"]["post"]["requestBody"]["content"];
    for ct in ["application/json", "text/plain", "application/octet-stream"] {
        assert!(upload.get(ct).is_some(), "document upload as {ct}");
    }
    // A response built by a handler has the fields the handler writes.
    let created = &doc["paths"]["/api/v1/keys"]["post"]["responses"]["201"]["content"]
        ["application/json"]["schema"];
    let created = resolve(&doc, created);
    for field in ["key", "secret", "note"] {
        assert!(
            created["properties"].get(field).is_some(),
            "KeyCreated.{field}"
        );
    }
}

#[tokio::test]
async fn the_document_is_valid_openapi_3_1_for_an_independent_validator() {
    let app = spawn_app().await;
    let doc = fetch_document(&app).await;
    let dir = std::env::temp_dir().join(format!("switchboard-openapi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    // The validator's own command line: exit status 0 and "OK" only for a valid document.
    let out = std::process::Command::new(python_peer())
        .args(["-m", "openapi_spec_validator", "--schema", "3.1.0"])
        .arg(&file)
        .output()
        .expect("run openapi-spec-validator (scripts/test-peers.sh installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("OK"),
        "openapi-spec-validator refused the document:\n{stdout}\n{stderr}"
    );
    // It does refuse a broken document (so the check above means something).
    let mut broken = doc.clone();
    broken["paths"]["/healthz"]["get"]["responses"] = serde_json::json!({"200": {"content": {}}});
    std::fs::write(&file, serde_json::to_vec(&broken).unwrap()).unwrap();
    let out = std::process::Command::new(python_peer())
        .args(["-m", "openapi_spec_validator", "--schema", "3.1.0"])
        .arg(&file)
        .output()
        .expect("run openapi-spec-validator");
    assert!(
        !out.status.success(),
        "a response without a description was accepted: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn the_reference_is_served_with_no_third_party_assets() {
    let app = spawn_app().await;
    let resp = app.http.get(app.url("/docs")).send().await.expect("docs");
    assert_eq!(resp.status(), 200);
    assert!(resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("text/html")));
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("/api/v1/openapi.json"),
        "it reads our document"
    );
    let lower = html.to_lowercase();
    for tag in ["<script", "<link", "<img", "<iframe"] {
        for (i, _) in lower.match_indices(tag) {
            let end = lower[i..].find('>').map_or(lower.len(), |e| i + e);
            let element = &lower[i..end];
            assert!(
                !element.contains("http://")
                    && !element.contains("https://")
                    && !element.contains("src=\"//"),
                "an external asset: {element}"
            );
        }
    }
    assert!(!lower.contains("@import"), "no imported stylesheets");
    // Public, like the document it reads.
    let (status, _) = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, 200);
}
