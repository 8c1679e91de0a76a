//! Which `Host` headers the server answers, against DNS rebinding: a page on another site
//! whose name is made to resolve to 127.0.0.1 reaches a server on loopback from the user's
//! browser, but its requests carry that site's name. A server on loopback answers only its
//! loopback names unless `--allowed-hosts` says more.

use axum::http::{HeaderMap, StatusCode};

use crate::error::ApiError;

/// The host names requests may address (without ports); `None` accepts any.
#[derive(Debug, Clone)]
pub struct AllowedHosts(Option<Vec<String>>);

impl AllowedHosts {
    /// `listen_host` is the address the server binds; `configured` the `--allowed-hosts`.
    pub fn new(listen_host: &str, configured: &[String]) -> AllowedHosts {
        if !configured.is_empty() {
            return AllowedHosts(Some(configured.iter().map(|h| h.to_lowercase()).collect()));
        }
        match is_loopback(listen_host) {
            true => AllowedHosts(Some(
                ["localhost", "127.0.0.1", "[::1]", listen_host]
                    .map(str::to_owned)
                    .to_vec(),
            )),
            // Beyond loopback the server cannot know every name it is reached by.
            false => AllowedHosts(None),
        }
    }

    /// Accepts the request's `Host` (any port), or refuses it.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(allowed) = &self.0 else {
            return Ok(());
        };
        let host = headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
            .to_lowercase();
        let name = match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host.as_str(),
        };
        if allowed.iter().any(|a| a == name) {
            return Ok(());
        }
        Err(ApiError {
            status: StatusCode::FORBIDDEN,
            ..ApiError::coral(
                "AccessDeniedException",
                format!("Host '{host}' is not a name of this server (see --allowed-hosts)"),
            )
        })
    }
}

/// Whether `host` (a name or an address) is this machine's loopback.
pub fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(allowed: &AllowedHosts, host: &str) -> bool {
        let mut headers = HeaderMap::new();
        if let Ok(v) = host.parse() {
            headers.insert("host", v);
        }
        allowed.check(&headers).is_ok()
    }

    #[test]
    fn loopback_answers_its_loopback_names() {
        let local = AllowedHosts::new("127.0.0.1", &[]);
        for ok in [
            "127.0.0.1:8083",
            "localhost:8083",
            "LOCALHOST",
            "[::1]:8083",
        ] {
            assert!(check(&local, ok), "{ok}");
        }
        for bad in [
            "evil.example:8083",
            "",
            "127.0.0.1.evil.example",
            "sync-127.0.0.1:1",
        ] {
            assert!(!check(&local, bad), "{bad}");
        }
        let open = AllowedHosts::new("0.0.0.0", &[]);
        assert!(check(&open, "anything:1"));
        let named = AllowedHosts::new("0.0.0.0", &["sfn.internal".into()]);
        assert!(check(&named, "sfn.internal:8083") && !check(&named, "other:8083"));
    }
}
