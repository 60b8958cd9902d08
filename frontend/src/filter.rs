//! The timeline filter: protocols, direction, peer and text, and rows hidden one by one.
//! Matching is cheap and needs no allocation, so refiltering 50,000 rows on a click takes
//! milliseconds.

use std::rc::Rc;

use wirelab_shared::{Direction, Protocol};

use crate::row::Row;

/// Rows hidden one by one at most; hiding more lets the oldest show again.
pub const MAX_HIDDEN: usize = 10_000;

/// Every protocol's bit set.
pub const ALL_PROTOCOLS: u8 = (1 << Protocol::ALL.len()) - 1;

/// What the timeline shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// Protocols shown, as [`Protocol::bit`]s.
    pub protocols: u8,
    /// Only this direction; events without a direction (open, close) are hidden then.
    pub dir: Option<Direction>,
    /// Peer address contains this (case-insensitive).
    pub peer: String,
    /// Preview, peer or payload text contains this (case-insensitive).
    pub text: String,
    /// Rows hidden one by one: their `seq`s, sorted, at most [`MAX_HIDDEN`]. (A sorted
    /// `Vec`, not a `BTreeSet`: this set and the lab's two maps were the wasm's only
    /// B-trees, and their code was 15 KB of it.)
    pub hidden: Rc<Vec<u64>>,
}

impl Default for Filter {
    fn default() -> Self {
        Filter {
            protocols: ALL_PROTOCOLS,
            dir: None,
            peer: String::new(),
            text: String::new(),
            hidden: Rc::default(),
        }
    }
}

impl Filter {
    /// Whether the filter lets everything through.
    pub fn is_all(&self) -> bool {
        *self == Filter::default()
    }

    /// Whether a protocol is shown.
    pub fn shows(&self, p: Protocol) -> bool {
        self.protocols & p.bit() != 0
    }

    /// The protocol mask after a click on `p`: a plain click shows only `p` (or everything
    /// again when `p` was already the only one, like the browser's network panel); with
    /// `multi` (Ctrl, Cmd or Shift held) it toggles `p` alone.
    pub fn click_protocol(mask: u8, p: Protocol, multi: bool) -> u8 {
        if multi {
            let next = mask ^ p.bit();
            if next == 0 { ALL_PROTOCOLS } else { next }
        } else if mask == p.bit() {
            ALL_PROTOCOLS
        } else {
            p.bit()
        }
    }

    /// This filter with row `seq` hidden too.
    pub fn hiding(&self, seq: u64) -> Filter {
        let mut f = self.clone();
        let hidden = Rc::make_mut(&mut f.hidden);
        if let Err(at) = hidden.binary_search(&seq) {
            hidden.insert(at, seq);
            if hidden.len() > MAX_HIDDEN {
                hidden.remove(0);
            }
        }
        f
    }

    /// This filter with every hidden row shown again.
    pub fn unhiding(&self) -> Filter {
        Filter {
            hidden: Rc::default(),
            ..self.clone()
        }
    }

    /// Whether a row passes.
    pub fn matches(&self, row: &Row) -> bool {
        if !self.shows(row.proto) {
            return false;
        }
        if !self.hidden.is_empty() && self.hidden.binary_search(&row.seq).is_ok() {
            return false;
        }
        if self.dir.is_some() && row.dir != self.dir {
            return false;
        }
        let peer = self.peer.trim();
        if !peer.is_empty() && !contains_ci(&row.peer, peer) {
            return false;
        }
        let text = self.text.trim();
        if text.is_empty() {
            return true;
        }
        contains_ci(&row.preview, text)
            || contains_ci(&row.peer, text)
            || contains_ci(row.kind, text)
            || row
                .event
                .kind
                .payload()
                .is_some_and(|p| p.is_text() && contains_ci(&p.data, text))
            || match &row.event.kind {
                wirelab_shared::EventKind::Http(x) => {
                    x.headers
                        .iter()
                        .chain(&x.resp_headers)
                        .any(|(k, v)| contains_ci(k, text) || contains_ci(v, text))
                        || (x.resp_body.is_text() && contains_ci(&x.resp_body.data, text))
                }
                _ => false,
            }
    }
}

/// Whether `hay` contains `needle`, ignoring ASCII case (other letters must match
/// exactly).
pub fn contains_ci(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    if n.is_empty() {
        return true;
    }
    if n.len() > h.len() {
        return false;
    }
    let first = n[0].to_ascii_lowercase();
    (0..=h.len() - n.len())
        .any(|i| h[i].to_ascii_lowercase() == first && h[i..i + n.len()].eq_ignore_ascii_case(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wirelab_shared::{Event, EventKind, Payload};

    #[test]
    fn a_hidden_row_stays_out_until_shown_again() {
        let (a, b) = (
            udp(1, "127.0.0.1:5000", Direction::In, "a"),
            udp(2, "127.0.0.1:5000", Direction::In, "b"),
        );
        let f = Filter::default().hiding(1);
        assert!(!f.matches(&a) && f.matches(&b));
        assert!(!f.is_all());
        let f = f.hiding(2).unhiding();
        assert!(f.matches(&a) && f.matches(&b) && f.is_all());
        let mut f = Filter::default();
        for seq in 0..=MAX_HIDDEN as u64 {
            f = f.hiding(seq);
        }
        assert_eq!(
            f.hidden.len(),
            MAX_HIDDEN,
            "bounded: the oldest shows again"
        );
        assert!(!f.hidden.contains(&0));
    }

    fn udp(seq: u64, peer: &str, dir: Direction, text: &str) -> Row {
        Row::new(Event {
            seq,
            ts_us: 0,
            kind: EventKind::UdpDatagram {
                peer: peer.into(),
                dir,
                size: text.len() as u64,
                payload: Payload::capture(text.as_bytes(), 1 << 16),
            },
        })
    }

    #[test]
    fn contains_ignores_ascii_case() {
        assert!(contains_ci("Hello World", "o wor"));
        assert!(contains_ci("abc", ""));
        assert!(!contains_ci("ab", "abc"));
        assert!(contains_ci("ÉCOLE x", "x"));
        assert!(!contains_ci("hello", "world"));
    }

    #[test]
    fn every_field_filters() {
        let row = udp(1, "127.0.0.1:5000", Direction::In, "Hello <script>");
        assert!(Filter::default().matches(&row));
        assert!(Filter::default().is_all());
        let only_tcp = Filter {
            protocols: Protocol::Tcp.bit(),
            ..Filter::default()
        };
        assert!(!only_tcp.matches(&row));
        let out = Filter {
            dir: Some(Direction::Out),
            ..Filter::default()
        };
        assert!(!out.matches(&row));
        let peer = Filter {
            peer: ":5000".into(),
            ..Filter::default()
        };
        assert!(peer.matches(&row));
        let text = Filter {
            text: "SCRIPT".into(),
            ..Filter::default()
        };
        assert!(text.matches(&row));
        let miss = Filter {
            text: "nope".into(),
            ..Filter::default()
        };
        assert!(!miss.matches(&row));
    }

    #[test]
    fn text_search_reaches_past_the_preview() {
        let long = format!("{}needle", "x".repeat(400));
        let row = udp(1, "p", Direction::In, &long);
        assert!(!row.preview.contains("needle"));
        let f = Filter {
            text: "Needle".into(),
            ..Filter::default()
        };
        assert!(f.matches(&row));
    }

    #[test]
    fn protocol_clicks_work_like_the_network_panel() {
        let udp = Protocol::Udp.bit();
        let tcp = Protocol::Tcp.bit();
        assert_eq!(
            Filter::click_protocol(ALL_PROTOCOLS, Protocol::Udp, false),
            udp
        );
        assert_eq!(
            Filter::click_protocol(udp, Protocol::Udp, false),
            ALL_PROTOCOLS
        );
        assert_eq!(Filter::click_protocol(udp, Protocol::Tcp, true), udp | tcp);
        assert_eq!(
            Filter::click_protocol(udp, Protocol::Udp, true),
            ALL_PROTOCOLS
        );
        assert_eq!(
            Filter::click_protocol(ALL_PROTOCOLS, Protocol::Udp, true),
            ALL_PROTOCOLS & !udp
        );
    }
}
