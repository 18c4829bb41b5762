//! Connection pools, migrations, and the tenant-scoped transaction.
//!
//! The application pool logs in as (or switches to) `switchboard_app`, a role that owns nothing
//! and cannot bypass row-level security. [`Db::tenant`] is the only way to get a transaction that
//! can see tenant rows: it sets `app.tenant_id` with `set_config(…, true)`, which lasts exactly
//! as long as the transaction, so a pooled connection never carries one tenant's scope into the
//! next user's query.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection, PgPool, Postgres, Transaction};

use crate::ids::TenantId;

/// The migrations in `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Invalid(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
}

/// How to reach PostgreSQL.
#[derive(Clone, Debug)]
pub struct DbTarget {
    /// A login that owns the schema: used for migrations only.
    pub owner_url: String,
    /// A login as `switchboard_app` for the application pool. When absent the pool connects with
    /// `owner_url` and switches every connection to `switchboard_app` with `SET ROLE`.
    pub app_url: Option<String>,
    pub max_connections: u32,
}

/// Handle to the database: cheap to clone, shared by every part of the runtime.
#[derive(Clone, Debug)]
pub struct Db {
    pool: PgPool,
    /// Set when the pool's login itself could bypass row-level security (one privileged login
    /// switching to `switchboard_app`): what is wrong and how to fix it.
    login_warning: Option<std::sync::Arc<str>>,
}

impl Db {
    /// Applies pending migrations with the owner login.
    pub async fn migrate(owner_url: &str) -> Result<(), DbError> {
        let mut conn = PgConnection::connect(owner_url).await?;
        MIGRATOR.run(&mut conn).await?;
        conn.close().await?;
        Ok(())
    }

    /// Opens the application pool and checks that it really cannot bypass row-level security.
    pub async fn connect(target: &DbTarget) -> Result<Db, DbError> {
        let (url, set_role) = match &target.app_url {
            Some(url) => (url.as_str(), false),
            None => (target.owner_url.as_str(), true),
        };
        let options: PgConnectOptions = url.parse()?;
        let options = options.application_name("switchboard");
        let pool = PgPoolOptions::new()
            .max_connections(target.max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if set_role {
                        conn.execute("SET ROLE switchboard_app").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        // Both the role queries run as (`current_user`) and the login itself (`session_user`):
        // a privileged login that only `SET ROLE`s could `RESET ROLE` its way out of row-level
        // security.
        let (user, login, role_bypasses, login_bypasses): (String, String, bool, bool) =
            sqlx::query_as(
                "SELECT current_user::text, session_user::text,
                        (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user),
                        (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = session_user)",
            )
            .fetch_one(&pool)
            .await?;
        if role_bypasses {
            return Err(DbError::Invalid(format!(
                "the application role `{user}` can bypass row-level security; connect as switchboard_app"
            )));
        }
        let mut login_warning = None;
        if login_bypasses {
            let problem = format!(
                "the database login `{login}` is a superuser or has BYPASSRLS: the application \
                 runs as `{user}`, but a `RESET ROLE` on its connections would escape row-level \
                 security"
            );
            if !set_role {
                return Err(DbError::Invalid(format!(
                    "{problem}; the application login (SWITCHBOARD_APP_DATABASE_URL) must be a \
                     role without either, such as switchboard_app"
                )));
            }
            let warning = format!(
                "{problem}. In production give the application a login of its own: \
                 `ALTER ROLE switchboard_app PASSWORD '…'` and set SWITCHBOARD_APP_DATABASE_URL \
                 to it (DATABASE_URL then only migrates)"
            );
            tracing::error!("{warning}");
            login_warning = Some(warning.into());
        }
        Ok(Db {
            pool,
            login_warning,
        })
    }

    /// Begins a transaction scoped to `tenant`: row-level security shows and accepts only that
    /// tenant's rows until it commits or rolls back.
    pub async fn tenant(&self, tenant: TenantId) -> Result<TenantTx, DbError> {
        // BEGIN and the scope travel in one round trip. The id is a UUID rendered by `uuid`
        // (hex digits and dashes only), so formatting it into the statement is safe.
        let begin = format!(
            "BEGIN; SELECT set_config('app.tenant_id', '{}', true)",
            tenant.0.hyphenated()
        );
        let tx = self.pool.begin_with(begin).await?;
        Ok(TenantTx { tx, tenant })
    }

    /// Why the pool's login is unsafe for production, when it is (see [`Db::connect`]).
    pub fn login_warning(&self) -> Option<&str> {
        self.login_warning.as_deref()
    }

    /// The raw pool, for the `platform_*` functions in [`crate::store::platform`] and health checks.
    /// Tenant tables read through it show nothing, by construction.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// One round trip to the server (`SELECT 1`): whether the database answers at all.
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A transaction acting for exactly one tenant.
pub struct TenantTx {
    tx: Transaction<'static, Postgres>,
    tenant: TenantId,
}

impl TenantTx {
    pub fn tenant_id(&self) -> TenantId {
        self.tenant
    }

    /// The connection to run queries on.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    pub async fn commit(self) -> Result<(), DbError> {
        self.tx.commit().await?;
        Ok(())
    }

    pub async fn rollback(self) -> Result<(), DbError> {
        self.tx.rollback().await?;
        Ok(())
    }
}
