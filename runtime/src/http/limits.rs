//! Inbound limits of the public web chat: how fast one session, and one client address, may
//! post, and how many event streams each may hold open. A refusal is `429 rate_limited` with
//! `Retry-After`; nothing is stored for it, so the widget sends the message again later.
//!
//! The counters live in this process (like the sending caps of `channels::limits`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use switchboard_channels::limits::{Buckets, Cap};
use switchboard_core::ChannelId;

use super::error::ApiError;
use crate::config::LimitsSettings;

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
enum Key {
    Session(ChannelId, String),
    Address(IpAddr),
}

/// The web chat's inbound limits.
#[derive(Debug)]
pub struct InboundLimits {
    session: Cap,
    address: Cap,
    streams_per_session: u32,
    streams_per_address: u32,
    /// The header a reverse proxy in front puts the client's address in, when configured.
    client_ip_header: Option<String>,
    posts: Buckets<Key>,
    streams: Mutex<HashMap<Key, u32>>,
}

impl InboundLimits {
    pub fn new(s: &LimitsSettings) -> InboundLimits {
        let per_minute =
            |n: u32, burst: u32| Cap::new(f64::from(n.max(1)) / 60.0, f64::from(burst.max(1)));
        InboundLimits {
            session: per_minute(s.webchat_session_per_minute, s.webchat_session_burst),
            address: per_minute(s.webchat_ip_per_minute, s.webchat_ip_burst),
            streams_per_session: s.streams_per_session.max(1),
            streams_per_address: s.streams_per_ip.max(1),
            client_ip_header: s
                .client_ip_header
                .as_ref()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty()),
            posts: Buckets::default(),
            streams: Mutex::new(HashMap::new()),
        }
    }

    /// The client's address: the connection's peer, or — behind a proxy that says so in
    /// `limits.client_ip_header` — the last address that proxy appended.
    pub fn client(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let forwarded = self.client_ip_header.as_deref().and_then(|h| {
            headers
                .get_all(h)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|a| a.trim().parse::<IpAddr>().ok())
                .next_back()
        });
        forwarded.or(peer)
    }

    /// Counts one post of `session` from `client`, or says how long to wait.
    pub fn post(
        &self,
        channel: ChannelId,
        session: &str,
        client: Option<IpAddr>,
    ) -> Result<(), ApiError> {
        let mut wanted = vec![(Key::Session(channel, session.to_owned()), self.session)];
        if let Some(ip) = client {
            wanted.push((Key::Address(ip), self.address));
        }
        self.posts
            .try_take(&wanted, 1.0, Instant::now())
            .map_err(|wait| {
                metrics::counter!("switchboard_rate_limited_total", "what" => "webchat_post")
                    .increment(1);
                rate_limited(
                    wait,
                    "too many messages; please wait a moment and send again",
                )
            })
    }

    /// Opens an event stream of `session` for `client`: the returned guard holds its place
    /// until it is dropped (the stream ends).
    pub fn open_stream(
        self: &Arc<Self>,
        channel: ChannelId,
        session: &str,
        client: Option<IpAddr>,
    ) -> Result<StreamSlot, ApiError> {
        let mut keys = vec![(
            Key::Session(channel, session.to_owned()),
            self.streams_per_session,
        )];
        if let Some(ip) = client {
            keys.push((Key::Address(ip), self.streams_per_address));
        }
        let mut open = self.streams.lock().expect("stream counts");
        if keys
            .iter()
            .any(|(k, max)| open.get(k).copied().unwrap_or(0) >= *max)
        {
            metrics::counter!("switchboard_rate_limited_total", "what" => "webchat_stream")
                .increment(1);
            return Err(rate_limited(
                Duration::from_secs(5),
                "too many open event streams for this chat; close one first",
            ));
        }
        for (k, _) in &keys {
            *open.entry(k.clone()).or_insert(0) += 1;
        }
        Ok(StreamSlot {
            limits: self.clone(),
            keys: keys.into_iter().map(|(k, _)| k).collect(),
        })
    }
}

/// An open event stream's place in the counts.
#[derive(Debug)]
pub struct StreamSlot {
    limits: Arc<InboundLimits>,
    keys: Vec<Key>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.limits.streams.lock().expect("stream counts");
        for k in &self.keys {
            if let Some(n) = open.get_mut(k) {
                *n -= 1;
                if *n == 0 {
                    open.remove(k);
                }
            }
        }
    }
}

/// `429 rate_limited` with `Retry-After` (whole seconds, at least one).
fn rate_limited(wait: Duration, message: &str) -> ApiError {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
        .with_retry_after(secs.max(1))
}

/// The client's address as the limits see it (see [`InboundLimits::client`]).
pub struct Client(pub Option<IpAddr>);

impl axum::extract::FromRequestParts<super::AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &super::AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(Client(state.limits.client(peer, &parts.headers)))
    }
}
