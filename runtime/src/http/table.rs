//! The route table: every route of the server and what it needs ([`Access`]), declared in one
//! place (`crate::http::router`) and enforced by one middleware ([`crate::auth::enforce`]) that
//! wraps each method of each path as it is registered. The table it produces is the router's
//! own list of routes, so the tests that walk it (the role matrix, the audit, the OpenAPI
//! comparison) cannot miss a route the router serves.

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;

use super::AppState;
use crate::auth::{self, Access};

/// One route: method, full path (with `{param}` segments) and what it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    pub method: Method,
    pub path: String,
    pub access: Access,
    /// Whether a successful call changes something, and so is written to the audit log. A
    /// POST that only asks (a search, a preview) does not.
    pub changes: bool,
}

impl RouteSpec {
    /// Whether the method is one that may change something (CSRF-checked with cookies).
    pub fn mutates(&self) -> bool {
        !matches!(self.method, Method::GET | Method::HEAD | Method::OPTIONS)
    }
}

/// Builds a router and its table together.
pub struct Table {
    state: AppState,
    prefix: &'static str,
    paths: Vec<(String, MethodRouter<AppState>)>,
    specs: Vec<RouteSpec>,
}

impl Table {
    /// Routes under `prefix` (e.g. `/api/v1`, or `""`).
    pub fn new(state: AppState, prefix: &'static str) -> Self {
        Self {
            state,
            prefix,
            paths: Vec::new(),
            specs: Vec::new(),
        }
    }

    /// Registers `method path` served by `endpoint` (a method router with its own layers, such
    /// as a body limit), guarded by `access`.
    pub fn route(
        self,
        method: Method,
        path: &str,
        access: Access,
        endpoint: MethodRouter<AppState>,
    ) -> Self {
        let changes = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS)
            && !matches!(access, Access::Public | Access::Signed);
        self.register(method, path, access, changes, endpoint)
    }

    /// A POST that only asks (a search, a dry run): access-checked like any other, not audited.
    pub fn post_query<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &str,
        access: Access,
        h: H,
    ) -> Self {
        self.register(Method::POST, path, access, false, axum::routing::post(h))
    }

    fn register(
        mut self,
        method: Method,
        path: &str,
        access: Access,
        changes: bool,
        endpoint: MethodRouter<AppState>,
    ) -> Self {
        let guarded = endpoint.route_layer(axum::middleware::from_fn_with_state(
            (
                self.state.clone(),
                auth::Guard {
                    access,
                    audited: changes,
                },
            ),
            auth::enforce,
        ));
        match self.paths.iter_mut().find(|(p, _)| p == path) {
            Some((_, existing)) => {
                let merged = std::mem::take(existing).merge(guarded);
                *existing = merged;
            }
            None => self.paths.push((path.to_owned(), guarded)),
        }
        self.specs.push(RouteSpec {
            method,
            path: format!("{}{path}", self.prefix),
            access,
            changes,
        });
        self
    }

    fn method<H, T>(self, method: Method, path: &str, access: Access, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a routable method");
        self.route(method, path, access, on(filter, handler))
    }

    pub fn get<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &str,
        access: Access,
        h: H,
    ) -> Self {
        self.method(Method::GET, path, access, h)
    }

    pub fn post<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &str,
        access: Access,
        h: H,
    ) -> Self {
        self.method(Method::POST, path, access, h)
    }

    pub fn put<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &str,
        access: Access,
        h: H,
    ) -> Self {
        self.method(Method::PUT, path, access, h)
    }

    pub fn patch<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &str,
        access: Access,
        h: H,
    ) -> Self {
        self.method(Method::PATCH, path, access, h)
    }

    pub fn delete<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &str,
        access: Access,
        h: H,
    ) -> Self {
        self.method(Method::DELETE, path, access, h)
    }

    /// The router (paths relative to the prefix, to be nested there) and the table.
    pub fn finish(self) -> (Router<AppState>, Vec<RouteSpec>) {
        let mut router = Router::new();
        for (path, endpoint) in self.paths {
            router = router.route(&path, endpoint);
        }
        (router, self.specs)
    }
}
