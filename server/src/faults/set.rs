//! One proxy's toxics: the list the API and the page change, and the signal that tells
//! the proxy's live connections to look again (toxiproxy applies a change to existing
//! connections too).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::toxic::{Acts, Stream, Toxic, ToxicError};
use crate::hub::lock;
use crate::pipeline::Flow;

/// What a toxic did, since it was added (every connection it applied to).
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections (per direction) that got it.
    pub conns: AtomicU64,
    /// Connections (per direction) its toxicity spared.
    pub spared: AtomicU64,
    /// Bytes it handled (held, cut, slowed or passed before a limit).
    pub bytes: AtomicU64,
    /// Bytes it dropped (timeout, reset_peer, beyond limit_data).
    pub dropped: AtomicU64,
    /// Connections it ended (closed or reset).
    pub cuts: AtomicU64,
    /// Chunks or datagrams it dropped (packet_loss, loss), duplicated, held back
    /// (reorder) or cut (truncate); bits it flipped (corrupt).
    pub acted: AtomicU64,
}

/// A toxic as a proxy holds it.
#[derive(Debug)]
pub struct Entry {
    /// Unique for the lab's life; kept by an update, so that live connections keep the
    /// toxic's state (bytes already sent under a limit, say).
    pub id: u64,
    /// The toxic.
    pub toxic: Toxic,
    /// Its figures; kept by an update.
    pub counters: Arc<Counters>,
}

impl Entry {
    /// The row the Proxies panel lists.
    pub fn info(&self) -> wirelab_shared::ToxicInfo {
        let (t, c) = (&self.toxic, &self.counters);
        let mut detail = t.kind.describe();
        detail.push_str(&t.scope.describe());
        if t.toxicity < 1.0 {
            detail.push_str(&format!(", toxicity {}", t.toxicity));
        }
        wirelab_shared::ToxicInfo {
            name: t.name.clone(),
            kind: t.kind.type_name().to_owned(),
            stream: t.stream.as_str().to_owned(),
            detail,
            conns: c.conns.load(Relaxed),
            spared: c.spared.load(Relaxed),
            bytes: c.bytes.load(Relaxed),
            dropped: c.dropped.load(Relaxed),
            cuts: c.cuts.load(Relaxed),
            acted: c.acted.load(Relaxed),
        }
    }
}

/// See the module docs.
pub struct Toxics {
    /// In the order they were added.
    list: Mutex<Vec<Arc<Entry>>>,
    /// Bumped at every change; a connection compares it with the one it last saw (one
    /// relaxed load per read: the pump's fast path).
    generation: AtomicU64,
    /// Wakes the live connections at every change.
    changed: watch::Sender<u64>,
    /// A `udp` proxy's: each toxic must act on datagrams.
    datagrams: bool,
    /// Which flows some toxic covers: bit 0 [`Flow::Up`], bit 1 [`Flow::Down`].
    covered: AtomicU8,
}

/// Ids of toxics, lab-wide.
static LAST_ID: AtomicU64 = AtomicU64::new(0);

impl Default for Toxics {
    fn default() -> Toxics {
        Toxics::new(false)
    }
}

impl Toxics {
    /// No toxics yet; `datagrams`: a `udp` proxy's (only toxics that act on datagrams).
    pub fn new(datagrams: bool) -> Toxics {
        Toxics {
            list: Mutex::new(Vec::new()),
            generation: AtomicU64::new(0),
            changed: watch::channel(0).0,
            datagrams,
            covered: AtomicU8::new(0),
        }
    }

    /// Every toxic as toxiproxy lists them: the upstream chain, then the downstream one
    /// (then wirelab's `both`), each in the order they were added.
    pub fn list(&self) -> Vec<Arc<Entry>> {
        let list = lock(&self.list);
        let mut out = Vec::with_capacity(list.len());
        for stream in [Stream::Upstream, Stream::Downstream, Stream::Both] {
            out.extend(list.iter().filter(|e| e.toxic.stream == stream).cloned());
        }
        out
    }

    /// The toxics bytes travelling `flow` go through, in order, on connection `who` (its
    /// id and peer; `None`: unscoped toxics only).
    pub fn for_flow(&self, flow: Flow, who: Option<(u64, SocketAddr)>) -> Vec<Arc<Entry>> {
        lock(&self.list)
            .iter()
            .filter(|e| e.toxic.stream.covers(flow) && e.toxic.scope.covers(who))
            .cloned()
            .collect()
    }

    /// The toxic `name`.
    pub fn get(&self, name: &str) -> Result<Arc<Entry>, ToxicError> {
        lock(&self.list)
            .iter()
            .find(|e| e.toxic.name == name)
            .cloned()
            .ok_or(ToxicError::NotFound)
    }

    /// Adds the toxic a create request's `body` describes, as toxiproxy does (its checks
    /// in its order).
    pub fn add(&self, body: &[u8]) -> Result<Arc<Entry>, ToxicError> {
        let (mut toxic, attributes) = Toxic::parse(body)?;
        let mut list = lock(&self.list);
        if list.iter().any(|e| e.toxic.name == toxic.name) {
            return Err(ToxicError::Exists);
        }
        toxic.parse_attributes(&attributes)?;
        let acts = toxic.kind.acts_on();
        let (name, datagrams) = (toxic.kind.type_name(), self.datagrams);
        if datagrams && acts == Acts::Streams {
            return Err(ToxicError::BadBody(format!(
                "{name} acts on a byte stream, and this is a udp proxy: its toxics are \
                 latency, bandwidth, packet_loss, corrupt, loss, duplicate, reorder, truncate"
            )));
        }
        if !datagrams && acts == Acts::Datagrams {
            return Err(ToxicError::BadBody(format!(
                "{name} acts on datagrams: it applies to udp proxies only"
            )));
        }
        let entry = Arc::new(Entry {
            id: LAST_ID.fetch_add(1, Relaxed) + 1,
            toxic,
            counters: Arc::default(),
        });
        list.push(entry.clone());
        drop(list);
        self.bump();
        Ok(entry)
    }

    /// Changes the attributes and toxicity of toxic `name` as an update's `body` says.
    pub fn update(&self, name: &str, body: &[u8]) -> Result<Arc<Entry>, ToxicError> {
        let mut list = lock(&self.list);
        let slot = list
            .iter_mut()
            .find(|e| e.toxic.name == name)
            .ok_or(ToxicError::NotFound)?;
        let entry = Arc::new(Entry {
            id: slot.id,
            toxic: slot.toxic.updated(body)?,
            counters: slot.counters.clone(),
        });
        *slot = entry.clone();
        drop(list);
        self.bump();
        Ok(entry)
    }

    /// Removes toxic `name`.
    pub fn remove(&self, name: &str) -> Result<Arc<Entry>, ToxicError> {
        let mut list = lock(&self.list);
        let at = list
            .iter()
            .position(|e| e.toxic.name == name)
            .ok_or(ToxicError::NotFound)?;
        let gone = list.remove(at);
        drop(list);
        self.bump();
        Ok(gone)
    }

    /// Removes every toxic (toxiproxy's `/reset`); those removed.
    pub fn clear(&self) -> Vec<Arc<Entry>> {
        let gone = std::mem::take(&mut *lock(&self.list));
        if !gone.is_empty() {
            self.bump();
        }
        gone
    }

    /// Whether some toxic covers `flow` (one relaxed load).
    pub fn covers(&self, flow: Flow) -> bool {
        self.covered.load(Relaxed) & (1 << flow as u8) != 0
    }

    /// Changes so far.
    pub fn generation(&self) -> u64 {
        self.generation.load(Relaxed)
    }

    /// A receiver woken at every change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn bump(&self) {
        let covered = lock(&self.list).iter().fold(0, |bits, e| {
            let s = e.toxic.stream;
            bits | u8::from(s.covers(Flow::Up)) | u8::from(s.covers(Flow::Down)) << 1
        });
        self.covered.store(covered, Relaxed);
        let g = self.generation.fetch_add(1, Relaxed) + 1;
        self.changed.send_replace(g);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_the_list_is_in_toxiproxy_order() {
        let set = Toxics::default();
        set.add(br#"{"type":"latency"}"#).unwrap();
        set.add(br#"{"type":"latency","stream":"upstream"}"#)
            .unwrap();
        assert_eq!(
            set.add(br#"{"type":"latency"}"#).unwrap_err(),
            ToxicError::Exists
        );
        let names: Vec<_> = set.list().iter().map(|e| e.toxic.name.clone()).collect();
        assert_eq!(names, ["latency_upstream", "latency_downstream"]);
        assert_eq!(set.for_flow(Flow::Up, None).len(), 1);
        let g = set.generation();
        let before = set.get("latency_upstream").unwrap();
        let after = set
            .update("latency_upstream", br#"{"attributes":{"latency":5}}"#)
            .unwrap();
        assert_eq!((after.id, set.generation()), (before.id, g + 1));
        assert_eq!(set.remove("nope").unwrap_err(), ToxicError::NotFound);
        assert_eq!(set.clear().len(), 2);
        assert!(set.list().is_empty());
    }
}
