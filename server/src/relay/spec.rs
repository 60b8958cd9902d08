//! `--proxy NAME=PROTO://LISTEN->UPSTREAM`: one proxy as the flag writes it.

use wirelab_shared::ProxyProtocol;

/// One proxy's settings, from the flag, the API or the page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxySpec {
    /// Unique among the lab's proxies: letters, digits, `-`, `_`, `.`.
    pub name: String,
    /// What it relays.
    pub protocol: ProxyProtocol,
    /// `host:port` clients connect to (port 0: any free port).
    pub listen: String,
    /// `host:port` each client's traffic is relayed to.
    pub upstream: String,
}

impl std::str::FromStr for ProxySpec {
    type Err = String;

    fn from_str(s: &str) -> Result<ProxySpec, String> {
        let example = "write NAME=PROTO://LISTEN->UPSTREAM, for example \
                       redis=tcp://127.0.0.1:16379->127.0.0.1:6379";
        let (name, rest) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?} has no `=`: {example}"))?;
        let (proto, rest) = rest
            .split_once("://")
            .ok_or_else(|| format!("{s:?} has no `://` after the protocol: {example}"))?;
        let protocol = ProxyProtocol::parse(proto)
            .ok_or_else(|| format!("unknown protocol {proto:?}: use tcp, http or udp"))?;
        let (listen, upstream) = rest
            .split_once("->")
            .ok_or_else(|| format!("{s:?} has no `->` between listen and upstream: {example}"))?;
        let spec = ProxySpec {
            name: name.trim().to_owned(),
            protocol,
            listen: listen.trim().to_owned(),
            upstream: upstream.trim().to_owned(),
        };
        spec.check()?;
        Ok(spec)
    }
}

impl ProxySpec {
    /// Refuses what can never work: an empty or odd name, an address without a port.
    pub fn check(&self) -> Result<(), String> {
        check_name(&self.name)?;
        for (what, addr) in [("listen", &self.listen), ("upstream", &self.upstream)] {
            match addr.rsplit_once(':') {
                Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
                _ => {
                    return Err(format!(
                        "{what} address {addr:?} is not host:port (for example 127.0.0.1:6379)"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A proxy's name: 1 to 64 of letters, digits, `-`, `_`, `.` (it is a path segment of the
/// API and a label on the page).
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.len() > 64 || !name.chars().all(ok) {
        return Err(format!(
            "proxy name {name:?}: use 1 to 64 letters, digits, `-`, `_` or `.`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_reads_name_protocol_listen_and_upstream() {
        let s: ProxySpec = "redis=tcp://127.0.0.1:16379->127.0.0.1:6379"
            .parse()
            .unwrap();
        assert_eq!(s.name, "redis");
        assert_eq!(s.protocol, ProxyProtocol::Tcp);
        assert_eq!(
            (s.listen.as_str(), s.upstream.as_str()),
            ("127.0.0.1:16379", "127.0.0.1:6379")
        );
        let s: ProxySpec = "dns=udp://[::1]:0->resolver.example:53".parse().unwrap();
        assert_eq!(
            (s.protocol, s.listen.as_str()),
            (ProxyProtocol::Udp, "[::1]:0")
        );
        for bad in [
            "redis",
            "redis=tcp:127.0.0.1:1->127.0.0.1:2",
            "redis=smtp://127.0.0.1:1->127.0.0.1:2",
            "redis=tcp://127.0.0.1:1",
            "=tcp://127.0.0.1:1->127.0.0.1:2",
            "a b=tcp://127.0.0.1:1->127.0.0.1:2",
            "r=tcp://127.0.0.1->127.0.0.1:2",
            "r=tcp://127.0.0.1:1->:2",
            "r=tcp://127.0.0.1:1->h:99999",
        ] {
            assert!(bad.parse::<ProxySpec>().is_err(), "{bad}");
        }
    }
}
