//! [`Timeline`]: every event the page holds, the filtered view of them, and exact
//! counters; a Yew [`Reducible`] fed once per animation frame.
//!
//! The ring is bounded (50,000 rows unless configured); the counters count every event
//! whatever the ring dropped, and every hole in `seq` is counted, so nothing goes
//! missing silently. The view (the rows that pass the filter) is kept up to date as rows
//! arrive and leave, and rebuilt only when the filter changes. Both are
//! [`ChunkDeque`]s, so the copy Yew makes of the state on each change costs little.

use std::rc::Rc;

use wirelab_shared::{Event, EventKind, Protocol};
use yew::Reducible;

use crate::deque::ChunkDeque;
use crate::filter::Filter;
use crate::rates::RateWindow;
use crate::row::Row;

/// Rows kept unless configured otherwise.
pub const DEFAULT_CAP: usize = 50_000;
/// HTTP exchanges kept for the HTTP panel and the HAR export.
pub const HTTP_CAP: usize = 10_000;
/// Chat lines kept for the WebSocket panel.
pub const CHAT_CAP: usize = 500;

/// Exact counts; none of them shrinks when the ring drops rows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Events received live or in a snapshot backlog (duplicates not counted).
    pub received: u64,
    /// Rows the ring's bound pushed out.
    pub evicted: u64,
    /// Rows removed by "clear".
    pub cleared: u64,
    /// `lagged` frames received, and the events they said were skipped.
    pub lagged_frames: u64,
    pub lagged_missed: u64,
    /// `seq` numbers never received (the lagged ones included, and any other hole).
    pub holes: u64,
    /// Events received twice (a resume overlapping what was held) and ignored.
    pub duplicates: u64,
    /// Older rows loaded from the server's history.
    pub loaded_older: u64,
}

/// Inputs taken from server frames, in the order they came.
#[derive(Debug, PartialEq)]
pub enum Input {
    /// The `snapshot` frame's backlog.
    Snapshot {
        backlog: Vec<Event>,
        resumed: bool,
        last_seq: u64,
    },
    /// An `events` batch.
    Events(Vec<Event>),
    /// A `lagged` frame.
    Lagged(u64),
    /// The server's clock, from a `state` frame (moves the rate charts on when quiet).
    Now(u64),
}

/// What can happen to the timeline.
#[derive(Debug)]
pub enum TimelineAction {
    /// Frames that arrived since the last animation frame.
    Apply(Vec<Input>),
    /// Show what passes this filter.
    SetFilter(Filter),
    /// Drop every row held (counters go on).
    Clear,
    /// Older events from the server's history, oldest first.
    PrependOlder(Vec<Event>),
}

/// The timeline state; see the module doc.
#[derive(Clone, Debug)]
pub struct Timeline {
    /// Every row held, oldest first, at most `cap`.
    pub ring: ChunkDeque<Rc<Row>>,
    /// The rows of `ring` that pass `filter`.
    pub view: ChunkDeque<Rc<Row>>,
    /// HTTP exchanges (own bound, so a flood elsewhere does not push them out).
    pub http: ChunkDeque<Rc<Row>>,
    /// Chat lines.
    pub chat: ChunkDeque<Rc<Row>>,
    /// The ring's bound.
    pub cap: usize,
    pub filter: Rc<Filter>,
    pub counts: Counts,
    pub rates: RateWindow,
    /// The highest `seq` received.
    pub last_seq: u64,
    /// Bumped whenever the view is rebuilt rather than appended to (filter, clear,
    /// restart, older rows), so the list knows its scroll position is stale.
    pub view_gen: u64,
    /// Rows appended to the view, and rows that left its front, since the start: the
    /// list uses them for the "N new" count and to keep a paused view still.
    pub view_appended: u64,
    pub view_evicted: u64,
    /// Rows put in front of the view by "load older", so a paused list can stay put.
    pub view_prepended: u64,
    /// Bumped by every action: what `PartialEq` compares (a deep compare would cost
    /// as much as the render it saves).
    pub rev: u64,
}

impl Timeline {
    /// An empty timeline that keeps at most `cap` rows.
    pub fn new(cap: usize) -> Timeline {
        Timeline {
            ring: ChunkDeque::new(),
            view: ChunkDeque::new(),
            http: ChunkDeque::new(),
            chat: ChunkDeque::new(),
            cap: cap.max(100),
            filter: Rc::new(Filter::default()),
            counts: Counts::default(),
            rates: RateWindow::default(),
            last_seq: 0,
            view_gen: 0,
            view_appended: 0,
            view_evicted: 0,
            view_prepended: 0,
            rev: 0,
        }
    }

    /// Applies one action (what [`Reducible::reduce`] does, on an owned value).
    pub fn apply(&mut self, action: TimelineAction) {
        self.rev += 1;
        match action {
            TimelineAction::Apply(inputs) => {
                for input in inputs {
                    self.input(input);
                }
                self.enforce_cap();
            }
            TimelineAction::SetFilter(filter) => {
                self.filter = Rc::new(filter);
                self.rebuild_view();
            }
            TimelineAction::Clear => {
                self.counts.cleared += self.ring.len() as u64;
                self.ring.clear();
                self.http.clear();
                self.chat.clear();
                self.rebuild_view();
            }
            TimelineAction::PrependOlder(events) => self.prepend(events),
        }
    }

    fn input(&mut self, input: Input) {
        match input {
            Input::Events(events) => {
                for ev in events {
                    self.push(ev);
                }
            }
            Input::Lagged(missed) => {
                self.counts.lagged_frames += 1;
                self.counts.lagged_missed += missed;
            }
            Input::Now(ts_us) => self.rates.advance(ts_us),
            Input::Snapshot {
                backlog,
                resumed,
                last_seq,
            } => {
                let first = backlog.first().map_or(last_seq + 1, |e| e.seq);
                let restarted = last_seq < self.last_seq || first <= self.last_seq;
                if !resumed && restarted {
                    // Another history (the server restarted): start afresh.
                    self.ring.clear();
                    self.http.clear();
                    self.chat.clear();
                    self.last_seq = 0;
                    self.rebuild_view();
                }
                for ev in backlog {
                    self.push(ev);
                }
                if self.last_seq > 0 && last_seq > self.last_seq {
                    // Issued while we were away and no longer in the backlog.
                    self.counts.holes += last_seq - self.last_seq;
                }
                self.last_seq = self.last_seq.max(last_seq);
            }
        }
    }

    fn push(&mut self, ev: Event) {
        if ev.seq <= self.last_seq {
            self.counts.duplicates += 1;
            return;
        }
        if self.last_seq > 0 {
            self.counts.holes += ev.seq - self.last_seq - 1;
        }
        self.last_seq = ev.seq;
        self.counts.received += 1;
        let row = Row::shared(ev);
        self.rates.add(row.ts_us, row.proto, row.size);
        match &row.event.kind {
            EventKind::Http(_) | EventKind::RelayHttp { .. } => {
                self.http.push_back(row.clone());
                if self.http.len() > HTTP_CAP {
                    self.http.pop_front_n(1);
                }
            }
            EventKind::Chat { .. } => {
                self.chat.push_back(row.clone());
                if self.chat.len() > CHAT_CAP {
                    self.chat.pop_front_n(1);
                }
            }
            _ => {}
        }
        if self.filter.matches(&row) {
            self.view.push_back(row.clone());
            self.view_appended += 1;
        }
        self.ring.push_back(row);
    }

    fn enforce_cap(&mut self) {
        let excess = self.ring.len().saturating_sub(self.cap);
        if excess == 0 {
            return;
        }
        let cutoff = self.ring.get(excess - 1).map_or(0, |r| r.seq);
        self.ring.pop_front_n(excess);
        self.counts.evicted += excess as u64;
        self.view_evicted += self.view.pop_front_while(|r| r.seq <= cutoff) as u64;
    }

    fn rebuild_view(&mut self) {
        self.view = self
            .ring
            .iter()
            .filter(|r| self.filter.matches(r))
            .cloned()
            .collect();
        self.view_gen += 1;
    }

    fn prepend(&mut self, events: Vec<Event>) {
        let first = self.ring.front().map_or(u64::MAX, |r| r.seq);
        let mut older: Vec<Rc<Row>> = events
            .into_iter()
            .filter(|e| e.seq < first)
            .map(Row::shared)
            .collect();
        // Rows of one seq are the same event: which of them `dedup` keeps does not matter,
        // so the unstable sort (the wasm's only sort: a stable one is 1 KB more).
        older.sort_unstable_by_key(|r| r.seq);
        older.dedup_by_key(|r| r.seq);
        if older.is_empty() {
            return;
        }
        self.counts.loaded_older += older.len() as u64;
        if self.last_seq == 0 {
            self.last_seq = older.last().map_or(0, |r| r.seq);
        }
        let passing: Vec<Rc<Row>> = older
            .iter()
            .filter(|r| self.filter.matches(r))
            .cloned()
            .collect();
        self.view_prepended += passing.len() as u64;
        self.view = passing
            .into_iter()
            .chain(self.view.iter().cloned())
            .collect();
        self.ring = older.into_iter().chain(self.ring.iter().cloned()).collect();
    }

    /// The row with this `seq`, if held.
    pub fn find(&self, seq: u64) -> Option<&Rc<Row>> {
        let i = self.ring.partition_point(|r| r.seq < seq);
        self.ring.get(i).filter(|r| r.seq == seq)
    }

    /// The position of `seq` in the view, if it passes the filter.
    pub fn view_index(&self, seq: u64) -> Option<usize> {
        let i = self.view.partition_point(|r| r.seq < seq);
        self.view.get(i).filter(|r| r.seq == seq).map(|_| i)
    }

    /// The oldest `seq` held, for "load older".
    pub fn first_seq(&self) -> Option<u64> {
        self.ring.front().map(|r| r.seq)
    }

    /// Rows held per protocol (cheap enough for the rail's badges: one pass).
    pub fn held_by_protocol(&self) -> [usize; Protocol::ALL.len()] {
        let mut n = [0; Protocol::ALL.len()];
        for r in self.ring.iter() {
            n[r.proto as usize] += 1;
        }
        n
    }
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline::new(DEFAULT_CAP)
    }
}

impl PartialEq for Timeline {
    fn eq(&self, other: &Self) -> bool {
        self.rev == other.rev
    }
}

impl Reducible for Timeline {
    type Action = TimelineAction;

    fn reduce(self: Rc<Self>, action: TimelineAction) -> Rc<Self> {
        let mut next = Rc::unwrap_or_clone(self);
        next.apply(action);
        Rc::new(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wirelab_shared::{Direction, Payload};

    fn udp(seq: u64, text: &str) -> Event {
        Event {
            seq,
            ts_us: 1_000_000 * seq,
            kind: EventKind::UdpDatagram {
                peer: "127.0.0.1:5000".into(),
                dir: Direction::In,
                size: text.len() as u64,
                payload: Payload::capture(text.as_bytes(), 64),
            },
        }
    }

    fn tcp_open(seq: u64) -> Event {
        Event {
            seq,
            ts_us: 1_000_000 * seq,
            kind: EventKind::TcpOpen {
                conn: seq,
                peer: "127.0.0.1:6000".into(),
                local: "127.0.0.1:1338".into(),
                outbound: false,
                handshake_us: None,
            },
        }
    }

    fn events(range: std::ops::RangeInclusive<u64>) -> TimelineAction {
        TimelineAction::Apply(vec![Input::Events(range.map(|s| udp(s, "x")).collect())])
    }

    #[test]
    fn the_ring_is_bounded_and_the_counters_stay_exact() {
        let mut t = Timeline::new(1000);
        for chunk in 0..10 {
            t.apply(events(chunk * 500 + 1..=chunk * 500 + 500));
        }
        assert_eq!(t.counts.received, 5000);
        assert_eq!(t.ring.len(), 1000);
        assert_eq!(t.view.len(), 1000);
        assert_eq!(t.counts.evicted, 4000);
        assert_eq!(t.view_evicted, 4000);
        assert_eq!(t.first_seq(), Some(4001));
        assert_eq!(t.last_seq, 5000);
        assert_eq!(t.counts.holes, 0);
        assert!(t.find(4500).is_some());
        assert!(t.find(10).is_none());
    }

    #[test]
    fn holes_duplicates_and_lagged_are_counted() {
        let mut t = Timeline::new(1000);
        t.apply(events(1..=10));
        t.apply(TimelineAction::Apply(vec![
            Input::Lagged(5),
            Input::Events(vec![udp(16, "a"), udp(16, "a"), udp(17, "b")]),
        ]));
        assert_eq!(t.counts.lagged_frames, 1);
        assert_eq!(t.counts.lagged_missed, 5);
        assert_eq!(t.counts.holes, 5);
        assert_eq!(t.counts.duplicates, 1);
        assert_eq!(t.counts.received, 12);
    }

    #[test]
    fn the_view_follows_the_filter() {
        let mut t = Timeline::new(1000);
        t.apply(TimelineAction::Apply(vec![Input::Events(vec![
            udp(1, "hello"),
            tcp_open(2),
            udp(3, "world"),
        ])]));
        let gen0 = t.view_gen;
        t.apply(TimelineAction::SetFilter(Filter {
            protocols: Protocol::Udp.bit(),
            ..Filter::default()
        }));
        assert_eq!(t.view.len(), 2);
        assert!(t.view_gen > gen0);
        t.apply(TimelineAction::Apply(vec![Input::Events(vec![
            tcp_open(4),
            udp(5, "again"),
        ])]));
        assert_eq!(
            t.view.iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![1, 3, 5]
        );
        assert_eq!(t.view_index(3), Some(1));
        assert_eq!(t.view_index(4), None);
        t.apply(TimelineAction::SetFilter(Filter {
            text: "WORLD".into(),
            ..Filter::default()
        }));
        assert_eq!(t.view.len(), 1);
        t.apply(TimelineAction::Clear);
        assert_eq!((t.ring.len(), t.view.len(), t.counts.cleared), (0, 0, 5));
        assert_eq!(t.counts.received, 5);
    }

    #[test]
    fn a_resumed_snapshot_appends_and_a_fresh_one_after_a_restart_starts_over() {
        let mut t = Timeline::new(1000);
        t.apply(events(1..=10));
        // Resumed: the backlog holds exactly what came after 10.
        t.apply(TimelineAction::Apply(vec![Input::Snapshot {
            backlog: vec![udp(11, "a"), udp(12, "b")],
            resumed: true,
            last_seq: 12,
        }]));
        assert_eq!((t.ring.len(), t.counts.holes), (12, 0));
        // Not resumed, same server, backlog too short: appended, the hole counted.
        t.apply(TimelineAction::Apply(vec![Input::Snapshot {
            backlog: vec![udp(20, "c")],
            resumed: false,
            last_seq: 20,
        }]));
        assert_eq!((t.ring.len(), t.counts.holes), (13, 7));
        // The server restarted: seq starts again from 1.
        t.apply(TimelineAction::Apply(vec![Input::Snapshot {
            backlog: vec![udp(1, "new")],
            resumed: false,
            last_seq: 1,
        }]));
        assert_eq!(t.ring.len(), 1);
        assert_eq!(t.last_seq, 1);
        // An empty backlog after a quiet period: nothing lost.
        t.apply(TimelineAction::Apply(vec![Input::Snapshot {
            backlog: vec![],
            resumed: false,
            last_seq: 1,
        }]));
        assert_eq!(t.ring.len(), 1);
    }

    #[test]
    fn older_history_is_prepended_in_order() {
        let mut t = Timeline::new(1000);
        t.apply(events(50..=60));
        t.apply(TimelineAction::PrependOlder(vec![
            udp(45, "a"),
            udp(40, "b"),
            udp(55, "dup"),
        ]));
        assert_eq!(t.first_seq(), Some(40));
        assert_eq!(t.ring.len(), 13);
        assert_eq!(t.counts.loaded_older, 2);
        assert_eq!(t.counts.received, 11);
        assert_eq!(t.view.len(), 13);
        assert_eq!(t.view_prepended, 2);
        assert_eq!(t.view.front().map(|r| r.seq), Some(40));
    }

    #[test]
    fn clones_are_cheap_and_independent() {
        let mut t = Timeline::new(DEFAULT_CAP);
        t.apply(events(1..=5000));
        let before = Rc::new(t.clone());
        let after = before.clone().reduce(events(5001..=5010));
        assert_eq!(before.ring.len(), 5000);
        assert_eq!(after.ring.len(), 5010);
    }
}
