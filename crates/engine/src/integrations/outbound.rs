//! Where a workflow's HTTP Tasks may go. A workflow names its own endpoints, so it could aim
//! at the machine's link-local addresses, where cloud instance metadata (and its
//! credentials) lives: 169.254.0.0/16, fe80::/10 and fd00:ec2::254. Those are refused, in the
//! URL, in every address its host name resolves to and at every redirect (at most
//! [`MAX_REDIRECTS`]), unless `--allow-link-local` says otherwise. The engine's one HTTP
//! client is built this way, so the other integrations are held to it too.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect::Policy;
use reqwest::{ClientBuilder, Url};

/// How many redirects an HTTP Task follows.
pub const MAX_REDIRECTS: usize = 5;

/// Whether an address is link-local or a cloud metadata address.
pub fn forbidden(ip: IpAddr) -> bool {
    const EC2_METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.is_link_local(),
            None => (v6.segments()[0] & 0xffc0) == 0xfe80 || v6 == EC2_METADATA_V6,
        },
    }
}

/// Refuses a URL whose host is a forbidden address (names are checked as they resolve).
pub fn check_url(url: &Url) -> Result<(), String> {
    let host = url.host_str().unwrap_or_default();
    let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() else {
        return Ok(());
    };
    match forbidden(ip) {
        true => Err(refusal(&ip.to_string())),
        false => Ok(()),
    }
}

fn refusal(what: &str) -> String {
    format!("{what} is a link-local or metadata address, which HTTP Tasks may not reach (see --allow-link-local)")
}

/// Resolves host names as the system does, keeping only addresses that are not forbidden.
struct Guarded;

impl Resolve for Guarded {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> =
                all.iter().copied().filter(|a| !forbidden(a.ip())).collect();
            if allowed.is_empty() && !all.is_empty() {
                return Err(refusal(&format!("{host} resolves only to an address that")).into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// `builder` with redirects limited and, unless `allow_link_local`, names resolved and
/// redirects followed only to allowed addresses.
pub fn guard(builder: ClientBuilder, allow_link_local: bool) -> ClientBuilder {
    let redirects = Policy::custom(move |attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        match allow_link_local {
            true => attempt.follow(),
            false => match check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(e) => attempt.error(e),
            },
        }
    });
    let builder = builder.redirect(redirects);
    match allow_link_local {
        true => builder,
        false => builder.dns_resolver(Guarded),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_addresses() {
        for ip in [
            "169.254.169.254",
            "169.254.0.1",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
        ] {
            assert!(forbidden(ip.parse().expect("an address")), "{ip}");
        }
        for ip in ["127.0.0.1", "10.0.0.1", "::1", "fd00:ec2::253", "8.8.8.8"] {
            assert!(!forbidden(ip.parse().expect("an address")), "{ip}");
        }
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "http://[fd00:ec2::254]/",
        ] {
            assert!(
                check_url(&Url::parse(url).expect("a URL")).is_err(),
                "{url}"
            );
        }
        assert!(check_url(&Url::parse("http://example.com/").expect("a URL")).is_ok());
    }
}
