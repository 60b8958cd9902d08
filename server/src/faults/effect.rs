//! What each toxic does to the pieces of one chunk, on one direction of one connection:
//! the instants they may be written at, their sizes, the bytes dropped, and the state a
//! toxic keeps per connection (toxiproxy's units: ms, KB/s of 1,000 bytes, µs).

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::set::Counters;
use super::toxic::Kind;
use crate::hub::counters::add;

/// A piece of a chunk and when it may be written.
#[derive(Debug)]
pub(super) struct Piece {
    pub(super) at: Instant,
    pub(super) bytes: Bytes,
}

/// A toxic's state on one connection.
pub(super) enum State {
    None,
    /// bandwidth: when the link is free again; slicer: when its next slice may go.
    Free(Instant),
    /// limit_data: bytes let through.
    Sent(u64),
    /// timeout (from when it applied, then from each chunk it drops) and reset_peer
    /// (from the first chunk): when the connection ends; `None`: not armed.
    EndAt(Option<Instant>),
    /// packet_loss: the last one was dropped; loss: in a burst.
    Bad(bool),
    /// reorder: the datagrams held back, each with the number of later ones still to let
    /// pass.
    Back(Vec<(i64, Piece)>),
}

impl State {
    /// The state toxic `kind` starts with on a connection it applies to at `now`.
    pub(super) fn new(kind: &Kind, now: Instant) -> State {
        match *kind {
            Kind::Bandwidth { .. } | Kind::Slicer { .. } => State::Free(now),
            Kind::LimitData { .. } => State::Sent(0),
            Kind::Timeout { timeout: 0 } | Kind::ResetPeer { .. } => State::EndAt(None),
            Kind::Timeout { timeout } => State::EndAt(Some(now + ms(timeout))),
            Kind::PacketLoss { .. } | Kind::Loss { .. } => State::Bad(false),
            Kind::Reorder { .. } => State::Back(Vec::new()),
            _ => State::None,
        }
    }
}

/// What a toxic did to one chunk.
pub(super) struct Effect {
    /// What is left of it.
    pub(super) pieces: Vec<Piece>,
    /// How long its last byte now waits, in ms (for the notes).
    pub(super) held_ms: u64,
    /// limit_data: its count is reached; the connection closes once this is written.
    pub(super) limit_reached: bool,
    /// Chunks or datagrams dropped, duplicated, held back or cut; for corrupt, bits
    /// flipped.
    pub(super) touched: u64,
    /// reorder: the bytes it took into its own keeping, and let go of (each piece counted
    /// with `cost` more), so that the line bounds them with what it holds.
    pub(super) back_in: usize,
    pub(super) back_out: usize,
}

/// A small xorshift64* generator, for toxicity, jitter and slice sizes.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    /// A generator whose numbers follow from `seed` alone (any number, 0 included).
    pub(super) fn seeded(seed: u64) -> Rng {
        // One splitmix64 step: small seeds (1, 2, 42) start far apart.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    /// A number in [0, 1).
    pub(super) fn unit(&mut self) -> f64 {
        (self.draw() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with chance `p`.
    fn hit(&mut self, p: f64) -> bool {
        p >= 1.0 || (p > 0.0 && self.unit() < p)
    }

    /// The next number.
    pub(super) fn draw(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `-spread..=spread`.
    fn wobble(&mut self, spread: i64) -> i64 {
        match spread {
            0 => 0,
            s => (self.draw() % (2 * s as u64 + 1)) as i64 - s,
        }
    }
}

/// Toxic `kind` (with its `state` here) on `pieces`, `len` bytes in all, read at `now`.
/// `datagrams`: each piece is a datagram, never cut (bandwidth spaces whole ones).
#[allow(clippy::too_many_arguments)]
pub(super) fn apply(
    kind: &Kind,
    state: &mut State,
    now: Instant,
    pieces: Vec<Piece>,
    len: usize,
    rng: &mut Rng,
    counters: &Counters,
    datagrams: bool,
    cost: usize,
) -> Effect {
    let mut effect = Effect {
        pieces: Vec::new(),
        held_ms: 0,
        limit_reached: false,
        touched: 0,
        back_in: 0,
        back_out: 0,
    };
    effect.pieces = match (*kind, &mut *state) {
        (Kind::Latency { latency, jitter }, _) => {
            let held = (latency + rng.wobble(jitter)).max(0);
            effect.held_ms = held as u64;
            let by = ms(held);
            pieces
                .into_iter()
                .map(|p| Piece {
                    at: p.at + by,
                    bytes: p.bytes,
                })
                .collect()
        }
        // Pieces of at most 100 ms' worth (toxiproxy sends 100 ms slices too), each
        // released once its time at `rate` has passed.
        (Kind::Bandwidth { rate }, State::Free(free)) if rate > 0 => {
            let slice = match datagrams {
                true => usize::MAX,
                false => (rate as usize * 100).max(1),
            };
            let mut out = Vec::new();
            for p in pieces {
                for part in cut(p.bytes, || slice) {
                    let cost = Duration::from_micros(part.len() as u64 * 1000 / rate as u64);
                    *free = (*free).max(p.at) + cost;
                    out.push(Piece {
                        at: *free,
                        bytes: part,
                    });
                }
            }
            effect.held_ms = free.saturating_duration_since(now).as_millis() as u64;
            out
        }
        // Each slice waits `delay` after the one before, across chunks too (toxiproxy
        // sleeps after every slice it writes, the last of a chunk included).
        (
            Kind::Slicer {
                average_size,
                size_variation,
                delay,
            },
            State::Free(free),
        ) => {
            let gap = Duration::from_micros(delay as u64);
            let mut out = Vec::new();
            for p in pieces {
                let size = || (average_size + rng.wobble(size_variation)).max(1) as usize;
                for part in cut(p.bytes, size) {
                    let at = (*free).max(p.at);
                    out.push(Piece { at, bytes: part });
                    *free = at + gap;
                }
            }
            out
        }
        (Kind::LimitData { bytes }, State::Sent(sent)) => {
            let mut left = (bytes as u64).saturating_sub(*sent);
            let mut out = Vec::new();
            for mut p in pieces {
                let n = (p.bytes.len() as u64).min(left);
                left -= n;
                *sent += n;
                if n < p.bytes.len() as u64 {
                    add(&counters.dropped, p.bytes.len() as u64 - n);
                    p.bytes.truncate(n as usize);
                }
                out.push(p);
            }
            effect.limit_reached = left == 0;
            out
        }
        (Kind::Timeout { timeout }, State::EndAt(end)) => {
            // Waits again from each chunk it drops (0: never ends).
            if end.is_some() {
                *end = Some(now + ms(timeout));
            }
            add(&counters.dropped, len as u64);
            Vec::new()
        }
        (Kind::ResetPeer { timeout }, State::EndAt(end)) => {
            // The first chunk starts its wait.
            end.get_or_insert(now + ms(timeout));
            add(&counters.dropped, len as u64);
            Vec::new()
        }
        (
            Kind::PacketLoss {
                loss_rate,
                correlation,
            },
            State::Bad(dropped),
        ) => keep(pieces, counters, &mut effect.touched, |_| {
            let p = match *dropped {
                true => (loss_rate + correlation).min(1.0),
                false => loss_rate,
            };
            *dropped = rng.hit(p);
            !*dropped
        }),
        (
            Kind::Loss {
                rate,
                burst_enter,
                burst_exit,
                burst_rate,
            },
            State::Bad(burst),
        ) => keep(pieces, counters, &mut effect.touched, |_| {
            let lost = rng.hit(if *burst { burst_rate } else { rate });
            *burst = match *burst {
                true => !rng.hit(super::toxic::exit_chance(burst_enter, burst_exit)),
                false => rng.hit(burst_enter),
            };
            !lost
        }),
        (Kind::Corrupt { probability }, _) => pieces
            .into_iter()
            .map(|p| {
                let (bytes, flipped) = corrupt(p.bytes, probability, rng);
                effect.touched += flipped;
                Piece { at: p.at, bytes }
            })
            .collect(),
        (Kind::Duplicate { rate }, _) => {
            let mut out = Vec::with_capacity(pieces.len() + 1);
            for p in pieces {
                if rng.hit(rate) {
                    effect.touched += 1;
                    out.push(Piece {
                        at: p.at,
                        bytes: p.bytes.clone(),
                    });
                }
                out.push(p);
            }
            out
        }
        (Kind::Reorder { rate, gap }, State::Back(back)) => {
            let mut out = Vec::with_capacity(pieces.len());
            for p in pieces {
                // This one passes those held back; each that has let its `gap` pass goes
                // right after it.
                let at = p.at;
                if rng.hit(rate) {
                    effect.touched += 1;
                    effect.back_in += p.bytes.len() + cost;
                    back.push((gap.max(1), p));
                    continue;
                }
                out.push(p);
                for (left, _) in back.iter_mut() {
                    *left -= 1;
                }
                let mut i = 0;
                while i < back.len() {
                    if back[i].0 <= 0 {
                        let (_, mut q) = back.remove(i);
                        effect.back_out += q.bytes.len() + cost;
                        q.at = q.at.max(at);
                        out.push(q);
                    } else {
                        i += 1;
                    }
                }
            }
            out
        }
        (Kind::Truncate { size }, _) => pieces
            .into_iter()
            .map(|mut p| {
                if p.bytes.len() > size as usize {
                    add(&counters.dropped, (p.bytes.len() - size as usize) as u64);
                    effect.touched += 1;
                    p.bytes.truncate(size as usize);
                }
                p
            })
            .collect(),
        _ => pieces, // bandwidth at 0 (no limit), slow_close (at the FIN only)
    };
    add(&counters.bytes, len as u64);
    effect
}

/// The pieces `keep` says yes to; the others' bytes are counted dropped, and their number
/// `touched`.
fn keep(
    pieces: Vec<Piece>,
    counters: &Counters,
    touched: &mut u64,
    mut keep: impl FnMut(&Piece) -> bool,
) -> Vec<Piece> {
    let mut out = Vec::with_capacity(pieces.len());
    for p in pieces {
        match keep(&p) {
            true => out.push(p),
            false => {
                add(&counters.dropped, p.bytes.len() as u64);
                *touched += 1;
            }
        }
    }
    out
}

/// `bytes` with each bit flipped with chance `p` (the gaps between flips drawn, so a
/// rare flip costs a draw per flip, not per bit), and the number flipped.
fn corrupt(bytes: Bytes, p: f64, rng: &mut Rng) -> (Bytes, u64) {
    let bits = bytes.len() as u64 * 8;
    if p <= 0.0 || bits == 0 {
        return (bytes, 0);
    }
    let mut out = bytes.to_vec();
    let mut flipped = 0;
    let mut at = 0u64;
    // ln(1 - p): the gap before the next flip is geometric.
    let ln_miss = (1.0 - p).ln();
    loop {
        if p < 1.0 {
            let gap = ((1.0 - rng.unit()).ln() / ln_miss).floor();
            at = at.saturating_add(if gap.is_finite() {
                gap as u64
            } else {
                u64::MAX
            });
        }
        if at >= bits {
            break;
        }
        out[(at / 8) as usize] ^= 1 << (at % 8);
        flipped += 1;
        at += 1;
    }
    (Bytes::from(out), flipped)
}

fn ms(n: i64) -> Duration {
    Duration::from_millis(n.max(0) as u64)
}

/// `bytes` cut into parts of the sizes `size` gives (the last may be shorter).
fn cut(mut bytes: Bytes, mut size: impl FnMut() -> usize) -> Vec<Bytes> {
    let mut parts = Vec::new();
    while !bytes.is_empty() {
        let n = size().min(bytes.len());
        parts.push(bytes.split_to(n));
    }
    parts
}
