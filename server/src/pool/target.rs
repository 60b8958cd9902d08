//! Where a pool run sends its requests: a plain `http://` URL, loopback only unless the lab
//! runs with `--allow-outbound`, so the lab can't be aimed at someone else's server.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use hyper::Uri;

/// The lab's own helper a run hits when the page gives no URL.
pub const DEFAULT_PATH: &str = "/_/delay/50";

/// Where the address comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    /// An IP address given in the URL (or `localhost`).
    Addr(SocketAddr),
    /// A host name, looked up when the run starts (only with `--allow-outbound`).
    Lookup(String, u16),
}

/// A parsed, allowed target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL, normalized (shown in the run's spec).
    pub url: String,
    /// Where to connect.
    pub dest: Dest,
    /// The `Host` header.
    pub host: String,
    /// The request target: path and query.
    pub path: String,
}

impl Target {
    /// The lab's own HTTP service at `addr`, on [`DEFAULT_PATH`].
    pub fn own(addr: SocketAddr) -> Target {
        Target {
            url: format!("http://{addr}{DEFAULT_PATH}"),
            dest: Dest::Addr(addr),
            host: addr.to_string(),
            path: DEFAULT_PATH.into(),
        }
    }

    /// Parses `url`: `http://` only; a host other than loopback only with
    /// `allow_outbound`.
    pub fn parse(url: &str, allow_outbound: bool) -> Result<Target, String> {
        let url = url.trim_matches(|c: char| c.is_ascii_whitespace());
        // A request head is ASCII (RFC 9112); the URL parser would let other bytes into
        // the path, and a trailing U+3000 would be trimmed from the normalized URL (found
        // by the fuzzer: the URL it gave did not parse to itself).
        if !url.is_ascii() {
            return Err(format!(
                "{url:?} has characters outside ASCII: percent-encode them (%E3%80%80)"
            ));
        }
        let uri: Uri = url
            .parse()
            .map_err(|_| format!("{url:?} is not a URL like http://127.0.0.1:1337/_/delay/50"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => {
                return Err(format!(
                    "only http:// URLs can be used (not {other}://): the pool lab speaks plain HTTP/1.1"
                ));
            }
            None => {
                return Err(format!(
                    "{url:?} has no scheme: write it as http://host:port/path"
                ));
            }
        }
        let authority = uri
            .authority()
            .ok_or_else(|| format!("{url:?} names no host"))?;
        if authority.as_str().contains('@') {
            return Err("URLs with a user name or password are not supported".into());
        }
        let host = authority.host();
        let port = uri.port_u16().unwrap_or(80);
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let ip = match bare.parse::<IpAddr>() {
            Ok(ip) if ip.is_unspecified() => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            Ok(ip) => Some(ip),
            Err(_) if bare.eq_ignore_ascii_case("localhost") => Some(Ipv4Addr::LOCALHOST.into()),
            Err(_) => None,
        };
        let loopback = ip.is_some_and(|ip| ip.is_loopback());
        if !loopback && !allow_outbound {
            return Err(format!(
                "{host} is not a loopback address; wirelab only sends pool runs to this machine \
                 (127.0.0.0/8, ::1, localhost) unless it runs with --allow-outbound"
            ));
        }
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        Ok(Target {
            url: format!("http://{authority}{path}"),
            dest: match ip {
                Some(ip) => Dest::Addr(SocketAddr::new(ip, port)),
                None => Dest::Lookup(host.to_owned(), port),
            },
            host: authority.as_str().to_owned(),
            path: path.to_owned(),
        })
    }

    /// The address to connect to, looking the host up if need be.
    pub async fn resolve(&self) -> Result<SocketAddr, String> {
        match &self.dest {
            Dest::Addr(a) => Ok(*a),
            Dest::Lookup(host, port) => tokio::net::lookup_host((host.as_str(), *port))
                .await
                .map_err(|e| format!("cannot look up {host}: {e}"))?
                .next()
                .ok_or_else(|| format!("{host} has no address")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls_are_parsed() {
        let t = Target::parse(" http://127.0.0.1:1337/_/delay/5?x=1 ", false).unwrap();
        assert_eq!(t.dest, Dest::Addr("127.0.0.1:1337".parse().unwrap()));
        assert_eq!(
            (t.host.as_str(), t.path.as_str()),
            ("127.0.0.1:1337", "/_/delay/5?x=1")
        );
        assert_eq!(t.url, "http://127.0.0.1:1337/_/delay/5?x=1");
        let t = Target::parse("http://localhost", false).unwrap();
        assert_eq!(
            (t.dest, t.path.as_str()),
            (Dest::Addr("127.0.0.1:80".parse().unwrap()), "/")
        );
        let t = Target::parse("http://[::1]:8/", false).unwrap();
        assert_eq!(t.dest, Dest::Addr("[::1]:8".parse().unwrap()));
        assert!(Target::parse("http://127.9.9.9/", false).is_ok());
    }

    #[test]
    fn other_hosts_need_allow_outbound() {
        for url in [
            "http://192.0.2.1/",
            "http://example.com/",
            "http://[2001:db8::1]/",
        ] {
            let e = Target::parse(url, false).unwrap_err();
            assert!(e.contains("--allow-outbound"), "{e}");
            assert!(Target::parse(url, true).is_ok(), "{url}");
        }
        let t = Target::parse("http://example.com:81/a", true).unwrap();
        assert_eq!(t.dest, Dest::Lookup("example.com".into(), 81));
    }

    #[test]
    fn only_plain_http_urls() {
        assert!(
            Target::parse("https://127.0.0.1/", true)
                .unwrap_err()
                .contains("http://")
        );
        assert!(Target::parse("127.0.0.1:80/x", true).is_err());
        assert!(Target::parse("not a url", true).is_err());
        assert!(Target::parse("http://u:p@127.0.0.1/", true).is_err());
    }

    #[test]
    fn a_url_outside_ascii_is_refused_and_every_url_taken_parses_to_itself() {
        // The fuzzer's find: U+3000 before a `#` stayed in the path, and the URL made of
        // that path lost it to `trim`.
        let found = "http://127.0.0.1:?0/+x_c\u{3000}#\u{3000}\u{3000}}}0\u{2c4}";
        assert!(Target::parse(found, false).unwrap_err().contains("ASCII"));
        let t = Target::parse("http://127.0.0.1:/a%E3%80%80b#frag", false).unwrap();
        assert_eq!(Target::parse(&t.url, false).unwrap(), t);
    }
}
