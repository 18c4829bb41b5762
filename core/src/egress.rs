//! Where Switchboard may connect on a tenant's behalf.
//!
//! Tenants choose URLs and hosts: their model and embedding endpoints, a CRM webhook, a
//! provider's API base, SMTP and IMAP servers. Left unchecked, any of them can point the server at
//! itself (`127.0.0.1`), at the cloud's metadata service (`169.254.169.254`) or at the private
//! network it runs in: server-side request forgery. Under [`Egress::PublicOnly`] (the default)
//! every address is checked **after DNS resolution, on every connection** — [`Egress::resolve`]
//! is the resolver of every tenant-facing HTTP client (through [`Egress::http`]) and of the mail
//! connections — so a name that resolves to a public address when the settings are saved and
//! to a private one later (DNS rebinding) is still refused. Literal addresses skip DNS, so they
//! are checked by [`Egress::check_url`] before each request and on every redirect.
//!
//! The platform's own endpoints (set by the operator) are trusted and use
//! [`Egress::Unrestricted`]; so does a deployment whose operator sets
//! `allow_private_networks` (local development and the test suite, where every fake provider
//! listens on loopback).
//!
//! An HTTP proxy configured through the environment (`HTTPS_PROXY`) resolves names itself: the
//! operator who sets one takes over this guard.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// The connection policy for endpoints a tenant chose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Egress {
    /// Public internet addresses only (the default).
    #[default]
    PublicOnly,
    /// Any address, loopback and private networks included.
    Unrestricted,
}

/// A connection refused by the policy; the message names the host and how to allow it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

impl From<Refused> for std::io::Error {
    fn from(r: Refused) -> Self {
        std::io::Error::new(std::io::ErrorKind::PermissionDenied, r)
    }
}

/// The policy's refusal somewhere in `err`'s chain of causes (a client error whose connection
/// the resolver refused): such a failure is permanent, retrying cannot help.
pub fn refusal<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let mut cause = Some(err);
    while let Some(e) = cause {
        if let Some(r) = e.downcast_ref::<Refused>() {
            return Some(r);
        }
        if let Some(r) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<Refused>())
        {
            return Some(r);
        }
        cause = e.source();
    }
    None
}

impl Egress {
    /// The policy an operator's `allow_private_networks` setting asks for.
    pub fn allowing_private(allow: bool) -> Egress {
        if allow {
            Egress::Unrestricted
        } else {
            Egress::PublicOnly
        }
    }

    /// Whether `ip` may be connected to.
    pub fn check_ip(self, host: &str, ip: IpAddr) -> Result<(), Refused> {
        if self == Egress::Unrestricted || is_public(ip) {
            Ok(())
        } else {
            Err(refused(host, ip))
        }
    }

    /// Checks what can be checked of `url` without DNS: a literal address, or a name that is
    /// always local (`localhost`, `*.localhost`). Names are checked again when they are
    /// resolved, on every connection.
    pub fn check_url(self, url: &str) -> Result<(), Refused> {
        if self == Egress::Unrestricted {
            return Ok(());
        }
        let parsed = url::Url::parse(url)
            .map_err(|_| Refused(format!("{:?} is not a URL", shorten(url))))?;
        match parsed.host() {
            Some(url::Host::Ipv4(ip)) => self.check_ip(&ip.to_string(), IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check_ip(&ip.to_string(), IpAddr::V6(ip)),
            Some(url::Host::Domain(name)) => self.check_name(name),
            None => Err(Refused(format!("{:?} has no host", shorten(url)))),
        }
    }

    /// Checks a host name (or literal address) as typed in settings, before DNS.
    pub fn check_name(self, host: &str) -> Result<(), Refused> {
        if self == Egress::Unrestricted {
            return Ok(());
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return self.check_ip(host, ip);
        }
        let name = bare.trim_end_matches('.').to_ascii_lowercase();
        if name == "localhost" || name.ends_with(".localhost") {
            return Err(Refused(format!("{host} is this machine; {}", HOW_TO_ALLOW)));
        }
        Ok(())
    }

    /// Resolves `host` and keeps the addresses the policy allows; an error when none is left.
    /// Every connection to a tenant-chosen host resolves through here.
    pub async fn resolve(self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        self.check_name(host)?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let found: Vec<SocketAddr> = tokio::net::lookup_host((bare, port)).await?.collect();
        let mut first_refusal = None;
        let allowed: Vec<SocketAddr> = found
            .into_iter()
            .filter(|a| match self.check_ip(host, a.ip()) {
                Ok(()) => true,
                Err(e) => {
                    first_refusal.get_or_insert(e);
                    false
                }
            })
            .collect();
        match (allowed.is_empty(), first_refusal) {
            (true, Some(refusal)) => Err(refusal.into()),
            (true, None) => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{host} has no address"),
            )),
            (false, _) => Ok(allowed),
        }
    }

    /// Whether a redirect to `url`, after `previous` redirects, may be followed: at most
    /// `max_redirects` of them, each to a URL [`Egress::check_url`] accepts. For the redirect
    /// policies of HTTP clients of any version.
    pub fn check_redirect(
        self,
        previous: usize,
        max_redirects: usize,
        url: &str,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if previous >= max_redirects {
            return Err("too many redirects".into());
        }
        self.check_url(url)?;
        Ok(())
    }

    /// Puts the policy into an HTTP client: names resolve through [`Egress::resolve`] on every
    /// new connection, and redirects (at most `max_redirects`, none with 0) are followed only to
    /// URLs [`Egress::check_url`] accepts.
    pub fn http(
        self,
        builder: reqwest::ClientBuilder,
        max_redirects: usize,
    ) -> reqwest::ClientBuilder {
        let redirects = if max_redirects == 0 {
            reqwest::redirect::Policy::none()
        } else {
            reqwest::redirect::Policy::custom(move |attempt| {
                match self.check_redirect(
                    attempt.previous().len(),
                    max_redirects,
                    attempt.url().as_str(),
                ) {
                    Ok(()) => attempt.follow(),
                    Err(e) => attempt.error(e),
                }
            })
        };
        let builder = builder.redirect(redirects);
        match self {
            Egress::Unrestricted => builder,
            Egress::PublicOnly => builder.dns_resolver(Arc::new(self)),
        }
    }
}

impl reqwest::dns::Resolve for Egress {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let egress = *self;
        Box::pin(async move {
            // The port is the URL's; resolution only needs a placeholder.
            let addrs = egress.resolve(name.as_str(), 0).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

const HOW_TO_ALLOW: &str = "tenants may only point Switchboard at public internet addresses \
     (the operator can allow private networks with `allow_private_networks = true`)";

fn refused(host: &str, ip: IpAddr) -> Refused {
    let what = if host == ip.to_string() {
        format!("{ip}")
    } else {
        format!("{host} ({ip})")
    };
    Refused(format!("{what} is not a public address; {HOW_TO_ALLOW}"))
}

fn shorten(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Whether `ip` is a public unicast address: not loopback, private, link-local (cloud metadata
/// lives at 169.254.169.254), shared (CGNAT), unique-local, multicast, documentation or
/// reserved — and no IPv6 form that embeds such an IPv4 address (mapped, compatible, NAT64,
/// 6to4).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0 // "this network"
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 169 && b == 254) // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 192 && b == 168)
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // documentation
        || (a == 203 && b == 0 && c == 113) // documentation
        || a >= 224) // multicast, reserved, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let embedded_v4 =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if s[..5] == [0; 5] && (s[5] == 0xffff || s[5] == 0) {
        // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d), which also covers
        // :: and ::1.
        return is_public_v4(embedded_v4(s[6], s[7]));
    }
    if s[0] == 0x64 && s[1] == 0xff9b {
        // NAT64 (64:ff9b::/96 and the local-use 64:ff9b:1::/48).
        return is_public_v4(embedded_v4(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        // 6to4 carries the IPv4 address in bits 16..48.
        return is_public_v4(embedded_v4(s[1], s[2]));
    }
    !((s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] & 0xff00) == 0xff00 // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] == 0) // Teredo (embeds an obfuscated IPv4 address)
        || (s[0] == 0x0100 && s[1..4] == [0; 3])) // discard-only
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_not_public() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "192.0.0.170",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "2001:0:4136:e378::1",
        ] {
            let parsed: IpAddr = ip.parse().unwrap();
            assert!(!is_public(parsed), "{ip} must not count as public");
        }
    }

    #[test]
    fn internet_addresses_are_public() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.1.1",
            "193.0.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",
            "2002:0808:0808::",
        ] {
            let parsed: IpAddr = ip.parse().unwrap();
            assert!(is_public(parsed), "{ip} is public");
        }
    }

    #[test]
    fn literal_and_local_urls_are_refused_before_any_connection() {
        let e = Egress::PublicOnly;
        for url in [
            "http://127.0.0.1:8080/v1",
            "http://[::1]/",
            "http://169.254.169.254/latest/meta-data/",
            "https://localhost/x",
            "http://api.localhost./x",
            "http://[::ffff:10.0.0.1]/",
            "http://2130706433/", // 127.0.0.1 written as one number
            "http://0x7f.1/",
        ] {
            let err = e.check_url(url).unwrap_err();
            assert!(err.0.contains("allow_private_networks"), "{url}: {err}");
        }
        assert!(e.check_url("https://api.openai.com/v1").is_ok());
        assert!(e.check_url("http://93.184.216.34/").is_ok());
        assert!(Egress::Unrestricted.check_url("http://127.0.0.1/").is_ok());
        assert!(Egress::Unrestricted.check_name("localhost").is_ok());
    }

    #[tokio::test]
    async fn names_are_checked_after_resolution() {
        // `localhost` is refused by name; a literal loopback "name" resolves to itself.
        let err = Egress::PublicOnly
            .resolve("127.0.0.1", 80)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
        assert!(err.to_string().contains("127.0.0.1"), "{err}");
        let err = Egress::PublicOnly
            .resolve("localhost", 80)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
        let ok = Egress::Unrestricted.resolve("localhost", 80).await.unwrap();
        assert!(ok.iter().all(|a| a.ip().is_loopback()), "{ok:?}");
    }

    /// A server that answers every request with a redirect to `location`; counts connections.
    async fn redirector(location: String) -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = conn.write_all(answer.as_bytes()).await;
            }
        });
        (port, hits)
    }

    #[tokio::test]
    async fn redirects_to_internal_addresses_are_not_followed() {
        let (trap, trapped) = redirector("http://127.0.0.1:1/".into()).await;
        for location in [
            format!("http://127.0.0.1:{trap}/latest/meta-data/"),
            format!("http://localhost:{trap}/"),
            format!("http://[::ffff:127.0.0.1]:{trap}/"),
        ] {
            let (port, _) = redirector(location.clone()).await;
            // "public.example" stands for a public server (the override skips the policy's
            // resolver, as a public address would pass it) that redirects inwards.
            let client = Egress::PublicOnly
                .http(
                    reqwest::Client::builder()
                        .resolve("public.example", ([127, 0, 0, 1], port).into()),
                    5,
                )
                .build()
                .unwrap();
            let err = client
                .get(format!("http://public.example:{port}/"))
                .send()
                .await
                .unwrap_err();
            assert!(err.is_redirect(), "{location}: {err:?}");
            assert!(refusal(&err).is_some(), "{location}: {err:?}");
        }
        assert_eq!(trapped.load(std::sync::atomic::Ordering::SeqCst), 0);
        // The same client, unrestricted, follows them (the trap is reached).
        let (port, _) = redirector(format!("http://127.0.0.1:{trap}/")).await;
        let client = Egress::Unrestricted
            .http(reqwest::Client::builder(), 5)
            .build()
            .unwrap();
        let _ = client.get(format!("http://127.0.0.1:{port}/")).send().await;
        assert!(trapped.load(std::sync::atomic::Ordering::SeqCst) > 0);
    }
}
