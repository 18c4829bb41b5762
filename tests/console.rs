//! The console at `/console`: the shell and every file it loads — followed from the shell's
//! `<script>`/`<link>` tags through each module's `import`s — are served by the binary with the
//! right content type and caching, nothing names another origin, and every file of
//! `runtime/assets/console/` is embedded (a file added to the folder but not to the binary's
//! list would be a page that 404s in production only).

use std::collections::{BTreeSet, VecDeque};

use reqwest::header;
use switchboard_runtime::http::pages::CONSOLE_ASSETS;

use crate::helpers::spawn_app;

/// The one `http(s)://` string the console may contain: the SVG namespace, an identifier that is
/// never fetched.
const SVG_NAMESPACE: &str = "http://www.w3.org/2000/svg";

/// The console files a text names: `/console/assets/<file>` in the shell, `'./<file>'` in
/// modules (static `from './x.js'` and dynamic `import('./x.js')`).
fn referenced(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (marker, end) in [("/console/assets/", '"'), ("'./", '\'')] {
        let mut rest = text;
        while let Some(i) = rest.find(marker) {
            rest = &rest[i + marker.len()..];
            let name: String = rest.chars().take_while(|c| *c != end).collect();
            found.push(name);
        }
    }
    found
}

/// Any URL of another origin: `http://`, `https://` or protocol-relative `//host` in a `src`,
/// `href`, `url(` or `import`.
fn external_urls(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for scheme in ["http://", "https://"] {
        for (i, _) in text.match_indices(scheme) {
            let url: String = text[i..]
                .chars()
                .take_while(|c| !c.is_whitespace() && !matches!(c, '"' | '\'' | ')' | '`'))
                .collect();
            if url != SVG_NAMESPACE {
                found.push(url);
            }
        }
    }
    for prefix in ["src=\"//", "href=\"//", "url(//", "from '//", "import('//"] {
        if text.contains(prefix) {
            found.push(prefix.to_owned());
        }
    }
    found
}

#[tokio::test]
async fn the_console_and_every_file_it_loads_are_served_with_their_types_and_no_external_url() {
    let app = spawn_app().await;
    let resp = app.http.get(app.url("/console")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let headers = resp.headers().clone();
    assert!(headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    let shell = resp.text().await.unwrap();
    assert!(
        external_urls(&shell).is_empty(),
        "{:?}",
        external_urls(&shell)
    );
    assert!(
        !shell.contains("<script>") && !shell.contains("<style"),
        "no inline script or style (the CSP would refuse them)"
    );

    // Follow the shell's references and every module's imports.
    let mut queue: VecDeque<String> = referenced(&shell).into();
    assert!(queue.contains(&"app.js".to_owned()) && queue.contains(&"console.css".to_owned()));
    let mut seen = BTreeSet::new();
    while let Some(file) = queue.pop_front() {
        if !seen.insert(file.clone()) {
            continue;
        }
        let resp = app
            .http
            .get(app.url(&format!("/console/assets/{file}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{file}");
        let ct = resp.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        let expected = if file.ends_with(".js") {
            "text/javascript; charset=utf-8"
        } else if file.ends_with(".css") {
            "text/css; charset=utf-8"
        } else {
            panic!("unexpected console file {file}")
        };
        assert_eq!(ct, expected, "{file}");
        assert_eq!(resp.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-cache", "{file}");
        let etag = resp.headers()[header::ETAG].to_str().unwrap().to_owned();
        let body = resp.text().await.unwrap();
        assert!(
            external_urls(&body).is_empty(),
            "{file}: {:?}",
            external_urls(&body)
        );
        queue.extend(referenced(&body));

        // Revalidation: the same ETag gets 304 and no body.
        let again = app
            .http
            .get(app.url(&format!("/console/assets/{file}")))
            .header(header::IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{file}");
        assert!(again.text().await.unwrap().is_empty());
    }
    // Every page module is reachable from the shell, and every embedded file is used.
    let embedded: BTreeSet<String> = CONSOLE_ASSETS
        .iter()
        .map(|(n, _, _)| n.to_string())
        .collect();
    assert_eq!(
        seen, embedded,
        "files reached from /console = files embedded"
    );

    // Every file of the folder is embedded (index.html is the shell itself).
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/console");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "index.html")
        .collect();
    assert_eq!(on_disk, embedded, "{}", dir.display());

    // An unknown file is a JSON 404, like any unknown resource.
    let resp = app
        .http
        .get(app.url("/console/assets/nope.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");

    // The pages the emailed links open are still there.
    for path in ["/console/accept-invitation", "/console/reset-password"] {
        let resp = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
}
