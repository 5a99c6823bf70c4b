//! The request's own origin, and which origins and host names may write.
//!
//! CORS only decides what a browser lets a page *read*; a "simple"
//! cross-origin post (a form, or JSON sent as `text/plain`) reaches the
//! server without asking first. So the write routes check for themselves:
//!
//! - A browser's `Origin` must be the request's own origin (scheme, host
//!   and port, the default port filled in) or one listed in
//!   `http.cors_write_origins`.
//! - The request's own origin comes from the connection: `Host`, and the
//!   scheme of this server (plain HTTP). `Forwarded` (RFC 7239),
//!   `X-Forwarded-Host` and `X-Forwarded-Proto` are believed only from the
//!   peers listed in `http.trusted_proxies` (addresses or CIDR ranges), and
//!   then only their last value, the one the nearest proxy set: anyone else
//!   could claim any origin with them.
//! - Without an API key, writes are taken only for host names the server
//!   knows: `localhost` (and `*.localhost`), IP literals, and those listed in
//!   `http.allowed_hosts` (`*` for any). A DNS-rebinding page (one on
//!   `evil.example` whose name the attacker points at this server) sends
//!   `Host` and `Origin` that agree, so only the host name gives it away.

use std::net::IpAddr;

use actix_web::HttpRequest;
use actix_web::http::header;
use ipnet::IpNet;

/// Peers whose forwarded headers are believed.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustedProxies(Vec<IpNet>);

/// A `http.trusted_proxies` entry that is neither an address nor a range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is neither an IP address nor a CIDR range such as 10.0.0.0/8")]
pub struct InvalidProxy(String);

impl TrustedProxies {
    /// Reads addresses (`10.0.0.7`, `::1`) and CIDR ranges (`10.0.0.0/8`);
    /// empty entries are skipped.
    ///
    /// # Errors
    /// [`InvalidProxy`] naming the first entry that is neither.
    pub(crate) fn parse(entries: &[String]) -> Result<TrustedProxies, InvalidProxy> {
        entries
            .iter()
            .map(|entry| entry.trim())
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| InvalidProxy(entry.to_owned()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    fn trusts(&self, peer: Option<IpAddr>) -> bool {
        peer.is_some_and(|peer| {
            let peer = peer.to_canonical();
            self.0.iter().any(|range| range.contains(&peer))
        })
    }
}

/// A scheme, host and port: what an origin is made of. The host is
/// lowercase, without a trailing dot; IPv6 addresses keep their brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// Reads an `Origin` header value such as `https://example.com:8443`.
    pub(crate) fn parse(text: &str) -> Option<Origin> {
        let (scheme, authority) = text.trim().split_once("://")?;
        Origin::from_authority(scheme, authority)
    }

    /// `host[:port]` under `scheme`, the scheme's default port filled in.
    fn from_authority(scheme: &str, authority: &str) -> Option<Origin> {
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let (host, port) = split_port(authority)?;
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if host.is_empty() || host.contains(['/', '@', '?', '#', ' ']) {
            return None;
        }
        Some(Origin {
            scheme,
            host,
            port: port.unwrap_or(default_port),
        })
    }

    /// The host, as a name or an IP literal.
    pub(crate) fn host(&self) -> &str {
        &self.host
    }
}

/// `host` and its port, if any: `example.com:80`, `[::1]:80`, `[::1]`.
fn split_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, rest) = authority.split_at(end + 1);
        match rest {
            "" => (host, None),
            _ => (host, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => None,
        Some(port) => Some(port.parse::<u16>().ok()?),
    };
    Some((host, port))
}

/// The request's own origin: see the module docs. `None` when the request
/// names no usable host.
pub(crate) fn own_origin(request: &HttpRequest, proxies: &TrustedProxies) -> Option<Origin> {
    let own_scheme = if request.app_config().secure() {
        "https"
    } else {
        "http"
    };
    let peer = request.peer_addr().map(|address| address.ip());
    let (scheme, host) = if proxies.trusts(peer) {
        let (forwarded_proto, forwarded_host) = forwarded(request);
        let proto = forwarded_proto.or_else(|| last_value(request, "x-forwarded-proto"));
        let host = forwarded_host.or_else(|| last_value(request, "x-forwarded-host"));
        (proto.unwrap_or_else(|| own_scheme.to_owned()), host)
    } else {
        (own_scheme.to_owned(), None)
    };
    let host = host.or_else(|| {
        request
            .headers()
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
            .or_else(|| request.uri().authority().map(|a| a.as_str().to_owned()))
    })?;
    Origin::from_authority(&scheme, host.trim())
}

/// `proto=` and `host=` of the last element of `Forwarded` (RFC 7239).
fn forwarded(request: &HttpRequest) -> (Option<String>, Option<String>) {
    let Some(last) = request
        .headers()
        .get_all(header::FORWARDED)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .last()
    else {
        return (None, None);
    };
    let (mut proto, mut host) = (None, None);
    for pair in last.split(';') {
        let Some((key, value)) = pair.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"').to_owned();
        match key.trim().to_ascii_lowercase().as_str() {
            "proto" => proto = Some(value),
            "host" => host = Some(value),
            _ => {}
        }
    }
    (proto, host)
}

/// The last comma-separated value of header `name`.
fn last_value(request: &HttpRequest, name: &str) -> Option<String> {
    request
        .headers()
        .get_all(name)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .rfind(|value| !value.is_empty())
        .map(str::to_owned)
}

/// Whether `origin` (an `Origin` header) may write to a request whose own
/// origin is `own`: the same origin, or one of `allowed` (`*` for any).
pub(crate) fn origin_may_write(origin: &str, own: Option<&Origin>, allowed: &[String]) -> bool {
    let parsed = Origin::parse(origin);
    let same = parsed.is_some() && parsed.as_ref() == own;
    same || allowed.iter().any(|listed| {
        listed == "*"
            || listed.eq_ignore_ascii_case(origin.trim())
            || (parsed.is_some() && Origin::parse(listed) == parsed)
    })
}

/// Whether writes are taken for `host` without an API key: loopback names,
/// IP literals, and the names in `allowed` (`*` for any).
pub(crate) fn host_may_write(host: &str, allowed: &[String]) -> bool {
    let literal = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host == "localhost"
        || host.ends_with(".localhost")
        || literal.parse::<IpAddr>().is_ok()
        || allowed.iter().any(|name| {
            let name = name.trim().trim_end_matches('.');
            name == "*" || name.eq_ignore_ascii_case(host)
        })
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn origin(scheme: &str, host: &str, port: u16) -> Option<Origin> {
        Some(Origin {
            scheme: scheme.to_owned(),
            host: host.to_owned(),
            port,
        })
    }

    #[test]
    fn origins_compare_by_scheme_host_and_port_with_default_ports() {
        assert_eq!(
            Origin::parse("http://Example.com"),
            origin("http", "example.com", 80)
        );
        assert_eq!(
            Origin::parse("https://example.com."),
            origin("https", "example.com", 443)
        );
        assert_eq!(
            Origin::parse("http://[::1]:8000"),
            origin("http", "[::1]", 8000)
        );
        assert_eq!(
            Origin::parse("http://127.0.0.1:8000"),
            origin("http", "127.0.0.1", 8000)
        );
        for bad in [
            "null",
            "example.com",
            "ftp://example.com",
            "http://",
            "http://a:99999",
        ] {
            assert_eq!(Origin::parse(bad), None, "{bad}");
        }
    }

    fn request(peer: &str, headers: &[(&str, &str)]) -> HttpRequest {
        let mut request = TestRequest::post()
            .uri("/transactions")
            .peer_addr(peer.parse().expect("a socket address"));
        for (name, value) in headers {
            request = request.insert_header((*name, *value));
        }
        request.to_http_request()
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies_and_only_their_last_value() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8".into(), "::1".into()]).expect("valid");
        let headers = [
            ("Host", "internal:8000"),
            ("X-Forwarded-Host", "evil.example, public.example"),
            ("X-Forwarded-Proto", "https"),
        ];
        let via_proxy = request("10.1.2.3:5000", &headers);
        assert_eq!(
            own_origin(&via_proxy, &proxies),
            origin("https", "public.example", 443)
        );
        let direct = request("192.0.2.1:5000", &headers);
        assert_eq!(
            own_origin(&direct, &proxies),
            origin("http", "internal", 8000)
        );
        let rfc = request(
            "[::1]:5000",
            &[
                ("Host", "internal"),
                (
                    "Forwarded",
                    "for=1.2.3.4;host=evil.example, for=10.0.0.1;proto=https;host=\"public.example:8443\"",
                ),
            ],
        );
        assert_eq!(
            own_origin(&rfc, &proxies),
            origin("https", "public.example", 8443)
        );
        assert!(TrustedProxies::parse(&["not-an-address".into()]).is_err());
    }

    #[test]
    fn without_an_api_key_only_known_hosts_may_write() {
        for host in [
            "localhost",
            "api.localhost",
            "127.0.0.1",
            "[::1]",
            "10.0.0.7",
        ] {
            assert!(host_may_write(host, &[]), "{host}");
        }
        assert!(!host_may_write("evil.example", &[]));
        assert!(host_may_write(
            "txwatch.example.com",
            &["TXWATCH.example.com".into()]
        ));
        assert!(host_may_write("anything.example", &["*".into()]));
    }

    #[test]
    fn an_origin_may_write_when_it_is_the_requests_own_or_listed() {
        let own = Origin::parse("http://127.0.0.1:8000");
        assert!(origin_may_write("http://127.0.0.1:8000", own.as_ref(), &[]));
        assert!(!origin_may_write(
            "https://127.0.0.1:8000",
            own.as_ref(),
            &[]
        ));
        assert!(!origin_may_write(
            "http://127.0.0.1:8001",
            own.as_ref(),
            &[]
        ));
        assert!(!origin_may_write("null", own.as_ref(), &[]));
        assert!(origin_may_write(
            "https://ops.example",
            own.as_ref(),
            &["https://ops.example:443".into()]
        ));
        assert!(origin_may_write("null", own.as_ref(), &["*".into()]));
    }
}
