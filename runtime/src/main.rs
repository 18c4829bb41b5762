//! The `switchboard` command: parses the command line, loads settings, sets up logging and hands
//! over to the runtime library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use switchboard_core::store::identity::Role;
use switchboard_core::store::{channels, platform};
use switchboard_runtime::app::{open_database_for_cli as open_database, shutdown_signal};
use switchboard_runtime::{telemetry, Application, BuildOptions, Settings};

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Multi-tenant runtime for conversational AI agents"
)]
struct Cli {
    /// Configuration file (default: ./switchboard.toml, or $SWITCHBOARD_CONFIG).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (HTTP API, web chat, agents).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Manage a tenant's channels (WhatsApp, SMS, voice, …).
    Channel {
        #[command(subcommand)]
        command: ChannelCommand,
    },
    /// Manage the people who sign in (the first administrators, before anyone can invite).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage a tenant's API keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Chat with a tenant's agent in the terminal.
    Chat {
        /// Tenant slug or id (the demo tenant is `demo`).
        tenant: String,
    },
    /// Manage a tenant's knowledge base.
    Kb {
        #[command(subcommand)]
        command: KbCommand,
    },
    /// Benchmarks on a scratch database; prints JSON. `--suite pipeline` (default): load run of
    /// the full pipeline, closed or open loop. `--suite knowledge`: retrieval latency and recall
    /// at scale. `--suite memory`: resident memory per idle live conversation, and passivation.
    /// `--suite chaos`: the server killed again and again under load on every channel, a
    /// failing model, PostgreSQL killed; counts lost and duplicated messages (exit 1 if any).
    Bench {
        /// `pipeline`, `knowledge`, `memory` or `chaos`.
        #[arg(long, default_value = "pipeline")]
        suite: String,
        /// Knowledge suite: chunks in all.
        #[arg(long, default_value_t = 100_000)]
        chunks: usize,
        /// Knowledge suite: tenants sharing them (one owns 1%).
        #[arg(long, default_value_t = 1000)]
        tenants: usize,
        /// Knowledge suite: queries to run.
        #[arg(long, default_value_t = 400)]
        queries: usize,
        /// Knowledge suite: with DATABASE_URL, reuse a dataset an earlier run left in that
        /// database (same --chunks and --tenants) instead of loading a new one.
        #[arg(long)]
        reuse: bool,
        /// Memory suite: the run's idle timeout in seconds (`pipeline.idle_timeout_secs`).
        /// Waking every conversation must take less; passivation takes about this long after.
        #[arg(long, default_value_t = 60)]
        idle_timeout: u64,
        /// Chaos suite: SIGKILLs of the server during the run.
        #[arg(long, default_value_t = 10)]
        kills: usize,
        /// Chaos suite: SIGKILLs of PostgreSQL during the run.
        #[arg(long, default_value_t = 1)]
        database_kills: usize,
        #[command(flatten)]
        pipeline: switchboard_runtime::bench::PipelineArgs,
    },
}

#[derive(Subcommand)]
enum KbCommand {
    /// Add files (text, Markdown, HTML, PDF, CSV/JSON question-answer pairs) to a tenant's
    /// knowledge base; folders are walked.
    Ingest {
        /// Tenant slug or id.
        tenant: String,
        /// Files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Measure retrieval quality on a BEIR-layout dataset (corpus.jsonl, queries.jsonl,
    /// qrels/test.tsv) in a scratch tenant; prints JSON.
    Eval {
        /// The dataset folder.
        dataset_dir: PathBuf,
        /// Index at most this many unjudged documents besides the judged ones (quick runs).
        #[arg(long)]
        max_docs: Option<usize>,
        /// Run at most this many queries.
        #[arg(long)]
        max_queries: Option<usize>,
        /// Retrieval modes to measure: hybrid, full_text, vector (comma-separated).
        #[arg(long, default_value = "hybrid,full_text,vector", value_delimiter = ',')]
        modes: Vec<String>,
        /// Keep the scratch tenant afterwards (useful with DATABASE_URL).
        #[arg(long)]
        keep_tenant: bool,
        /// Write each query's candidates with both retrievers' scores to this JSONL file.
        #[arg(long)]
        dump: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ChannelCommand {
    /// Create a channel; prints its id and the webhook URL to paste into the provider.
    Create {
        /// Tenant slug or id.
        tenant: String,
        /// whatsapp, sms, voice or webchat.
        kind: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Settings as a JSON object (credentials included; they are sealed at rest). Not
        /// `--config`, which names the configuration file. E.g.
        /// '{"account_sid":"AC…","auth_token":"…","from_number":"+1555…"}'.
        #[arg(long, default_value = "{}")]
        settings: String,
    },
    /// List a tenant's channels (all tenants when omitted) with webhook URLs and health.
    List {
        /// Tenant slug or id.
        tenant: Option<String>,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user who signs in with email and password (or give an existing one a tenant).
    /// Without --password-stdin a strong password is generated and printed once.
    Create {
        email: String,
        /// How colleagues and transcripts name them.
        #[arg(long, default_value = "")]
        name: String,
        /// Make them a member of this tenant (slug or id), with --role.
        #[arg(long, requires = "role")]
        tenant: Option<String>,
        /// tenant_admin, sales_agent or viewer.
        #[arg(long, requires = "tenant")]
        role: Option<Role>,
        /// A platform administrator (every tenant).
        #[arg(long)]
        platform_admin: bool,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users: of one tenant with their roles, or all.
    List {
        #[arg(long)]
        tenant: Option<String>,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create an API key for a tenant; prints the key once.
    Create {
        /// Tenant slug or id.
        tenant: String,
        #[arg(long)]
        name: String,
        /// tenant_admin, sales_agent or viewer.
        #[arg(long, default_value = "viewer")]
        role: Role,
    },
    /// Revoke a key (by id or by the prefix shown in `key list`).
    Revoke { tenant: String, key: String },
    /// List a tenant's keys (never their secrets).
    List { tenant: String },
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant with a web-chat channel.
    Create {
        /// Short unique name: lower-case letters, digits and dashes.
        slug: String,
        /// Display name of the business.
        #[arg(long)]
        name: String,
        /// Default language, `en` or `ar`.
        #[arg(long, default_value = "en")]
        language: String,
    },
    /// List tenants and their channels.
    List,
}

fn main() -> ExitCode {
    // Before any thread starts: it may set an environment variable.
    switchboard_knowledge::embed::settle_kernel_threads();
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let quiet = !matches!(cli.command, Command::Serve);
    let filter = if quiet {
        "warn"
    } else {
        settings.log.filter.as_str()
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Traces are exported by `serve` only (when a collector is configured); their batch task
    // runs on this runtime.
    let telemetry = {
        let _runtime = runtime.enter();
        let traces = (!quiet).then_some(&settings.telemetry);
        telemetry::init(&settings.log.format, filter, traces)
    };
    let result = runtime.block_on(run(cli.command, settings));
    // The runtime still runs the batch task: the last spans are sent before the process ends.
    telemetry.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    if let Command::Bench {
        suite, pipeline, ..
    } = &command
    {
        anyhow::ensure!(
            suite == "pipeline" || pipeline.compare.is_none(),
            "--compare works with the pipeline suite only"
        );
    }
    match command {
        Command::Serve => {
            let app = Application::build(settings, BuildOptions::default()).await?;
            app.run_until_stopped(shutdown_signal()).await
        }
        Command::Migrate => {
            let db = open_database(&settings).await?;
            db.db.close().await;
            if let Some(pg) = db.embedded {
                pg.stop().await?;
            }
            println!("migrations applied");
            Ok(())
        }
        Command::Tenant { command } => {
            let db = open_database(&settings).await?;
            let result = tenant_command(&db.db, command).await;
            db.db.close().await;
            if let Some(pg) = db.embedded {
                pg.stop().await?;
            }
            result
        }
        Command::User { command } => {
            let db = open_database(&settings).await?;
            let result = user_command(&db.db, command).await;
            db.db.close().await;
            if let Some(pg) = db.embedded {
                pg.stop().await?;
            }
            result
        }
        Command::Key { command } => {
            let db = open_database(&settings).await?;
            let result = key_command(&db.db, command).await;
            db.db.close().await;
            if let Some(pg) = db.embedded {
                pg.stop().await?;
            }
            result
        }
        Command::Channel { command } => {
            let db = open_database(&settings).await?;
            let result = channel_command(&settings, &db.db, command).await;
            db.db.close().await;
            if let Some(pg) = db.embedded {
                pg.stop().await?;
            }
            result
        }
        Command::Kb {
            command: KbCommand::Ingest { tenant, paths },
        } => switchboard_runtime::kb::ingest(settings, &tenant, &paths).await,
        Command::Kb {
            command:
                KbCommand::Eval {
                    dataset_dir,
                    max_docs,
                    max_queries,
                    modes,
                    keep_tenant,
                    dump,
                },
        } => {
            let modes = modes
                .iter()
                .map(|m| match m.trim() {
                    "hybrid" => Ok(switchboard_knowledge::SearchMode::Hybrid),
                    "full_text" | "fts" => Ok(switchboard_knowledge::SearchMode::FullText),
                    "vector" => Ok(switchboard_knowledge::SearchMode::Vector),
                    other => Err(anyhow::anyhow!(
                        "unknown mode `{other}`: use hybrid, full_text or vector"
                    )),
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let opts = switchboard_runtime::kb::EvalOptions {
                max_docs,
                max_queries,
                modes,
                keep_tenant,
                dump,
            };
            let result = switchboard_runtime::kb::eval(settings, &dataset_dir, opts).await?;
            println!("{}", serde_json::to_string_pretty(&result)?);
            Ok(())
        }
        Command::Chat { tenant } => switchboard_runtime::chat::run(settings, &tenant).await,
        Command::Bench {
            suite,
            chunks,
            tenants,
            queries,
            reuse,
            pipeline,
            ..
        } if suite == "knowledge" => {
            let opts = switchboard_runtime::bench_kb::KbBenchOptions {
                chunks,
                tenants,
                queries,
                reuse,
            };
            let result = switchboard_runtime::bench_kb::run(settings, opts).await?;
            print_result(&result, pipeline.out.as_deref())
        }
        Command::Bench {
            suite,
            idle_timeout,
            pipeline,
            ..
        } if suite == "memory" => {
            let opts = switchboard_runtime::bench::memory::MemoryOptions {
                conversations: pipeline.conversations.unwrap_or(100_000),
                idle_timeout: std::time::Duration::from_secs(idle_timeout),
                ..Default::default()
            };
            let result = switchboard_runtime::bench::memory::run(settings, opts).await?;
            print_result(&result, pipeline.out.as_deref())
        }
        Command::Bench {
            suite,
            tenants,
            kills,
            database_kills,
            pipeline,
            ..
        } if suite == "chaos" => {
            let opts = switchboard_runtime::bench::chaos::ChaosOptions {
                messages: pipeline.messages.unwrap_or(5000),
                server_kills: kills,
                database_kills,
                // --tenants defaults to the knowledge suite's 1000: a chaos run wants a few.
                tenants: if tenants == 1000 { 4 } else { tenants },
                ..Default::default()
            };
            let result = switchboard_runtime::bench::chaos::run(opts).await?;
            print_result(&result, pipeline.out.as_deref())?;
            if result["passed"] != true {
                anyhow::bail!("chaos run failed: {}", result["failures"]);
            }
            Ok(())
        }
        Command::Bench {
            suite, pipeline, ..
        } => {
            anyhow::ensure!(
                suite == "pipeline",
                "unknown --suite `{suite}`: use pipeline, knowledge, memory or chaos"
            );
            let result = switchboard_runtime::bench::command(settings, pipeline).await;
            // Runs that cannot be compared are a usage error (exit status 2), unlike a
            // regression (1): the figures were never weighed.
            if let Err(e) = &result {
                if e.downcast_ref::<switchboard_runtime::bench::Incomparable>()
                    .is_some()
                {
                    eprintln!("error: {e:#}");
                    std::process::exit(2);
                }
            }
            result
        }
    }
}

/// Prints a bench result and writes it to `out` when given.
fn print_result(result: &serde_json::Value, out: Option<&std::path::Path>) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(result)?;
    println!("{text}");
    if let Some(out) = out {
        std::fs::write(out, format!("{text}\n"))
            .with_context(|| format!("could not write {}", out.display()))?;
    }
    Ok(())
}

async fn tenant_command(db: &switchboard_core::Db, command: TenantCommand) -> anyhow::Result<()> {
    match command {
        TenantCommand::Create {
            slug,
            name,
            language,
        } => {
            let (tenant, channel) =
                switchboard_runtime::tenants::create_with_webchat(db, &slug, &name, &language)
                    .await
                    .context("could not create the tenant")?;
            println!("created tenant {} ({})", tenant.slug, tenant.id);
            println!("web chat: /chat/{}", channel.id);
        }
        TenantCommand::List => {
            let tenants = platform::list_tenants(db.pool()).await?;
            if tenants.is_empty() {
                println!("no tenants yet");
            }
            for t in tenants {
                println!("{}\t{}\t{}", t.slug, t.id, t.name);
                let mut tx = db.tenant(t.id).await?;
                for c in channels::list(&mut tx).await? {
                    println!("  {}\t{}\t{}", c.kind, c.id, c.name);
                }
                tx.commit().await?;
            }
        }
    }
    Ok(())
}

async fn user_command(db: &switchboard_core::Db, command: UserCommand) -> anyhow::Result<()> {
    use switchboard_runtime::users;
    match command {
        UserCommand::Create {
            email,
            name,
            tenant,
            role,
            platform_admin,
            password_stdin,
        } => {
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .context("could not read the password from standard input")?;
                Some(line.trim_end_matches(['\n', '\r']).to_owned())
            } else {
                None
            };
            let membership = tenant.as_deref().zip(role);
            let created =
                users::create_user(db, &email, &name, password, platform_admin, membership).await?;
            let u = &created.user;
            if created.existed {
                println!("{} already existed (id {})", u.email, u.id);
            } else {
                println!("created {} (id {})", u.email, u.id);
            }
            if u.platform_admin {
                println!("  platform administrator");
            }
            if let (Some(t), Some(r)) = (tenant, role) {
                println!("  {r} of {t}");
            }
            if let Some(p) = created.generated_password {
                println!("  password: {p}\n  (shown once; sign in and keep it safe)");
            }
            Ok(())
        }
        UserCommand::List { tenant } => {
            for (u, role) in users::list_users(db, tenant.as_deref()).await? {
                let mut flags = Vec::new();
                if u.platform_admin {
                    flags.push("platform_admin".to_owned());
                }
                if let Some(r) = role {
                    flags.push(r.to_string());
                }
                if u.disabled {
                    flags.push("disabled".into());
                }
                if !u.has_password {
                    flags.push("no password yet".into());
                }
                println!(
                    "{}  {}  {}  {}",
                    u.id,
                    u.email,
                    u.display_name,
                    flags.join(", ")
                );
            }
            Ok(())
        }
    }
}

async fn key_command(db: &switchboard_core::Db, command: KeyCommand) -> anyhow::Result<()> {
    use switchboard_runtime::users;
    match command {
        KeyCommand::Create { tenant, name, role } => {
            let (key, secret) = users::create_key(db, &tenant, &name, role).await?;
            println!(
                "created key {} \"{}\" ({}) for {tenant}",
                key.id, key.name, key.role
            );
            println!("{secret}");
            eprintln!("(the key is shown once: store it now; it is kept only as a hash)");
            Ok(())
        }
        KeyCommand::Revoke { tenant, key } => {
            let key = users::revoke_key(db, &tenant, &key).await?;
            println!("revoked key {} \"{}\"", key.id, key.name);
            Ok(())
        }
        KeyCommand::List { tenant } => {
            for k in users::list_keys(db, &tenant).await? {
                let state = match k.revoked_at {
                    Some(at) => format!("revoked {at}"),
                    None => match k.last_used_at {
                        Some(at) => format!("last used {at}"),
                        None => "never used".into(),
                    },
                };
                println!("{}  {}…  {}  {}  {state}", k.id, k.prefix, k.role, k.name);
            }
            Ok(())
        }
    }
}

async fn channel_command(
    settings: &Settings,
    db: &switchboard_core::Db,
    command: ChannelCommand,
) -> anyhow::Result<()> {
    let key = switchboard_runtime::knowledge::master_key(settings)?;
    let base = settings
        .public_base_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", settings.listen));
    let conf = switchboard_runtime::channels::ChannelConfigurator {
        db,
        key: &key,
        public_base_url: &base,
        egress: settings.egress(),
    };
    let find = |t: String| async move {
        platform::find_tenant(db.pool(), &t)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no tenant `{t}` (see `switchboard tenant list`)"))
    };
    match command {
        ChannelCommand::Create {
            tenant,
            kind,
            name,
            settings,
        } => {
            let tenant = find(tenant).await?;
            let kind = kind.parse().map_err(anyhow::Error::msg)?;
            let config: serde_json::Value =
                serde_json::from_str(&settings).context("--settings must be a JSON object")?;
            let serde_json::Value::Object(config) = config else {
                anyhow::bail!("--settings must be a JSON object");
            };
            let record = conf.create(tenant.id, kind, &name, config).await?;
            println!(
                "created {} channel {} ({})",
                kind, record.channel.id, record.channel.name
            );
            if let Some(url) = conf.webhook_url(kind, record.channel.id) {
                println!("webhook URL: {url}");
            }
        }
        ChannelCommand::List { tenant } => {
            let tenants = match tenant {
                Some(t) => vec![find(t).await?],
                None => platform::list_tenants(db.pool()).await?,
            };
            for t in tenants {
                let mut tx = db.tenant(t.id).await?;
                for r in channels::list_records(&mut tx).await? {
                    let c = &r.channel;
                    println!(
                        "{}\t{}\t{}\t{}\t{}\tlast inbound: {}\tlast error: {}",
                        t.slug,
                        c.kind,
                        c.id,
                        c.name,
                        conf.webhook_url(c.kind, c.id).unwrap_or_else(|| "-".into()),
                        r.last_inbound_at
                            .map(|d| d.to_rfc3339())
                            .unwrap_or_else(|| "never".into()),
                        r.last_error.as_deref().unwrap_or("none"),
                    );
                }
                tx.commit().await?;
            }
        }
    }
    Ok(())
}
