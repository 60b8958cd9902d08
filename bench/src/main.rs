//! wirelab's benchmark tools. `cargo xtask bench` builds this and runs `wirelab-bench suite`,
//! which starts each server pinned to core 0 and each load generator (this same binary, one
//! of the other subcommands) pinned to core 1, and writes BENCHMARKS.md.
//!
//! # Layout
//! - [`fanout`]: `udp-fanout`: UDP datagrams in at a fixed rate, N WebSocket clients out.
//! - [`idle`]: `ws-idle`: N idle WebSocket clients, held open.
//! - [`ingest`]: `tcp-ingest`: one sender streaming into a TCP port.
//! - [`dash`]: `dash`: one dashboard-like client reading every frame, until stdin closes.
//! - [`http_rate`]: `http-rate`: GET requests at a fixed rate, latency from when each was due.
//! - [`relayload`]: `udp-echo` (closed-loop datagrams through a relay) and `tcp-hold`
//!   (idle connections through a relay), for figure 5's relay rows.
//! - [`faultload`]: `tcp-rtt` (timed round trips), `tcp-drain` (a bulk read) and
//!   `udp-count` (numbered datagrams counted back) through a lab proxy with toxics, for
//!   figure 7's fault accuracy.
//! - [`suite`]: `suite`: runs everything and writes the report.
//!
//! Each load generator prints one `RESULT key=value ...` line that the suite reads.

mod dash;
mod fanout;
mod faultload;
mod http_rate;
mod idle;
mod ingest;
mod relayload;
mod suite;
mod util;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// wirelab's benchmark tools: the load generators, and the suite that runs them.
#[derive(Parser)]
#[command(name = "wirelab-bench", arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    tool: Tool,
}

/// Each tool's flags are its own; any other is refused before it starts (a mistyped or
/// unknown flag must not start a suite that rewrites BENCHMARKS.md; `--help` prints the
/// usage and runs nothing).
#[derive(Subcommand)]
enum Tool {
    /// UDP datagrams in at a fixed rate, N WebSocket clients out.
    UdpFanout(fanout::Args),
    /// N idle WebSocket clients, held open.
    WsIdle(idle::Args),
    /// One sender streaming into a TCP port.
    TcpIngest(ingest::Args),
    /// One dashboard-like client reading every frame, until stdin closes.
    Dash(dash::Args),
    /// GET requests at a fixed rate over kept-alive connections.
    HttpRate(http_rate::Args),
    /// Closed-loop UDP datagrams through a relay to an echo upstream of its own.
    UdpEcho(relayload::UdpArgs),
    /// N idle TCP connections through a relay to a listener of its own, held.
    TcpHold(relayload::HoldArgs),
    /// Timed 64-byte round trips at a fixed rate through a relay to an echo of its own.
    TcpRtt(faultload::RttArgs),
    /// A bulk read through a relay from an upstream of its own that writes all it can.
    TcpDrain(faultload::DrainArgs),
    /// Numbered datagrams through a relay to an echo of its own: lost, duplicated, late.
    UdpCount(faultload::CountArgs),
    /// Runs everything (or --only some parts) and writes the report.
    // `cargo xtask bench` passes its own `--root` first: one given after it wins.
    #[command(args_override_self = true)]
    Suite(suite::Args),
}

fn main() -> ExitCode {
    let (name, result) = match Cli::parse().tool {
        Tool::UdpFanout(args) => ("udp-fanout", fanout::main(args)),
        Tool::WsIdle(args) => ("ws-idle", idle::main(args)),
        Tool::TcpIngest(args) => ("tcp-ingest", ingest::main(args)),
        Tool::Dash(args) => ("dash", dash::main(args)),
        Tool::HttpRate(args) => ("http-rate", http_rate::main(args)),
        Tool::UdpEcho(args) => ("udp-echo", relayload::udp_echo(args)),
        Tool::TcpHold(args) => ("tcp-hold", relayload::tcp_hold(args)),
        Tool::TcpRtt(args) => ("tcp-rtt", faultload::tcp_rtt(args)),
        Tool::TcpDrain(args) => ("tcp-drain", faultload::tcp_drain(args)),
        Tool::UdpCount(args) => ("udp-count", faultload::udp_count(args)),
        Tool::Suite(args) => ("suite", suite::main(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wirelab-bench {name}: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("wirelab-bench").chain(args.iter().copied()))
    }

    #[test]
    fn help_and_unknown_flags_run_nothing() {
        let help = parse(&["suite", "--help"])
            .err()
            .expect("help is not a run");
        assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp);
        assert!(help.to_string().contains("--only"), "{help}");
        for wrong in [
            &["suite", "--quik"][..],
            &["suite", "--only", "http,htp"],
            &["ws-idle", "--ws", "ws://x/ws", "--secs", "3"],
            &["udp-fanout", "--udp", "nowhere", "--ws", "ws://x/ws"],
            &["dash"],
            &["bench"],
        ] {
            assert!(parse(wrong).is_err(), "{wrong:?} is refused");
        }
    }

    #[test]
    fn the_flags_the_suite_passes_parse() {
        let suite = [
            "suite",
            "--root",
            "a",
            "--quick",
            "--only",
            "http,idle",
            "--root",
            "b",
        ];
        let Tool::Suite(_) = parse(&suite).unwrap().tool else {
            panic!("not the suite")
        };
        let args = [
            "udp-fanout",
            "--udp",
            "127.0.0.1:1",
            "--ws",
            "ws://127.0.0.1:2/ws",
            "--clients",
            "10",
            "--rate",
            "1000",
            "--secs",
            "1.5",
            "--settle",
            "0.5",
            "--server-pid",
            "42",
        ];
        assert!(matches!(parse(&args).unwrap().tool, Tool::UdpFanout(_)));
        let args = ["tcp-ingest", "--tcp", "127.0.0.1:1", "--secs", "3"];
        assert!(matches!(parse(&args).unwrap().tool, Tool::TcpIngest(_)));
    }
}
