//! The OpenAPI 3.1 document of the HTTP surface, served at `GET /api/v1/openapi.json` and read
//! by the interactive reference at `/docs`.
//!
//! Two sources make it, so neither can drift from the code:
//!
//! - the handlers: each carries `#[utoipa::path]` with its parameters, request body and answers,
//!   whose shapes are the Rust types the handler actually takes and returns (`ToSchema`);
//! - the route table ([`crate::http::router`]): who may call each operation is **not** written
//!   in the handlers' annotations. [`Document::build`] walks the table's [`RouteSpec`]s and, for
//!   each operation, sets its security requirement from the route's [`Access`], the
//!   `x-switchboard-access` extension (the access's label) and `x-switchboard-audited`, adds a
//!   sentence saying what is needed, the `tenant` query parameter of tenant routes, and the
//!   errors every route of that access can give (401, 403, 400/404 for the tenant, 503 while
//!   the database is away), all with the one `Error` schema.
//!
//! The tests check that the document lists exactly the table's routes with their access, and
//! validate it with an independent OpenAPI validator.

use std::sync::Arc;

use axum::http::{header, Method};
use axum::response::IntoResponse;
use axum::Extension;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, OpenApi as Spec, Ref, RefOr, Required, ResponseBuilder};
use utoipa::OpenApi;

use super::table::RouteSpec;
use super::{
    admin, agent, analytics, bookings, channels, conversations, health, identity, inbox, knowledge,
    leads, metrics, pages, webchat, webhooks,
};
use crate::auth::Access;

/// The name of the schema of every error body.
pub const ERROR_SCHEMA: &str = "Error";
/// The security scheme of `Authorization: Bearer` credentials.
pub const BEARER: &str = "bearer";
/// The security scheme of the browser session cookie.
pub const SESSION: &str = "session";
/// The extension naming the access an operation needs ([`Access::label`]).
pub const ACCESS_EXTENSION: &str = "x-switchboard-access";
/// The extension saying whether a successful call is written to the audit log.
pub const AUDITED_EXTENSION: &str = "x-switchboard-audited";

/// The document, serialized once when the router is built.
#[derive(Clone, Debug)]
pub struct Document(Arc<str>);

impl Document {
    /// The document of the server whose route table is `specs`.
    pub fn build(specs: &[RouteSpec]) -> Self {
        let spec = openapi(specs);
        Self(
            serde_json::to_string(&spec)
                .expect("the OpenAPI document serializes")
                .into(),
        )
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `GET /api/v1/openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "reference",
    responses((status = 200, description = "The OpenAPI 3.1 document of this server", body = Object))
)]
pub async fn document(Extension(document): Extension<Document>) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        document.0.to_string(),
    )
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchboard API",
        description = "The HTTP API of Switchboard, a multi-tenant runtime for conversational AI agents: \
the public web chat, signing in, a tenant's people and API keys, channels, the inbox and handoff, \
bookings, the knowledge base, the agent and its prompts, leads, analytics, the audit log, \
and the providers' webhooks.\n\n\
**Credentials.** Send `Authorization: Bearer <credential>` with an API key (`sbk_…`, one tenant, \
one role), a session token (`sbs_…`, from `POST /api/v1/auth/sign-in` with `return_token: true`) \
or the bootstrap token (`SWITCHBOARD_ADMIN_TOKEN`, a platform administrator). Browsers use the \
`sb_session` cookie set by sign-in; a request that changes something with the cookie must repeat \
the CSRF token in `X-CSRF-Token`.\n\n\
**Roles.** `viewer` < `sales_agent` < `tenant_admin`; a platform administrator has every role in \
every tenant. Each operation says what it needs (and `x-switchboard-access` names it). Tenant \
routes act for the credential's tenant; people who belong to several, and platform \
administrators, name it with `?tenant=<slug or id>`. Another tenant's resources answer 404.\n\n\
**Errors** are `{\"error\": {\"code\", \"message\"}}` with the status that fits; `code` is stable.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        document,
        health::healthz,
        health::readyz,
        metrics::render,
        pages::index,
        pages::chat,
        pages::widget,
        pages::accept_invitation,
        pages::reset_password,
        pages::docs,
        pages::console,
        pages::console_asset,
        webchat::demo_channels,
        webchat::channel_info,
        webchat::post_message,
        webchat::history,
        webchat::events,
        identity::sign_in,
        identity::sign_out,
        identity::me,
        identity::change_password,
        identity::request_password_reset,
        identity::confirm_password_reset,
        identity::accept_invitation,
        admin::list_tenants,
        admin::create_tenant,
        identity::list_all_users,
        identity::list_members,
        identity::list_invitations,
        identity::invite,
        identity::revoke_invitation,
        identity::show_member,
        identity::update_member,
        identity::remove_member,
        identity::list_keys,
        identity::create_key,
        identity::revoke_key,
        identity::list_audit,
        analytics::get,
        analytics::series,
        admin::list_channels,
        channels::create,
        channels::show,
        channels::patch,
        channels::remove,
        channels::health,
        bookings::get_availability,
        bookings::put_availability,
        bookings::list_slots,
        bookings::list,
        bookings::create,
        bookings::show,
        bookings::cancel,
        bookings::reschedule,
        inbox::events,
        conversations::list,
        conversations::show,
        conversations::reply,
        conversations::claim,
        conversations::hand_back,
        conversations::close,
        conversations::list_escalations,
        conversations::show_escalation,
        admin::list_parked,
        admin::retry_parked,
        knowledge::list_documents,
        knowledge::create_document,
        knowledge::get_document,
        knowledge::patch_document,
        knowledge::delete_document,
        knowledge::put_content,
        knowledge::reindex_document,
        knowledge::search,
        knowledge::get_settings,
        knowledge::put_settings,
        agent::get_settings,
        agent::put_settings,
        agent::get_usage,
        agent::list_alerts,
        agent::list_tools,
        agent::list_prompts,
        agent::create_prompt,
        agent::diff_prompts,
        agent::rollback_prompt,
        agent::preview,
        agent::get_prompt,
        agent::update_prompt,
        agent::delete_prompt,
        agent::publish_prompt,
        leads::list,
        leads::show,
        leads::deliveries,
        leads::retry,
        leads::get_settings,
        leads::put_settings,
        webhooks::whatsapp_verify,
        webhooks::whatsapp,
        webhooks::telegram,
        webhooks::sms,
        webhooks::voice,
        webhooks::voice_transcript,
        webhooks::email,
    ),
    components(schemas(super::error::ErrorBody)),
    tags(
        (name = "webchat", description = "The public web chat: post a message, read a session's history, follow it live. No credential."),
        (name = "auth", description = "Signing in and out, one's own account, password resets and invitations."),
        (name = "tenants", description = "The tenants of the platform (platform administrators)."),
        (name = "users", description = "A tenant's people, their roles and invitations; every account (platform administrators)."),
        (name = "keys", description = "A tenant's API keys; a secret is shown once, when the key is made."),
        (name = "audit", description = "The tenant's audit log: every change made through the API, newest first."),
        (name = "channels", description = "A tenant's channels (web chat, WhatsApp, Telegram, SMS, voice, email): settings, webhook URLs, health."),
        (name = "bookings", description = "Opening hours, free slots and meetings booked by the agent or by people."),
        (name = "inbox", description = "Conversations with their transcripts, human replies and handoff, escalations, parked events."),
        (name = "knowledge", description = "The knowledge base: documents, the search console, embedding settings."),
        (name = "agent", description = "The agent's model settings, token usage and budget, alerts and tools."),
        (name = "prompts", description = "Versioned prompts: drafts, publish, rollback, diff and preview."),
        (name = "leads", description = "Captured leads, CRM deliveries and the actions' settings."),
        (name = "analytics", description = "A tenant's figures over a time range, in total and per channel."),
        (name = "health", description = "Liveness, readiness and metrics."),
        (name = "webhooks", description = "The providers' webhooks, one URL per channel. No Switchboard credential: each is verified by the provider's signature (or token) before anything is stored."),
        (name = "pages", description = "The pages the server serves: landing page, web-chat demo and widget, email link pages, this reference."),
        (name = "reference", description = "This API's own description."),
    ),
)]
struct ApiDoc;

/// The OpenAPI document of the server whose route table is `specs`: the handlers' annotations,
/// the security schemes, and each operation's access as the table says.
pub fn openapi(specs: &[RouteSpec]) -> Spec {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "`Authorization: Bearer <credential>`: a tenant's API key (`sbk_…`), a \
                     person's session token (`sbs_…`, from sign-in with `return_token`), or the \
                     bootstrap token `SWITCHBOARD_ADMIN_TOKEN` (a platform administrator). The \
                     scopes listed by an operation are the roles it needs.",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        SESSION,
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            crate::auth::SESSION_COOKIE,
            "The browser session cookie set by sign-in (HttpOnly). A request that changes \
             something with it must repeat the session's CSRF token (the `sb_csrf` cookie) in \
             `X-CSRF-Token`.",
        ))),
    );
    for spec in specs {
        if let Some(op) = operation_mut(&mut doc, &spec.method, &spec.path) {
            describe_access(op, spec);
        }
    }
    for item in doc.paths.paths.values_mut() {
        for op in operations_of(item) {
            unique_operation_id(op);
            tidy_summary(op);
        }
    }
    doc
}

fn operations_of(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .flatten()
}

/// Operation ids are the handlers' names, which repeat across areas (`get_settings`,
/// `list`): each gets its tag in front (`agent.get_settings`, `leads.list`).
fn unique_operation_id(op: &mut Operation) {
    let tag = op.tags.as_ref().and_then(|t| t.first()).cloned();
    if let (Some(tag), Some(id)) = (tag, op.operation_id.as_mut()) {
        *id = format!("{tag}.{id}");
    }
}

/// The summary is the handler doc's first paragraph, which starts with the route for readers of
/// the code (`` `GET /api/v1/keys`: the tenant's keys… ``): the document's summary is its first
/// sentence without the route, and the whole paragraph goes first in the description.
fn tidy_summary(op: &mut Operation) {
    let Some(raw) = op.summary.take() else {
        return;
    };
    let (summary, rest) = split_summary(&raw);
    if !rest.is_empty() {
        op.description = Some(match op.description.take().filter(|d| !d.is_empty()) {
            Some(d) => format!("{rest}\n\n{d}"),
            None => rest,
        });
    }
    // A doc that only names the route: the summary is what the operation answers.
    let summary = if summary.is_empty() {
        op.responses
            .responses
            .iter()
            .find(|(status, _)| status.starts_with('2'))
            .and_then(|(_, r)| match r {
                RefOr::T(r) => Some(format!("{}.", r.description.trim_end_matches('.'))),
                RefOr::Ref(_) => None,
            })
            .unwrap_or_default()
    } else {
        summary
    };
    op.summary = Some(summary);
}

/// `(summary, the rest of the paragraph)` of a handler doc's first paragraph.
pub fn split_summary(raw: &str) -> (String, String) {
    let text = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    // A leading route in backticks (`` `GET /x` `` or `` `/docs` ``), then `:` or `.`.
    let text = match text.strip_prefix('`').and_then(|t| t.split_once('`')) {
        Some((route, after))
            if route.starts_with('/')
                || route.starts_with("GET ")
                || route.starts_with("POST ")
                || route.starts_with("PUT ")
                || route.starts_with("PATCH ")
                || route.starts_with("DELETE ") =>
        {
            after.trim_start_matches([':', '.']).trim().to_owned()
        }
        _ => text,
    };
    let mut chars = text.chars();
    let text = match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect::<String>(),
        None => return (String::new(), String::new()),
    };
    // The first sentence: up to the first ". " outside backticks.
    let mut in_code = false;
    let mut end = None;
    for (i, c) in text.char_indices() {
        match c {
            '`' => in_code = !in_code,
            '.' if !in_code && text[i + 1..].starts_with(' ') => {
                end = Some(i);
                break;
            }
            _ => {}
        }
    }
    match end {
        Some(i) => (text[..=i].to_owned(), text.clone()),
        None => (text, String::new()),
    }
}

/// The operation for `method path`, if the handlers documented it.
fn operation_mut<'a>(doc: &'a mut Spec, method: &Method, path: &str) -> Option<&'a mut Operation> {
    let item = doc.paths.paths.get_mut(path)?;
    let op = match *method {
        Method::GET => &mut item.get,
        Method::POST => &mut item.post,
        Method::PUT => &mut item.put,
        Method::PATCH => &mut item.patch,
        Method::DELETE => &mut item.delete,
        Method::HEAD => &mut item.head,
        Method::OPTIONS => &mut item.options,
        _ => return None,
    };
    op.as_mut()
}

/// The roles an access names as security scopes (none: any valid credential).
pub fn scopes(access: Access) -> Vec<String> {
    match access {
        Access::Public | Access::Signed | Access::Authenticated => Vec::new(),
        Access::Platform => vec!["platform_admin".into()],
        Access::Tenant(r) | Access::TenantOrPlatform(r) => vec![r.as_str().into()],
    }
}

/// Whether an access needs a Switchboard credential.
pub fn needs_credential(access: Access) -> bool {
    !matches!(access, Access::Public | Access::Signed)
}

/// The sentence the document adds to an operation's description.
pub fn access_sentence(access: Access) -> String {
    match access {
        Access::Public => "**Access:** public; no credential needed.".into(),
        Access::Signed => "**Access:** no Switchboard credential; the request is verified by \
                           the provider's signature (or secret token) before anything is stored."
            .into(),
        Access::Authenticated => "**Access:** any valid credential (a session, an API key or the \
                                  bootstrap token)."
            .into(),
        Access::Platform => "**Access:** a platform administrator (the bootstrap token, or a \
                             person who is one)."
            .into(),
        Access::Tenant(r) => format!(
            "**Access:** at least the `{r}` role in the tenant (an API key of the tenant, a \
             member's session, or a platform administrator); the tenant is the credential's, \
             or `?tenant=<slug or id>`."
        ),
        Access::TenantOrPlatform(r) => format!(
            "**Access:** at least the `{r}` role in the tenant; a platform administrator who \
             names no tenant gets every tenant's."
        ),
    }
}

/// Sets what the table says about one operation: security, extensions, the sentence, the
/// `tenant` parameter and the errors its access can give.
pub fn describe_access(op: &mut Operation, spec: &RouteSpec) {
    let access = spec.access;
    op.security = needs_credential(access).then(|| {
        vec![
            SecurityRequirement::new(BEARER, scopes(access)),
            SecurityRequirement::new(SESSION, scopes(access)),
        ]
    });
    let extensions = op.extensions.get_or_insert_with(Extensions::default);
    extensions.insert(ACCESS_EXTENSION.into(), access.label().into());
    extensions.insert(AUDITED_EXTENSION.into(), spec.changes.into());
    let sentence = access_sentence(access);
    op.description = Some(match op.description.take().filter(|d| !d.is_empty()) {
        Some(d) => format!("{d}\n\n{sentence}"),
        None => sentence,
    });

    if matches!(access, Access::Tenant(_) | Access::TenantOrPlatform(_)) {
        let params = op.parameters.get_or_insert_with(Vec::new);
        if !params.iter().any(|p| p.name == "tenant") {
            params.push(tenant_parameter(access));
        }
        add_error(
            op,
            "400",
            "`missing_tenant`: the credential covers several tenants; pass `?tenant=`",
        );
        add_error(
            op,
            "404",
            "The tenant named by `?tenant=` does not exist for this credential",
        );
    }
    if needs_credential(access) {
        add_error(
            op,
            "401",
            "`unauthorized`: no credential, or one that is wrong, revoked or expired",
        );
        add_error(
            op,
            "403",
            if spec.mutates() {
                "`forbidden`: the credential lacks the access; or `csrf`: a change made with \
                 the session cookie without `X-CSRF-Token`"
            } else {
                "`forbidden`: the credential lacks the access"
            },
        );
    }
    if op
        .request_body
        .as_ref()
        .is_some_and(|b| b.content.contains_key("application/json") && b.content.len() == 1)
    {
        add_error(op, "400", "`malformed_json`: the body is not JSON");
        add_error(
            op,
            "415",
            "`unsupported_media_type`: send `Content-Type: application/json`",
        );
        add_error(
            op,
            "422",
            "`invalid_body`: the JSON does not have the expected shape",
        );
    }
    if uses_database(&spec.path) {
        add_error(
            op,
            "503",
            "`unavailable`: the database is away (restarting); nothing was stored. See \
             `Retry-After`",
        );
    }
    error_bodies(op);
}

/// Routes whose handlers need the database (the API and the webhooks).
fn uses_database(path: &str) -> bool {
    (path.starts_with("/api/v1/") && path != "/api/v1/openapi.json")
        || path.starts_with("/webhooks/")
}

fn tenant_parameter(access: Access) -> Parameter {
    let description = match access {
        Access::TenantOrPlatform(_) => {
            "The tenant (slug or id). Needed by people who belong to several tenants; a \
             platform administrator without it gets every tenant's."
        }
        _ => {
            "The tenant (slug or id). Needed by people who belong to several tenants and by \
             platform administrators; an API key's is its own."
        }
    };
    ParameterBuilder::new()
        .name("tenant")
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build()
}

/// Documents `status` with `description` (appended when the handler documented the status
/// already).
fn add_error(op: &mut Operation, status: &str, description: &str) {
    let responses = &mut op.responses.responses;
    match responses.get_mut(status) {
        Some(RefOr::T(existing)) => {
            if !existing.description.contains(description) {
                existing.description = format!("{}; or {description}", existing.description);
            }
        }
        Some(RefOr::Ref(_)) => {}
        None => {
            responses.insert(
                status.to_owned(),
                RefOr::T(ResponseBuilder::new().description(description).build()),
            );
        }
    }
}

/// Every 4xx and 5xx answer without a body description gets the `Error` schema.
fn error_bodies(op: &mut Operation) {
    for (status, response) in op.responses.responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        let is_error = status.starts_with('4') || status.starts_with('5');
        if is_error && response.content.is_empty() {
            response.content.insert(
                "application/json".into(),
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(ERROR_SCHEMA)))
                    .build(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::store::identity::Role;

    fn spec(method: Method, path: &str, access: Access) -> RouteSpec {
        RouteSpec {
            changes: method != Method::GET && super::needs_credential(access),
            method,
            path: path.into(),
            access,
        }
    }

    #[test]
    fn scopes_name_the_role_an_access_needs() {
        assert!(scopes(Access::Public).is_empty());
        assert!(scopes(Access::Signed).is_empty());
        assert!(scopes(Access::Authenticated).is_empty());
        assert_eq!(scopes(Access::Platform), ["platform_admin"]);
        assert_eq!(scopes(Access::Tenant(Role::SalesAgent)), ["sales_agent"]);
        assert_eq!(scopes(Access::TenantOrPlatform(Role::Viewer)), ["viewer"]);
        assert!(access_sentence(Access::Tenant(Role::TenantAdmin)).contains("`tenant_admin`"));
        assert!(access_sentence(Access::Signed).contains("signature"));
    }

    #[test]
    fn a_tenant_operation_gets_security_errors_and_the_tenant_parameter() {
        let mut op = Operation::new();
        op.description = Some("Lists things.".into());
        add_error(&mut op, "404", "No such thing");
        describe_access(
            &mut op,
            &spec(
                Method::POST,
                "/api/v1/things",
                Access::Tenant(Role::TenantAdmin),
            ),
        );
        let json = serde_json::to_value(&op).unwrap();
        assert_eq!(json["x-switchboard-access"], "tenant_admin");
        assert_eq!(json["x-switchboard-audited"], true);
        assert_eq!(
            json["security"],
            serde_json::json!([{"bearer": ["tenant_admin"]}, {"session": ["tenant_admin"]}])
        );
        assert!(json["description"]
            .as_str()
            .unwrap()
            .starts_with("Lists things.\n\n**Access:**"));
        assert_eq!(json["parameters"][0]["name"], "tenant");
        for status in ["400", "401", "403", "404", "503"] {
            assert_eq!(
                json["responses"][status]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/Error",
                "{status}"
            );
        }
        // The handler's own 404 is kept and the tenant's case added to it.
        let not_found = json["responses"]["404"]["description"].as_str().unwrap();
        assert!(not_found.starts_with("No such thing; or "), "{not_found}");
        assert!(json["responses"]["403"]["description"]
            .as_str()
            .unwrap()
            .contains("csrf"));
    }

    #[test]
    fn public_and_signed_operations_need_no_credential() {
        for access in [Access::Public, Access::Signed] {
            let mut op = Operation::new();
            describe_access(&mut op, &spec(Method::POST, "/webhooks/x/{id}", access));
            let json = serde_json::to_value(&op).unwrap();
            assert!(json.get("security").is_none());
            assert!(json["responses"].get("401").is_none());
            assert_eq!(json["x-switchboard-access"], access.label());
            assert_eq!(json["x-switchboard-audited"], false);
            assert!(json["responses"]["503"].is_object());
        }
        let mut op = Operation::new();
        describe_access(&mut op, &spec(Method::GET, "/healthz", Access::Public));
        let json = serde_json::to_value(&op).unwrap();
        assert!(json["responses"].get("503").is_none());
    }

    #[test]
    fn summaries_are_first_sentences_without_the_route() {
        assert_eq!(
            split_summary("`GET /api/v1/keys`: the tenant's keys (never their secrets)."),
            (
                "The tenant's keys (never their secrets).".into(),
                String::new()
            )
        );
        assert_eq!(
            split_summary(
                "`POST /api/v1/x?tenant=…`: sets it, once per link; every\nsession ends. Then more."
            ),
            (
                "Sets it, once per link; every session ends.".into(),
                "Sets it, once per link; every session ends. Then more.".into()
            )
        );
        // A full stop inside code does not end the sentence; no route, no change.
        assert_eq!(
            split_summary("Reads `a. b` and more"),
            ("Reads `a. b` and more".into(), String::new())
        );
        assert_eq!(split_summary("`/docs`: the reference.").0, "The reference.");
        assert_eq!(
            split_summary("`GET /api/v1/x`."),
            (String::new(), String::new())
        );
    }

    #[test]
    fn the_document_describes_every_route_of_a_table() {
        let specs = [
            spec(Method::GET, "/healthz", Access::Public),
            spec(
                Method::GET,
                "/api/v1/keys",
                Access::Tenant(Role::TenantAdmin),
            ),
        ];
        let doc = serde_json::to_value(openapi(&specs)).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(
            doc["paths"]["/api/v1/keys"]["get"]["x-switchboard-access"],
            "tenant_admin"
        );
        assert_eq!(
            doc["paths"]["/healthz"]["get"]["x-switchboard-access"],
            "public"
        );
        // Operations the table does not name are left without an access.
        assert!(doc["paths"]["/readyz"]["get"]
            .get("x-switchboard-access")
            .is_none());
        assert_eq!(
            doc["components"]["securitySchemes"]["session"]["in"],
            "cookie"
        );
        assert_eq!(
            doc["components"]["securitySchemes"]["session"]["name"],
            "sb_session"
        );
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
    }
}
