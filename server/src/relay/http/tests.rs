//! [`HttpView`] fed the bytes of real conversations, cut at every size.

use super::*;
use wirelab_shared::EventKind;

fn view() -> HttpView {
    HttpView::new("api", 7, "127.0.0.1:5000", 16, Arc::default(), 250)
}

/// Feeds the conversation `turns` (who sends what, in order), each cut into pieces of
/// `cut` bytes, then ends it; every event it made.
fn run(turns: &[(Flow, &[u8])], cut: usize) -> Vec<EventKind> {
    let mut v = view();
    let mut out = Vec::new();
    let now = Instant::now();
    for (flow, bytes) in turns {
        for piece in bytes.chunks(cut) {
            v.feed(*flow, piece, now, &mut out);
        }
    }
    v.finish(now, &mut out);
    out
}

fn exchanges(events: &[EventKind]) -> Vec<(&HttpExchange, Option<&str>)> {
    events
        .iter()
        .filter_map(|e| match e {
            EventKind::RelayHttp { exchange, note, .. } => Some((&**exchange, note.as_deref())),
            _ => None,
        })
        .collect()
}

const CUTS: [usize; 4] = [1, 3, 17, 4096];

#[test]
fn keep_alive_exchanges_are_told_in_order_with_both_heads_as_sent() {
    let turns: &[(Flow, &[u8])] = &[
        (
            Flow::Up,
            b"GET /a HTTP/1.1\r\nHost: x\r\nX-Case: KeEp\r\n\r\n",
        ),
        (
            Flow::Down,
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: nginx\r\n\r\nhello",
        ),
        (
            Flow::Up,
            b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        ),
        (Flow::Up, b"4\r\nabcd\r\n0\r\n\r\n"),
        (
            Flow::Down,
            b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n",
        ),
        (Flow::Down, b"3\r\nxyz\r\n0\r\n\r\n"),
    ];
    for cut in CUTS {
        let events = run(turns, cut);
        let xs = exchanges(&events);
        assert_eq!(xs.len(), 2, "cut {cut}: {events:?}");
        let (a, note) = xs[0];
        assert_eq!(
            (a.method.as_str(), a.target.as_str(), a.status),
            ("GET", "/a", 200)
        );
        assert_eq!(a.headers[1], ("X-Case".into(), "KeEp".into()));
        assert_eq!(a.resp_headers[1], ("Server".into(), "nginx".into()));
        assert_eq!((a.resp_size, a.resp_body.data.as_str()), (5, "hello"));
        assert_eq!((a.seq_on_conn, a.conn, note), (1, 7, None));
        let (b, _) = xs[1];
        assert_eq!(
            (b.method.as_str(), b.status, b.resp_reason.as_str()),
            ("POST", 201, "Created")
        );
        assert_eq!((b.body_size, b.body.data.as_str()), (4, "abcd"));
        assert_eq!((b.resp_size, b.resp_body.data.as_str()), (3, "xyz"));
        assert!(b.id > a.id);
        // The connect time comes with the first exchange only.
        let connects: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                EventKind::RelayHttp { connect_us, .. } => Some(*connect_us),
                _ => None,
            })
            .collect();
        assert_eq!(connects, [Some(250), None]);
    }
}

#[test]
fn pipelined_requests_head_and_100_continue_are_matched_to_their_responses() {
    let turns: &[(Flow, &[u8])] = &[
        (
            Flow::Up,
            b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /g HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        (Flow::Down, b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"),
        (Flow::Down, b"HTTP/1.1 204 No Content\r\n\r\n"),
        (
            Flow::Up,
            b"PUT /u HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
        ),
        (Flow::Down, b"HTTP/1.1 100 Continue\r\n\r\n"),
        (Flow::Up, b"abc"),
        (
            Flow::Down,
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ),
    ];
    for cut in CUTS {
        let events = run(turns, cut);
        let xs = exchanges(&events);
        let got: Vec<_> = xs
            .iter()
            .map(|(x, _)| (x.method.as_str(), x.status))
            .collect();
        assert_eq!(
            got,
            [("HEAD", 200), ("GET", 204), ("PUT", 200)],
            "cut {cut}"
        );
        assert_eq!(xs[0].0.resp_size, 0, "a response to HEAD has no body");
        assert_eq!(xs[2].1, Some("interim responses first: 100"));
        assert_eq!(
            (xs[2].0.body_size, xs[2].0.resp_body.data.as_str()),
            (3, "ok")
        );
    }
}

#[test]
fn an_upgrade_to_websocket_turns_both_ways_into_frames() {
    let masked_hi = [0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2];
    let close = [0x88, 0x02, 0x03, 0xe8];
    let turns: &[(Flow, &[u8])] = &[
        (
            Flow::Up,
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        ),
        (
            Flow::Down,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x03yo!",
        ),
        (Flow::Up, &masked_hi),
        (Flow::Down, &close),
    ];
    for cut in CUTS {
        let events = run(turns, cut);
        assert_eq!(exchanges(&events)[0].0.status, 101, "cut {cut}");
        let frames: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                EventKind::RelayWsFrame {
                    from,
                    opcode,
                    payload,
                    close_code,
                    ..
                } => Some((*from, *opcode, payload.data.clone(), *close_code)),
                _ => None,
            })
            .collect();
        assert_eq!(
            frames,
            [
                (Leg::Upstream, 1, "yo!".into(), None),
                (Leg::Client, 1, "hi".into(), None),
                (Leg::Upstream, 8, "A+g=".into(), Some(1000)),
            ]
        );
    }
}

#[test]
fn what_is_not_http_is_said_once_and_the_rest_not_read() {
    let turns: &[(Flow, &[u8])] = &[
        (Flow::Up, b"\x16\x03\x01\x02\x00 binary garbage\r\n\r\n"),
        (Flow::Up, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        (Flow::Down, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ];
    let events = run(turns, 4096);
    let notices: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            EventKind::RelayNotice { from, detail, .. } => Some((*from, detail.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(notices.len(), 1, "{events:?}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, EventKind::RelayHttp { .. })),
        "the upstream's answer is not matched to anything: {events:?}"
    );
    assert_eq!(notices[0].0, Leg::Client);
    assert!(
        notices[0].1.contains("relayed as they are"),
        "{}",
        notices[0].1
    );
}

#[test]
fn a_connection_that_ends_mid_exchange_still_tells_it() {
    let turns: &[(Flow, &[u8])] = &[
        (Flow::Up, b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"),
        (
            Flow::Down,
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhal",
        ),
        (Flow::Up, b"GET /never HTTP/1.1\r\nHost: x\r\n\r\n"),
    ];
    let events = run(turns, 4096);
    let xs = exchanges(&events);
    assert_eq!(xs.len(), 2);
    assert_eq!((xs[0].0.status, xs[0].0.resp_size), (200, 3));
    assert!(
        xs[0]
            .1
            .is_some_and(|n| n.contains("before the response's body"))
    );
    assert_eq!(xs[1].0.status, 0);
    assert!(xs[1].1.is_some_and(|n| n.contains("before a response")));

    // A body read until the close ends with it.
    let turns: &[(Flow, &[u8])] = &[
        (Flow::Up, b"GET / HTTP/1.0\r\n\r\n"),
        (Flow::Down, b"HTTP/1.0 200 OK\r\n\r\nall of it"),
    ];
    let events = run(turns, 3);
    let xs = exchanges(&events);
    assert_eq!((xs[0].0.resp_size, xs[0].1), (9, None));
}
