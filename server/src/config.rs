//! Command-line flags, each also read from a `WIRELAB_*` environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// What a relay service does with what one peer sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RelayMode {
    /// Send it to every other peer (like `ncat --broker`).
    Broadcast,
    /// Send it back to the sender.
    Echo,
    /// Keep it: record and show it, send nothing.
    Sink,
}

impl RelayMode {
    /// The mode's name as on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            RelayMode::Broadcast => "broadcast",
            RelayMode::Echo => "echo",
            RelayMode::Sink => "sink",
        }
    }
}

/// Whether the dashboard speaks TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DashboardTls {
    /// When it binds to an address off loopback.
    Auto,
    On,
    Off,
}

/// A service's address, or `off` for no such service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceAddr(pub Option<SocketAddr>);

impl std::str::FromStr for ServiceAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<ServiceAddr, String> {
        if s.eq_ignore_ascii_case("off") {
            return Ok(ServiceAddr(None));
        }
        s.parse()
            .map(|addr| ServiceAddr(Some(addr)))
            .map_err(|e| format!("{e}: give an address such as 127.0.0.1:1341, or `off`"))
    }
}

/// wirelab: a network lab in the browser. It runs a TCP, a UDP, an HTTP and a WebSocket
/// service and shows everything that happens on them, live, on a dashboard.
#[derive(Parser, Clone, Debug)]
#[command(name = "wirelab", version, about, max_term_width = 100)]
pub struct Config {
    /// Address of the dashboard (the page, `/ws` and `/api`). Bound to a non-loopback
    /// address, the lab asks for a token.
    #[arg(long, env = "WIRELAB_DASHBOARD", default_value = "127.0.0.1:8080")]
    pub dashboard: SocketAddr,

    /// Serve the dashboard over HTTPS and WSS, with a certificate from the lab's CA:
    /// `auto` when it binds off loopback (so the token never crosses the network in
    /// clear), or always `on`, or `off`.
    #[arg(
        long,
        env = "WIRELAB_DASHBOARD_TLS",
        value_enum,
        default_value = "auto"
    )]
    pub dashboard_tls: DashboardTls,

    /// Address of the HTTP service (the seed's Hello World).
    #[arg(long, env = "WIRELAB_HTTP", default_value = "127.0.0.1:1337")]
    pub http: SocketAddr,

    /// Address of the HTTPS service (the HTTP service's Hello World over TLS, with a
    /// certificate from the lab's CA, and the broken names such as `expired.localhost`), or
    /// `off`.
    #[arg(long, env = "WIRELAB_HTTPS", default_value = "127.0.0.1:1443")]
    pub https: ServiceAddr,

    /// Address of the TLS TCP service (the TCP service, with its modes, behind TLS with
    /// the lab's certificates: for `openssl s_client -connect`), or `off`.
    #[arg(long, env = "WIRELAB_TLS_TCP", default_value = "127.0.0.1:1340")]
    pub tls_tcp: ServiceAddr,

    /// Write TLS session secrets to this file (the NSS key-log format Wireshark reads to
    /// decrypt a capture). Anyone who can read it can decrypt those sessions.
    #[arg(long, env = "WIRELAB_TLS_KEYLOG")]
    pub tls_keylog: Option<PathBuf>,

    /// Address of the TCP service.
    #[arg(long, env = "WIRELAB_TCP", default_value = "127.0.0.1:1338")]
    pub tcp: SocketAddr,

    /// Address of the UDP service.
    #[arg(long, env = "WIRELAB_UDP", default_value = "127.0.0.1:1339")]
    pub udp: SocketAddr,

    /// Address of the WebSocket service (a WebSocket twin of the TCP service, answering an
    /// upgrade on any path), or `off`.
    #[arg(long, env = "WIRELAB_WS_SERVICE", default_value = "127.0.0.1:1341")]
    pub ws_service: ServiceAddr,

    /// What the WebSocket service does with a client's message: `echo` it back (as it came:
    /// text or binary, compressed or not), `broadcast` it to every other client, or keep
    /// it (`sink`).
    #[arg(long, env = "WIRELAB_WS_MODE", value_enum, default_value = "echo")]
    pub ws_mode: RelayMode,

    /// Largest message a client of the WebSocket service may send (bytes, inflated);
    /// larger closes with 1009. 16 MiB by default, as Autobahn's 9.* cases need.
    #[arg(long, env = "WIRELAB_MAX_WS_SERVICE_MESSAGE", default_value_t = 16 << 20)]
    pub max_ws_service_message: usize,

    /// Most clients of the WebSocket service at once; more are refused with 503. Each may
    /// hold one message of up to `--max-ws-service-message` while it arrives.
    #[arg(long, env = "WIRELAB_MAX_WS_SERVICE_CLIENTS", default_value_t = 256)]
    pub max_ws_service_clients: usize,

    /// What the TCP service does with what a client sends.
    #[arg(
        long,
        env = "WIRELAB_TCP_MODE",
        value_enum,
        default_value = "broadcast"
    )]
    pub tcp_mode: RelayMode,

    /// What the UDP service does with a datagram (broadcast: to every other peer seen in
    /// the last 60 s).
    #[arg(
        long,
        env = "WIRELAB_UDP_MODE",
        value_enum,
        default_value = "broadcast"
    )]
    pub udp_mode: RelayMode,

    /// Relay what arrives on any one of TCP, UDP and the WebSocket chat to the others.
    #[arg(long, env = "WIRELAB_BRIDGE")]
    pub bridge: bool,

    /// Let the page send to addresses the lab has not heard from, and connect out to
    /// non-loopback hosts. Off by default so the lab can't be turned into a reflector.
    #[arg(long, env = "WIRELAB_ALLOW_OUTBOUND")]
    pub allow_outbound: bool,

    /// A proxy of relay mode (repeatable): `NAME=PROTO://LISTEN->UPSTREAM`, for example
    /// `redis=tcp://127.0.0.1:16379->127.0.0.1:6379`. PROTO is `tcp` (raw bytes), `http`
    /// (the same bytes, each exchange and WebSocket frame also read and shown) or `udp`.
    /// The upstream may be any host: whoever starts the lab chose it.
    #[arg(long = "proxy", env = "WIRELAB_PROXY", value_delimiter = ',')]
    pub proxies: Vec<crate::relay::ProxySpec>,

    /// Address of toxiproxy's HTTP API (its paths, fields and status codes, for the
    /// toxiproxy clients), or `off`. It has no token, so off loopback it asks for the
    /// lab's.
    #[arg(long, env = "WIRELAB_TOXIPROXY_API", default_value = "127.0.0.1:8474")]
    pub toxiproxy_api: ServiceAddr,

    /// Seconds a `udp` proxy's session (one client address) lasts without a datagram
    /// either way.
    #[arg(long, env = "WIRELAB_PROXY_UDP_IDLE_SECS", default_value_t = 60)]
    pub proxy_udp_idle_secs: u64,

    /// Open connections per proxy at most (UDP: sessions); more are reset at once (UDP:
    /// their datagrams dropped), counted and shown.
    #[arg(long, env = "WIRELAB_MAX_PROXY_CONNS", default_value_t = 1024)]
    pub max_proxy_conns: usize,

    /// Seconds a relayed connection may stay half-closed (one side has sent FIN, passed on
    /// to the other) with no byte moving either way before the lab closes it (after one
    /// to two such periods; 0: never), so that a client gone in front of a silent upstream
    /// does not hold one of `--max-proxy-conns` for ever. A peer that vanishes without
    /// FIN or RST is found by TCP keepalive, on both legs.
    #[arg(long, env = "WIRELAB_PROXY_IDLE_SECS", default_value_t = 60)]
    pub proxy_idle_secs: u64,

    /// Bytes of payload captured per event; the rest is counted and reported as cut.
    #[arg(long, env = "WIRELAB_SNAPLEN", default_value_t = 64 * 1024)]
    pub snaplen: usize,

    /// Recent events sent to a dashboard when it connects.
    #[arg(long, env = "WIRELAB_BACKLOG", default_value_t = 1000)]
    pub backlog: usize,

    /// Most WebSocket clients at once; more are refused with 503.
    #[arg(long, env = "WIRELAB_MAX_WS_CLIENTS", default_value_t = 1024)]
    pub max_ws_clients: usize,

    /// Largest WebSocket message a client may send (bytes); larger closes with 1009.
    #[arg(long, env = "WIRELAB_MAX_WS_MESSAGE", default_value_t = 64 * 1024)]
    pub max_ws_message: usize,

    /// Frames a WebSocket client may fall behind before it is told `lagged`.
    #[arg(long, env = "WIRELAB_WS_QUEUE", default_value_t = 256)]
    pub ws_queue: usize,

    /// Seconds a WebSocket client may stay stuck (not reading) before it is closed
    /// with code 4008.
    #[arg(long, env = "WIRELAB_WS_STUCK_SECS", default_value_t = 10)]
    pub ws_stuck_secs: u64,

    /// Seconds without a frame (not even a pong) before a WebSocket client is closed
    /// with code 4000.
    #[arg(long, env = "WIRELAB_WS_IDLE_SECS", default_value_t = 90)]
    pub ws_idle_secs: u64,

    /// When WebSocket messages are compressed (permessage-deflate, for clients that offer
    /// it): `auto` compresses frames shared by 8 or more such clients once for all of them,
    /// and everything to clients not on loopback; `always` compresses every message of
    /// 512 bytes or more; `off` never agrees to it.
    #[arg(long, env = "WIRELAB_WS_COMPRESS", value_enum, default_value = "auto")]
    pub ws_compress: crate::ws::deflate::Policy,

    /// Most TCP connections at once; more are refused (accepted and closed) and counted.
    #[arg(long, env = "WIRELAB_MAX_TCP_CONNS", default_value_t = 1024)]
    pub max_tcp_conns: usize,

    /// Seconds a TCP connection may stay silent before the lab closes it (0: never).
    #[arg(long, env = "WIRELAB_TCP_IDLE_SECS", default_value_t = 0)]
    pub tcp_idle_secs: u64,

    /// UDP peers remembered at most; the oldest is evicted (and counted) past it.
    #[arg(long, env = "WIRELAB_UDP_MAX_PEERS", default_value_t = 1024)]
    pub udp_max_peers: usize,

    /// Most HTTP connections at once; more are answered 503 (with `Connection: close`),
    /// closed and counted.
    #[arg(long, env = "WIRELAB_MAX_HTTP_CONNS", default_value_t = 1024)]
    pub max_http_conns: usize,

    /// Seconds an HTTP connection may go without a byte moving before it is closed (after
    /// one to two such periods): idle keep-alive, a head or body that never completes, a
    /// client that does not read its answers.
    #[arg(long, env = "WIRELAB_HTTP_IDLE_SECS", default_value_t = 30)]
    pub http_idle_secs: u64,

    /// Slowest an HTTP request body may come, in bytes a second on average: after the head,
    /// a body gets `--http-idle-secs` plus one second for every this many bytes received
    /// (and never `--http-idle-secs` without a byte), so a body trickled a byte at a time
    /// is answered 408 and closed after about `--http-idle-secs` (0: no minimum rate).
    #[arg(long, env = "WIRELAB_HTTP_BODY_MIN_RATE", default_value_t = 500)]
    pub http_body_min_rate: u64,

    /// Largest HTTP request body (bytes); larger gets 413.
    #[arg(long, env = "WIRELAB_MAX_HTTP_BODY", default_value_t = 1024 * 1024)]
    pub max_http_body: usize,

    /// Token needed for `/ws` and `/api` (`?token=` or `Authorization: Bearer`). Bound to
    /// a non-loopback address without one, the lab makes one up and prints it.
    #[arg(long, env = "WIRELAB_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Other origins allowed to open `/ws` besides the page's own (repeatable), for
    /// example `http://127.0.0.1:8081` for `trunk serve`.
    #[arg(long = "allow-origin", env = "WIRELAB_ALLOW_ORIGIN", value_delimiter = ',',
          default_values_t = ["http://127.0.0.1:8081".to_owned(), "http://localhost:8081".to_owned()])]
    pub allow_origins: Vec<String>,

    /// Where recorded events are kept.
    #[arg(long, env = "WIRELAB_DATA_DIR", default_value = "./wirelab-data")]
    pub data_dir: PathBuf,

    /// Keep everything in memory: nothing is written to disk.
    #[arg(long, env = "WIRELAB_EPHEMERAL")]
    pub ephemeral: bool,

    /// Recorded events kept at most; the oldest are pruned (0: no limit).
    #[arg(long, env = "WIRELAB_RETAIN_EVENTS", default_value_t = 1_000_000)]
    pub retain_events: u64,

    /// Days recorded events are kept at most (0: no limit).
    #[arg(long, env = "WIRELAB_RETAIN_DAYS", default_value_t = 7)]
    pub retain_days: u64,

    /// Seconds between two prunes of old events (for tests).
    #[arg(long, env = "WIRELAB_PRUNE_SECS", default_value_t = 10, hide = true)]
    pub prune_secs: u64,
}

impl Config {
    /// Whether the dashboard speaks TLS (see `--dashboard-tls`).
    pub fn dashboard_tls(&self) -> bool {
        match self.dashboard_tls {
            DashboardTls::On => true,
            DashboardTls::Off => false,
            DashboardTls::Auto => self.exposed(),
        }
    }

    /// Every service on 127.0.0.1 port 0, in memory: what tests start.
    pub fn for_tests() -> Config {
        let mut config = Config::parse_from(["wirelab", "--ephemeral"]);
        let any: SocketAddr = "127.0.0.1:0".parse().expect("valid address");
        config.dashboard = any;
        config.http = any;
        config.tcp = any;
        config.udp = any;
        config.ws_service = ServiceAddr(Some(any));
        config.toxiproxy_api = ServiceAddr(Some(any));
        config.https = ServiceAddr(Some(any));
        config.tls_tcp = ServiceAddr(Some(any));
        config
    }

    /// Whether the dashboard is reachable from other machines.
    pub fn exposed(&self) -> bool {
        !self.dashboard.ip().is_loopback()
    }

    /// Whether toxiproxy's API is reachable from other machines (then it asks for the
    /// lab's token, and the lab makes one up if none was given).
    pub fn api_exposed(&self) -> bool {
        self.toxiproxy_api.0.is_some_and(|a| !a.ip().is_loopback())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_seed_ports_on_loopback() {
        let c = Config::parse_from(["wirelab"]);
        assert_eq!(c.http.to_string(), "127.0.0.1:1337");
        assert_eq!(c.tcp.port(), 1338);
        assert_eq!(c.udp.port(), 1339);
        assert_eq!(c.dashboard.port(), 8080);
        assert!(!c.exposed());
        assert_eq!(c.tcp_mode, RelayMode::Broadcast);
        assert_eq!(c.ws_service.0.map(|a| a.port()), Some(1341));
        assert_eq!(c.ws_mode, RelayMode::Echo);
        assert_eq!(c.max_ws_service_message, 16 << 20);
        assert_eq!(
            c.toxiproxy_api.0.map(|a| a.to_string()).as_deref(),
            Some("127.0.0.1:8474")
        );
        assert!(!c.api_exposed());
        assert!(c.proxies.is_empty());
    }

    #[test]
    fn proxies_repeat_and_a_bad_one_is_refused() {
        let c = Config::parse_from([
            "wirelab",
            "--proxy",
            "redis=tcp://127.0.0.1:16379->127.0.0.1:6379",
            "--proxy",
            "dns=udp://127.0.0.1:5353->127.0.0.1:53",
            "--toxiproxy-api",
            "off",
        ]);
        let names: Vec<&str> = c.proxies.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["redis", "dns"]);
        assert_eq!(c.toxiproxy_api, ServiceAddr(None));
        assert!(Config::try_parse_from(["wirelab", "--proxy", "redis=tcp://nowhere"]).is_err());
    }

    #[test]
    fn the_ws_service_can_be_turned_off() {
        let c = Config::parse_from(["wirelab", "--ws-service", "off"]);
        assert_eq!(c.ws_service, ServiceAddr(None));
        assert!(Config::try_parse_from(["wirelab", "--ws-service", "nowhere"]).is_err());
    }

    #[test]
    fn flags_override_and_bad_values_are_refused() {
        let c = Config::parse_from(["wirelab", "--udp-mode", "echo", "--dashboard", "0.0.0.0:9"]);
        assert_eq!(c.udp_mode, RelayMode::Echo);
        assert!(c.exposed());
        assert!(Config::try_parse_from(["wirelab", "--tcp-mode", "loud"]).is_err());
        assert!(Config::try_parse_from(["wirelab", "--udp", "nowhere"]).is_err());
    }
}
