//! `tcp-ingest`: one sender writing 256 KiB chunks into a TCP port as fast as it can for
//! `--secs`, then closing its side. Reports the bytes written and MB/s; the suite compares
//! the bytes with the server's own counter.

use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::util::result_line;

const CHUNK: usize = 256 * 1024;

/// `tcp-ingest`'s flags.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The TCP service to write into.
    #[arg(long, value_name = "ADDR")]
    tcp: SocketAddr,
    /// Seconds of writing.
    #[arg(long, value_name = "S", default_value_t = 3.0)]
    secs: f64,
}

pub(crate) fn main(args: Args) -> Result<(), String> {
    let Args { tcp: addr, secs } = args;
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let chunk: Vec<u8> = (0..CHUNK).map(|i| b'a' + (i % 26) as u8).collect();
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(secs);
    let mut sent: u64 = 0;
    while Instant::now() < until {
        stream
            .write_all(&chunk)
            .map_err(|e| format!("write after {sent} bytes: {e}"))?;
        sent += CHUNK as u64;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let _ = stream.shutdown(Shutdown::Write);
    // Give the server a moment to read the rest before the socket goes away.
    std::thread::sleep(Duration::from_millis(300));
    println!(
        "{}",
        result_line(&[
            ("bytes", sent.to_string()),
            ("secs", format!("{elapsed:.3}")),
            ("mb_per_s", format!("{:.1}", sent as f64 / elapsed / 1e6)),
        ])
    );
    Ok(())
}
