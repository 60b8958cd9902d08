//! A relayed connection's events, as its pumps report them, and an `http` proxy's
//! reading of its bytes.

use super::*;

/// The leg bytes travelling `flow` are read from.
pub(super) fn source(flow: Flow) -> Leg {
    match flow {
        Flow::Up => Leg::Client,
        Flow::Down => Leg::Upstream,
    }
}

pub(super) fn leg_name(leg: Leg) -> &'static str {
    match leg {
        Leg::Client => "client",
        Leg::Upstream => "upstream",
    }
}

/// A connection's events, as its pumps report them.
pub(super) struct ConnEvents<'a> {
    /// Where they go.
    pub(super) hub: &'a Hub,
    /// The proxy's name.
    pub(super) proxy: &'a str,
    /// The connection.
    pub(super) conn: &'a RelayConn,
    /// `--snaplen`, for what the page sends.
    pub(super) snaplen: usize,
    /// An `http` proxy's reading of the stream.
    pub(super) http: Option<Mutex<HttpView>>,
}

impl ConnEvents<'_> {
    /// Feeds an `http` proxy's reading (`from_page`: bytes the page sent); publishes what
    /// it completes.
    fn observe(&self, flow: Flow, bytes: &[u8], now: Instant, from_page: bool) {
        if let Some(view) = &self.http {
            let mut out = Vec::new();
            let mut view = lock(view);
            match from_page {
                false => view.feed(flow, bytes, now, &mut out),
                true => view.feed_page(flow, bytes, now, &mut out),
            }
            self.conn.websocket.store(view.takes_messages(), Relaxed);
            drop(view);
            for e in out {
                self.hub.publish(e);
            }
        }
    }

    /// The connection ended: what the reading still holds is published.
    pub(super) fn finish(&self) {
        if let Some(view) = &self.http {
            let mut out = Vec::new();
            lock(view).finish(Instant::now(), &mut out);
            for e in out {
                self.hub.publish(e);
            }
        }
    }
}

impl Events for ConnEvents<'_> {
    fn data(&self, flow: Flow, merged: Merged) {
        self.hub.publish(EventKind::RelayData {
            proxy: self.proxy.to_owned(),
            conn: self.conn.id,
            peer: self.conn.peer_text.clone(),
            from: source(flow),
            size: merged.size,
            payload: merged.payload,
        });
    }

    fn reads(&self) -> bool {
        self.http.is_some()
    }

    fn read(&self, flow: Flow, bytes: &[u8], now: Instant) {
        self.observe(flow, bytes, now, false);
    }

    fn at_boundary(&self, flow: Flow) -> bool {
        self.http.as_ref().is_none_or(|v| lock(v).at_boundary(flow))
    }

    fn unsent(&self, flow: Flow, bytes: &[u8]) {
        let toward = leg_name(match flow {
            Flow::Up => Leg::Upstream,
            Flow::Down => Leg::Client,
        });
        self.hub.publish(EventKind::RelayNotice {
            proxy: self.proxy.to_owned(),
            conn: self.conn.id,
            peer: self.conn.peer_text.clone(),
            from: source(flow),
            detail: format!(
                "{} bytes the page sent toward the {toward} were not written: the stream \
                 ended inside one of its messages, where they would have cut it in two",
                bytes.len()
            ),
        });
    }

    fn sent(&self, flow: Flow, bytes: &[u8]) {
        self.observe(flow, bytes, Instant::now(), true);
        self.hub.publish(EventKind::RelaySend {
            proxy: self.proxy.to_owned(),
            conn: self.conn.id,
            peer: self.conn.peer_text.clone(),
            to: match flow {
                Flow::Up => Leg::Upstream,
                Flow::Down => Leg::Client,
            },
            size: bytes.len() as u64,
            payload: wirelab_shared::Payload::capture(bytes, self.snaplen),
        });
    }

    fn half_close(&self, flow: Flow) {
        if let Some(view) = &self.http {
            let mut out = Vec::new();
            lock(view).fin(flow, Instant::now(), &mut out);
            for e in out {
                self.hub.publish(e);
            }
        }
        let flag = match flow {
            Flow::Up => &self.conn.client_half_closed,
            Flow::Down => &self.conn.upstream_half_closed,
        };
        flag.store(true, Relaxed);
        self.hub.publish(EventKind::RelayHalfClose {
            proxy: self.proxy.to_owned(),
            conn: self.conn.id,
            peer: self.conn.peer_text.clone(),
            from: source(flow),
        });
    }
}
