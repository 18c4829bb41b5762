//! Tenant isolation by row-level security: the application role sees only the tenant of its
//! transaction, even when it asks for another tenant's rows by id.

use serde_json::json;
use switchboard_core::{ChannelId, TenantId};

use crate::helpers::*;

#[tokio::test]
async fn a_query_under_tenant_a_cannot_read_or_write_tenant_b_rows() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for slug in ["acme", "globex"] {
        let (status, body) = app
            .admin_post("/api/v1/tenants", json!({"slug": slug, "name": slug}))
            .await;
        assert_eq!(status, 201, "{body}");
        let tenant: TenantId = body["tenant"]["id"].as_str().unwrap().parse().unwrap();
        let channel: ChannelId = body["channels"][0]["id"].as_str().unwrap().parse().unwrap();
        let s = session();
        let (_, posted) = app
            .post_chat(channel, &s, "c1", &format!("hello from {slug}"))
            .await;
        ids.push((
            tenant,
            posted["message_id"]
                .as_str()
                .unwrap()
                .parse::<uuid::Uuid>()
                .unwrap(),
        ));
    }
    let (a, a_msg) = ids[0];
    let (b, b_msg) = ids[1];

    // Under A, B's message is invisible even by id; A's own is visible.
    let mut tx = app.db.tenant(a).await.unwrap();
    let seen_b: Option<String> = sqlx::query_scalar("SELECT text FROM messages WHERE id = $1")
        .bind(b_msg)
        .fetch_optional(tx.conn())
        .await
        .unwrap();
    assert_eq!(seen_b, None);
    let seen_a: Option<String> = sqlx::query_scalar("SELECT text FROM messages WHERE id = $1")
        .bind(a_msg)
        .fetch_optional(tx.conn())
        .await
        .unwrap();
    assert_eq!(seen_a.as_deref(), Some("hello from acme"));
    // Every table with a tenant column (found in the catalogue, so new tables are covered)
    // holds only A's rows from A's point of view.
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.columns
          WHERE table_schema = 'public' AND column_name = 'tenant_id' ORDER BY 1",
    )
    .fetch_all(tx.conn())
    .await
    .unwrap();
    assert!(tables.len() >= 13, "{tables:?}");
    for table in std::iter::once("tenants").chain(tables.iter().map(String::as_str)) {
        let foreign: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {table} WHERE {} <> $1",
            if table == "tenants" {
                "id"
            } else {
                "tenant_id"
            }
        ))
        .bind(a.0)
        .fetch_one(tx.conn())
        .await
        .unwrap();
        assert_eq!(foreign, 0, "{table} leaks rows of other tenants");
    }
    // Updates and deletes of B's rows touch nothing; inserting a row for B is refused.
    let updated = sqlx::query("UPDATE messages SET text = 'pwned' WHERE id = $1")
        .bind(b_msg)
        .execute(tx.conn())
        .await
        .unwrap();
    assert_eq!(updated.rows_affected(), 0);
    let insert = sqlx::query("INSERT INTO documents (id, tenant_id, title) VALUES ($1, $2, 'x')")
        .bind(uuid::Uuid::now_v7())
        .bind(b.0)
        .execute(tx.conn())
        .await;
    let err = insert.expect_err("row-level security refuses a row of another tenant");
    assert!(err.to_string().contains("row-level security"), "{err}");
    tx.rollback().await.unwrap();

    // Without a tenant, the application role sees nothing at all.
    let pool = app.db.pool();
    for table in std::iter::once("tenants").chain(tables.iter().map(String::as_str)) {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(n, 0, "{table} visible without a tenant");
    }
    // The application role cannot switch row-level security off.
    let bypass: bool = sqlx::query_scalar(
        "SELECT rolbypassrls OR rolsuper FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert!(!bypass);
    let off = sqlx::query("SET row_security = off").execute(pool).await;
    if off.is_ok() {
        let n: Result<i64, _> = sqlx::query_scalar("SELECT count(*) FROM messages")
            .fetch_one(pool)
            .await;
        assert!(
            n.is_err() || n.unwrap() == 0,
            "row_security=off must not reveal rows"
        );
    }
    app.stop().await;
}

/// Attack: the application connects with a privileged login. A superuser or BYPASSRLS login as
/// the application login is refused outright; one login that `SET ROLE`s to switchboard_app
/// (the one-`DATABASE_URL` setup) runs, but says loudly that a `RESET ROLE` would escape
/// row-level security and how to fix it; switchboard_app's own login raises nothing.
#[tokio::test]
async fn a_login_that_could_bypass_row_level_security_is_refused_or_flagged() {
    use sqlx::Connection;
    use switchboard_core::db::DbTarget;
    use switchboard_core::Db;
    let pg = shared_pg();
    let database = fresh_database().await;
    let owner = pg.url("postgres", &database);
    let mut admin = sqlx::PgConnection::connect(&owner).await.unwrap();
    let bypasser = format!("sb_bypass_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!(
        "CREATE ROLE {bypasser} LOGIN BYPASSRLS PASSWORD 'bypass-0123456789'"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    sqlx::query(&format!("GRANT switchboard_app TO {bypasser}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let bypass_url = format!(
        "postgres://{bypasser}:bypass-0123456789@127.0.0.1:{}/{database}",
        pg.port
    );
    let target = |app_url: Option<String>, owner_url: &str| DbTarget {
        owner_url: owner_url.to_owned(),
        app_url,
        max_connections: 2,
    };

    // As the application login: refused, superuser or BYPASSRLS.
    for url in [owner.clone(), bypass_url.clone()] {
        let err = Db::connect(&target(Some(url), &owner)).await.unwrap_err();
        assert!(
            err.to_string().contains("bypass row-level security"),
            "{err}"
        );
    }
    // One privileged login switching role: it runs as switchboard_app and says what is wrong.
    for url in [owner.clone(), bypass_url.clone()] {
        let db = Db::connect(&target(None, &url)).await.unwrap();
        let (user, login): (String, String) =
            sqlx::query_as("SELECT current_user::text, session_user::text")
                .fetch_one(db.pool())
                .await
                .unwrap();
        assert_eq!(user, "switchboard_app");
        assert_ne!(login, "switchboard_app");
        let warning = db.login_warning().expect("a privileged login is flagged");
        assert!(warning.contains("RESET ROLE"), "{warning}");
        assert!(
            warning.contains("SWITCHBOARD_APP_DATABASE_URL"),
            "the warning says how to fix it: {warning}"
        );
        db.close().await;
    }
    // switchboard_app's own login: nothing to say.
    let db = Db::connect(&target(Some(pg.url("switchboard_app", &database)), &owner))
        .await
        .unwrap();
    assert!(db.login_warning().is_none());
    db.close().await;

    sqlx::query(&format!("DROP ROLE {bypasser}"))
        .execute(&mut admin)
        .await
        .unwrap();
}
