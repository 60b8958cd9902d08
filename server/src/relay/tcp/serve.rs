//! One client connection of a `tcp` or `http` proxy, from its upstream connect (or the
//! 502 an `http` client gets when there is none) to `RelayClose`.

use super::*;

/// Chunks from the page waiting per leg at most (each at most a `/ws` message).
const INJECT_CHUNKS: usize = 16;
/// Keepalive on both legs: the first probe after this long without a byte...
const KEEPALIVE_TIME: Duration = Duration::from_secs(30);
/// ...then one every this long (the TCP service's figures).
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// Removes the connection from its proxy's table when its task ends, even by a panic.
struct Registered<'a> {
    /// The proxy.
    proxy: &'a Proxy,
    /// The connection.
    id: u64,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        lock(&self.proxy.open).remove(&self.id);
    }
}

/// One client connection, from its upstream connect to `RelayClose`.
pub(super) async fn serve(
    relays: Arc<Relays>,
    proxy: Arc<Proxy>,
    client: TcpStream,
    peer: SocketAddr,
    _permit: OwnedSemaphorePermit,
    stop: CancellationToken,
) {
    let hub = &relays.hub;
    // `ended` ends this connection: the proxy stopped, or its upstream changed.
    let (upstream_text, from_flag, ended) = proxy.target();
    let allow = relays.settings.allow_outbound || from_flag;
    let started = Instant::now();
    let connected = tokio::select! {
        r = connect(&upstream_text, allow) => r,
        _ = ended.cancelled() => {
            let why = stopped(&relays, &stop).detail.unwrap_or_default();
            Err(format!("{why}, while the upstream connect was running"))
        }
    };
    let upstream = match connected {
        Ok(s) => s,
        Err(why) if proxy.protocol == ProxyProtocol::Http => {
            let told = format!("{why}; the client got 502 Bad Gateway");
            refuse(hub, &proxy, peer, told);
            let _ = http::bad_gateway::answer(&client, &proxy.name, &why, &ended).await;
            return;
        }
        Err(why) => {
            reset(&client);
            refuse(hub, &proxy, peer, format!("{why}; the client got a RST"));
            return;
        }
    };
    let connect_us = started.elapsed().as_micros() as u64;
    let (Ok(listen), Ok(upstream_local), Ok(upstream_addr)) = (
        client.local_addr(),
        upstream.local_addr(),
        upstream.peer_addr(),
    ) else {
        return; // a leg was reset before it could be shown
    };
    let keepalive = TcpKeepalive::new()
        .with_time(KEEPALIVE_TIME)
        .with_interval(KEEPALIVE_INTERVAL);
    for leg in [&client, &upstream] {
        let _ = leg.set_nodelay(true);
        let _ = SockRef::from(leg).set_tcp_keepalive(&keepalive);
    }
    let conn = Arc::new(RelayConn::new(
        relays.next_id(),
        peer,
        listen,
        upstream_local,
        upstream_addr,
        Some([Inject::new(INJECT_CHUNKS), Inject::new(INJECT_CHUNKS)]),
    ));
    lock(&proxy.open).insert(conn.id, conn.clone());
    let registered = Registered {
        proxy: &proxy,
        id: conn.id,
    };
    add(&proxy.conns, 1);
    add(&hub.counters.relay_conns, 1);
    hub.publish(EventKind::RelayOpen {
        proxy: proxy.name.clone(),
        conn: conn.id,
        peer: conn.peer_text.clone(),
        listen: show(listen),
        upstream: show(upstream_addr),
        upstream_local: show(upstream_local),
        connect_us,
    });
    let view = (proxy.protocol == ProxyProtocol::Http).then(|| {
        let ids = relays.hub.exchange_ids();
        let snaplen = relays.settings.snaplen;
        HttpView::new(
            &proxy.name,
            conn.id,
            &conn.peer_text,
            snaplen,
            ids,
            connect_us,
        )
    });
    let events = ConnEvents {
        hub,
        proxy: &proxy.name,
        conn: &conn,
        snaplen: relays.settings.snaplen,
        http: view.map(Mutex::new),
    };
    let legs = [&client, &upstream];
    let end = relay(&relays, &proxy, &events, legs, &ended, &stop).await;
    for queue in conn.inject.iter().flatten() {
        queue.close();
    }
    if end.reset_client {
        reset(&client);
    }
    if end.reset_upstream {
        reset(&upstream);
    }
    drop((client, upstream));
    drop(registered);
    let f = &conn.figures;
    hub.publish(EventKind::RelayClose {
        proxy: proxy.name.clone(),
        conn: conn.id,
        peer: conn.peer_text.clone(),
        reason: end.reason,
        by: end.by,
        detail: end.detail,
        duration_us: now_us().saturating_sub(conn.since_us),
        client_in: f.client_in.load(Relaxed),
        client_out: f.client_out.load(Relaxed),
        upstream_in: f.upstream_in.load(Relaxed),
        upstream_out: f.upstream_out.load(Relaxed),
    });
}
