//! Identity: users and sessions, API keys, roles enforced on every route of the router's own
//! table, isolation between tenants at the API, invitations and password resets over real SMTP,
//! throttling, and the append-only audit log.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use sqlx::Connection;
use switchboard_core::store::identity::Role;
use switchboard_runtime::auth::Access;

use crate::helpers::*;

const PASSWORD: &str = "a long enough password";

/// Who calls in the role matrix.
#[derive(Clone, Debug)]
enum Who {
    Nobody,
    Platform,
    /// A tenant role, signed in as a person.
    Session(Role),
    /// A tenant role, as an API key.
    Key(Role),
}

/// What the table says `who` gets on a route: `Some(status)` when refused, `None` when let
/// through to the handler (which may still answer 4xx about the request itself).
fn refusal(access: Access, who: &Who) -> Option<u16> {
    let role = match who {
        Who::Nobody => None,
        Who::Platform => Some(None),
        Who::Session(r) | Who::Key(r) => Some(Some(*r)),
    };
    match (access, role) {
        (Access::Public | Access::Signed, _) => None,
        (_, None) => Some(401),
        (Access::Authenticated, Some(_)) => None,
        (Access::Platform, Some(None)) => None,
        (Access::Platform, Some(Some(_))) => Some(403),
        (Access::Tenant(_) | Access::TenantOrPlatform(_), Some(None)) => None,
        (Access::Tenant(need) | Access::TenantOrPlatform(need), Some(Some(r))) => {
            (r < need).then_some(403)
        }
    }
}

/// A path of the table with every `{param}` filled with an id that exists nowhere.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                uuid::Uuid::now_v7().to_string()
            } else {
                seg.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Opens an event stream: its status, and the JSON body of a refusal (an admitted stream is
/// dropped unread).
async fn open_stream(app: &TestApp, path: &str, bearer: Option<&str>) -> (u16, Value) {
    let mut req = app.http.get(app.url(path));
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    if status == 200 {
        return (status, Value::Null);
    }
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_route_of_the_table_refuses_or_admits_each_role_as_declared() {
    let app = spawn_app().await;
    assert!(app.routes.len() > 80, "the table lists the whole router");
    let mut callers: Vec<(Who, Option<String>)> = vec![
        (Who::Nobody, None),
        (Who::Platform, Some(ADMIN_TOKEN.to_owned())),
    ];
    for (i, role) in Role::ALL.into_iter().enumerate() {
        let email = format!("matrix{i}@sahara.example");
        let token = app.signed_in(&email, &format!("m{i}"), role).await;
        callers.push((Who::Session(role), Some(token)));
        callers.push((Who::Key(role), Some(app.api_key("demo", role).await)));
    }
    let mut checked = 0;
    for route in &app.routes {
        if route.access == Access::Signed {
            // Providers' webhooks answer to their signatures (tests/channels_*.rs).
            continue;
        }
        // Signing out ends the session the other routes use: it is checked on its own below.
        if route.path.ends_with("/auth/sign-out") || route.path.ends_with("/auth/password") {
            continue;
        }
        let path = format!("{}?tenant=demo", concrete(&route.path));
        let body = route.mutates().then(|| json!({}));
        // The inbox's event stream never ends: only its status (and a refusal's body) is read.
        let stream = route.path.ends_with("/inbox/events");
        for (who, token) in &callers {
            let (status, answer) = if stream {
                open_stream(&app, &path, token.as_deref()).await
            } else {
                app.call(route.method.clone(), &path, token.as_deref(), body.clone())
                    .await
            };
            match refusal(route.access, who) {
                Some(expected) => assert_eq!(
                    status, expected,
                    "{} {} as {who:?} must be refused with {expected}: {answer}",
                    route.method, route.path
                ),
                None => assert!(
                    status != 401 && status != 403,
                    "{} {} as {who:?} must pass the access check, got {status}: {answer}",
                    route.method,
                    route.path
                ),
            }
            if matches!(status, 401 | 403) {
                assert!(answer["error"]["code"].is_string(), "JSON error: {answer}");
            }
            checked += 1;
        }
    }
    assert!(checked > 600, "{checked} calls");

    // Signing out: only people have sessions; it ends theirs.
    let token = app
        .signed_in("leaving@sahara.example", "leaving", Role::Viewer)
        .await;
    let (status, _) = app
        .call(Method::POST, "/api/v1/auth/sign-out", None, None)
        .await;
    assert_eq!(status, 401);
    let key = app.api_key("demo", Role::Viewer).await;
    let (status, body) = app
        .call(Method::POST, "/api/v1/auth/sign-out", Some(&key), None)
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = app
        .call(Method::POST, "/api/v1/auth/sign-out", Some(&token), None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = app
        .call(Method::GET, "/api/v1/auth/me", Some(&token), None)
        .await;
    assert_eq!(status, 401, "the session ended");
    app.stop().await;
}

/// Tenant B, with one of everything that can be asked for by id.
struct OtherTenant {
    channel: String,
    conversation: String,
    document: String,
    prompt: String,
    contact: String,
    booking: String,
    escalation: String,
    user: String,
    key: String,
    invitation: String,
}

async fn other_tenant(app: &TestApp) -> OtherTenant {
    let (status, body) = app
        .admin_post(
            "/api/v1/tenants",
            json!({"slug": "nour-cafe", "name": "مقهى نور", "default_language": "ar"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let b_tenant = body["tenant"]["id"].as_str().unwrap().to_owned();
    let channel = body["channels"][0]["id"].as_str().unwrap().to_owned();
    let webchat: switchboard_core::ChannelId = channel.parse().unwrap();
    app.post_chat(
        webchat,
        "b-customer-4e1d9c2b7a5f4e3d8c6b0a1f",
        "m1",
        "أريد التحدث مع شخص",
    )
    .await;
    app.wait_for_agent_replies(webchat, "b-customer-4e1d9c2b7a5f4e3d8c6b0a1f", 1)
        .await;
    let mut owner = app.owner().await;
    let (conversation, contact): (String, String) = sqlx::query_as(
        "SELECT c.id::text, c.contact_id::text FROM conversations c WHERE c.tenant_id = $1::uuid",
    )
    .bind(&b_tenant)
    .fetch_one(&mut owner)
    .await
    .unwrap();
    let escalation: String =
        sqlx::query_scalar("SELECT id::text FROM escalations WHERE tenant_id = $1::uuid")
            .bind(&b_tenant)
            .fetch_one(&mut owner)
            .await
            .unwrap();
    let (status, body) = app
        .admin_post(
            "/api/v1/knowledge/documents?tenant=nour-cafe",
            json!({"title": "Menu", "source": "menu.txt", "content": "Coffee 12 AED"}),
        )
        .await;
    assert!(status == 201 || status == 202, "{status} {body}");
    let document = body["document"]["id"].as_str().unwrap().to_owned();
    let (status, body) = app
        .admin_post(
            "/api/v1/prompts?tenant=nour-cafe",
            json!({"persona": "أنت نور"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let prompt = body["version"]["id"].as_str().unwrap().to_owned();
    let booking: String = sqlx::query_scalar(
        "INSERT INTO bookings (id, tenant_id, contact_id, starts_at, ends_at, hold, ics_uid,
                               idempotency_key, title, timezone)
         VALUES (gen_random_uuid(), $1::uuid, $2::uuid, now() + interval '1 day',
                 now() + interval '1 day 30 minutes',
                 tstzrange(now() + interval '1 day', now() + interval '1 day 30 minutes'),
                 'b-booking@test', 'b-booking', 'Tasting', 'Asia/Dubai')
         RETURNING id::text",
    )
    .bind(&b_tenant)
    .bind(&contact)
    .fetch_one(&mut owner)
    .await
    .unwrap_or_else(|e| panic!("insert a booking of B: {e}"));
    let b_admin = switchboard_runtime::users::create_user(
        &app.db,
        "owner@nour.example",
        "Nour",
        Some(PASSWORD.into()),
        false,
        Some(("nour-cafe", Role::TenantAdmin)),
    )
    .await
    .unwrap();
    let (key, _) =
        switchboard_runtime::users::create_key(&app.db, "nour-cafe", "b key", Role::Viewer)
            .await
            .unwrap();
    let invitation: String = sqlx::query_scalar(
        "INSERT INTO invitations (id, tenant_id, email, role, token_sha256, invited_by, expires_at)
         VALUES (gen_random_uuid(), $1::uuid, 'new@nour.example', 'viewer', sha256('x'::bytea),
                 'test', now() + interval '1 day')
         RETURNING id::text",
    )
    .bind(&b_tenant)
    .fetch_one(&mut owner)
    .await
    .unwrap();
    OtherTenant {
        channel,
        conversation,
        document,
        prompt,
        contact,
        booking,
        escalation,
        user: b_admin.user.id.to_string(),
        key: key.id.to_string(),
        invitation,
    }
}

/// A digest of every row an attack on another tenant could change.
async fn fingerprint(app: &TestApp) -> String {
    let mut owner = app.owner().await;
    sqlx::query_scalar(
        "SELECT md5(string_agg(x, ',' ORDER BY x)) FROM (
           SELECT 'ch' || id || enabled || name AS x FROM channels
           UNION ALL SELECT 'cv' || id || status || handoff_state FROM conversations
           UNION ALL SELECT 'm' || id FROM messages
           UNION ALL SELECT 'd' || id || version FROM documents
           UNION ALL SELECT 'p' || id || status FROM prompt_versions
           UNION ALL SELECT 'b' || id || status FROM bookings
           UNION ALL SELECT 'e' || id || status FROM escalations
           UNION ALL SELECT 'u' || user_id || role FROM memberships
           UNION ALL SELECT 'k' || id || coalesce(revoked_at::text, '') FROM api_keys
           UNION ALL SELECT 'i' || id || coalesce(revoked_at::text, '') FROM invitations
         ) t",
    )
    .fetch_one(&mut owner)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_credential_of_one_tenant_gets_404_for_every_resource_of_another_and_changes_nothing() {
    let app = spawn_app().await;
    let b = other_tenant(&app).await;
    let a_admin = app
        .signed_in("admin@sahara.example", "Admin A", Role::TenantAdmin)
        .await;
    let a_key = app.api_key("demo", Role::TenantAdmin).await;
    let before = fingerprint(&app).await;
    let attempts: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/api/v1/channels/{}", b.channel), None),
        (
            Method::GET,
            format!("/api/v1/channels/{}/health", b.channel),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/channels/{}", b.channel),
            Some(json!({"enabled": false})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/channels/{}", b.channel),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/conversations/{}", b.conversation),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/conversations/{}/messages", b.conversation),
            Some(json!({"text": "hello from A"})),
        ),
        (
            Method::POST,
            format!("/api/v1/conversations/{}/claim", b.conversation),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/api/v1/conversations/{}/close", b.conversation),
            Some(json!({})),
        ),
        (
            Method::GET,
            format!("/api/v1/escalations/{}", b.escalation),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/knowledge/documents/{}", b.document),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/knowledge/documents/{}", b.document),
            Some(json!({"title": "mine"})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/knowledge/documents/{}", b.document),
            None,
        ),
        (Method::GET, format!("/api/v1/prompts/{}", b.prompt), None),
        (
            Method::PUT,
            format!("/api/v1/prompts/{}", b.prompt),
            Some(json!({"persona": "x"})),
        ),
        (
            Method::POST,
            format!("/api/v1/prompts/{}/publish", b.prompt),
            Some(json!({})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/prompts/{}", b.prompt),
            None,
        ),
        (Method::GET, format!("/api/v1/leads/{}", b.contact), None),
        (Method::GET, format!("/api/v1/bookings/{}", b.booking), None),
        (
            Method::POST,
            format!("/api/v1/bookings/{}/cancel", b.booking),
            Some(json!({})),
        ),
        (Method::GET, format!("/api/v1/users/{}", b.user), None),
        (
            Method::PATCH,
            format!("/api/v1/users/{}", b.user),
            Some(json!({"role": "viewer"})),
        ),
        (Method::DELETE, format!("/api/v1/users/{}", b.user), None),
        (Method::DELETE, format!("/api/v1/keys/{}", b.key), None),
        (
            Method::DELETE,
            format!("/api/v1/users/invitations/{}", b.invitation),
            None,
        ),
    ];
    for token in [&a_admin, &a_key] {
        for (method, path, body) in &attempts {
            // Without ?tenant= (the credential names it) and with A's own slug alike.
            for p in [path.clone(), format!("{path}?tenant=demo")] {
                let (status, answer) = app
                    .call(method.clone(), &p, Some(token), body.clone())
                    .await;
                assert_eq!(status, 404, "{method} {p}: {answer}");
            }
        }
        // Naming tenant B outright is answered as if B did not exist.
        for path in ["/api/v1/conversations", "/api/v1/channels", "/api/v1/users"] {
            let (status, answer) = app
                .call(
                    Method::GET,
                    &format!("{path}?tenant=nour-cafe"),
                    Some(token),
                    None,
                )
                .await;
            assert_eq!(status, 404, "{path}: {answer}");
        }
        // Lists show A's own rows only, no ?tenant= needed.
        let (status, list) = app
            .call(Method::GET, "/api/v1/channels", Some(token), None)
            .await;
        assert_eq!(status, 200, "{list}");
        assert!(list["channels"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["id"] != b.channel.as_str()));
        let (status, list) = app
            .call(Method::GET, "/api/v1/conversations", Some(token), None)
            .await;
        assert_eq!(status, 200);
        assert!(!list.to_string().contains(&b.conversation));
        let (status, _) = app
            .call(Method::GET, "/api/v1/tenants", Some(token), None)
            .await;
        assert_eq!(
            status, 403,
            "platform lists are for platform administrators"
        );
    }
    assert_eq!(fingerprint(&app).await, before, "nothing of B changed");
    // The platform administrator sees every tenant's channels when it names none.
    let (_, all) = app.admin_get("/api/v1/channels").await;
    assert!(all["channels"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["id"] == b.channel.as_str()));
    app.stop().await;
}

#[tokio::test]
async fn browser_sessions_use_secure_cookies_need_csrf_to_change_things_and_end() {
    let app = spawn_app().await;
    switchboard_runtime::users::create_user(
        &app.db,
        "sara@sahara.example",
        "Sara",
        Some(PASSWORD.into()),
        false,
        Some(("demo", Role::SalesAgent)),
    )
    .await
    .unwrap();
    let r = app
        .http
        .post(app.url("/api/v1/auth/sign-in"))
        .json(&json!({"email": "Sara@Sahara.example", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let body: Value = r.json().await.unwrap();
    assert!(
        body.get("session_token").is_none(),
        "browsers never see the token"
    );
    let session_cookie = cookies
        .iter()
        .find(|c| c.starts_with("sb_session="))
        .expect("session cookie");
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(session_cookie.contains(attr), "{session_cookie} has {attr}");
    }
    let csrf_cookie = cookies.iter().find(|c| c.starts_with("sb_csrf=")).unwrap();
    assert!(
        !csrf_cookie.contains("HttpOnly"),
        "scripts read the CSRF token"
    );
    let session_value = session_cookie.split(';').next().unwrap().to_owned();
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    assert!(csrf_cookie.contains(&csrf));
    assert_eq!(body["memberships"][0]["slug"], "demo");
    assert_eq!(body["memberships"][0]["role"], "sales_agent");

    let with_cookie = |method: Method, path: &str| {
        app.http
            .request(method, app.url(path))
            .header("cookie", format!("{session_value}; sb_csrf={csrf}"))
    };
    // Reading needs only the cookie, and no ?tenant= for someone of one tenant.
    let me: Value = with_cookie(Method::GET, "/api/v1/auth/me")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["user"]["email"], "sara@sahara.example");
    let r = with_cookie(Method::GET, "/api/v1/conversations")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Changing something with the cookie alone is refused (another site could make the browser
    // send it); with the CSRF header it goes through.
    let s = session();
    app.post_chat(app.demo_channel, &s, "m1", "hello").await;
    app.wait_for_agent_replies(app.demo_channel, &s, 1).await;
    let mut owner = app.owner().await;
    let conv: String = sqlx::query_scalar(
        "SELECT c.id::text FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE k.external_id = $1",
    )
    .bind(&s)
    .fetch_one(&mut owner)
    .await
    .unwrap();
    let path = format!("/api/v1/conversations/{conv}/claim");
    let r = with_cookie(Method::POST, &path)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "csrf");
    let r = with_cookie(Method::POST, &path)
        .header("x-csrf-token", "not-the-token")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = with_cookie(Method::POST, &path)
        .header("x-csrf-token", &csrf)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    // The claim is hers, by name: the caller, never a name in the body.
    let claimed_by: Option<String> =
        sqlx::query_scalar("SELECT claimed_by FROM escalations WHERE conversation_id = $1::uuid")
            .bind(&conv)
            .fetch_one(&mut owner)
            .await
            .unwrap();
    assert_eq!(claimed_by.as_deref(), Some("Sara"));
    let r = with_cookie(
        Method::POST,
        &format!("/api/v1/conversations/{conv}/messages"),
    )
    .header("x-csrf-token", &csrf)
    .json(&json!({"text": "hi", "author": "someone else"}))
    .send()
    .await
    .unwrap();
    assert_eq!(
        r.status(),
        422,
        "author comes from the credential, never the body"
    );

    // Expiry: a session past its end is refused, as is one idle for too long.
    sqlx::query("UPDATE sessions SET expires_at = now() - interval '1 second'")
        .execute(&mut owner)
        .await
        .unwrap();
    let r = with_cookie(Method::GET, "/api/v1/auth/me")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let token = app.sign_in("sara@sahara.example", PASSWORD).await;
    let (status, _) = app
        .call(Method::GET, "/api/v1/auth/me", Some(&token), None)
        .await;
    assert_eq!(status, 200);
    sqlx::query(
        "UPDATE sessions SET last_seen_at = now() - interval '3 hours' WHERE revoked_at IS NULL",
    )
    .execute(&mut owner)
    .await
    .unwrap();
    let (status, _) = app
        .call(Method::GET, "/api/v1/auth/me", Some(&token), None)
        .await;
    assert_eq!(status, 401, "idle for longer than the idle limit");
    // Sign-out ends the session at once.
    let token = app.sign_in("sara@sahara.example", PASSWORD).await;
    let (status, _) = app
        .call(Method::POST, "/api/v1/auth/sign-out", Some(&token), None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = app
        .call(Method::GET, "/api/v1/auth/me", Some(&token), None)
        .await;
    assert_eq!(status, 401);
    // Passwords are stored as argon2id, never in clear.
    let hash: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE email = 'sara@sahara.example'")
            .fetch_one(&mut owner)
            .await
            .unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    app.stop().await;
}

#[tokio::test]
async fn repeated_wrong_passwords_lock_the_account_and_the_address_for_a_while() {
    let app = spawn_app_with(
        |s| {
            s.auth.max_failures_per_account = 3;
            s.auth.max_failures_per_ip = 5;
        },
        None,
    )
    .await;
    for email in ["a@sahara.example", "b@sahara.example"] {
        switchboard_runtime::users::create_user(
            &app.db,
            email,
            "",
            Some(PASSWORD.into()),
            false,
            Some(("demo", Role::Viewer)),
        )
        .await
        .unwrap();
    }
    let attempt = |email: &'static str, password: &'static str| {
        let app = &app;
        async move {
            let r = app
                .http
                .post(app.url("/api/v1/auth/sign-in"))
                .json(&json!({"email": email, "password": password}))
                .send()
                .await
                .unwrap();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            (r.status().as_u16(), retry, r.json::<Value>().await.unwrap())
        }
    };
    for _ in 0..2 {
        let (status, _, body) = attempt("a@sahara.example", "wrong password!").await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"]["code"], "invalid_credentials");
    }
    // The third failure locks the account: even the right password waits now.
    let (status, retry, _) = attempt("a@sahara.example", "wrong password!").await;
    assert_eq!(status, 429);
    assert!(retry.unwrap().parse::<u64>().unwrap() > 0);
    let (status, _, body) = attempt("a@sahara.example", PASSWORD).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "too_many_attempts");
    // An unknown account fails exactly like a wrong password (and counts for the address).
    let (status, _, body) = attempt("nobody@sahara.example", PASSWORD).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "invalid_credentials");
    // Five failures from one address lock the address, whichever account is tried.
    let (status, _, _) = attempt("b@sahara.example", "wrong password!").await;
    assert_eq!(status, 429, "the fifth failure from this address");
    let (status, _, _) = attempt("b@sahara.example", PASSWORD).await;
    assert_eq!(status, 429);
    // When the lock ends, the right password works again (and clears the account's count).
    let mut owner = app.owner().await;
    sqlx::query("UPDATE auth_throttle SET locked_until = now() - interval '1 second'")
        .execute(&mut owner)
        .await
        .unwrap();
    let (status, _, body) = attempt("a@sahara.example", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    app.stop().await;
}

#[tokio::test]
async fn api_keys_are_shown_once_stored_hashed_used_and_revoked() {
    let app = spawn_app().await;
    let admin = app
        .signed_in("admin@sahara.example", "Admin", Role::TenantAdmin)
        .await;
    let (status, created) = app
        .call(
            Method::POST,
            "/api/v1/keys",
            Some(&admin),
            Some(json!({"name": "CRM sync", "role": "viewer"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("sbk_"));
    let id = created["key"]["id"].as_str().unwrap().to_owned();
    let mut owner = app.owner().await;
    let stored: String =
        sqlx::query_scalar("SELECT (SELECT string_agg(t::text, ',') FROM api_keys t)")
            .fetch_one(&mut owner)
            .await
            .unwrap();
    assert!(!stored.contains(&secret[4..]), "only the digest is kept");
    let (status, list) = app
        .call(Method::GET, "/api/v1/keys", Some(&admin), None)
        .await;
    assert_eq!(status, 200);
    assert!(!list.to_string().contains(&secret[4..]), "never listed");
    assert!(list["keys"][0]["last_used_at"].is_null());
    // It works, with its role: reads yes, changes no.
    let (status, _) = app
        .call(Method::GET, "/api/v1/conversations", Some(&secret), None)
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .call(
            Method::PUT,
            "/api/v1/actions/settings",
            Some(&secret),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 403);
    let used = eventually(Duration::from_secs(5), || async {
        let (_, list) = app
            .call(Method::GET, "/api/v1/keys", Some(&admin), None)
            .await;
        !list["keys"][0]["last_used_at"].is_null()
    })
    .await;
    assert!(used, "last use is recorded");
    // A key cannot outrank its maker; a sales agent cannot make keys at all.
    let sales = app
        .signed_in("sales@sahara.example", "Sales", Role::SalesAgent)
        .await;
    let (status, _) = app
        .call(
            Method::POST,
            "/api/v1/keys",
            Some(&sales),
            Some(json!({"name": "x", "role": "viewer"})),
        )
        .await;
    assert_eq!(status, 403);
    // Revoked: refused at once.
    let (status, revoked) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/keys/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 200, "{revoked}");
    assert!(!revoked["key"]["revoked_at"].is_null());
    let (status, body) = app
        .call(Method::GET, "/api/v1/conversations", Some(&secret), None)
        .await;
    assert_eq!(status, 401, "{body}");
    // Wrong shapes of credential are refused the same way.
    for bad in ["sbk_nope", "sbs_nope", "not-a-token", ""] {
        let (status, _) = app
            .call(
                Method::GET,
                "/api/v1/conversations?tenant=demo",
                Some(bad),
                None,
            )
            .await;
        assert_eq!(status, 401, "{bad:?}");
    }
    app.stop().await;
}

/// The text of a stored email: headers and body, quoted-printable soft breaks undone.
fn mail_text(raw: &str) -> String {
    raw.replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

fn token_in(mail: &str) -> String {
    let text = mail_text(mail);
    let at = text.find("#token=").expect("a link with a token") + "#token=".len();
    text[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}

async fn email_channel(app: &TestApp, smtpd: &Smtpd) {
    let (status, body) = app
        .admin_post(
            "/api/v1/channels?tenant=demo",
            json!({"kind": "email", "name": "Email", "config": {
                "from_address": "team@sahara.example", "smtp_host": "127.0.0.1",
                "smtp_port": smtpd.port, "smtp_security": "none",
                "webhook_signing_key": "mg-signing-key-0001"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn a_colleague_is_invited_by_email_joins_with_a_password_and_the_link_works_once() {
    let smtpd = Smtpd::start().await;
    let app = spawn_app().await;
    let admin = app
        .signed_in("admin@sahara.example", "Amira", Role::TenantAdmin)
        .await;
    // No email channel and no platform SMTP: the invitation is refused and not kept.
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/users/invitations",
            Some(&admin),
            Some(json!({"email": "layla@sahara.example", "role": "sales_agent"})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "no_email_sender");
    let (_, open) = app
        .call(Method::GET, "/api/v1/users/invitations", Some(&admin), None)
        .await;
    assert_eq!(open["invitations"].as_array().unwrap().len(), 0);

    email_channel(&app, &smtpd).await;
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/users/invitations",
            Some(&admin),
            Some(json!({"email": "Layla@Sahara.example", "role": "sales_agent"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["sent_via"], "the tenant's email channel");
    let mails = smtpd.wait_for(1).await;
    assert!(
        mails[0].contains("To: layla@sahara.example"),
        "{}",
        mails[0]
    );
    assert!(mail_text(&mails[0]).contains("Amira invites you"));
    let token = token_in(&mails[0]);
    assert!(token.starts_with("sbl_"), "{token}");
    let mut owner = app.owner().await;
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM invitations WHERE token_sha256 = sha256(convert_to($1, 'UTF8'))",
    )
    .bind(&token)
    .fetch_one(&mut owner)
    .await
    .unwrap();
    assert_eq!(stored, 1, "the link's digest is what is kept");

    // The page behind the link is served by the binary.
    let page = app
        .http
        .get(app.url("/console/accept-invitation"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("/api/v1/auth/invitations/accept"));

    // A weak password is refused; a good one makes the account and the membership.
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/auth/invitations/accept",
            None,
            Some(json!({"token": token, "password": "short"})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/auth/invitations/accept",
            None,
            Some(json!({"token": token, "password": PASSWORD, "display_name": "Layla"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tenant"]["slug"], "demo");
    assert_eq!(body["role"], "sales_agent");
    let (status, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/invitations/accept",
            None,
            Some(json!({"token": token, "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, 400, "the link works once");
    let layla = app.sign_in("layla@sahara.example", PASSWORD).await;
    let (_, me) = app
        .call(Method::GET, "/api/v1/auth/me", Some(&layla), None)
        .await;
    assert_eq!(me["memberships"][0]["role"], "sales_agent");
    assert_eq!(me["user"]["display_name"], "Layla");
    // Her admin sees her, can change her role, and cannot remove the last admin.
    let (_, people) = app
        .call(Method::GET, "/api/v1/users", Some(&admin), None)
        .await;
    let layla_id = people["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "layla@sahara.example")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{layla_id}"),
            Some(&admin),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(status, 200);
    let admin_id = people["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "admin@sahara.example")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/users/{admin_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 409, "{body}");
    // A revoked invitation's link stops working.
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/users/invitations",
            Some(&admin),
            Some(json!({"email": "omar@sahara.example", "role": "viewer"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let omar_token = token_in(&smtpd.wait_for(2).await[1]);
    let id = body["invitation"]["id"].as_str().unwrap();
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/users/invitations/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/invitations/accept",
            None,
            Some(json!({"token": omar_token, "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, 400);
    app.stop().await;
}

#[tokio::test]
async fn a_forgotten_password_is_reset_by_a_link_that_works_once_and_ends_old_sessions() {
    let smtpd = Smtpd::start().await;
    let app = spawn_app().await;
    email_channel(&app, &smtpd).await;
    let old = app
        .signed_in("sara@sahara.example", "Sara", Role::Viewer)
        .await;
    // Unknown addresses get the same answer and no email.
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/auth/password-reset",
            None,
            Some(json!({"email": "nobody@sahara.example"})),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let (status, same) = app
        .call(
            Method::POST,
            "/api/v1/auth/password-reset",
            None,
            Some(json!({"email": "sara@sahara.example"})),
        )
        .await;
    assert_eq!((status, &same), (202, &body), "no account enumeration");
    let mails = smtpd.wait_for(1).await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("To: sara@sahara.example"));
    let token = token_in(&mails[0]);
    let new_password = "another long password";
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/auth/password-reset/confirm",
            None,
            Some(json!({"token": token, "password": new_password})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = app
        .call(Method::GET, "/api/v1/auth/me", Some(&old), None)
        .await;
    assert_eq!(status, 401, "every earlier session ended");
    let (status, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/password-reset/confirm",
            None,
            Some(json!({"token": token, "password": "yet another password"})),
        )
        .await;
    assert_eq!(status, 400, "the link works once");
    let (status, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/sign-in",
            None,
            Some(json!({"email": "sara@sahara.example", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, 401, "the old password is gone");
    app.sign_in("sara@sahara.example", new_password).await;
    app.stop().await;
}

#[tokio::test]
async fn changes_are_audited_with_who_and_redacted_secrets_and_the_log_cannot_be_altered() {
    let app = spawn_app().await;
    let admin = app
        .signed_in("admin@sahara.example", "Amira", Role::TenantAdmin)
        .await;
    let key = app.api_key("demo", Role::TenantAdmin).await;
    let (status, body) = app
        .call(
            Method::PUT,
            "/api/v1/agent/settings",
            Some(&admin),
            Some(json!({"base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key": "sk-very-secret"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/prompts",
            Some(&key),
            Some(json!({"persona": "You are Noor."})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["version"]["author"], "API key \"test key\"",
        "who wrote it"
    );
    let (status, page) = app
        .call(Method::GET, "/api/v1/audit", Some(&admin), None)
        .await;
    assert_eq!(status, 200, "{page}");
    let entries = page["entries"].as_array().unwrap();
    let settings = entries
        .iter()
        .find(|e| e["path"] == "/api/v1/agent/settings")
        .expect("the settings change is logged");
    assert_eq!(settings["actor_kind"], "user");
    assert_eq!(settings["actor_label"], "Amira");
    assert_eq!(settings["method"], "PUT");
    assert_eq!(settings["action"], "agent.settings");
    // Before and after are the settings as the API shows them: the key only as `has_api_key`.
    assert!(
        settings["before"].is_null(),
        "never saved before: {settings}"
    );
    assert_eq!(settings["after"]["model"], "m");
    assert_eq!(settings["after"]["has_api_key"], true);
    assert!(!page.to_string().contains("sk-very-secret"));
    let prompt = entries
        .iter()
        .find(|e| e["path"] == "/api/v1/prompts")
        .unwrap();
    assert_eq!(prompt["actor_kind"], "api_key");
    // A second change shows what it replaced; a body the handler does not describe is kept
    // as the request, its secrets redacted.
    let (status, body) = app
        .call(
            Method::PUT,
            "/api/v1/agent/settings",
            Some(&admin),
            Some(json!({"model": "m2"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/channels",
            Some(&admin),
            Some(json!({"kind": "whatsapp", "name": "WA", "config": {
                "phone_number_id": "1234", "api_base_url": "http://127.0.0.1:9",
                "app_secret": "wa-very-secret", "access_token": "wa-very-secret-too",
                "verify_token": "wa-verify-secret"}})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (_, page) = app
        .call(Method::GET, "/api/v1/audit?limit=2", Some(&admin), None)
        .await;
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries[0]["path"], "/api/v1/channels");
    assert_eq!(entries[0]["after"]["config"]["access_token"], "[REDACTED]");
    assert_eq!(entries[0]["after"]["config"]["app_secret"], "[REDACTED]");
    assert_eq!(entries[0]["after"]["name"], "WA");
    assert_eq!(
        (
            &entries[1]["before"]["model"],
            &entries[1]["after"]["model"]
        ),
        (&json!("m"), &json!("m2"))
    );
    assert!(!page.to_string().contains("wa-very-secret"));
    assert!(!page.to_string().contains("wa-verify-secret"));
    // Filters and pages.
    let (_, only) = app
        .call(
            Method::GET,
            "/api/v1/audit?actor=Amira&limit=1",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(only["entries"].as_array().unwrap().len(), 1);
    assert_eq!(only["entries"][0]["actor_label"], "Amira");
    let cursor = only["next_cursor"].as_str().expect("a next page");
    let (status, next) = app
        .call(
            Method::GET,
            &format!("/api/v1/audit?actor=Amira&limit=1&cursor={cursor}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_ne!(next["entries"][0]["id"], only["entries"][0]["id"]);
    // A tenant's log shows its own entries only; a viewer may not read it.
    let viewer = app.api_key("demo", Role::Viewer).await;
    let (status, _) = app
        .call(Method::GET, "/api/v1/audit", Some(&viewer), None)
        .await;
    assert_eq!(status, 403);
    // Append-only, for the application role and even for the owner.
    let mut as_app = app.db.pool().acquire().await.unwrap();
    for sql in [
        "UPDATE audit_log SET actor_label = 'someone else'",
        "DELETE FROM audit_log",
    ] {
        let err = sqlx::query(sql).execute(&mut *as_app).await.unwrap_err();
        assert!(
            err.to_string().contains("permission denied"),
            "{sql}: {err}"
        );
    }
    let mut owner = app.owner().await;
    let err = sqlx::query("DELETE FROM audit_log")
        .execute(&mut owner)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    app.stop().await;
}

#[tokio::test]
async fn escalation_links_open_for_a_signed_in_colleague() {
    let app = spawn_app().await;
    let s = session();
    app.post_chat(app.demo_channel, &s, "m1", "I want to talk to a person")
        .await;
    app.wait_for_agent_replies(app.demo_channel, &s, 1).await;
    let mut owner = app.owner().await;
    let (conv, tenant): (String, String) = sqlx::query_as(
        "SELECT c.id::text, c.tenant_id::text FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE k.external_id = $1",
    )
    .bind(&s)
    .fetch_one(&mut owner)
    .await
    .unwrap();
    // The notification links to the console's page of the conversation, which reads it with
    // the colleague's session cookie from this route (the browser test follows the link itself).
    let page = app
        .http
        .get(app.url(&format!("/console?tenant={tenant}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "the console page is public");
    let link = format!("/api/v1/conversations/{conv}?tenant={tenant}");
    let r = app.http.get(app.url(&link)).send().await.unwrap();
    assert_eq!(r.status(), 401, "not without signing in");
    let token = app
        .signed_in("layla@sahara.example", "Layla", Role::SalesAgent)
        .await;
    let r = app
        .http
        .get(app.url(&link))
        .header("cookie", format!("sb_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let view: Value = r.json().await.unwrap();
    assert_eq!(view["handoff_state"], "waiting");
    owner.close().await.ok();
    app.stop().await;
}

/// Calls every route of the table that changes something, once, successfully, in an order that
/// gives each what it needs; then every one of them must have left its audit entry. Which
/// routes those are comes from the router's table: a route added to it without a call here
/// fails the test by name.
#[tokio::test]
async fn every_route_that_changes_something_leaves_an_audit_entry() {
    let smtpd = Smtpd::start().await;
    let app = spawn_app().await;
    email_channel(&app, &smtpd).await;
    // A platform administrator who is also the demo tenant's administrator: every route is
    // hers to call.
    switchboard_runtime::users::create_user(
        &app.db,
        "admin@sahara.example",
        "Amira",
        Some(PASSWORD.into()),
        true,
        Some(("demo", Role::TenantAdmin)),
    )
    .await
    .unwrap();
    let admin = app.sign_in("admin@sahara.example", PASSWORD).await;
    let mut owner = app.owner().await;
    let mut called: Vec<(String, String, String)> = Vec::new();
    // One successful call of `template` (path `path`), remembered for the check at the end.
    macro_rules! call {
        ($method:expr, $template:expr, $path:expr, $body:expr) => {{
            let path: String = $path;
            let (status, body) = app.call($method, &path, Some(&admin), $body).await;
            assert!(
                (200..300).contains(&status),
                "{} {}: {status} {body}",
                $method,
                path
            );
            called.push(($method.to_string(), $template.to_owned(), path.clone()));
            body
        }};
    }
    use Method as M;

    // Tenants and people.
    call!(
        M::POST,
        "/api/v1/tenants",
        "/api/v1/tenants".into(),
        Some(json!({"slug": "audit-co", "name": "Audit Co"}))
    );
    let inv = call!(
        M::POST,
        "/api/v1/users/invitations",
        "/api/v1/users/invitations".into(),
        Some(json!({"email": "new@sahara.example", "role": "viewer"}))
    );
    let inv_id = inv["invitation"]["id"].as_str().unwrap().to_owned();
    call!(
        M::DELETE,
        "/api/v1/users/invitations/{invitation_id}",
        format!("/api/v1/users/invitations/{inv_id}"),
        None
    );
    let colleague = switchboard_runtime::users::create_user(
        &app.db,
        "colleague@sahara.example",
        "Col",
        Some(PASSWORD.into()),
        false,
        Some(("demo", Role::Viewer)),
    )
    .await
    .unwrap()
    .user
    .id;
    call!(
        M::PATCH,
        "/api/v1/users/{user_id}",
        format!("/api/v1/users/{colleague}"),
        Some(json!({"role": "sales_agent"}))
    );
    call!(
        M::DELETE,
        "/api/v1/users/{user_id}",
        format!("/api/v1/users/{colleague}"),
        None
    );
    let key = call!(
        M::POST,
        "/api/v1/keys",
        "/api/v1/keys".into(),
        Some(json!({"name": "k", "role": "viewer"}))
    );
    let key_id = key["key"]["id"].as_str().unwrap().to_owned();
    call!(
        M::DELETE,
        "/api/v1/keys/{key_id}",
        format!("/api/v1/keys/{key_id}"),
        None
    );

    // Channels.
    let ch = call!(
        M::POST,
        "/api/v1/channels",
        "/api/v1/channels".into(),
        Some(json!({"kind": "webchat", "name": "Second chat"}))
    );
    let ch_id = ch["channel"]["id"].as_str().unwrap().to_owned();
    call!(
        M::PATCH,
        "/api/v1/channels/{channel_id}",
        format!("/api/v1/channels/{ch_id}"),
        Some(json!({"name": "Renamed"}))
    );
    call!(
        M::DELETE,
        "/api/v1/channels/{channel_id}",
        format!("/api/v1/channels/{ch_id}"),
        None
    );

    // Settings.
    call!(
        M::PUT,
        "/api/v1/agent/settings",
        "/api/v1/agent/settings".into(),
        Some(json!({"base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key": "sk-x"}))
    );
    call!(
        M::PUT,
        "/api/v1/knowledge/settings",
        "/api/v1/knowledge/settings".into(),
        Some(json!({"provider": "local"}))
    );
    call!(
        M::PUT,
        "/api/v1/actions/settings",
        "/api/v1/actions/settings".into(),
        Some(json!({"expected_wait_minutes": 15}))
    );
    let hours: serde_json::Map<String, Value> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .map(|d| (d.to_string(), json!([["00:00", "23:59"]])))
        .collect();
    call!(
        M::PUT,
        "/api/v1/availability",
        "/api/v1/availability".into(),
        Some(json!({
        "timezone": "Asia/Dubai", "weekly_hours": hours, "slot_minutes": 30, "buffer_minutes": 0,
        "min_notice_minutes": 0, "horizon_days": 14, "meeting_title": "Consultation"}))
    );

    // Bookings.
    let (_, slots) = app
        .call(
            M::GET,
            "/api/v1/availability/slots?limit=3",
            Some(&admin),
            None,
        )
        .await;
    let start = |i: usize| slots["slots"][i]["start"].as_str().unwrap().to_owned();
    let booking = call!(
        M::POST,
        "/api/v1/bookings",
        "/api/v1/bookings".into(),
        Some(
            json!({"start": start(0), "customer_name": "Omar", "customer_email": "omar@customer.example"})
        )
    );
    let b_id = booking["booking"]["id"].as_str().unwrap().to_owned();
    let moved = call!(
        M::POST,
        "/api/v1/bookings/{booking_id}/reschedule",
        format!("/api/v1/bookings/{b_id}/reschedule"),
        Some(json!({"start": start(2)}))
    );
    let moved_id = moved["booking"]["id"].as_str().unwrap().to_owned();
    call!(
        M::POST,
        "/api/v1/bookings/{booking_id}/cancel",
        format!("/api/v1/bookings/{moved_id}/cancel"),
        Some(json!({}))
    );

    // Knowledge.
    let doc = call!(
        M::POST,
        "/api/v1/knowledge/documents",
        "/api/v1/knowledge/documents".into(),
        Some(json!({"title": "FAQ", "source": "faq.txt", "content": "We open at nine."}))
    );
    let d_id = doc["document"]["id"].as_str().unwrap().to_owned();
    call!(
        M::PATCH,
        "/api/v1/knowledge/documents/{document_id}",
        format!("/api/v1/knowledge/documents/{d_id}"),
        Some(json!({"title": "FAQ 2"}))
    );
    let r = app
        .http
        .put(app.url(&format!("/api/v1/knowledge/documents/{d_id}/content")))
        .bearer_auth(&admin)
        .header("content-type", "text/plain")
        .body("We open at ten.")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
    called.push((
        "PUT".into(),
        "/api/v1/knowledge/documents/{document_id}/content".into(),
        format!("/api/v1/knowledge/documents/{d_id}/content"),
    ));
    call!(
        M::POST,
        "/api/v1/knowledge/documents/{document_id}/reindex",
        format!("/api/v1/knowledge/documents/{d_id}/reindex"),
        None
    );
    call!(
        M::DELETE,
        "/api/v1/knowledge/documents/{document_id}",
        format!("/api/v1/knowledge/documents/{d_id}"),
        None
    );

    // Prompts.
    let v1 = call!(
        M::POST,
        "/api/v1/prompts",
        "/api/v1/prompts".into(),
        Some(json!({"persona": "You are Noor."}))
    );
    let v1_id = v1["version"]["id"].as_str().unwrap().to_owned();
    call!(
        M::PUT,
        "/api/v1/prompts/{version_id}",
        format!("/api/v1/prompts/{v1_id}"),
        Some(json!({"persona": "You are Noor of Sahara."}))
    );
    call!(
        M::POST,
        "/api/v1/prompts/{version_id}/publish",
        format!("/api/v1/prompts/{v1_id}/publish"),
        Some(json!({}))
    );
    let v2 = call!(
        M::POST,
        "/api/v1/prompts",
        "/api/v1/prompts".into(),
        Some(json!({"persona": "Draft to throw away."}))
    );
    let v2_id = v2["version"]["id"].as_str().unwrap().to_owned();
    call!(
        M::DELETE,
        "/api/v1/prompts/{version_id}",
        format!("/api/v1/prompts/{v2_id}"),
        None
    );
    let n = v1["version"]["version"].as_i64().unwrap();
    call!(
        M::POST,
        "/api/v1/prompts/rollback",
        "/api/v1/prompts/rollback".into(),
        Some(json!({"version": n}))
    );

    // The inbox: a conversation, taken, answered, handed back, closed.
    let s = session();
    app.post_chat(app.demo_channel, &s, "m1", "hello").await;
    app.wait_for_agent_replies(app.demo_channel, &s, 1).await;
    let (conv,): (String,) = sqlx::query_as(
        "SELECT c.id::text FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE k.external_id = $1",
    ).bind(&s).fetch_one(&mut owner).await.unwrap();
    call!(
        M::POST,
        "/api/v1/conversations/{conversation_id}/claim",
        format!("/api/v1/conversations/{conv}/claim"),
        Some(json!({}))
    );
    call!(
        M::POST,
        "/api/v1/conversations/{conversation_id}/messages",
        format!("/api/v1/conversations/{conv}/messages"),
        Some(json!({"text": "Hello, Amira here."}))
    );
    call!(
        M::POST,
        "/api/v1/conversations/{conversation_id}/handback",
        format!("/api/v1/conversations/{conv}/handback"),
        Some(json!({"note": "done"}))
    );
    call!(
        M::POST,
        "/api/v1/conversations/{conversation_id}/close",
        format!("/api/v1/conversations/{conv}/close"),
        Some(json!({}))
    );

    // Operations: a parked event retried, a failed CRM delivery retried.
    let event: String = sqlx::query_scalar(
        "UPDATE inbound_events SET status = 'parked'
          WHERE id = (SELECT id FROM inbound_events WHERE conversation_id = $1::uuid LIMIT 1)
          RETURNING id::text",
    )
    .bind(&conv)
    .fetch_one(&mut owner)
    .await
    .unwrap();
    call!(
        M::POST,
        "/api/v1/events/{event_id}/retry",
        format!("/api/v1/events/{event}/retry"),
        Some(json!({}))
    );
    let effect: String = sqlx::query_scalar(
        "INSERT INTO effects (id, tenant_id, kind, purpose, idempotency_key, payload, status, attempts)
         VALUES (gen_random_uuid(), $1, 'webhook', 'crm_lead', 'audit-test', '{}', 'failed', 8)
         RETURNING id::text",
    ).bind(app.demo_tenant.0).fetch_one(&mut owner).await.unwrap();
    call!(
        M::POST,
        "/api/v1/crm/deliveries/{effect_id}/retry",
        format!("/api/v1/crm/deliveries/{effect}/retry"),
        Some(json!({}))
    );

    // Last, the caller's own account: a new password (which ends the session), then signing
    // out of a fresh one.
    call!(
        M::POST,
        "/api/v1/auth/password",
        "/api/v1/auth/password".into(),
        Some(json!({"current_password": PASSWORD, "new_password": "a brand new password"}))
    );
    let fresh = app
        .sign_in("admin@sahara.example", "a brand new password")
        .await;
    let (status, _) = app
        .call(M::POST, "/api/v1/auth/sign-out", Some(&fresh), None)
        .await;
    assert_eq!(status, 204);
    called.push((
        "POST".into(),
        "/api/v1/auth/sign-out".into(),
        "/api/v1/auth/sign-out".into(),
    ));

    // Every changing route of the table was called…
    let mut missing: Vec<String> = app
        .routes
        .iter()
        .filter(|r| r.changes)
        .filter(|r| {
            !called
                .iter()
                .any(|(m, t, _)| *m == r.method.as_str() && *t == r.path)
        })
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    missing.sort();
    assert!(
        missing.is_empty(),
        "routes that change something but have no call here: {missing:#?}"
    );
    // …and each call left its entry, naming the caller, with secrets redacted.
    for (method, template, path) in &called {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM audit_log
              WHERE method = $1 AND path = $2 AND actor_label = 'Amira' AND actor_kind = 'user'",
        )
        .bind(method)
        .bind(path)
        .fetch_one(&mut owner)
        .await
        .unwrap();
        assert!(
            n >= 1,
            "no audit entry by Amira for {method} {template} ({path})"
        );
    }
    let leaked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE after::text LIKE '%sk-x%' OR after::text LIKE '%brand new%'",
    )
    .fetch_one(&mut owner)
    .await
    .unwrap();
    assert_eq!(leaked, 0, "secrets never reach the log");
    // Entries with domain detail say what changed, before and after.
    let (before, after): (Value, Value) =
        sqlx::query_as("SELECT before, after FROM audit_log WHERE action = 'user.role'")
            .fetch_one(&mut owner)
            .await
            .unwrap();
    assert_eq!(
        (before["role"].clone(), after["role"].clone()),
        (json!("viewer"), json!("sales_agent"))
    );
    let (before, after): (Value, Value) =
        sqlx::query_as("SELECT before, after FROM audit_log WHERE action = 'channel.update'")
            .fetch_one(&mut owner)
            .await
            .unwrap();
    assert_eq!(
        (before["name"].clone(), after["name"].clone()),
        (json!("Second chat"), json!("Renamed"))
    );
    // Deletions keep what was deleted; edits of settings, documents and prompts say what they
    // replaced.
    for action in [
        "channel.delete",
        "document.update",
        "document.delete",
        "prompt.update",
        "prompt.delete",
        "user.remove",
    ] {
        let before: Option<Value> =
            sqlx::query_scalar("SELECT before FROM audit_log WHERE action = $1")
                .bind(action)
                .fetch_one(&mut owner)
                .await
                .unwrap_or_else(|e| panic!("no {action} entry: {e}"));
        assert!(
            before.is_some_and(|b| b.is_object()),
            "{action}: the state before"
        );
    }
    for action in [
        "agent.settings",
        "knowledge.settings",
        "actions.settings",
        "availability.update",
    ] {
        let after: Option<Value> =
            sqlx::query_scalar("SELECT after FROM audit_log WHERE action = $1 LIMIT 1")
                .bind(action)
                .fetch_one(&mut owner)
                .await
                .unwrap_or_else(|e| panic!("no {action} entry: {e}"));
        assert!(
            after.is_some_and(|a| a.is_object()),
            "{action}: the state after"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn without_an_email_channel_invitations_leave_through_the_platform_smtp_account() {
    let smtpd = Smtpd::start().await;
    let port = smtpd.port;
    let app = spawn_app_with(
        move |s| {
            s.smtp = Some(switchboard_runtime::auth::mail::PlatformSmtp {
                host: "127.0.0.1".into(),
                port,
                security: "none".into(),
                username: None,
                password: None,
                from_address: "no-reply@switchboard.example".into(),
                from_name: Some("Switchboard".into()),
            })
        },
        None,
    )
    .await;
    let (status, body) = app
        .admin_post(
            "/api/v1/users/invitations?tenant=demo",
            json!({"email": "layla@sahara.example", "role": "viewer"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["sent_via"], "the platform SMTP account");
    let mail = &smtpd.wait_for(1).await[0];
    assert!(
        mail.contains("From: Switchboard <no-reply@switchboard.example>"),
        "{mail}"
    );
    assert!(mail_text(mail).contains("platform admin (bootstrap token) invites you"));
    app.stop().await;
}
