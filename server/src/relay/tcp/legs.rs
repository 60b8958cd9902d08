//! Both directions of a relayed connection, until both legs have sent FIN, either one
//! fails, a fault cuts it, the page acts, or the proxy stops; and how it ended.

use super::*;

/// How a relayed connection ended.
pub(super) struct End {
    /// Why, for `RelayClose`.
    pub(super) reason: CloseReason,
    /// The leg it started from.
    pub(super) by: Option<Leg>,
    /// More words on why.
    pub(super) detail: Option<String>,
    /// Close the client leg with RST.
    pub(super) reset_client: bool,
    /// Close the upstream leg with RST.
    pub(super) reset_upstream: bool,
}

/// Runs both directions until both legs have sent FIN, either fails, or `ended` (`stop`
/// says whether the proxy stopped or only its upstream changed).
pub(super) async fn relay(
    relays: &Relays,
    proxy: &Proxy,
    events: &ConnEvents<'_>,
    [client, upstream]: [&TcpStream; 2],
    ended: &CancellationToken,
    stop: &CancellationToken,
) -> End {
    let conn = events.conn;
    let (to_client, to_upstream) = match &conn.inject {
        Some([c, u]) => (Some(c), Some(u)),
        None => (None, None),
    };
    let (c, p) = (&conn.figures, &proxy.figures);
    let up_read = [&c.client_in, &p.client_in];
    let up_written = [&c.upstream_out, &p.upstream_out];
    let down_read = [&c.upstream_in, &p.upstream_in];
    let down_written = [&c.client_out, &p.client_out];
    let snaplen = relays.settings.snaplen;
    let started_us = now_us();
    let seed = conn.id ^ started_us.rotate_left(17);
    let line = |flow| Stages::faults(fault_line(relays, proxy, conn, flow, seed));
    let mut up = Pump {
        flow: Flow::Up,
        tap: Tap::new(snaplen),
        stages: line(Flow::Up),
        read_counters: &up_read,
        write_counters: &up_written,
        events,
        inject: to_upstream,
        held: None,
    };
    let mut down = Pump {
        flow: Flow::Down,
        tap: Tap::new(snaplen),
        stages: line(Flow::Down),
        read_counters: &down_read,
        write_counters: &down_written,
        events,
        inject: to_client,
        held: None,
    };
    // `return` in here ends the block: the pumps are dropped after it.
    let end = async {
        let up_run = pump(&mut up, client, upstream);
        let down_run = pump(&mut down, upstream, client);
        tokio::pin!(up_run, down_run);
        let (mut up_done, mut down_done) = (false, false);
        let mut first_fin = None;
        // The leg the page sent a FIN toward, for the close's detail.
        let mut page_fin = None;
        // Bytes read either way so far, for the idle check.
        // Bytes read or written either way: a toxic still delivering what it held keeps
        // the pair from looking idle.
        let moved = || {
            c.client_in.load(Relaxed)
                + c.upstream_in.load(Relaxed)
                + c.client_out.load(Relaxed)
                + c.upstream_out.load(Relaxed)
        };
        // Once half-closed: when to look again, and what `moved` was at the last look.
        let mut idle_check: Option<(Instant, u64)> = None;
        loop {
            let idle_at = idle_check.map(|(at, _)| at);
            let (flow, ended) = tokio::select! {
                e = &mut up_run, if !up_done => (Flow::Up, e),
                e = &mut down_run, if !down_done => (Flow::Down, e),
                _ = conn.wake.notified() => {
                    let Some(req) = lock(&conn.request).take() else { continue };
                    if req.reset {
                        return reset_from_page(req.leg);
                    }
                    // FIN toward that leg: nothing more is relayed to it.
                    let socket = match req.leg {
                        Leg::Client => client,
                        Leg::Upstream => upstream,
                    };
                    let _ = SockRef::from(socket).shutdown(std::net::Shutdown::Write);
                    page_fin = Some(req.leg);
                    let flow = match req.leg {
                        Leg::Client => Flow::Down,
                        Leg::Upstream => Flow::Up,
                    };
                    (flow, PumpEnd::Fin)
                }
                _ = ended.cancelled() => return stopped(relays, stop),
                _ = sleep_until(idle_at.unwrap_or_else(Instant::now)), if idle_at.is_some() => {
                    let (idle, before) = (relays.settings.idle, idle_check.map(|(_, b)| b));
                    match (idle, before) {
                        (Some(idle), Some(b)) if moved() == b => return idle_timeout(idle),
                        (Some(idle), _) => idle_check = Some((Instant::now() + idle, moved())),
                        (None, _) => idle_check = None,
                    }
                    continue;
                }
            };
            match flow {
                Flow::Up => up_done = true,
                Flow::Down => down_done = true,
            }
            match ended {
                PumpEnd::Fin => {
                    if let (None, Some(idle)) = (first_fin, relays.settings.idle) {
                        idle_check = Some((Instant::now() + idle, moved()));
                    }
                    let first = *first_fin.get_or_insert(source(flow));
                    if up_done && down_done {
                        let second = match first {
                            Leg::Client => Leg::Upstream,
                            Leg::Upstream => Leg::Client,
                        };
                        return End {
                            reason: match page_fin {
                                Some(_) => CloseReason::ClosedFromPage,
                                None => CloseReason::Fin,
                            },
                            by: page_fin.or(Some(first)),
                            detail: Some(match page_fin {
                                Some(leg) => format!(
                                    "the page sent FIN toward the {}; both directions then ended",
                                    leg_name(leg)
                                ),
                                None => format!(
                                    "the {} sent FIN first, then the {}",
                                    leg_name(first),
                                    leg_name(second)
                                ),
                            }),
                            reset_client: false,
                            reset_upstream: false,
                        };
                    }
                }
                PumpEnd::ReadFailed(e) => return failed(source(flow), &e, "reading from"),
                PumpEnd::Cut { reset, why } => return cut(reset, why),
                PumpEnd::WriteFailed(e) => {
                    let to = match flow {
                        Flow::Up => Leg::Upstream,
                        Flow::Down => Leg::Client,
                    };
                    return failed(to, &e, "writing to");
                }
            }
        }
    }
    .await;
    // A pump closes its merge window when it returns itself; the one that did not (the
    // other leg failed, or the lab ended it) may still hold one: its data event comes
    // before the close, so that the data events add up to the close's byte counts.
    up.flush();
    down.flush();
    up.unsent();
    down.unsent();
    events.finish();
    end
}

/// The page reset `leg` (RST); the lab closes the other.
fn reset_from_page(leg: Leg) -> End {
    End {
        reason: CloseReason::ResetFromPage,
        by: Some(leg),
        detail: Some(format!(
            "the page reset the {} leg (RST); the lab closed the other",
            leg_name(leg)
        )),
        reset_client: leg == Leg::Client,
        reset_upstream: leg == Leg::Upstream,
    }
}

/// The leg `leg` failed with `e`: the other leg is reset in turn.
fn failed(leg: Leg, e: &io::Error, doing: &str) -> End {
    let reset = matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    );
    let other = match leg {
        Leg::Client => Leg::Upstream,
        Leg::Upstream => Leg::Client,
    };
    End {
        reason: if reset {
            CloseReason::Reset
        } else {
            CloseReason::Error
        },
        by: Some(leg),
        detail: Some(format!(
            "{doing} the {} failed ({e}); the lab reset the {} in turn",
            leg_name(leg),
            leg_name(other)
        )),
        reset_client: leg == Leg::Upstream,
        reset_upstream: leg == Leg::Client,
    }
}

/// A toxic ended the connection: both legs closed, or reset.
fn cut(reset: bool, why: String) -> End {
    End {
        reason: match reset {
            true => CloseReason::FaultReset,
            false => CloseReason::Fault,
        },
        by: None,
        detail: Some(format!(
            "{why}; the lab {} both legs",
            if reset { "reset (RST)" } else { "closed" }
        )),
        reset_client: reset,
        reset_upstream: reset,
    }
}

/// Half-closed, and no byte moved either way for `idle`: the lab closes both legs.
fn idle_timeout(idle: Duration) -> End {
    End {
        reason: CloseReason::IdleTimeout,
        by: None,
        detail: Some(format!(
            "half-closed, and nothing travelled either way for {} s (--proxy-idle-secs)",
            idle.as_secs()
        )),
        reset_client: false,
        reset_upstream: false,
    }
}

/// Ended by the lab: its shutdown, the proxy disabled or deleted (`stop` cancelled), or
/// its upstream changed.
pub(super) fn stopped(relays: &Relays, stop: &CancellationToken) -> End {
    let detail = match (relays.shutdown.is_cancelled(), stop.is_cancelled()) {
        (true, _) => "the lab is stopping",
        (false, true) => "the proxy was disabled or deleted",
        (false, false) => "the proxy's upstream changed: connections to the old one end",
    };
    End {
        reason: CloseReason::Shutdown,
        by: None,
        detail: Some(detail.to_owned()),
        reset_client: false,
        reset_upstream: false,
    }
}
