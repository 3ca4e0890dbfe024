//! Who may open a WebSocket: the origin check and the connection limits, decided before the
//! upgrade with a plain HTTP status.
//!
//! - A browser sends `Origin`; a page from another site (cross-site WebSocket hijacking) is
//!   refused with 403. The server's own origin is always allowed, `--allow-origin` adds more.
//!   Requests without `Origin` (wscat, scripts) pass unless `--require-origin`.
//! - At most `--max-connections` at once (503 past it) and `--max-connections-per-ip` from
//!   one address (429 past it). A [`Permit`] holds a place and gives it back when dropped.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError},
};

use axum::http::{HeaderMap, StatusCode, header};

/// Why an upgrade was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
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
            Refusal::ForeignOrigin | Refusal::MissingOrigin => StatusCode::FORBIDDEN,
            Refusal::ServerFull => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::TooManyFromAddress => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// A short name, for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::ForeignOrigin => "foreign_origin",
            Refusal::MissingOrigin => "missing_origin",
            Refusal::ServerFull => "server_full",
            Refusal::TooManyFromAddress => "too_many_from_address",
        }
    }

    /// What the HTTP body says.
    pub fn message(self) -> &'static str {
        match self {
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
    per_ip: HashMap<IpAddr, usize>,
}

/// A held connection place; dropping it gives the place back.
#[derive(Debug)]
pub struct Permit {
    admission: Arc<Admission>,
    ip: IpAddr,
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
    /// Rules from the configuration.
    pub fn new(
        allowed_origins: &[String],
        require_origin: bool,
        max_total: usize,
        max_per_ip: usize,
    ) -> Self {
        Admission {
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

    /// Checks the request's `Origin` against its `Host` and the allowed list.
    pub fn check_origin(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return if self.require_origin {
                Err(Refusal::MissingOrigin)
            } else {
                Ok(())
            };
        };
        let origin = normalize(origin.to_str().map_err(|_| Refusal::ForeignOrigin)?);
        // Same origin: the page was served by this very host (browsers set Host themselves).
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let authority = origin.split_once("://").map(|(_, rest)| rest);
        let same_origin =
            matches!((authority, host), (Some(a), Some(h)) if a == h.to_ascii_lowercase());
        if same_origin || self.allowed_origins.contains(&origin) {
            Ok(())
        } else {
            Err(Refusal::ForeignOrigin)
        }
    }

    /// Takes a connection place for `ip`, if one is free.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, Refusal> {
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

    #[test]
    fn own_origin_passes_foreign_fails_listed_passes() {
        let a = Admission::new(&["http://localhost:8080/".into()], false, 10, 10);
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
        let strict = Admission::new(&[], true, 10, 10);
        assert_eq!(
            strict.check_origin(&headers(None, host)),
            Err(Refusal::MissingOrigin)
        );
    }

    #[test]
    fn permits_count_and_come_back() {
        let a = Arc::new(Admission::new(&[], false, 3, 2));
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
}
