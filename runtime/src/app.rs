//! Building and running the application: database (embedded or external), migrations, demo
//! tenant, actor tree, dispatcher and HTTP server, and their orderly shutdown.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use ractor::{Actor, ActorRef};
use secrecy::{ExposeSecret, SecretString};
use switchboard_actors::brain::Brains;
use switchboard_actors::{dispatcher, effects, FaultHook, RootMsg, RootSupervisor, Services};
use switchboard_channels::Outbound;
use switchboard_core::db::DbTarget;
use switchboard_core::{ChannelId, Db};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::Settings;
use crate::embedded_pg::{EmbeddedPgConfig, EmbeddedPostgres, ServerState};
use crate::http::{self, AppState, RouteSpec};

/// Name of the database the embedded server keeps Switchboard's data in.
const EMBEDDED_DB: &str = "switchboard";

/// Extra knobs for tests; production uses the default.
#[derive(Clone, Default)]
pub struct BuildOptions {
    /// Fault injection inside turns (tests only).
    pub faults: Option<FaultHook>,
}

/// A built, listening application.
pub struct Application {
    port: u16,
    listener: TcpListener,
    /// How long clients may take (the server loop's and the router's).
    timeouts: http::serve::ServerTimeouts,
    state: AppState,
    /// The HTTP router and its route table (what every route needs).
    router: axum::Router,
    routes: Vec<RouteSpec>,
    shutdown_tx: watch::Sender<bool>,
    dispatcher: JoinHandle<()>,
    /// Delivers notifications, invites and CRM webhooks; stops on the shutdown signal.
    effects_worker: JoinHandle<()>,
    indexer_task: JoinHandle<()>,
    index_keeper: JoinHandle<()>,
    root_handle: JoinHandle<()>,
    embedded: Option<EmbeddedPostgres>,
    owner_url: SecretString,
    /// The demo tenant's web chat, announced at start-up.
    demo_channel: Option<ChannelId>,
}

/// The database the application ended up with.
pub struct Database {
    pub db: Db,
    pub embedded: Option<EmbeddedPostgres>,
    /// The schema owner's login, for tooling (benchmarks); the application never uses it.
    pub owner_url: SecretString,
}

/// Vector sizes the start-up check computes distances at: the local embedders' (MiniLM 384,
/// the n-gram vectors, their concatenation) and the common 768.
fn probe_dimensions(settings: &Settings) -> Vec<usize> {
    let ngram = settings.knowledge.ngram_dims;
    let mut dims = vec![384, 768, ngram, 384 + ngram];
    dims.sort_unstable();
    dims.dedup();
    dims
}

/// Checks pgvector before and after the migrations (see [`crate::preflight`]). With the
/// embedded server, a crash is explained with the server's log.
async fn check_pgvector(
    settings: &Settings,
    owner_url: &str,
    embedded: Option<&EmbeddedPostgres>,
) -> anyhow::Result<()> {
    let checked = crate::preflight::check_distances(owner_url, &probe_dimensions(settings)).await;
    match checked {
        Ok(c) => {
            info!(version = %c.version, dimensions = ?c.dimensions, "pgvector works on this CPU");
            Ok(())
        }
        Err(e) => {
            let mut message = e.to_string();
            if let Some(pg) = embedded {
                message.push_str(&format!(
                    "\nEmbedded PostgreSQL: {} in {}\nLast lines of {}:\n{}",
                    pg.bin_dir().display(),
                    pg.cluster_dir().display(),
                    pg.log_path().display(),
                    pg.log_tail()
                ));
            }
            Err(anyhow::anyhow!(message))
        }
    }
}

/// Starts (or connects to) PostgreSQL, checks pgvector, applies migrations and opens the
/// application pool.
pub async fn open_database(settings: &Settings) -> anyhow::Result<Database> {
    let (target, embedded) = match &settings.database_url {
        Some(url) => {
            let owner_url = url.expose_secret().to_owned();
            crate::preflight::ensure_extension(&owner_url).await?;
            Db::migrate(&owner_url)
                .await
                .context("could not apply database migrations")?;
            check_pgvector(settings, &owner_url, None).await?;
            (
                DbTarget {
                    owner_url,
                    app_url: settings
                        .app_database_url
                        .as_ref()
                        .map(|u| u.expose_secret().to_owned()),
                    max_connections: settings.db_pool_size,
                },
                None,
            )
        }
        None => {
            let pg = EmbeddedPostgres::start(EmbeddedPgConfig {
                cluster_dir: settings.data_dir.join("pg"),
                bin_dir: settings.pg.bin.clone(),
                port: settings.pg.port,
                os_user: settings.pg.os_user.clone(),
                durable: settings.pg.durable,
                shared_buffers: settings.pg.shared_buffers.clone(),
                launcher: Vec::new(),
            })
            .await
            .context("could not start the embedded PostgreSQL")?;
            ensure_database(&pg.url("postgres", "postgres"), EMBEDDED_DB).await?;
            let owner_url = pg.url("postgres", EMBEDDED_DB);
            crate::preflight::ensure_extension(&owner_url).await?;
            // The application logs in as `switchboard_app` with a password of its own, kept in
            // the data dir (the migrations create the role without one).
            Db::migrate(&owner_url)
                .await
                .context("could not apply database migrations")?;
            check_pgvector(settings, &owner_url, Some(&pg)).await?;
            let app_password = local_secret(&settings.data_dir.join("pg-app-password"))?;
            set_app_password(&owner_url, &app_password).await?;
            (
                DbTarget {
                    app_url: Some(pg.url_with_password(
                        "switchboard_app",
                        &app_password,
                        EMBEDDED_DB,
                    )),
                    owner_url,
                    max_connections: settings.db_pool_size,
                },
                Some(pg),
            )
        }
    };
    let db = Db::connect(&target)
        .await
        .context("could not connect to the database as switchboard_app")?;
    Ok(Database {
        db,
        embedded,
        owner_url: SecretString::from(target.owner_url),
    })
}

/// For command-line tools: like [`open_database`], but when `serve` is running on this data
/// dir, use its embedded server (and leave it alone) instead of refusing to start a second one.
pub async fn open_database_for_cli(settings: &Settings) -> anyhow::Result<Database> {
    let running = crate::embedded_pg::running_server(&settings.data_dir.join("pg"));
    let (Some((port, password)), None) = (running, &settings.database_url) else {
        return open_database(settings).await;
    };
    let owner_url = format!("postgres://postgres:{password}@127.0.0.1:{port}/{EMBEDDED_DB}");
    let app_password = local_secret(&settings.data_dir.join("pg-app-password"))?;
    let target = DbTarget {
        app_url: Some(format!(
            "postgres://switchboard_app:{app_password}@127.0.0.1:{port}/{EMBEDDED_DB}"
        )),
        owner_url: owner_url.clone(),
        max_connections: settings.db_pool_size.min(4),
    };
    let db = Db::connect(&target)
        .await
        .context("could not connect to the running server's database as switchboard_app")?;
    Ok(Database {
        db,
        embedded: None,
        owner_url: SecretString::from(owner_url),
    })
}

/// Sets the password `switchboard_app` logs in with (hex only, so it can be inlined).
async fn set_app_password(owner_url: &str, password: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    anyhow::ensure!(
        password.chars().all(|c| c.is_ascii_hexdigit()),
        "the application database password must be hex"
    );
    let mut conn = sqlx::PgConnection::connect(owner_url).await?;
    sqlx::query(&format!("ALTER ROLE switchboard_app PASSWORD '{password}'"))
        .execute(&mut conn)
        .await
        .context("could not set the application role's password")?;
    conn.close().await?;
    Ok(())
}

/// A random hex secret kept in `path` (mode 0600), created on first use (with its directory)
/// from 256 bits of the operating system's random source.
///
/// A file that exists but does not hold such a secret (empty, truncated, edited) is an error,
/// never silently replaced: for the master key that would make every sealed credential
/// unreadable, for the database password lock the application out.
pub(crate) fn local_secret(path: &Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(existing) => {
            let t = existing.trim();
            if t.len() >= 32 && t.chars().all(|c| c.is_ascii_hexdigit()) {
                return Ok(t.to_owned());
            }
            bail!(
                "{} exists but does not hold a secret (at least 32 hex digits); restore it from a \
                 backup, or remove it only if nothing was ever sealed or set with it",
                path.display()
            );
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("could not read {}", path.display())),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("could not create {}", dir.display()))?;
    }
    let secret = random_hex_256().context("the operating system's random source failed")?;
    write_private(path, &secret)?;
    Ok(secret)
}

/// 256 bits from the operating system's random source, as 64 hex digits.
pub(crate) fn random_hex_256() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

async fn ensure_database(maintenance_url: &str, name: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(maintenance_url)
        .await
        .context("could not connect to the embedded PostgreSQL")?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await?;
    }
    conn.close().await?;
    Ok(())
}

/// The admin token from the settings, or one generated once and kept in the data dir.
pub fn admin_token(settings: &Settings) -> anyhow::Result<SecretString> {
    if let Some(t) = &settings.admin_token {
        if t.expose_secret().len() < 16 {
            bail!("SWITCHBOARD_ADMIN_TOKEN must be at least 16 characters long");
        }
        return Ok(t.clone());
    }
    let path = settings.data_dir.join("admin-token");
    let existed = path.exists();
    let token = local_secret(&path)?;
    if !existed {
        info!(path = %path.display(), "generated an admin token (set SWITCHBOARD_ADMIN_TOKEN to choose your own)");
    }
    Ok(SecretString::from(token))
}

fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    // Written beside it and renamed into place: a crash leaves the old file or the whole new
    // one, never an empty or half-written secret (which `local_secret` refuses).
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("could not write {}", tmp.display()))?;
    f.write_all(content.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("could not write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("could not write {}", path.display()))?;
    Ok(())
}

impl Application {
    /// Builds everything and binds the listener; nothing is served until
    /// [`run_until_stopped`](Self::run_until_stopped).
    pub async fn build(settings: Settings, options: BuildOptions) -> anyhow::Result<Application> {
        let addr = settings.listen_addr().map_err(anyhow::Error::msg)?;
        // Bind first: a port in use is reported before anything else starts.
        let listener = TcpListener::bind(addr).await.with_context(|| {
            format!("could not listen on {addr}; is another Switchboard running? Set SWITCHBOARD_LISTEN to another address")
        })?;
        let port = listener.local_addr()?.port();
        // Install the metrics recorder before anything records.
        http::metrics::handle();
        let admin_token = admin_token(&settings)?;
        let prices = Arc::new(
            settings
                .analytics
                .price_table()
                .context("invalid setting `analytics.prices`")?,
        );
        let brain_config = settings.brain_config();
        match &brain_config.platform {
            Some(p) => info!(model = %p.model, base_url = %p.base_url, "platform model configured: tenants without agent settings answer with it"),
            None => info!("no platform model configured (OPENAI_API_KEY / OPENAI_BASE_URL): tenants without agent settings use the offline responder"),
        }
        let Database {
            db,
            embedded,
            owner_url,
        } = open_database(&settings).await?;
        let (embedders, indexer) = crate::knowledge::stack(&settings, &db)?;
        let (demo_channel, demo_created) = if settings.demo_enabled() {
            let created = crate::demo::ensure(&db)
                .await
                .context("could not create the demo tenant")?;
            (crate::demo::chat_channel(&db).await?, created)
        } else {
            // A demo tenant left from an earlier run must not answer strangers with the
            // platform's key: its public chat is switched off.
            let closed = crate::demo::switch_off(&db)
                .await
                .context("could not switch off the demo tenant's chat")?;
            if closed > 0 {
                warn!(
                    channels = closed,
                    "the demo tenant's public chat is switched off because a platform model key is configured; set `demo = true` (SWITCHBOARD_DEMO=true) to serve it anyway"
                );
            }
            (None, false)
        };
        if demo_created {
            // The demo's few documents are indexed before serving, so its first answer is
            // grounded; everything else is indexed in the background.
            indexer
                .drain()
                .await
                .context("could not index the demo tenant's documents")?;
        }

        let brains = Arc::new(Brains::new(brain_config, embedders.master_key().clone()));
        let public_base_url = settings
            .public_base_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", listener_addr(&listener)))
            .trim_end_matches('/')
            .to_owned();
        let mut outbound = Outbound::new(settings.egress());
        outbound.public_base_url = Some(public_base_url.clone());
        outbound.speech_to_text =
            settings
                .speech_to_text
                .as_ref()
                .map(|s| switchboard_channels::speech::SpeechToText {
                    base_url: s.base_url.clone(),
                    api_key: s.api_key.clone(),
                    model: s.model.clone(),
                });
        let group = switchboard_core::store::group::GroupCommits::start(&db);
        let services = Arc::new(Services {
            brains,
            group,
            db,
            outbound,
            config: settings.pipeline.to_config(),
            outbox_kick: Arc::new(Notify::new()),
            effects_kick: Arc::new(Notify::new()),
            effects: settings.actions.to_config(),
            faults: options.faults,
            embedders,
            prices,
            inbox: Default::default(),
            turn_budget: Default::default(),
            metrics: Arc::new(switchboard_core::metrics::TenantMetrics::new(
                settings.metrics.max_tenant_labels,
            )),
        });
        let (root, root_handle) = Actor::spawn(None, RootSupervisor, services.clone())
            .await
            .context("could not start the actor tree")?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        tokio::spawn(http::metrics::upkeep(shutdown_rx.clone()));
        let dispatcher = dispatcher::spawn(services.clone(), shutdown_rx.clone());
        let effects_worker = effects::spawn(services.clone(), shutdown_rx.clone());
        let indexer_task = tokio::spawn(indexer.clone().run(shutdown_rx.clone()));
        let index_keeper = tokio::spawn(crate::knowledge::run_index_keeper(
            services.db.clone(),
            owner_url.clone(),
            settings.knowledge.clone(),
            shutdown_rx.clone(),
        ));
        let embedded_pg = embedded.as_ref().map(EmbeddedPostgres::state);
        if let Some(pg_state) = embedded_pg.clone() {
            tokio::spawn(resume_after_database_restarts(
                pg_state,
                root.clone(),
                services.clone(),
                shutdown_rx.clone(),
            ));
        }
        let auth = Arc::new(settings.auth_config(&public_base_url));
        if !auth.secure_cookies {
            warn!(%public_base_url, "session cookies are sent without Secure: serve over HTTPS (public_base_url https://…) in production");
        }
        let state = AppState {
            auth,
            embedded_pg,
            services,
            root,
            admin_token: Arc::new(admin_token),
            shutdown: shutdown_rx,
            routes: Arc::default(),
            indexer,
            public_base_url: Arc::from(public_base_url),
            limits: Arc::new(http::limits::InboundLimits::new(&settings.limits)),
        };
        let timeouts = settings.limits.timeouts();
        let (router, routes) =
            http::router(state.clone(), settings.max_body_bytes, timeouts.body_read);
        Ok(Application {
            port,
            listener,
            timeouts,
            router,
            routes,
            state,
            shutdown_tx,
            dispatcher,
            effects_worker,
            indexer_task,
            index_keeper,
            root_handle,
            embedded,
            owner_url,
            demo_channel,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn services(&self) -> Arc<Services> {
        self.state.services.clone()
    }

    pub fn root(&self) -> ActorRef<RootMsg> {
        self.state.root.clone()
    }

    /// Every route the server serves and what it needs.
    pub fn routes(&self) -> &[RouteSpec] {
        &self.routes
    }

    /// The schema owner's connection string (for benchmarks and diagnostics only).
    pub fn owner_url(&self) -> &SecretString {
        &self.owner_url
    }

    /// Serves until `signal` resolves, then shuts down in order: stop accepting requests and end
    /// event streams, let in-flight turns finish (or abandon them safely after the grace
    /// period), stop the dispatcher, close the pool, stop the embedded database.
    pub async fn run_until_stopped(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Application {
            port,
            listener,
            timeouts,
            router: app,
            routes: _,
            state,
            shutdown_tx,
            dispatcher,
            effects_worker,
            indexer_task,
            index_keeper,
            root_handle,
            embedded,
            owner_url: _,
            demo_channel,
        } = self;
        let services = state.services.clone();
        let root = state.root.clone();
        let state_for_polling = state.clone();
        let addr = listener.local_addr()?;
        info!(port, "listening on http://{addr}");
        if let Some(channel) = demo_channel {
            info!("chat with the demo agent at http://{addr}/chat/{channel} (or run `switchboard chat demo`)");
        }
        let shutdown_for_server = shutdown_tx.clone();
        let polling = tokio::spawn(crate::telegram_polling::run(state_for_polling.clone()));
        let imap = tokio::spawn(crate::email_polling::run(state_for_polling));
        let served = http::serve::serve(listener, app, timeouts, async move {
            signal.await;
            info!("shutting down");
            let _ = shutdown_for_server.send(true);
        })
        .await;
        let _ = shutdown_tx.send(true);
        let grace = services.config.shutdown_grace + Duration::from_secs(5);
        if let Err(e) = root
            .stop_and_wait(Some("shutdown".into()), Some(grace))
            .await
        {
            warn!(error = %e, "actor tree did not stop in time");
        }
        let _ = root_handle.await;
        let _ = dispatcher.await;
        let _ = effects_worker.await;
        let _ = polling.await;
        let _ = imap.await;
        let _ = indexer_task.await;
        let _ = index_keeper.await;
        services.db.close().await;
        if let Some(pg) = embedded {
            pg.stop()
                .await
                .context("could not stop the embedded PostgreSQL")?;
        }
        info!("stopped");
        served.context("HTTP server failed")
    }
}

/// After the embedded PostgreSQL came back from a death, picks up the work that waited for it
/// at once: conversations with pending events (their own retries would get there too, after
/// their backoff), and the outbox and effects workers' queues.
async fn resume_after_database_restarts(
    mut pg: watch::Receiver<ServerState>,
    root: ActorRef<RootMsg>,
    services: Arc<Services>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            changed = pg.changed() => if changed.is_err() { return },
            _ = shutdown.changed() => return,
        }
        let back =
            matches!(*pg.borrow_and_update(), ServerState::Up { restarts, .. } if restarts > 0);
        if back {
            info!("the database is back: resuming unfinished conversations and deliveries");
            let _ = root.send_message(RootMsg::ResumePending);
            services.outbox_kick.notify_one();
            services.effects_kick.notify_one();
        }
    }
}

/// The base URL of a Switchboard already serving on the configured address, if one answers
/// `/healthz` (the CLI then works through it instead of opening the database itself).
pub async fn running_server(http: &reqwest::Client, settings: &Settings) -> Option<String> {
    let base = format!("http://{}", settings.listen);
    let up = http
        .get(format!("{base}/healthz"))
        .timeout(Duration::from_secs(1))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success());
    up.then_some(base)
}

/// The listener's address, for the default public URL.
fn listener_addr(listener: &TcpListener) -> String {
    listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "127.0.0.1:8080".into())
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => futures::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("sb-secret-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_local_secret_is_made_once_from_the_random_source_and_kept_private() {
        let dir = scratch();
        let path = dir.join("nested").join("master-key");
        let made = local_secret(&path).unwrap();
        assert_eq!(made.len(), 64);
        assert!(made.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            local_secret(&path).unwrap(),
            made,
            "read back, not made again"
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let other = local_secret(&dir.join("other")).unwrap();
        assert_ne!(other, made);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_damaged_secret_file_is_refused_and_left_as_it_is() {
        let dir = scratch();
        for (name, content) in [
            ("empty", ""),
            ("short", "abc123\n"),
            ("not-hex", &"z".repeat(64)),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, content).unwrap();
            let err = local_secret(&path).unwrap_err().to_string();
            assert!(err.contains("does not hold a secret"), "{name}: {err}");
            assert_eq!(
                std::fs::read_to_string(&path).unwrap(),
                content,
                "{name} untouched"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
