//! One toxic as toxiproxy defines it: a name, a type with its attributes (toxiproxy's
//! names and units), a stream and a toxicity; read from and written as toxiproxy's JSON.
//!
//! Reading follows toxiproxy's `AddToxicJson` step by step, so that the same mistakes get
//! the same answers: the body, then the stream, then the name (`<type>_<stream>` when
//! left out), then the type; the caller then checks the name is free, then the
//! attributes are read. An update (`UpdateToxicJson`) changes `attributes` and
//! `toxicity` only.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::pipeline::Flow;

/// The largest attribute taken (a year in ms, a TB/s in KB/s, a TB in bytes): past it the
/// arithmetic on instants and sizes could overflow, and no test wants more.
pub const ATTRIBUTE_MAX: i64 = 1_000_000_000_000;

/// The stream a toxic applies to, as toxiproxy names it ("upstream": from the client
/// toward the upstream), plus wirelab's `both`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Client → upstream ([`Flow::Up`]).
    Upstream,
    /// Upstream → client ([`Flow::Down`]); toxiproxy's default.
    Downstream,
    /// Both ways (wirelab's extension; toxiproxy #132).
    Both,
}

impl Stream {
    /// As the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Upstream => "upstream",
            Stream::Downstream => "downstream",
            Stream::Both => "both",
        }
    }

    /// toxiproxy's `ParseDirection` (case does not matter), plus `both`.
    pub fn parse(s: &str) -> Option<Stream> {
        match s.to_ascii_lowercase().as_str() {
            "upstream" => Some(Stream::Upstream),
            "downstream" => Some(Stream::Downstream),
            "both" => Some(Stream::Both),
            _ => None,
        }
    }

    /// Whether bytes travelling `flow` get it.
    pub fn covers(self, flow: Flow) -> bool {
        matches!(
            (self, flow),
            (Stream::Both, _) | (Stream::Upstream, Flow::Up) | (Stream::Downstream, Flow::Down)
        )
    }
}

/// What a toxic does, with toxiproxy's attributes and units. The last four are wirelab's,
/// for datagrams (`udp` proxies) only; `packet_loss` and `corrupt` (toxiproxy's too) act
/// on a TCP stream's chunks and on datagrams alike.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// Each chunk is held `latency` ms, ± up to `jitter` ms.
    Latency { latency: i64, jitter: i64 },
    /// At most `rate` KB/s (1 KB = 1,000 bytes, as toxiproxy); 0: no limit.
    Bandwidth { rate: i64 },
    /// The FIN is passed on `delay` ms late.
    SlowClose { delay: i64 },
    /// Nothing gets through; the connection is closed `timeout` ms after the toxic
    /// applies to it or last dropped a chunk (0: held open, data dropped, until the toxic
    /// is removed, which closes it, as toxiproxy does).
    Timeout { timeout: i64 },
    /// The first chunk (dropped) starts a `timeout` ms wait, then both legs get a RST.
    ResetPeer { timeout: i64 },
    /// Chunks cut into pieces of `average_size` ± `size_variation` bytes, `delay` µs
    /// apart.
    Slicer {
        average_size: i64,
        size_variation: i64,
        delay: i64,
    },
    /// The connection is closed once `bytes` bytes have gone through this way.
    LimitData { bytes: i64 },
    /// toxiproxy 2.12's: each chunk (datagram) dropped with chance `loss_rate`, or
    /// `loss_rate + correlation` right after one was dropped.
    PacketLoss { loss_rate: f64, correlation: f64 },
    /// toxiproxy's: each bit flipped with chance `probability`.
    Corrupt { probability: f64 },
    /// Datagrams lost by netem's Gilbert-Elliott model: in the good state one is lost with
    /// chance `rate`, in the bad (burst) state with `burst_rate`; after each datagram the
    /// state turns bad with chance `burst_enter`, and good again with `burst_exit` (0:
    /// `1 - burst_enter`, netem's default).
    Loss {
        rate: f64,
        burst_enter: f64,
        burst_exit: f64,
        burst_rate: f64,
    },
    /// Each datagram sent twice with chance `rate`.
    Duplicate { rate: f64 },
    /// A datagram held back with chance `rate`, until `gap` later ones have gone (at
    /// most [`REORDER_HOLD_MS`] ms).
    Reorder { rate: f64, gap: i64 },
    /// Datagrams longer than `size` bytes cut to `size`.
    Truncate { size: i64 },
}

/// How long a datagram held back by `reorder` waits for the datagrams it lets pass.
pub const REORDER_HOLD_MS: u64 = 1000;

/// An attribute's value: a whole number (ms, bytes, KB/s) or a chance (0 to 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    Int(i64),
    Chance(f64),
}

/// Where an attribute is kept.
enum Slot<'a> {
    Int(&'a mut i64),
    Chance(&'a mut f64),
}

/// What a kind of toxic can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acts {
    /// Byte streams only (`tcp` and `http` proxies).
    Streams,
    /// Datagrams only (`udp` proxies).
    Datagrams,
    /// Both.
    Both,
}

impl Kind {
    /// toxiproxy's type name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Kind::Latency { .. } => "latency",
            Kind::Bandwidth { .. } => "bandwidth",
            Kind::SlowClose { .. } => "slow_close",
            Kind::Timeout { .. } => "timeout",
            Kind::ResetPeer { .. } => "reset_peer",
            Kind::Slicer { .. } => "slicer",
            Kind::LimitData { .. } => "limit_data",
            Kind::PacketLoss { .. } => "packet_loss",
            Kind::Corrupt { .. } => "corrupt",
            Kind::Loss { .. } => "loss",
            Kind::Duplicate { .. } => "duplicate",
            Kind::Reorder { .. } => "reorder",
            Kind::Truncate { .. } => "truncate",
        }
    }

    /// What it can act on: a connection's ends (FIN, RST) and a stream's cuts mean
    /// nothing to datagrams, nor duplicating or reordering to a byte stream.
    pub fn acts_on(&self) -> Acts {
        match self {
            Kind::Latency { .. }
            | Kind::Bandwidth { .. }
            | Kind::PacketLoss { .. }
            | Kind::Corrupt { .. } => Acts::Both,
            Kind::SlowClose { .. }
            | Kind::Timeout { .. }
            | Kind::ResetPeer { .. }
            | Kind::Slicer { .. }
            | Kind::LimitData { .. } => Acts::Streams,
            Kind::Loss { .. }
            | Kind::Duplicate { .. }
            | Kind::Reorder { .. }
            | Kind::Truncate { .. } => Acts::Datagrams,
        }
    }

    /// The toxic of type `name` with toxiproxy's defaults (every attribute 0), or `None`
    /// for a type toxiproxy or wirelab does not have.
    pub fn default_of(name: &str) -> Option<Kind> {
        Some(match name {
            "latency" => Kind::Latency {
                latency: 0,
                jitter: 0,
            },
            "bandwidth" => Kind::Bandwidth { rate: 0 },
            "slow_close" => Kind::SlowClose { delay: 0 },
            "timeout" => Kind::Timeout { timeout: 0 },
            "reset_peer" => Kind::ResetPeer { timeout: 0 },
            "slicer" => Kind::Slicer {
                average_size: 0,
                size_variation: 0,
                delay: 0,
            },
            "limit_data" => Kind::LimitData { bytes: 0 },
            "packet_loss" => Kind::PacketLoss {
                loss_rate: 0.0,
                correlation: 0.0,
            },
            "corrupt" => Kind::Corrupt { probability: 0.0 },
            "loss" => Kind::Loss {
                rate: 0.0,
                burst_enter: 0.0,
                burst_exit: 0.0,
                burst_rate: 0.0,
            },
            "duplicate" => Kind::Duplicate { rate: 0.0 },
            "reorder" => Kind::Reorder { rate: 0.0, gap: 0 },
            "truncate" => Kind::Truncate { size: 0 },
            _ => return None,
        })
    }

    /// Its attributes by name, in toxiproxy's order.
    fn fields(&self) -> Vec<(&'static str, Num)> {
        use Num::{Chance as C, Int as I};
        match *self {
            Kind::Latency { latency, jitter } => {
                vec![("latency", I(latency)), ("jitter", I(jitter))]
            }
            Kind::Bandwidth { rate } => vec![("rate", I(rate))],
            Kind::SlowClose { delay } => vec![("delay", I(delay))],
            Kind::Timeout { timeout } | Kind::ResetPeer { timeout } => {
                vec![("timeout", I(timeout))]
            }
            Kind::Slicer {
                average_size,
                size_variation,
                delay,
            } => vec![
                ("average_size", I(average_size)),
                ("size_variation", I(size_variation)),
                ("delay", I(delay)),
            ],
            Kind::LimitData { bytes } => vec![("bytes", I(bytes))],
            Kind::PacketLoss {
                loss_rate,
                correlation,
            } => vec![("loss_rate", C(loss_rate)), ("correlation", C(correlation))],
            Kind::Corrupt { probability } => vec![("probability", C(probability))],
            Kind::Loss {
                rate,
                burst_enter,
                burst_exit,
                burst_rate,
            } => vec![
                ("rate", C(rate)),
                ("burst_enter", C(burst_enter)),
                ("burst_exit", C(burst_exit)),
                ("burst_rate", C(burst_rate)),
            ],
            Kind::Duplicate { rate } => vec![("rate", C(rate))],
            Kind::Reorder { rate, gap } => vec![("rate", C(rate)), ("gap", I(gap))],
            Kind::Truncate { size } => vec![("size", I(size))],
        }
    }

    fn field_mut(&mut self, name: &str) -> Option<Slot<'_>> {
        use Slot::{Chance as C, Int as I};
        Some(match (self, name) {
            (Kind::Latency { latency, .. }, "latency") => I(latency),
            (Kind::Latency { jitter, .. }, "jitter") => I(jitter),
            (Kind::Bandwidth { rate }, "rate") => I(rate),
            (Kind::SlowClose { delay }, "delay") => I(delay),
            (Kind::Timeout { timeout } | Kind::ResetPeer { timeout }, "timeout") => I(timeout),
            (Kind::Slicer { average_size, .. }, "average_size") => I(average_size),
            (Kind::Slicer { size_variation, .. }, "size_variation") => I(size_variation),
            (Kind::Slicer { delay, .. }, "delay") => I(delay),
            (Kind::LimitData { bytes }, "bytes") => I(bytes),
            (Kind::PacketLoss { loss_rate, .. }, "loss_rate") => C(loss_rate),
            (Kind::PacketLoss { correlation, .. }, "correlation") => C(correlation),
            (Kind::Corrupt { probability }, "probability") => C(probability),
            (Kind::Loss { rate, .. }, "rate") => C(rate),
            (Kind::Loss { burst_enter, .. }, "burst_enter") => C(burst_enter),
            (Kind::Loss { burst_exit, .. }, "burst_exit") => C(burst_exit),
            (Kind::Loss { burst_rate, .. }, "burst_rate") => C(burst_rate),
            (Kind::Duplicate { rate }, "rate") => C(rate),
            (Kind::Reorder { rate, .. }, "rate") => C(rate),
            (Kind::Reorder { gap, .. }, "gap") => I(gap),
            (Kind::Truncate { size }, "size") => I(size),
            _ => return None,
        })
    }

    /// Sets the attributes `attributes` names (others are kept; unknown names are
    /// ignored, as Go's decoder ignores them). A whole-number attribute that is not one is
    /// toxiproxy's 400; a negative one is wirelab's (toxiproxy would take it and do
    /// nothing sensible with it), and so is a chance outside 0 to 1 (toxiproxy clamps it).
    pub fn set(&mut self, attributes: &Map<String, Value>) -> Result<(), ToxicError> {
        for (name, value) in attributes {
            match self.field_mut(name) {
                None => continue,
                Some(Slot::Int(slot)) => *slot = whole(name, value)?,
                Some(Slot::Chance(slot)) => *slot = chance(name, value)?,
            }
        }
        Ok(())
    }

    /// A few words for the page: "latency 300 ms ± 10 ms".
    pub fn describe(&self) -> String {
        let pct = |p: f64| format!("{}%", (p * 1e6).round() / 1e4);
        match *self {
            Kind::Latency { latency, jitter: 0 } => format!("latency {latency} ms"),
            Kind::Latency { latency, jitter } => format!("latency {latency} ms ± {jitter} ms"),
            Kind::Bandwidth { rate } => format!("bandwidth {rate} KB/s"),
            Kind::SlowClose { delay } => format!("slow_close {delay} ms"),
            Kind::Timeout { timeout: 0 } => "timeout (held until removed)".to_owned(),
            Kind::Timeout { timeout } => format!("timeout {timeout} ms"),
            Kind::ResetPeer { timeout } => format!("reset_peer after {timeout} ms"),
            Kind::Slicer {
                average_size,
                size_variation,
                delay,
            } => format!("slicer {average_size} ± {size_variation} bytes, {delay} µs apart"),
            Kind::LimitData { bytes } => format!("limit_data {bytes} bytes"),
            Kind::PacketLoss {
                loss_rate,
                correlation: 0.0,
            } => format!("packet_loss {}", pct(loss_rate)),
            Kind::PacketLoss {
                loss_rate,
                correlation,
            } => format!(
                "packet_loss {}, {} more after a loss",
                pct(loss_rate),
                pct(correlation)
            ),
            Kind::Corrupt { probability } => format!("corrupt {} of bits", pct(probability)),
            Kind::Loss {
                rate,
                burst_enter: 0.0,
                ..
            } => format!("loss {}", pct(rate)),
            Kind::Loss {
                rate,
                burst_enter,
                burst_exit,
                burst_rate,
            } => format!(
                "loss {} ({} in bursts entered at {}, left at {})",
                pct(rate),
                pct(burst_rate),
                pct(burst_enter),
                pct(exit_chance(burst_enter, burst_exit))
            ),
            Kind::Duplicate { rate } => format!("duplicate {}", pct(rate)),
            Kind::Reorder { rate, gap } => {
                format!("reorder {}, gap {}", pct(rate), gap.max(1))
            }
            Kind::Truncate { size } => format!("truncate to {size} bytes"),
        }
    }
}

/// The chance of leaving a burst: `burst_exit`, or netem's `1 - burst_enter` when 0.
pub fn exit_chance(burst_enter: f64, burst_exit: f64) -> f64 {
    match burst_exit {
        0.0 => 1.0 - burst_enter,
        e => e,
    }
}

/// A whole-number attribute, 0 to [`ATTRIBUTE_MAX`].
fn whole(name: &str, value: &Value) -> Result<i64, ToxicError> {
    let Some(n) = value.as_i64() else {
        return Err(ToxicError::BadBody(format!(
            "json: cannot unmarshal {value} into Go struct field .attributes.{name} of type \
             int64"
        )));
    };
    if n < 0 {
        return Err(ToxicError::BadBody(format!(
            "attribute {name} must not be negative (got {n})"
        )));
    }
    if n > ATTRIBUTE_MAX {
        return Err(ToxicError::BadBody(format!(
            "attribute {name} must be at most {ATTRIBUTE_MAX} (got {n})"
        )));
    }
    Ok(n)
}

/// A chance attribute, 0 to 1.
fn chance(name: &str, value: &Value) -> Result<f64, ToxicError> {
    let Some(p) = value.as_f64() else {
        return Err(ToxicError::BadBody(format!(
            "json: cannot unmarshal {value} into Go struct field .attributes.{name} of type \
             float64"
        )));
    };
    match (0.0..=1.0).contains(&p) {
        true => Ok(p),
        false => Err(ToxicError::BadBody(format!(
            "attribute {name} is a chance, from 0 to 1 (got {p})"
        ))),
    }
}

/// A toxic.
#[derive(Debug, Clone, PartialEq)]
pub struct Toxic {
    /// Unique among the proxy's toxics.
    pub name: String,
    /// What it does.
    pub kind: Kind,
    /// Which way.
    pub stream: Stream,
    /// The chance (0 to 1) that a connection gets it, drawn once per connection.
    pub toxicity: f32,
    /// wirelab's `seed` attribute: not 0, what the toxic draws (drops, flips, jitter) is
    /// drawn from it, the same on every connection and every run; 0 (the default), from
    /// the connection's own seed.
    pub seed: u64,
    /// Which of the proxy's connections it applies to (wirelab's; toxiproxy's: all).
    pub scope: Scope,
}

/// The connections of a proxy a toxic applies to: all, one (by its id; a UDP session's
/// id), or those of one peer (an IP address, or an address and port).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Only this connection.
    pub conn: Option<u64>,
    /// Only this peer's connections.
    pub peer: Option<Peer>,
}

/// A peer a toxic is kept to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// Any port of this address.
    Ip(std::net::IpAddr),
    /// This address and port.
    Addr(std::net::SocketAddr),
}

impl Peer {
    /// `10.0.0.7` or `10.0.0.7:5353` (`[::1]:53` for IPv6 with a port).
    pub fn parse(text: &str) -> Option<Peer> {
        match text.parse() {
            Ok(addr) => Some(Peer::Addr(addr)),
            Err(_) => text.parse().ok().map(Peer::Ip),
        }
    }

    fn show(&self) -> String {
        match self {
            Peer::Ip(ip) => ip.to_string(),
            Peer::Addr(addr) => addr.to_string(),
        }
    }
}

impl Scope {
    /// Whether a connection `conn` from `peer` gets the toxic; `None`: a stream with no
    /// connection of its own (it gets unscoped toxics only).
    pub fn covers(&self, who: Option<(u64, std::net::SocketAddr)>) -> bool {
        let Some((conn, peer)) = who else {
            return self.conn.is_none() && self.peer.is_none();
        };
        self.conn.is_none_or(|c| c == conn)
            && self.peer.is_none_or(|p| match p {
                Peer::Ip(ip) => ip == peer.ip(),
                Peer::Addr(addr) => addr == peer,
            })
    }

    /// ", conn 12", ", peer 10.0.0.7", or nothing.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        if let Some(c) = self.conn {
            out.push_str(&format!(", conn {c}"));
        }
        if let Some(p) = &self.peer {
            out.push_str(&format!(", peer {}", p.show()));
        }
        out
    }
}

/// Why a toxic was refused, with toxiproxy's words and statuses.
#[derive(Debug, PartialEq, Eq)]
pub enum ToxicError {
    /// 400 `bad request body: ...`.
    BadBody(String),
    /// 400.
    InvalidStream,
    /// 400.
    InvalidType,
    /// 409.
    Exists,
    /// 404.
    NotFound,
}

impl ToxicError {
    /// toxiproxy's HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            ToxicError::BadBody(_) | ToxicError::InvalidStream | ToxicError::InvalidType => 400,
            ToxicError::Exists => 409,
            ToxicError::NotFound => 404,
        }
    }
}

impl std::fmt::Display for ToxicError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ToxicError::BadBody(why) => write!(f, "bad request body: {why}"),
            ToxicError::InvalidStream => {
                f.write_str("stream was invalid, can be either upstream or downstream")
            }
            ToxicError::InvalidType => f.write_str("invalid toxic type"),
            ToxicError::Exists => f.write_str("toxic already exists"),
            ToxicError::NotFound => f.write_str("toxic not found"),
        }
    }
}

/// A toxic as a client sends it to create one.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Input {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    stream: Option<String>,
    toxicity: Option<f32>,
    attributes: Option<Map<String, Value>>,
    /// wirelab's scope: one connection (its id), one peer.
    conn: Option<u64>,
    peer: Option<String>,
}

/// An update: only these two may change.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Update {
    toxicity: Option<f32>,
    attributes: Option<Map<String, Value>>,
}

impl Toxic {
    /// Reads a new toxic from a create request's body, up to (not including) the check
    /// that its name is free; then [`Toxic::parse_attributes`].
    pub fn parse(body: &[u8]) -> Result<(Toxic, Map<String, Value>), ToxicError> {
        let input: Input =
            serde_json::from_slice(body).map_err(|e| ToxicError::BadBody(e.to_string()))?;
        let stream = match input.stream.as_deref() {
            None => Stream::Downstream,
            Some(s) => Stream::parse(s).ok_or(ToxicError::InvalidStream)?,
        };
        // toxiproxy names it with the stream as the client wrote it ("Upstream" stays).
        let name = match (input.name.is_empty(), input.stream.as_deref()) {
            (true, Some(written)) => format!("{}_{written}", input.kind),
            (true, None) => format!("{}_{}", input.kind, stream.as_str()),
            (false, _) => input.name,
        };
        let kind = Kind::default_of(&input.kind).ok_or(ToxicError::InvalidType)?;
        let toxicity = checked_toxicity(input.toxicity.unwrap_or(1.0))?;
        let peer = match input.peer.as_deref() {
            None | Some("") => None,
            Some(p) => Some(Peer::parse(p).ok_or_else(|| {
                ToxicError::BadBody(format!(
                    "peer {p:?}: write an IP address (10.0.0.7) or an address and port \
                     (10.0.0.7:5353)"
                ))
            })?),
        };
        let toxic = Toxic {
            name,
            kind,
            stream,
            toxicity,
            seed: 0,
            scope: Scope {
                conn: input.conn,
                peer,
            },
        };
        Ok((toxic, input.attributes.unwrap_or_default()))
    }

    /// Sets the attributes read by [`Toxic::parse`].
    pub fn parse_attributes(&mut self, attributes: &Map<String, Value>) -> Result<(), ToxicError> {
        self.set(attributes)
    }

    /// The kind's attributes and wirelab's `seed`.
    fn set(&mut self, attributes: &Map<String, Value>) -> Result<(), ToxicError> {
        self.kind.set(attributes)?;
        if let Some(seed) = attributes.get("seed") {
            self.seed = whole("seed", seed)? as u64;
        }
        Ok(())
    }

    /// This toxic with an update's `attributes` and `toxicity` (each kept when left out).
    pub fn updated(&self, body: &[u8]) -> Result<Toxic, ToxicError> {
        let update: Update =
            serde_json::from_slice(body).map_err(|e| ToxicError::BadBody(e.to_string()))?;
        let mut next = self.clone();
        if let Some(attributes) = &update.attributes {
            next.set(attributes)?;
        }
        if let Some(t) = update.toxicity {
            next.toxicity = checked_toxicity(t)?;
        }
        Ok(next)
    }

    /// As toxiproxy writes it: `attributes`, `name`, `type`, `stream`, `toxicity`.
    pub fn json(&self) -> ToxicJson {
        let mut attributes = self.kind.fields();
        if self.seed != 0 {
            attributes.push(("seed", Num::Int(self.seed as i64)));
        }
        ToxicJson {
            attributes: Attributes(attributes),
            name: self.name.clone(),
            kind: self.kind.type_name(),
            stream: self.stream.as_str(),
            toxicity: self.toxicity,
            conn: self.scope.conn,
            peer: self.scope.peer.map(|p| p.show()),
        }
    }
}

/// toxiproxy's JSON of a toxic.
#[derive(Serialize, Debug)]
pub struct ToxicJson {
    attributes: Attributes,
    name: String,
    #[serde(rename = "type")]
    kind: &'static str,
    stream: &'static str,
    #[serde(serialize_with = "as_go_writes_it")]
    toxicity: f32,
    /// wirelab's scope, written only when set (toxiproxy's clients never see it then).
    #[serde(skip_serializing_if = "Option::is_none")]
    conn: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    peer: Option<String>,
}

/// A toxic's attributes, written in toxiproxy's order (Go writes a struct's fields in
/// order; a JSON map here would sort them).
#[derive(Debug)]
struct Attributes(Vec<(&'static str, Num)>);

impl Serialize for Attributes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().copied())
    }
}

impl Serialize for Num {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            Num::Int(n) => s.serialize_i64(n),
            // As Go writes a float64: whole ones without a fraction.
            Num::Chance(p) if p.fract() == 0.0 => s.serialize_i64(p as i64),
            Num::Chance(p) => s.serialize_f64(p),
        }
    }
}

/// Go writes a whole float32 without a fraction (`1`, not `1.0`), and others as short as
/// they read back (`0.05`).
fn as_go_writes_it<S: serde::Serializer>(t: &f32, s: S) -> Result<S::Ok, S::Error> {
    match t.fract() == 0.0 {
        true => s.serialize_i64(*t as i64),
        false => s.serialize_f32(*t),
    }
}

/// Toxicity is a chance: 0 to 1.
fn checked_toxicity(t: f32) -> Result<f32, ToxicError> {
    match (0.0..=1.0).contains(&t) {
        true => Ok(t),
        false => Err(ToxicError::BadBody(format!(
            "toxicity must be between 0 and 1 (got {t})"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_toxic_is_read_as_toxiproxy_reads_it() {
        let (mut t, attrs) =
            Toxic::parse(br#"{"type":"latency","attributes":{"latency":100,"x":1}}"#).unwrap();
        t.parse_attributes(&attrs).unwrap();
        assert_eq!(t.name, "latency_downstream");
        assert_eq!(t.stream, Stream::Downstream);
        assert_eq!(t.toxicity, 1.0);
        assert_eq!(
            t.kind,
            Kind::Latency {
                latency: 100,
                jitter: 0
            }
        );
        let json = serde_json::to_string(&t.json()).unwrap();
        assert_eq!(
            json,
            r#"{"attributes":{"latency":100,"jitter":0},"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":1}"#
        );
        let err = |body: &[u8]| Toxic::parse(body).unwrap_err();
        assert_eq!(err(br#"{"type":"nope"}"#), ToxicError::InvalidType);
        assert_eq!(
            err(br#"{"type":"latency","stream":"sideways"}"#),
            ToxicError::InvalidStream
        );
        assert!(matches!(err(b"{nope"), ToxicError::BadBody(_)));
        let (mut t, attrs) =
            Toxic::parse(br#"{"type":"slicer","attributes":{"delay":"x"}}"#).unwrap();
        assert_eq!(t.parse_attributes(&attrs).unwrap_err().status(), 400);
        let (upper, _) = Toxic::parse(br#"{"type":"latency","stream":"Upstream"}"#).unwrap();
        assert_eq!(
            upper.name, "latency_Upstream",
            "named as toxiproxy names it"
        );
        let both = Toxic::parse(br#"{"type":"timeout","stream":"Both"}"#)
            .unwrap()
            .0;
        assert_eq!(both.name, "timeout_Both");
        assert!(both.stream.covers(Flow::Up) && both.stream.covers(Flow::Down));
    }

    #[test]
    fn an_update_changes_attributes_and_toxicity_only() {
        let (mut t, attrs) =
            Toxic::parse(br#"{"type":"bandwidth","attributes":{"rate":10}}"#).unwrap();
        t.parse_attributes(&attrs).unwrap();
        let next = t
            .updated(br#"{"attributes":{"rate":20},"toxicity":0.5,"stream":"upstream"}"#)
            .unwrap();
        assert_eq!(next.kind, Kind::Bandwidth { rate: 20 });
        assert_eq!((next.toxicity, next.stream), (0.5, Stream::Downstream));
        assert_eq!(t.updated(br#"{"toxicity":2}"#).unwrap_err().status(), 400);
    }
}
