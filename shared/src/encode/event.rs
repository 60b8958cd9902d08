//! [`write_event`]: an [`Event`] as JSON (see [`super`] for why by hand).

use super::{Obj, num, pool_spec};
use crate::event::{Event, EventKind, HttpExchange, TlsHandshake};
use crate::pool::PoolStatus;

/// Appends `ev` as JSON to `out`.
pub fn write_event(out: &mut Vec<u8>, ev: &Event) {
    out.extend_from_slice(b"{\"seq\":");
    num(out, ev.seq);
    out.extend_from_slice(b",\"ts_us\":");
    num(out, ev.ts_us);
    out.extend_from_slice(b",\"kind\":");
    write_kind(&mut Obj::tagged(out, ev.kind.tag()), &ev.kind);
    out.push(b'}');
}

/// `ev` as a JSON string.
pub fn event_json(ev: &Event) -> String {
    let mut out = Vec::with_capacity(256);
    write_event(&mut out, ev);
    // Only whole strings and ASCII were written.
    String::from_utf8(out).unwrap_or_default()
}

impl EventKind {
    /// The event's `type` tag, as serde writes it (`rename_all = "snake_case"`).
    pub fn tag(&self) -> &'static str {
        match self {
            EventKind::TcpOpen { .. } => "tcp_open",
            EventKind::TcpData { .. } => "tcp_data",
            EventKind::TcpHalfClose { .. } => "tcp_half_close",
            EventKind::TcpClose { .. } => "tcp_close",
            EventKind::TcpRefused { .. } => "tcp_refused",
            EventKind::UdpDatagram { .. } => "udp_datagram",
            EventKind::Http(_) => "http",
            EventKind::Tls(_) => "tls",
            EventKind::WsOpen { .. } => "ws_open",
            EventKind::WsClose { .. } => "ws_close",
            EventKind::WsMessage { .. } => "ws_message",
            EventKind::Chat { .. } => "chat",
            EventKind::WsServiceOpen { .. } => "ws_service_open",
            EventKind::WsServiceFrame { .. } => "ws_service_frame",
            EventKind::WsServiceClose { .. } => "ws_service_close",
            EventKind::PoolStarted { .. } => "pool_started",
            EventKind::PoolFinished { .. } => "pool_finished",
            EventKind::RelayOpen { .. } => "relay_open",
            EventKind::RelayData { .. } => "relay_data",
            EventKind::RelaySend { .. } => "relay_send",
            EventKind::RelayHalfClose { .. } => "relay_half_close",
            EventKind::RelayClose { .. } => "relay_close",
            EventKind::RelayRefused { .. } => "relay_refused",
            EventKind::RelayUdpOpen { .. } => "relay_udp_open",
            EventKind::RelayDatagram { .. } => "relay_datagram",
            EventKind::RelayUdpClose { .. } => "relay_udp_close",
            EventKind::RelayHttp { .. } => "relay_http",
            EventKind::RelayWsFrame { .. } => "relay_ws_frame",
            EventKind::RelayNotice { .. } => "relay_notice",
            EventKind::RelayFault { .. } => "relay_fault",
            EventKind::ToxicChange { .. } => "toxic_change",
            EventKind::Notice { .. } => "notice",
        }
    }
}

fn write_kind(o: &mut Obj<'_>, kind: &EventKind) {
    match kind {
        EventKind::TcpOpen {
            conn,
            peer,
            local,
            outbound,
            handshake_us,
        } => o
            .num(k!("conn"), *conn)
            .str(k!("peer"), peer)
            .str(k!("local"), local)
            .bool(k!("outbound"), *outbound)
            .opt_num(k!("handshake_us"), *handshake_us),
        EventKind::TcpData {
            conn,
            peer,
            dir,
            size,
            payload,
        } => o
            .num(k!("conn"), *conn)
            .str(k!("peer"), peer)
            .word(k!("dir"), *dir)
            .num(k!("size"), *size)
            .payload(k!("payload"), payload),
        EventKind::TcpHalfClose { conn, peer } => o.num(k!("conn"), *conn).str(k!("peer"), peer),
        EventKind::TcpClose {
            conn,
            peer,
            reason,
            detail,
            duration_us,
            bytes_in,
            bytes_out,
        } => o
            .num(k!("conn"), *conn)
            .str(k!("peer"), peer)
            .word(k!("reason"), *reason)
            .opt_str(k!("detail"), detail)
            .num(k!("duration_us"), *duration_us)
            .num(k!("bytes_in"), *bytes_in)
            .num(k!("bytes_out"), *bytes_out),
        EventKind::TcpRefused { peer, reason } => o.str(k!("peer"), peer).str(k!("reason"), reason),
        EventKind::UdpDatagram {
            peer,
            dir,
            size,
            payload,
        } => o
            .str(k!("peer"), peer)
            .word(k!("dir"), *dir)
            .num(k!("size"), *size)
            .payload(k!("payload"), payload),
        EventKind::Http(x) => http_fields(o, x),
        EventKind::Tls(x) => tls_fields(o, x),
        EventKind::WsOpen {
            client,
            peer,
            user_agent,
            dashboard,
        } => o
            .num(k!("client"), *client)
            .str(k!("peer"), peer)
            .str(k!("user_agent"), user_agent)
            .bool(k!("dashboard"), *dashboard),
        EventKind::WsClose {
            client,
            peer,
            code,
            reason,
            duration_us,
        } => o
            .num(k!("client"), *client)
            .str(k!("peer"), peer)
            .opt_num(k!("code"), *code)
            .str(k!("reason"), reason)
            .num(k!("duration_us"), *duration_us),
        EventKind::WsMessage {
            client,
            peer,
            size,
            payload,
        } => o
            .num(k!("client"), *client)
            .str(k!("peer"), peer)
            .num(k!("size"), *size)
            .payload(k!("payload"), payload),
        EventKind::Chat { from, text } => o.str(k!("from"), from).str(k!("text"), text),
        EventKind::WsServiceOpen {
            client,
            peer,
            path,
            user_agent,
            deflate,
        } => o
            .num(k!("client"), *client)
            .str(k!("peer"), peer)
            .str(k!("path"), path)
            .str(k!("user_agent"), user_agent)
            .opt_str(k!("deflate"), deflate),
        EventKind::WsServiceFrame {
            client,
            peer,
            dir,
            opcode,
            fin,
            rsv1,
            size,
            payload,
            close_code,
            close_reason,
            skipped,
        } => o
            .num(k!("client"), *client)
            .str(k!("peer"), peer)
            .word(k!("dir"), *dir)
            .num(k!("opcode"), u64::from(*opcode))
            .bool(k!("fin"), *fin)
            .bool(k!("rsv1"), *rsv1)
            .num(k!("size"), *size)
            .payload(k!("payload"), payload)
            .opt_num(k!("close_code"), *close_code)
            .opt_str(k!("close_reason"), close_reason)
            .nonzero(k!("skipped"), *skipped),
        EventKind::WsServiceClose {
            client,
            peer,
            code,
            reason,
            detail,
            duration_us,
            bytes_in,
            bytes_out,
            frames_not_shown,
        } => o
            .num(k!("client"), *client)
            .str(k!("peer"), peer)
            .opt_num(k!("code"), *code)
            .str(k!("reason"), reason)
            .str(k!("detail"), detail)
            .num(k!("duration_us"), *duration_us)
            .num(k!("bytes_in"), *bytes_in)
            .num(k!("bytes_out"), *bytes_out)
            .nonzero(k!("frames_not_shown"), *frames_not_shown),
        EventKind::PoolStarted { run, spec } => {
            o.num(k!("run"), *run);
            pool_spec(o.key(k!("spec")), spec);
            o
        }
        EventKind::PoolFinished { run, status } => {
            o.num(k!("run"), *run);
            pool_status(o.key(k!("status")), status);
            o
        }
        EventKind::RelayOpen {
            proxy,
            conn,
            peer,
            listen,
            upstream,
            upstream_local,
            connect_us,
        } => o
            .str(k!("proxy"), proxy)
            .num(k!("conn"), *conn)
            .str(k!("peer"), peer)
            .str(k!("listen"), listen)
            .str(k!("upstream"), upstream)
            .str(k!("upstream_local"), upstream_local)
            .num(k!("connect_us"), *connect_us),
        EventKind::RelayData {
            proxy,
            conn,
            peer,
            from,
            size,
            payload,
        } => o
            .str(k!("proxy"), proxy)
            .num(k!("conn"), *conn)
            .str(k!("peer"), peer)
            .word(k!("from"), *from)
            .num(k!("size"), *size)
            .payload(k!("payload"), payload),
        EventKind::RelaySend {
            proxy,
            conn,
            peer,
            to,
            size,
            payload,
        } => o
            .str(k!("proxy"), proxy)
            .num(k!("conn"), *conn)
            .str(k!("peer"), peer)
            .word(k!("to"), *to)
            .num(k!("size"), *size)
            .payload(k!("payload"), payload),
        EventKind::RelayHalfClose {
            proxy,
            conn,
            peer,
            from,
        } => o
            .str(k!("proxy"), proxy)
            .num(k!("conn"), *conn)
            .str(k!("peer"), peer)
            .word(k!("from"), *from),
        EventKind::RelayClose {
            proxy,
            conn,
            peer,
            reason,
            by,
            detail,
            duration_us,
            client_in,
            client_out,
            upstream_in,
            upstream_out,
        } => {
            o.str(k!("proxy"), proxy)
                .num(k!("conn"), *conn)
                .str(k!("peer"), peer)
                .word(k!("reason"), *reason);
            if let Some(by) = by {
                o.word(k!("by"), *by);
            }
            o.opt_str(k!("detail"), detail)
                .num(k!("duration_us"), *duration_us)
                .num(k!("client_in"), *client_in)
                .num(k!("client_out"), *client_out)
                .num(k!("upstream_in"), *upstream_in)
                .num(k!("upstream_out"), *upstream_out)
        }
        EventKind::RelayRefused {
            proxy,
            peer,
            reason,
        } => o
            .str(k!("proxy"), proxy)
            .str(k!("peer"), peer)
            .str(k!("reason"), reason),
        EventKind::RelayUdpOpen {
            proxy,
            session,
            peer,
            listen,
            upstream,
            upstream_local,
        } => o
            .str(k!("proxy"), proxy)
            .num(k!("session"), *session)
            .str(k!("peer"), peer)
            .str(k!("listen"), listen)
            .str(k!("upstream"), upstream)
            .str(k!("upstream_local"), upstream_local),
        EventKind::RelayDatagram {
            proxy,
            session,
            peer,
            from,
            size,
            payload,
        } => o
            .str(k!("proxy"), proxy)
            .num(k!("session"), *session)
            .str(k!("peer"), peer)
            .word(k!("from"), *from)
            .num(k!("size"), *size)
            .payload(k!("payload"), payload),
        EventKind::RelayUdpClose {
            proxy,
            session,
            peer,
            reason,
            duration_us,
            client_in,
            client_out,
            upstream_in,
            upstream_out,
        } => o
            .str(k!("proxy"), proxy)
            .num(k!("session"), *session)
            .str(k!("peer"), peer)
            .str(k!("reason"), reason)
            .num(k!("duration_us"), *duration_us)
            .num(k!("client_in"), *client_in)
            .num(k!("client_out"), *client_out)
            .num(k!("upstream_in"), *upstream_in)
            .num(k!("upstream_out"), *upstream_out),
        EventKind::RelayHttp {
            proxy,
            exchange,
            connect_us,
            note,
        } => {
            o.str(k!("proxy"), proxy);
            let mut x = Obj::new(o.key(k!("exchange")));
            http_fields(&mut x, exchange).end();
            o.opt_num(k!("connect_us"), *connect_us)
                .opt_str(k!("note"), note)
        }
        EventKind::RelayWsFrame {
            proxy,
            conn,
            peer,
            from,
            opcode,
            fin,
            rsv1,
            size,
            payload,
            close_code,
            close_reason,
            skipped,
        } => o
            .str(k!("proxy"), proxy)
            .num(k!("conn"), *conn)
            .str(k!("peer"), peer)
            .word(k!("from"), *from)
            .num(k!("opcode"), u64::from(*opcode))
            .bool(k!("fin"), *fin)
            .bool(k!("rsv1"), *rsv1)
            .num(k!("size"), *size)
            .payload(k!("payload"), payload)
            .opt_num(k!("close_code"), *close_code)
            .opt_str(k!("close_reason"), close_reason)
            .nonzero(k!("skipped"), *skipped),
        EventKind::RelayNotice {
            proxy,
            conn,
            peer,
            from,
            detail,
        } => o
            .str(k!("proxy"), proxy)
            .num(k!("conn"), *conn)
            .str(k!("peer"), peer)
            .word(k!("from"), *from)
            .str(k!("detail"), detail),
        EventKind::RelayFault {
            proxy,
            conn,
            peer,
            from,
            toxic,
            what,
        } => o
            .str(k!("proxy"), proxy)
            .num(k!("conn"), *conn)
            .str(k!("peer"), peer)
            .word(k!("from"), *from)
            .str(k!("toxic"), toxic)
            .str(k!("what"), what),
        EventKind::ToxicChange {
            proxy,
            toxic,
            action,
            detail,
        } => o
            .str(k!("proxy"), proxy)
            .str(k!("toxic"), toxic)
            .str(k!("action"), action)
            .str(k!("detail"), detail),
        EventKind::Notice { level, message } => {
            o.str(k!("level"), level).str(k!("message"), message)
        }
    }
    .end();
}

/// An exchange's members (after `type` for `http`, alone in `relay_http`'s `exchange`).
fn http_fields<'o, 'a>(o: &'o mut Obj<'a>, x: &HttpExchange) -> &'o mut Obj<'a> {
    let HttpExchange {
        id,
        conn,
        seq_on_conn,
        peer,
        method,
        target,
        version,
        headers,
        body,
        body_size,
        status,
        resp_version,
        resp_reason,
        resp_headers,
        resp_body,
        resp_size,
        ttfb_us,
        total_us,
        replay_of,
        tls,
    } = x;
    o.num(k!("id"), *id)
        .num(k!("conn"), *conn)
        .num(k!("seq_on_conn"), *seq_on_conn)
        .str(k!("peer"), peer)
        .str(k!("method"), method)
        .str(k!("target"), target)
        .str(k!("version"), version)
        .pairs(k!("headers"), headers)
        .payload(k!("body"), body)
        .num(k!("body_size"), *body_size)
        .num(k!("status"), u64::from(*status))
        .str(k!("resp_version"), resp_version)
        .str(k!("resp_reason"), resp_reason)
        .pairs(k!("resp_headers"), resp_headers)
        .payload(k!("resp_body"), resp_body)
        .num(k!("resp_size"), *resp_size)
        .num(k!("ttfb_us"), *ttfb_us)
        .num(k!("total_us"), *total_us)
        .opt_num(k!("replay_of"), *replay_of);
    if *tls {
        o.bool(k!("tls"), true);
    }
    o
}

fn tls_fields<'o, 'a>(o: &'o mut Obj<'a>, x: &TlsHandshake) -> &'o mut Obj<'a> {
    let TlsHandshake {
        service,
        conn,
        peer,
        sni,
        alpn,
        versions,
        ciphers,
        groups,
        key_shares,
        sig_algs,
        ja4,
        version,
        cipher,
        alpn_chosen,
        cert,
        handshake_us,
        error,
    } = x;
    o.str(k!("service"), service)
        .num(k!("conn"), *conn)
        .str(k!("peer"), peer)
        .str(k!("sni"), sni)
        .strs(k!("alpn"), alpn)
        .strs(k!("versions"), versions)
        .strs(k!("ciphers"), ciphers)
        .strs(k!("groups"), groups)
        .strs(k!("key_shares"), key_shares)
        .strs(k!("sig_algs"), sig_algs)
        .str(k!("ja4"), ja4)
        .str(k!("version"), version)
        .str(k!("cipher"), cipher)
        .str(k!("alpn_chosen"), alpn_chosen)
        .str(k!("cert"), cert)
        .num(k!("handshake_us"), *handshake_us)
        .opt_str(k!("error"), error)
}

fn pool_status(out: &mut Vec<u8>, status: &PoolStatus) {
    let PoolStatus {
        run,
        state,
        spec,
        in_use,
        idle,
        waiting,
        opened,
        done,
        errors,
        p50_us,
        p99_us,
        elapsed_us,
        error,
    } = status;
    let mut o = Obj::new(out);
    o.num(k!("run"), *run).word(k!("state"), *state);
    pool_spec(o.key(k!("spec")), spec);
    o.num(k!("in_use"), u64::from(*in_use))
        .num(k!("idle"), u64::from(*idle))
        .num(k!("waiting"), u64::from(*waiting))
        .num(k!("opened"), *opened)
        .num(k!("done"), *done)
        .num(k!("errors"), *errors)
        .num(k!("p50_us"), *p50_us)
        .num(k!("p99_us"), *p99_us)
        .num(k!("elapsed_us"), *elapsed_us)
        .opt_str(k!("error"), error)
        .end();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::samples;
    use crate::event::{CloseReason, Direction, Leg};
    use crate::payload::Payload;
    use crate::pool::PoolState;

    fn same_as_serde(ev: &Event) {
        assert_eq!(event_json(ev), serde_json::to_string(ev).unwrap(), "{ev:?}");
    }

    #[test]
    fn every_kind_is_written_as_serde_writes_it() {
        let kinds = samples();
        let mut tags: Vec<_> = kinds.iter().map(EventKind::tag).collect();
        tags.sort_unstable();
        tags.dedup();
        assert_eq!(tags.len(), 32, "every kind has a sample");
        for (i, kind) in kinds.into_iter().enumerate() {
            let ev = Event {
                seq: i as u64 * 1_000_003,
                ts_us: 1_795_564_037_921_856 + i as u64,
                kind,
            };
            same_as_serde(&ev);
            // The tag is serde's.
            let json: serde_json::Value = serde_json::to_value(&ev).unwrap();
            assert_eq!(json["kind"]["type"], ev.kind.tag());
        }
    }

    #[test]
    fn every_escape_and_number_is_serdes() {
        let all_bytes: String = (0u8..=0x7f).map(char::from).collect();
        let texts = [
            String::new(),
            all_bytes,
            "é\u{1f600}\u{2028}\u{7f}\"\\/".into(),
            "a\u{0}".into(),
        ];
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            num(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
        for text in texts {
            let ev = Event {
                seq: u64::MAX,
                ts_us: 0,
                kind: EventKind::Chat {
                    from: text.clone(),
                    text: text.clone(),
                },
            };
            same_as_serde(&ev);
            let x = HttpExchange {
                method: text.clone(),
                headers: vec![(text.clone(), text.clone()); 2],
                body: Payload::capture(text.as_bytes(), 3),
                resp_body: Payload::capture(&[0xff, 0, 1], 64),
                replay_of: Some(7),
                ..Default::default()
            };
            same_as_serde(&Event {
                seq: 1,
                ts_us: 2,
                kind: EventKind::RelayHttp {
                    proxy: text.clone(),
                    exchange: Box::new(x.clone()),
                    connect_us: Some(0),
                    note: Some(text),
                },
            });
            same_as_serde(&Event {
                seq: 1,
                ts_us: 2,
                kind: EventKind::Http(Box::new(x)),
            });
        }
    }

    #[test]
    fn fields_left_out_by_serde_are_left_out() {
        let p = Payload::capture(b"x", 64);
        for kind in [
            EventKind::RelayClose {
                proxy: "p".into(),
                conn: 1,
                peer: "q".into(),
                reason: CloseReason::FaultReset,
                by: Some(Leg::Upstream),
                detail: Some("d".into()),
                duration_us: 1,
                client_in: 2,
                client_out: 3,
                upstream_in: 4,
                upstream_out: 5,
            },
            EventKind::WsServiceFrame {
                client: 1,
                peer: "q".into(),
                dir: Direction::Out,
                opcode: 8,
                fin: true,
                rsv1: true,
                size: 2,
                payload: p.clone(),
                close_code: Some(1000),
                close_reason: Some(String::new()),
                skipped: 3,
            },
            EventKind::WsServiceClose {
                client: 1,
                peer: "q".into(),
                code: None,
                reason: String::new(),
                detail: String::new(),
                duration_us: 0,
                bytes_in: 0,
                bytes_out: 0,
                frames_not_shown: 9,
            },
            EventKind::PoolFinished {
                run: 3,
                status: PoolStatus {
                    error: Some("e".into()),
                    state: PoolState::Failed,
                    ..Default::default()
                },
            },
            EventKind::TcpOpen {
                conn: 1,
                peer: "q".into(),
                local: "l".into(),
                outbound: true,
                handshake_us: Some(17),
            },
        ] {
            same_as_serde(&Event {
                seq: 5,
                ts_us: 6,
                kind,
            });
        }
    }

    /// A Hello World exchange as `wrk` makes them.
    fn hello(seq: u64) -> Event {
        Event {
            seq,
            ts_us: 1_795_555_083_123_456 + seq,
            kind: EventKind::Http(Box::new(HttpExchange {
                id: seq,
                conn: 17,
                seq_on_conn: seq % 1000,
                peer: "127.0.0.1:53012".into(),
                method: "GET".into(),
                target: "/".into(),
                version: "HTTP/1.1".into(),
                headers: vec![("Host".into(), "127.0.0.1:1337".into())],
                status: 200,
                resp_version: "HTTP/1.1".into(),
                resp_reason: "OK".into(),
                resp_headers: vec![
                    ("content-type".into(), "text/plain".into()),
                    ("Date".into(), "Mon, 07 Dec 2026 06:00:00 GMT".into()),
                    ("Connection".into(), "keep-alive".into()),
                    ("Content-Length".into(), "12".into()),
                ],
                resp_body: Payload::capture(b"Hello World\n", 65536),
                resp_size: 12,
                ttfb_us: 13,
                total_us: 21,
                ..Default::default()
            })),
        }
    }

    /// The best of 5 rounds of `n` events written by `write`, in ns per event.
    fn ns_per_event(events: &[Event], n: usize, write: impl Fn(&mut Vec<u8>, &Event)) -> f64 {
        let mut out = Vec::with_capacity(events.len() * 600);
        let mut best = f64::MAX;
        for _ in 0..5 {
            let start = std::time::Instant::now();
            for i in 0..n {
                if i % events.len() == 0 {
                    out.clear(); // a frame's worth at a time, as the hub writes them
                }
                write(&mut out, std::hint::black_box(&events[i % events.len()]));
            }
            std::hint::black_box(&out);
            best = best.min(start.elapsed().as_nanos() as f64 / n as f64);
        }
        best
    }

    #[test]
    #[ignore = "a measurement: run it in an optimized build (see the module's doc)"]
    fn writing_by_hand_is_faster_than_serde() {
        let http: Vec<Event> = (1..=256).map(hello).collect();
        // A TCP chunk as the relay and the TCP service make them by the thousand.
        let data: Vec<Event> = (1..=256)
            .map(|seq| Event {
                seq,
                ts_us: 1_795_555_083_123_456 + seq,
                kind: EventKind::TcpData {
                    conn: seq / 8,
                    peer: "127.0.0.1:53012".into(),
                    dir: crate::event::Direction::In,
                    size: 1024,
                    payload: Payload::capture(&[b'x'; 1024], 256),
                },
            })
            .collect();
        for (what, events) in [("HTTP exchange", &http), ("tcp_data", &data)] {
            same_as_serde(&events[0]);
            let n = 200_000;
            let hand = ns_per_event(events, n, write_event);
            let serde = ns_per_event(events, n, |out, ev| {
                serde_json::to_writer(out, ev).expect("events serialize")
            });
            println!("{what} event JSON: by hand {hand:.0} ns, serde_json {serde:.0} ns");
            assert!(hand < serde, "{what}: this module no longer pays its way");
        }
    }
}
