//! An `http` proxy's reading of a conversation (`wirelab::relay::http::HttpView`), fed
//! what a client and an upstream might send, in any order and any pieces: requests,
//! responses, upgrades, WebSocket frames, garbage, FINs, the page's own bytes.
//!
//! The input is a list of records: a byte whose low bits say who sends (client,
//! upstream, the page toward either, a FIN from either), a length byte, then that many
//! bytes. Checked beyond "no panic":
//! - every exchange is told once, in the order its request came (ids and `seq_on_conn`
//!   only grow), on the connection it belongs to;
//! - what a body keeps is never more than the snaplen, and never more than its size;
//! - giving up is said at most once (with, at the end, at most one line per direction
//!   about frames not shown).
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use tokio::time::Instant;
use wirelab::pipeline::Flow;
use wirelab::relay::http::HttpView;
use wirelab_shared::EventKind;

const SNAPLEN: usize = 32;

fuzz_target!(|data: &[u8]| {
    let mut view = HttpView::new("fuzz", 9, "127.0.0.1:1", SNAPLEN, Arc::default(), 1);
    let mut out = Vec::new();
    let now = Instant::now();
    let mut rest = data;
    while let [who, len, tail @ ..] = rest {
        let n = (*len as usize).min(tail.len());
        let (bytes, next) = tail.split_at(n);
        rest = next;
        let flow = if who & 1 == 0 { Flow::Up } else { Flow::Down };
        match (who >> 1) % 4 {
            0 | 1 => view.feed(flow, bytes, now, &mut out),
            2 => {
                let _ = view.at_boundary(flow);
                view.feed_page(flow, bytes, now, &mut out);
            }
            _ => view.fin(flow, now, &mut out),
        }
        let _ = view.takes_messages();
    }
    view.finish(now, &mut out);

    let (mut last_id, mut last_seq, mut notices) = (0, 0, 0);
    for e in &out {
        match e {
            EventKind::RelayHttp { exchange: x, .. } => {
                assert!(x.id > last_id, "exchange ids grow: {out:?}");
                assert!(x.seq_on_conn > last_seq, "told in request order: {out:?}");
                (last_id, last_seq) = (x.id, x.seq_on_conn);
                assert_eq!(x.conn, 9);
                for (body, size) in [(&x.body, x.body_size), (&x.resp_body, x.resp_size)] {
                    let kept = body.bytes().len() as u64;
                    assert!(kept <= SNAPLEN as u64 && kept <= size, "{x:?}");
                    assert_eq!(kept + body.cut, size, "what is kept and cut is the body");
                }
            }
            EventKind::RelayWsFrame { payload, size, .. } => {
                let kept = payload.bytes().len() as u64;
                assert!(kept <= SNAPLEN as u64 && kept <= *size);
            }
            EventKind::RelayNotice { .. } => notices += 1,
            _ => {}
        }
    }
    assert!(notices <= 3, "{out:?}");
});
