//! Who may open a WebSocket: the origin check and the connection limits, decided before the
//! upgrade with a plain HTTP status.
//!
//! - `Host` must name this server: its bound address (and, on a loopback address, `localhost`,
//!   `127.0.0.1` and `[::1]` with its port), or a host given with `--allow-host`. Anything
//!   else is refused with 403: a DNS-rebinding page (whose own origin is `evil.example`, now
//!   resolving to this server) sends `Host: evil.example`, so "same origin" alone proves
//!   nothing.
//! - A browser sends `Origin`; a page from another site (cross-site WebSocket hijacking) is
//!   refused with 403. The server's own origin (an allowed host) is always allowed,
//!   `--allow-origin` adds more. Requests without `Origin` (wscat, scripts) pass unless
//!   `--require-origin`.
//! - At most `--max-connections` at once (503 past it) and `--max-connections-per-ip` from
//!   one address (429 past it). A [`Permit`] holds a place and gives it back when dropped.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError},
};

use crate::rate::AddressKey;
use axum::http::{HeaderMap, StatusCode, header};

/// Why an upgrade was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `Host` names no host this server answers to (DNS rebinding).
    ForeignHost,
    /// `Origin` is neither the server's own nor allowed.
    ForeignOrigin,
    /// No `Origin`, and `--require-origin` is set.
    MissingOrigin,
    /// The server is at `--max-connections`.
    ServerFull,
    /// This address is at `--max-connections-per-ip`.
    TooManyFromAddress,
}

impl Refusal {
    /// The HTTP status the client gets.
    pub fn status(self) -> StatusCode {
        match self {
            Refusal::ForeignHost | Refusal::ForeignOrigin | Refusal::MissingOrigin => {
                StatusCode::FORBIDDEN
            }
            Refusal::ServerFull => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::TooManyFromAddress => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// A short name, for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::ForeignHost => "foreign_host",
            Refusal::ForeignOrigin => "foreign_origin",
            Refusal::MissingOrigin => "missing_origin",
            Refusal::ServerFull => "server_full",
            Refusal::TooManyFromAddress => "too_many_from_address",
        }
    }

    /// What the HTTP body says.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::ForeignHost => "this server does not answer to that host name",
            Refusal::ForeignOrigin => "this origin may not open a chat connection",
            Refusal::MissingOrigin => "an Origin header is required",
            Refusal::ServerFull => "the server is at its connection limit; try again later",
            Refusal::TooManyFromAddress => "too many connections from your address",
        }
    }
}

/// The admission rules and the live connection counts.
#[derive(Debug)]
pub struct Admission {
    /// Host authorities (`host[:port]`, lower case) this server answers to.
    allowed_hosts: Vec<String>,
    /// Extra allowed origins, lower case, without a trailing slash.
    allowed_origins: Vec<String>,
    require_origin: bool,
    max_total: usize,
    max_per_ip: usize,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    /// By address as the rate limits group them (an IPv6 /64 is one).
    per_ip: HashMap<AddressKey, usize>,
}

/// A held connection place; dropping it gives the place back.
#[derive(Debug)]
pub struct Permit {
    admission: Arc<Admission>,
    ip: AddressKey,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut counts = self.admission.lock();
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

impl Admission {
    /// Rules from the configuration. `allowed_hosts` are `host[:port]` authorities (see
    /// [`default_hosts`] for the ones a bound address implies).
    pub fn new(
        allowed_hosts: &[String],
        allowed_origins: &[String],
        require_origin: bool,
        max_total: usize,
        max_per_ip: usize,
    ) -> Self {
        Admission {
            allowed_hosts: allowed_hosts.iter().map(|h| normalize(h)).collect(),
            allowed_origins: allowed_origins.iter().map(|o| normalize(o)).collect(),
            require_origin,
            max_total,
            max_per_ip,
            counts: Mutex::new(Counts::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // Counts are plain numbers, consistent after every change: survive a poisoned lock.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Checks the request's `Host` against the hosts this server answers to, then its
    /// `Origin` against those hosts and the allowed origins.
    pub fn check_origin(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        self.check_host(headers)?;
        let Some(origin) = headers.get(header::ORIGIN) else {
            return if self.require_origin {
                Err(Refusal::MissingOrigin)
            } else {
                Ok(())
            };
        };
        let origin = normalize(origin.to_str().map_err(|_| Refusal::ForeignOrigin)?);
        // Same origin: the page was served by this server under a name it answers to.
        let own = origin
            .split_once("://")
            .is_some_and(|(_, authority)| self.allowed_hosts.iter().any(|h| h == authority));
        if own || self.allowed_origins.contains(&origin) {
            Ok(())
        } else {
            Err(Refusal::ForeignOrigin)
        }
    }

    /// Refuses a request whose `Host` is not a name this server answers to (DNS rebinding:
    /// a foreign page that renamed itself to this server's address). For reads that say
    /// something about the server (`/metrics`, the product list) as much as for writes.
    pub fn check_host(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(normalize)
            .ok_or(Refusal::ForeignHost)?;
        if self.allowed_hosts.contains(&host) {
            Ok(())
        } else {
            Err(Refusal::ForeignHost)
        }
    }

    /// Takes a connection place for `ip`, if one is free (an IPv6 host's /64 shares its
    /// places, as it shares its rates).
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, Refusal> {
        let ip = AddressKey::from(ip);
        let mut counts = self.lock();
        if counts.total >= self.max_total {
            return Err(Refusal::ServerFull);
        }
        let from_ip = counts.per_ip.entry(ip).or_insert(0);
        if *from_ip >= self.max_per_ip {
            return Err(Refusal::TooManyFromAddress);
        }
        *from_ip += 1;
        counts.total += 1;
        Ok(Permit {
            admission: self.clone(),
            ip,
        })
    }
}

/// The hosts a server bound to `addr` answers to, besides `--allow-host`: the address
/// itself, and for a loopback address the usual loopback names, all with its port.
pub fn default_hosts(addr: std::net::SocketAddr) -> Vec<String> {
    let port = addr.port();
    let mut hosts = vec![addr.to_string()];
    if addr.ip().is_loopback() {
        for name in ["localhost", "127.0.0.1", "[::1]"] {
            hosts.push(format!("{name}:{port}"));
        }
    }
    hosts.dedup();
    hosts
}

/// `--allow-host` entries: `host:port` as given; a bare `host` also with the server's port
/// and without one (behind a proxy on 80/443 browsers send no port).
pub fn allowed_hosts(addr: std::net::SocketAddr, extra: &[String]) -> Vec<String> {
    let mut hosts = default_hosts(addr);
    for entry in extra {
        let entry = normalize(entry);
        let has_port = entry
            .rsplit_once(':')
            .is_some_and(|(_, port)| port.parse::<u16>().is_ok() && !entry.ends_with(']'));
        if !has_port {
            hosts.push(format!("{entry}:{}", addr.port()));
        }
        hosts.push(entry);
    }
    hosts
}

fn normalize(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).expect("host"));
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).expect("origin"));
        }
        h
    }

    fn loopback() -> Vec<String> {
        default_hosts(([127, 0, 0, 1], 3000).into())
    }

    #[test]
    fn own_origin_passes_foreign_fails_listed_passes() {
        let a = Admission::new(
            &loopback(),
            &["http://localhost:8080/".into()],
            false,
            10,
            10,
        );
        let host = "127.0.0.1:3000";
        assert_eq!(
            a.check_origin(&headers(Some("http://127.0.0.1:3000"), host)),
            Ok(())
        );
        assert_eq!(
            a.check_origin(&headers(Some("https://evil.example"), host)),
            Err(Refusal::ForeignOrigin)
        );
        assert_eq!(
            a.check_origin(&headers(Some("http://127.0.0.1:3001"), host)),
            Err(Refusal::ForeignOrigin)
        );
        assert_eq!(
            a.check_origin(&headers(Some("http://LOCALHOST:8080"), host)),
            Ok(())
        );
        assert_eq!(
            a.check_origin(&headers(Some("null"), host)),
            Err(Refusal::ForeignOrigin)
        );
        assert_eq!(a.check_origin(&headers(None, host)), Ok(()));
        let strict = Admission::new(&loopback(), &[], true, 10, 10);
        assert_eq!(
            strict.check_origin(&headers(None, host)),
            Err(Refusal::MissingOrigin)
        );
    }

    #[test]
    fn a_host_this_server_does_not_answer_to_is_refused_even_with_its_own_origin() {
        let a = Admission::new(&loopback(), &[], false, 10, 10);
        let rebinding = headers(Some("http://evil.example:3000"), "evil.example:3000");
        assert_eq!(a.check_origin(&rebinding), Err(Refusal::ForeignHost));
        assert_eq!(
            a.check_origin(&headers(None, "evil.example:3000")),
            Err(Refusal::ForeignHost)
        );
        for host in [
            "localhost:3000",
            "127.0.0.1:3000",
            "[::1]:3000",
            "LOCALHOST:3000",
        ] {
            let origin = format!("http://{}", host.to_ascii_lowercase());
            assert_eq!(
                a.check_origin(&headers(Some(&origin), host)),
                Ok(()),
                "{host}"
            );
        }
        // Another loopback name's origin is not ours unless its port matches.
        assert_eq!(
            a.check_origin(&headers(Some("http://localhost:3001"), "localhost:3000")),
            Err(Refusal::ForeignOrigin)
        );
        let public = allowed_hosts(([0, 0, 0, 0], 3000).into(), &["chat.example".into()]);
        let a = Admission::new(&public, &[], false, 10, 10);
        for host in ["chat.example", "chat.example:3000"] {
            let origin = format!("https://{host}");
            assert_eq!(
                a.check_origin(&headers(Some(&origin), host)),
                Ok(()),
                "{host}"
            );
        }
        assert_eq!(
            a.check_origin(&headers(None, "127.0.0.1:3000")),
            Err(Refusal::ForeignHost),
            "0.0.0.0 is no name a browser uses: only --allow-host names count"
        );
    }

    #[test]
    fn permits_count_and_come_back() {
        let a = Arc::new(Admission::new(&[], &[], false, 3, 2));
        let ip1: IpAddr = [10, 0, 0, 1].into();
        let ip2: IpAddr = [10, 0, 0, 2].into();
        let p1 = a.admit(ip1).expect("first");
        let _p2 = a.admit(ip1).expect("second");
        assert_eq!(a.admit(ip1).err(), Some(Refusal::TooManyFromAddress));
        let _p3 = a.admit(ip2).expect("third");
        assert_eq!(a.admit(ip2).err(), Some(Refusal::ServerFull));
        drop(p1);
        assert!(a.admit(ip1).is_ok());
    }

    #[test]
    fn an_ipv6_host_shares_its_places_across_its_whole_64() {
        let a = Arc::new(Admission::new(&[], &[], false, 100, 2));
        let one: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let same_64: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:fffe".parse().expect("ip");
        let other_64: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        let _p1 = a.admit(one).expect("first");
        let p2 = a
            .admit(same_64)
            .expect("second, another address of the /64");
        assert_eq!(
            a.admit("2001:db8:1:2::99".parse().expect("ip")).err(),
            Some(Refusal::TooManyFromAddress),
            "a third address of the same /64 takes no third place"
        );
        assert!(a.admit(other_64).is_ok(), "another /64 has its own");
        drop(p2);
        assert!(
            a.admit(same_64).is_ok(),
            "a place given back is the /64's again"
        );
    }
}
