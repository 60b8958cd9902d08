//! One direction of one connection going through its proxy's toxics: what each toxic
//! does to the chunks read, which pieces wait until when, and when the connection must
//! end.
//!
//! Every chunk read becomes pieces, each with the instant it may be written: latency
//! moves it later, bandwidth spaces it by its size, slicer cuts it into pieces apart,
//! limit_data trims it, timeout and reset_peer drop it. Pieces are written in order (an
//! instant never goes back), so a connection's bytes are never reordered. The pump asks
//! [`Line::next`] what is due. What is held is bounded ([`HELD_MAX`]): past it the pump
//! stops reading (back-pressure).
//!
//! As in toxiproxy, a timeout toxic closes the connection `timeout` ms after the last
//! chunk it dropped (or after it applied, when none came), and, when removed, closes the
//! connections it held (its `Cleanup`).
//!
//! A toxic applies to a connection, or not, by a draw made once (when the connection first
//! meets it) and checked against the toxicity again at each update. A change of the
//! proxy's toxics reaches the connection at its next read or wake: as toxiproxy flushes
//! what its toxics hold when one is removed or updated, a delaying toxic (latency,
//! bandwidth, slicer) removed or changed lets every held byte go at once; an updated
//! toxic starts again from its new attributes, but limit_data keeps its count.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

use super::effect::{self, Piece, Rng, State};
use super::set::{Entry, Toxics};
use super::toxic::{Kind, REORDER_HOLD_MS};
use crate::hub::counters::add;
use crate::hub::lock;
use crate::pipeline::Flow;

/// Bytes held (waiting for their instant) per direction per connection at most, each
/// piece counted [`PIECE_COST`] more for its own keeping (a slicer of 1-byte pieces would
/// otherwise hold a million of them); past it the pump stops reading. toxiproxy holds up
/// to 1,024 chunks of up to 32 KiB.
pub const HELD_MAX: usize = 1 << 20;
/// What one held piece costs beyond its bytes (its `Bytes` handle and instant).
const PIECE_COST: usize = 64;
/// How long a reorder toxic holds a datagram back at most.
const REORDER_HOLD: Duration = Duration::from_millis(REORDER_HOLD_MS);
/// A toxic says what it did at most this often per connection and direction.
const NOTE_EVERY: Duration = Duration::from_secs(1);

/// Spreads toxic ids over the seed's bits (2^64 / φ).
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// Says what a toxic did to the connection: the toxic's name and a few words.
pub type Reporter = Box<dyn Fn(&str, String) + Send + Sync>;

/// The names of the toxics that apply to the line now, for its connection's row.
pub type Shown = Arc<std::sync::Mutex<Vec<String>>>;

/// The names a connection's two lines show, each once.
pub fn names(shown: &[Shown; 2]) -> Vec<String> {
    let mut names = lock(&shown[0]).clone();
    for name in lock(&shown[1]).iter() {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// What is due now.
#[derive(Debug, PartialEq)]
pub enum Due {
    /// These bytes may be written.
    Write(Bytes),
    /// The connection ends: both legs reset (`reset`) or closed, and why.
    Cut { reset: bool, why: String },
    /// Nothing until this instant.
    Wait(Instant),
    /// Nothing until more is read (or the toxics change).
    Idle,
}

/// A toxic that applies to this connection, and its state here.
struct Applied {
    entry: Arc<Entry>,
    state: State,
    /// Its own draws, when it has a `seed`.
    rng: Option<Rng>,
    /// What it did since its last note.
    tally: Tally,
}

#[derive(Default)]
struct Tally {
    chunks: u64,
    pieces: u64,
    bytes: u64,
    most_ms: u64,
    touched: u64,
    noted: Option<Instant>,
}

/// See the module docs.
pub struct Line {
    /// Which way.
    flow: Flow,
    /// Each chunk is a datagram: never cut, and written in the order of its instant
    /// (jitter and reorder may change the order); else a stream, never reordered.
    datagrams: bool,
    /// The connection's id and peer, for toxics kept to one ([`super::toxic::Scope`]).
    who: Option<(u64, std::net::SocketAddr)>,
    /// The proxy's toxics.
    toxics: Arc<Toxics>,
    /// Woken at each change of them.
    changes: watch::Receiver<u64>,
    /// Their generation last applied.
    seen: u64,
    /// Those that apply here, in chain order.
    applied: Vec<Applied>,
    /// Toxic ids met, and the connection's draw for each (in [0, 1): it gets the toxic
    /// while the draw is under the toxicity; drawn once, checked again at each update).
    decided: Vec<(u64, f64)>,
    /// Pieces waiting, in order.
    held: VecDeque<Piece>,
    /// Their bytes.
    held_bytes: usize,
    /// The bytes a reorder toxic keeps back (not yet in `held`).
    back_bytes: usize,
    /// The last piece's instant: none may come before it.
    last_at: Instant,
    /// limit_data was reached: the connection closes once `held` is written.
    closing: Option<String>,
    /// The connection's seed, for toxicity (drawn per toxic, the same both ways).
    seed: u64,
    /// For jitter and slice sizes.
    rng: Rng,
    /// Where notes go.
    report: Reporter,
    /// Where the names of the toxics that apply go.
    shown: Shown,
}

impl Line {
    /// The line of `flow` through `toxics`; `seed` makes its draws (any number: the
    /// connection's id and the time do). Both directions of a connection take the same
    /// seed, so that a toxic on `both` applies to both or to neither.
    pub fn new(flow: Flow, toxics: Arc<Toxics>, seed: u64, report: Reporter, shown: Shown) -> Line {
        let changes = toxics.subscribe();
        let mut line = Line {
            flow,
            datagrams: false,
            who: None,
            toxics,
            changes,
            seen: u64::MAX,
            applied: Vec::new(),
            decided: Vec::new(),
            held: VecDeque::new(),
            held_bytes: 0,
            back_bytes: 0,
            last_at: Instant::now(),
            closing: None,
            seed,
            rng: Rng((seed ^ (flow as u64) << 63) | 1),
            report,
            shown,
        };
        line.sync(Instant::now());
        line
    }

    /// The same line for datagrams: never cut, written in the order of their instants.
    pub fn for_datagrams(mut self) -> Line {
        self.datagrams = true;
        self
    }

    /// The same line for connection `conn` from `peer`: it gets the toxics kept to it too.
    pub fn of(mut self, conn: u64, peer: std::net::SocketAddr) -> Line {
        self.who = Some((conn, peer));
        self.seen = u64::MAX;
        self.sync(Instant::now());
        self
    }

    /// Nothing to do: no toxic applies, nothing is held, and the toxics have not changed
    /// since (one relaxed load).
    pub fn quiet(&self) -> bool {
        self.applied.is_empty()
            && self.held.is_empty()
            && self.closing.is_none()
            && self.toxics.generation() == self.seen
    }

    /// When a toxic ends the connection (a timeout, a reset_peer), whatever is held.
    pub fn cut_at(&mut self) -> Option<Instant> {
        self.sync(Instant::now());
        let ends = self.applied.iter().filter_map(|a| match a.state {
            State::EndAt(at) => at,
            _ => None,
        });
        ends.min()
    }

    /// The pieces (datagrams) it holds, a reorder's included.
    pub fn held_pieces(&self) -> usize {
        let back = self.applied.iter().map(|a| match &a.state {
            State::Back(back) => back.len(),
            _ => 0,
        });
        self.held.len() + back.sum::<usize>()
    }

    /// The bytes it holds (each piece counted [`PIECE_COST`] more).
    pub fn held(&self) -> usize {
        self.held_bytes + self.back_bytes
    }

    /// Whether another chunk may be read.
    pub fn has_room(&self) -> bool {
        self.held_bytes + self.back_bytes < HELD_MAX
    }

    /// The instant the first held piece may be written.
    pub fn head_at(&self) -> Option<Instant> {
        self.held.front().map(|p| p.at)
    }

    /// The slow_close delays that apply, added up: the FIN is passed on that late. Chained
    /// as toxiproxy chains them, each toxic sleeps its delay once the one before it has
    /// passed the close on.
    pub fn close_delay(&mut self) -> Duration {
        self.sync(Instant::now());
        let ms = self
            .applied
            .iter()
            .filter_map(|a| match a.entry.toxic.kind {
                Kind::SlowClose { delay } => Some(delay.max(0)),
                _ => None,
            })
            .fold(0i64, i64::saturating_add);
        Duration::from_millis(ms as u64)
    }

    /// The reading side sent FIN: a reset_peer that had not started starts now (toxiproxy
    /// resets at its timeout after the stream's end too), and the instant a toxic ends
    /// the connection, if one will.
    pub fn fin(&mut self, now: Instant) -> Option<Instant> {
        self.sync(now);
        for a in &mut self.applied {
            if let (Kind::ResetPeer { timeout }, State::EndAt(end)) =
                (&a.entry.toxic.kind, &mut a.state)
            {
                end.get_or_insert(now + Duration::from_millis(*timeout as u64));
            }
        }
        self.applied
            .iter()
            .filter(|a| matches!(a.entry.toxic.kind, Kind::ResetPeer { .. }))
            .filter_map(|a| match a.state {
                State::EndAt(at) => at,
                _ => None,
            })
            .min()
    }

    /// Until something is due or the toxics change (`due`), or only until they change.
    pub async fn wait_for(&mut self, due: bool) {
        if due {
            return self.wait().await;
        }
        if self.changes.changed().await.is_err() {
            // The proxy is gone (its connections end): nothing will change.
            std::future::pending::<()>().await;
        }
    }

    /// Until something is due or the toxics change.
    pub async fn wait(&mut self) {
        let at = match self.next(Instant::now(), false) {
            Due::Wait(at) => Some(at),
            Due::Idle => None,
            _ => return,
        };
        tokio::select! {
            _ = sleep_until(at.unwrap_or_else(Instant::now)), if at.is_some() => {}
            r = self.changes.changed() => {
                if r.is_err() {
                    // The proxy is gone (its connections end): nothing will change.
                    std::future::pending::<()>().await;
                }
            }
        }
    }

    /// What is due at `now`; `take`: a due piece is taken out (else only looked at).
    pub fn next(&mut self, now: Instant, take: bool) -> Due {
        self.sync(now);
        self.release_held_back(now);
        for a in &self.applied {
            if let State::EndAt(Some(at)) = a.state
                && at <= now
            {
                let (reset, why) = match a.entry.toxic.kind {
                    Kind::ResetPeer { timeout } => (
                        true,
                        format!(
                            "reset by reset_peer {:?} after {timeout} ms",
                            a.entry.toxic.name
                        ),
                    ),
                    _ => (false, format!("closed by timeout {:?}", a.entry.toxic.name)),
                };
                if take {
                    add(&a.entry.counters.cuts, 1);
                    (self.report)(&a.entry.toxic.name, why.clone());
                }
                return Due::Cut { reset, why };
            }
        }
        match self.held.front() {
            Some(p) if p.at <= now => {
                if !take {
                    return Due::Write(Bytes::new());
                }
                let p = self.held.pop_front().expect("a front");
                self.held_bytes -= p.bytes.len() + PIECE_COST;
                return Due::Write(p.bytes);
            }
            Some(p) => return Due::Wait(self.earliest(p.at)),
            None => {}
        }
        if let Some(why) = &self.closing {
            return Due::Cut {
                reset: false,
                why: why.clone(),
            };
        }
        self.wake_at().map_or(Due::Idle, Due::Wait)
    }

    fn earliest(&self, at: Instant) -> Instant {
        self.wake_at().map_or(at, |w| w.min(at))
    }

    /// When a toxic acts without a chunk: a timeout or reset_peer ends the connection, a
    /// reorder lets go of a datagram it held back too long.
    fn wake_at(&self) -> Option<Instant> {
        let ends = self.applied.iter().filter_map(|a| match &a.state {
            State::EndAt(at) => *at,
            State::Back(back) => back.iter().map(|(_, p)| p.at + REORDER_HOLD).min(),
            _ => None,
        });
        ends.min()
    }

    /// Datagrams a reorder toxic held back for [`REORDER_HOLD`] go, whether or not their
    /// gap has passed.
    fn release_held_back(&mut self, now: Instant) {
        for i in 0..self.applied.len() {
            let State::Back(back) = &mut self.applied[i].state else {
                continue;
            };
            if back.iter().all(|(_, p)| p.at + REORDER_HOLD > now) {
                continue;
            }
            let (gone, kept) = std::mem::take(back)
                .into_iter()
                .partition(|(_, p)| p.at + REORDER_HOLD <= now);
            *back = kept;
            for (_, p) in gone {
                self.back_bytes = self.back_bytes.saturating_sub(p.bytes.len() + PIECE_COST);
                self.hold(p);
            }
        }
    }

    /// Keeps `p` until its instant: a stream's pieces in the order they came (an
    /// instant never goes back), datagrams in the order of their instants.
    fn hold(&mut self, mut p: Piece) {
        self.held_bytes += p.bytes.len() + PIECE_COST;
        if self.datagrams {
            let at = self.held.partition_point(|q| q.at <= p.at);
            self.held.insert(at, p);
            return;
        }
        p.at = p.at.max(self.last_at);
        self.last_at = p.at;
        self.held.push_back(p);
    }

    /// A chunk read at `now` goes through the toxics; its pieces wait their turn.
    pub fn push(&mut self, now: Instant, chunk: Bytes) {
        self.sync(now);
        let mut pieces = vec![Piece {
            at: now,
            bytes: chunk,
        }];
        for i in 0..self.applied.len() {
            let len: usize = pieces.iter().map(|p| p.bytes.len()).sum();
            // A stream's empty piece is nothing; an empty datagram is still one.
            if len == 0 && (!self.datagrams || pieces.is_empty()) {
                break;
            }
            pieces = self.apply(i, now, pieces, len);
        }
        for p in pieces {
            if !p.bytes.is_empty() || self.datagrams {
                self.hold(p);
            }
        }
    }

    /// Toxic `i` on `pieces` (`len` bytes in all).
    fn apply(&mut self, i: usize, now: Instant, pieces: Vec<Piece>, len: usize) -> Vec<Piece> {
        let a = &mut self.applied[i];
        let (kind, counters) = (&a.entry.toxic.kind, &a.entry.counters);
        let effect = effect::apply(
            kind,
            &mut a.state,
            now,
            pieces,
            len,
            a.rng.as_mut().unwrap_or(&mut self.rng),
            counters,
            self.datagrams,
            PIECE_COST,
        );
        self.back_bytes = (self.back_bytes + effect.back_in).saturating_sub(effect.back_out);
        add(&counters.acted, effect.touched);
        if effect.limit_reached && self.closing.is_none() {
            add(&counters.cuts, 1);
            let why = format!(
                "closed after limit_data {:?}: {} bytes",
                a.entry.toxic.name,
                match kind {
                    Kind::LimitData { bytes } => *bytes,
                    _ => 0,
                }
            );
            (self.report)(&a.entry.toxic.name, why.clone());
            self.closing = Some(why);
        }
        let parts = effect.pieces.len() as u64;
        self.tally(i, now, len as u64, parts, effect.held_ms, effect.touched);
        effect.pieces
    }

    /// Counts what toxic `i` did to a chunk, and says so at most once per
    /// [`NOTE_EVERY`].
    fn tally(
        &mut self,
        i: usize,
        now: Instant,
        bytes: u64,
        pieces: u64,
        held_ms: u64,
        touched: u64,
    ) {
        let a = &mut self.applied[i];
        let t = &mut a.tally;
        t.chunks += 1;
        t.bytes += bytes;
        t.pieces += pieces;
        t.most_ms = t.most_ms.max(held_ms);
        t.touched += touched;
        if t.noted.is_some_and(|at| now < at + NOTE_EVERY) {
            return;
        }
        let way = match self.flow {
            Flow::Up => "client → upstream",
            Flow::Down => "upstream → client",
        };
        let units = match self.datagrams {
            true => "datagrams",
            false => "chunks",
        };
        let of = format!("{} of {} {units}", t.touched, t.chunks);
        let what = match a.entry.toxic.kind {
            Kind::Latency { .. } => format!("held {} ms", t.most_ms),
            Kind::PacketLoss { .. } | Kind::Loss { .. } => format!("dropped {of}"),
            Kind::Duplicate { .. } => format!("duplicated {of}"),
            Kind::Reorder { gap, .. } => {
                format!("held back {of} until {} later ones had gone", gap.max(1))
            }
            Kind::Truncate { size } => format!("cut {of} to {size} bytes"),
            Kind::Corrupt { .. } => format!("flipped {} bits", t.touched),
            Kind::Bandwidth { .. } => format!("slowed: the last byte waits {} ms", t.most_ms),
            Kind::Slicer { .. } => format!("cut into {} writes", t.pieces),
            Kind::LimitData { .. } => "counted toward the limit".to_owned(),
            Kind::Timeout { .. } => "dropped (timeout)".to_owned(),
            Kind::ResetPeer { .. } => "dropped; a reset follows".to_owned(),
            Kind::SlowClose { .. } => "passed; the FIN will be late".to_owned(),
        };
        let note = format!("{what}: {} bytes in {} {units} ({way})", t.bytes, t.chunks);
        *t = Tally {
            noted: Some(now),
            ..Tally::default()
        };
        (self.report)(&a.entry.toxic.name, note);
    }

    /// Takes the proxy's toxics as they are now, if they changed.
    fn sync(&mut self, now: Instant) {
        let generation = self.toxics.generation();
        if generation == self.seen {
            return;
        }
        self.seen = generation;
        let mut before = std::mem::take(&mut self.applied);
        let now_applied = self.toxics.for_flow(self.flow, self.who);
        // As toxiproxy's `Cleanup`, a timeout toxic removed closes the connections it
        // held.
        for gone in &before {
            if let Kind::Timeout { .. } = gone.entry.toxic.kind
                && !now_applied.iter().any(|e| e.id == gone.entry.id)
                && self.closing.is_none()
            {
                let why = format!(
                    "closed: timeout {:?} was removed (toxiproxy closes what it held)",
                    gone.entry.toxic.name
                );
                (self.report)(&gone.entry.toxic.name, why.clone());
                self.closing = Some(why);
            }
        }
        // A delaying toxic removed or changed: what is held goes now (toxiproxy's
        // latency and bandwidth flush their chunk when interrupted).
        let delaying = |k: &Kind| {
            matches!(
                k,
                Kind::Latency { .. } | Kind::Bandwidth { .. } | Kind::Slicer { .. }
            )
        };
        let flush = before.iter().any(|a| {
            delaying(&a.entry.toxic.kind)
                && !now_applied
                    .iter()
                    .any(|e| e.id == a.entry.id && Arc::ptr_eq(e, &a.entry))
        });
        if flush {
            for p in &mut self.held {
                p.at = p.at.min(now);
            }
            self.last_at = self.held.back().map_or(now, |p| p.at);
        }
        // A reorder removed or changed lets what it held back go now.
        for a in &mut before {
            let same = now_applied.iter().any(|e| Arc::ptr_eq(e, &a.entry));
            if let (false, State::Back(back)) = (same, &mut a.state) {
                for (_, mut p) in std::mem::take(back) {
                    p.at = now;
                    let cost = p.bytes.len() + PIECE_COST;
                    self.back_bytes = self.back_bytes.saturating_sub(cost);
                    self.held_bytes += cost;
                    let at = self.held.partition_point(|q| q.at <= p.at);
                    self.held.insert(at, p);
                }
            }
        }
        self.decided
            .retain(|(id, _)| now_applied.iter().any(|e| e.id == *id));
        for entry in now_applied {
            let t = f64::from(entry.toxic.toxicity);
            let u = match self.decided.iter().find(|(id, _)| *id == entry.id) {
                Some((_, u)) => *u,
                None => {
                    let mut draw = Rng((self.seed ^ entry.id.wrapping_mul(GOLDEN)) | 1);
                    let u = draw.draw() as f64 / (u64::MAX as f64 + 1.0);
                    self.decided.push((entry.id, u));
                    let got = t >= 1.0 || u < t;
                    let c = &entry.counters;
                    add(if got { &c.conns } else { &c.spared }, 1);
                    if !got {
                        (self.report)(&entry.toxic.name, format!("spared (toxicity {t})"));
                    }
                    u
                }
            };
            if !(t >= 1.0 || u < t) {
                continue;
            }
            match before.iter().position(|a| a.entry.id == entry.id) {
                // Unchanged: as it was. Updated: from its new attributes, limit_data
                // keeping its count (as toxiproxy keeps a link's state).
                Some(at) => {
                    let mut kept = before.swap_remove(at);
                    let changed = !Arc::ptr_eq(&kept.entry, &entry);
                    if changed && !matches!(entry.toxic.kind, Kind::LimitData { .. }) {
                        kept.state = State::new(&entry.toxic.kind, now);
                    }
                    if changed {
                        // A new seed starts its sequence again (and none, the line's).
                        kept.rng = seeded(entry.toxic.seed, self.flow);
                    }
                    kept.entry = entry;
                    self.applied.push(kept);
                }
                None => {
                    let state = State::new(&entry.toxic.kind, now);
                    let rng = seeded(entry.toxic.seed, self.flow);
                    self.applied.push(Applied {
                        entry,
                        state,
                        rng,
                        tally: Tally::default(),
                    });
                }
            }
        }
        *lock(&self.shown) = self
            .applied
            .iter()
            .map(|a| a.entry.toxic.name.clone())
            .collect();
    }
}

/// A toxic's own draws when it has a `seed` (each direction its own sequence).
fn seeded(seed: u64, flow: Flow) -> Option<Rng> {
    (seed != 0).then(|| Rng::seeded(seed ^ (flow as u64) << 63))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(flow: Flow, toxics: &Arc<Toxics>) -> Line {
        Line::new(
            flow,
            toxics.clone(),
            7,
            Box::new(|_, _| {}),
            Shown::default(),
        )
    }

    #[test]
    fn a_latency_toxic_holds_at_most_its_bound_in_order() {
        let toxics = Arc::new(Toxics::default());
        let mut up = line(Flow::Up, &toxics);
        assert!(up.quiet());
        toxics
            .add(br#"{"type":"latency","stream":"upstream","attributes":{"latency":1000}}"#)
            .unwrap();
        assert!(!up.quiet(), "a change is seen at the next read");
        let now = Instant::now();
        let mut pushed = 0u8;
        while up.has_room() {
            up.push(now, Bytes::from(vec![pushed; 64 * 1024]));
            pushed += 1;
        }
        assert!(
            (HELD_MAX..HELD_MAX + 64 * 1024 + PIECE_COST).contains(&up.held_bytes),
            "stops reading at its bound: {}",
            up.held_bytes
        );
        assert_eq!(up.next(now, true), Due::Wait(now + Duration::from_secs(1)));
        let later = now + Duration::from_secs(1);
        let Due::Write(first) = up.next(later, true) else {
            panic!("due after its latency")
        };
        assert_eq!(first[0], 0, "in order");
        // The other direction is not touched.
        assert!(line(Flow::Down, &toxics).quiet());
    }

    #[test]
    fn a_delaying_toxic_removed_or_updated_lets_what_it_held_go() {
        let toxics = Arc::new(Toxics::default());
        toxics
            .add(br#"{"name":"slow","type":"latency","stream":"upstream","attributes":{"latency":3600000}}"#)
            .unwrap();
        let mut up = line(Flow::Up, &toxics);
        let now = Instant::now();
        up.push(now, Bytes::from_static(b"held for an hour"));
        assert!(matches!(up.next(now, true), Due::Wait(_)));
        toxics
            .update("slow", br#"{"attributes":{"latency":0}}"#)
            .unwrap();
        assert_eq!(
            up.next(now, true),
            Due::Write(Bytes::from_static(b"held for an hour")),
            "released at the update"
        );
        up.push(now, Bytes::from_static(b"next"));
        assert_eq!(up.next(now, true), Due::Write(Bytes::from_static(b"next")));
    }

    #[test]
    fn an_updated_timeout_starts_again_from_its_new_attributes() {
        let toxics = Arc::new(Toxics::default());
        toxics
            .add(br#"{"name":"t","type":"timeout","stream":"upstream","attributes":{"timeout":0}}"#)
            .unwrap();
        let mut up = line(Flow::Up, &toxics);
        let now = Instant::now();
        up.push(now, Bytes::from_static(b"dropped"));
        assert_eq!(up.next(now, true), Due::Idle, "0: held until removed");
        toxics
            .update("t", br#"{"attributes":{"timeout":500}}"#)
            .unwrap();
        assert_eq!(
            up.next(now, false),
            Due::Wait(now + Duration::from_millis(500))
        );
    }

    #[test]
    fn a_toxicity_update_reaches_live_connections() {
        let toxics = Arc::new(Toxics::default());
        toxics
            .add(br#"{"name":"t","type":"timeout","stream":"upstream"}"#)
            .unwrap();
        let mut up = line(Flow::Up, &toxics);
        assert!(!up.quiet());
        toxics.update("t", br#"{"toxicity":0}"#).unwrap();
        let now = Instant::now();
        up.push(now, Bytes::from_static(b"through"));
        assert_eq!(
            up.next(now, true),
            Due::Write(Bytes::from_static(b"through"))
        );
        assert!(up.applied.is_empty(), "switched off by its toxicity");
    }

    #[test]
    fn a_reset_peer_waiting_for_a_chunk_starts_at_the_fin() {
        let toxics = Arc::new(Toxics::default());
        toxics
            .add(br#"{"type":"reset_peer","stream":"upstream","attributes":{"timeout":200}}"#)
            .unwrap();
        let mut up = line(Flow::Up, &toxics);
        let now = Instant::now();
        assert_eq!(up.fin(now), Some(now + Duration::from_millis(200)));
        let later = now + Duration::from_millis(200);
        assert!(matches!(up.next(later, true), Due::Cut { reset: true, .. }));
    }

    #[test]
    fn slicer_cuts_and_limit_data_trims_then_closes() {
        let toxics = Arc::new(Toxics::default());
        toxics
            .add(br#"{"type":"slicer","attributes":{"average_size":3,"delay":0}}"#)
            .unwrap();
        toxics
            .add(br#"{"type":"limit_data","attributes":{"bytes":7}}"#)
            .unwrap();
        let mut down = line(Flow::Down, &toxics);
        let now = Instant::now();
        down.push(now, Bytes::from_static(b"0123456789"));
        let mut parts = Vec::new();
        while let Due::Write(b) = down.next(now, true) {
            parts.push(b);
        }
        assert_eq!(parts, [&b"012"[..], b"345", b"6"]);
        assert!(matches!(
            down.next(now, true),
            Due::Cut { reset: false, .. }
        ));
    }

    #[test]
    fn slicer_waits_its_delay_between_slices_across_chunks_too() {
        let toxics = Arc::new(Toxics::default());
        toxics
            .add(br#"{"type":"slicer","attributes":{"average_size":4,"delay":1000}}"#)
            .unwrap();
        let mut down = line(Flow::Down, &toxics);
        let now = Instant::now();
        let ms = |n| now + Duration::from_millis(n);
        down.push(now, Bytes::from_static(b"abcdefgh"));
        // A second chunk read at once: its slice still waits for the first chunk's last.
        down.push(now, Bytes::from_static(b"ijkl"));
        assert_eq!(
            down.next(now, true),
            Due::Write(Bytes::from_static(b"abcd"))
        );
        assert_eq!(down.next(now, true), Due::Wait(ms(1)));
        assert_eq!(
            down.next(ms(1), true),
            Due::Write(Bytes::from_static(b"efgh"))
        );
        assert_eq!(down.next(ms(1), true), Due::Wait(ms(2)));
        assert_eq!(
            down.next(ms(2), true),
            Due::Write(Bytes::from_static(b"ijkl"))
        );
    }

    #[test]
    fn a_seeded_packet_loss_drops_the_same_chunks_on_every_connection() {
        let toxics = Arc::new(Toxics::default());
        toxics
            .add(br#"{"type":"packet_loss","attributes":{"loss_rate":0.5,"correlation":0.2,"seed":9}}"#)
            .unwrap();
        let kept = |conn_seed| {
            let quiet: Reporter = Box::new(|_, _| {});
            let mut down = Line::new(
                Flow::Down,
                toxics.clone(),
                conn_seed,
                quiet,
                Shown::default(),
            );
            let (mut kept, now) = (Vec::new(), Instant::now());
            for i in 0..200u8 {
                down.push(now, Bytes::from(vec![i]));
                while let Due::Write(b) = down.next(now, true) {
                    kept.push(b[0]);
                }
            }
            kept
        };
        let first = kept(1);
        assert_eq!(first, kept(2), "the toxic's seed, not the connection's");
        assert!(
            (40..140).contains(&first.len()),
            "{} of 200 kept",
            first.len()
        );
        let entry = toxics.get("packet_loss_downstream").unwrap();
        let dropped = entry
            .counters
            .acted
            .load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(
            dropped,
            2 * (200 - first.len() as u64),
            "counted, both runs"
        );
    }

    #[test]
    fn what_a_reorder_holds_back_counts_toward_the_bound_and_an_empty_datagram_passes() {
        let toxics = Arc::new(Toxics::new(true));
        toxics
            .add(br#"{"type":"reorder","stream":"upstream","attributes":{"rate":1}}"#)
            .unwrap();
        let mut up = line(Flow::Up, &toxics).for_datagrams();
        let now = Instant::now();
        let mut pushed = 0;
        while up.has_room() && pushed < 1000 {
            up.push(now, Bytes::from(vec![0u8; 16 * 1024]));
            pushed += 1;
        }
        assert!(pushed < 100, "held back, and bounded: {pushed} pushed");
        assert_eq!(up.held_bytes, 0, "nothing due yet: all held back");
        // Let go after its hold: all of it, and the bound with it.
        let later = now + REORDER_HOLD;
        let mut out = 0;
        while let Due::Write(_) = up.next(later, true) {
            out += 1;
        }
        assert_eq!((out, up.held()), (pushed, 0));
        toxics.clear();
        up.push(later, Bytes::new());
        assert_eq!(
            up.next(later, true),
            Due::Write(Bytes::new()),
            "an empty one too"
        );
    }

    #[test]
    fn a_toxic_on_both_streams_applies_to_both_directions_or_neither() {
        let toxics = Arc::new(Toxics::default());
        toxics
            .add(br#"{"type":"timeout","stream":"both","toxicity":0.5}"#)
            .unwrap();
        let got = |line: &Line| !line.applied.is_empty();
        let mut both = 0;
        for seed in 0..200 {
            let quiet = || -> Reporter { Box::new(|_, _| {}) };
            let up = Line::new(Flow::Up, toxics.clone(), seed, quiet(), Shown::default());
            let down = Line::new(Flow::Down, toxics.clone(), seed, quiet(), Shown::default());
            assert_eq!(got(&up), got(&down), "seed {seed}");
            both += usize::from(got(&up));
        }
        assert!((50..150).contains(&both), "about half: {both}");
    }
}
