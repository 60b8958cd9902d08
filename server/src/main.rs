//! The `wirelab` binary: parse flags, start the lab, stop on Ctrl-C or SIGTERM.

use clap::Parser;
use tokio_util::sync::CancellationToken;
use wirelab::Config;

/// mimalloc instead of glibc's malloc: every request, event and frame allocates, and glibc's
/// malloc/free took ~17% of the HTTP service's time (perf); mimalloc's thread-local free
/// lists make that a few percent.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "wirelab=info".into()),
        )
        .init();
    let config = Config::parse();
    let shutdown = CancellationToken::new();
    let lab = match wirelab::start(config, shutdown.clone()).await {
        Ok(lab) => lab,
        Err(e) => {
            eprintln!("wirelab: {e:#}");
            std::process::exit(1);
        }
    };
    println!("wirelab {} is running", env!("CARGO_PKG_VERSION"));
    println!("  dashboard  {}", lab.url());
    println!("  http       curl -v http://{}/", lab.http);
    println!("  tcp        nc {} {}", lab.tcp.ip(), lab.tcp.port());
    println!("  udp        nc -u {} {}", lab.udp.ip(), lab.udp.port());
    if let Some(addr) = lab.ws_service {
        println!("  websocket  websocat ws://{addr}/");
    }
    if let Some(addr) = lab.https {
        let ca = match &lab.app.tls.ca_file {
            Some(path) => path.display().to_string(),
            None => "ca.pem".into(),
        };
        println!(
            "  https      curl -v --cacert {ca} https://localhost:{}/",
            addr.port()
        );
        println!(
            "             (broken on purpose: https://expired.localhost:{}/ ...)",
            addr.port()
        );
    }
    if let Some(addr) = lab.tls_tcp {
        println!("  tls tcp    openssl s_client -connect {addr} -servername localhost");
    }
    if let Some(addr) = lab.toxiproxy_api {
        println!("  toxiproxy  curl http://{addr}/proxies   (toxiproxy's API: its clients work)");
    }
    for p in lab.app.relays.all() {
        let spec = p.spec();
        println!(
            "  proxy      {} {}://{} -> {}",
            spec.name,
            spec.protocol.as_str(),
            spec.listen,
            spec.upstream
        );
    }
    println!("Open {} in a browser. Ctrl-C stops the lab.", lab.url());
    shutdown_signal().await;
    tracing::info!("shutting down");
    shutdown.cancel();
    if tokio::time::timeout(std::time::Duration::from_secs(5), lab.wait())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not close within 5 s; exiting anyway");
    }
}

/// Ctrl-C or SIGTERM, whichever comes first.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
