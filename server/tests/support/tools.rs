//! Programs a test starts (real upstreams, real clients): found on PATH, or the test says
//! it is skipped and passes; with `CI=true` (where `.ci/run` installs them) it fails.

use std::path::PathBuf;

/// `program`'s path on PATH, or `None` after a line saying the test is skipped.
pub(crate) fn find(program: &str, package: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(found) = std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
    {
        return Some(found);
    }
    let how = format!("apt-get install {package} (.ci/run does)");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{program} is missing: {how}");
    }
    eprintln!("SKIPPED: {program} is not installed; {how}");
    None
}

/// A loopback port that was free a moment ago, for a program that wants a port number.
pub(crate) fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("its address").port()
}

/// A loopback port that was free a moment ago for both TCP and UDP (a DNS server binds
/// both).
pub(crate) fn free_udp_and_tcp_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = tcp.local_addr().expect("its address").port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A TCP upstream on loopback that sends back what it reads, any number of connections; its
/// address.
pub(crate) async fn echo_upstream() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}
