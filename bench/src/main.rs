//! wirelab's benchmark tools. `cargo xtask bench` builds this and runs `wirelab-bench suite`,
//! which starts each server pinned to core 0 and each load generator (this same binary, one
//! of the other subcommands) pinned to core 1, and writes BENCHMARKS.md.
//!
//! # Layout
//! - [`fanout`]: `udp-fanout`: UDP datagrams in at a fixed rate, N WebSocket clients out.
//! - [`idle`]: `ws-idle`: N idle WebSocket clients, held open.
//! - [`ingest`]: `tcp-ingest`: one sender streaming into a TCP port.
//! - [`dash`]: `dash`: one dashboard-like client reading every frame, until stdin closes.
//! - [`suite`]: `suite`: runs everything and writes the report.
//!
//! Each load generator prints one `RESULT key=value ...` line that the suite reads.

mod dash;
mod fanout;
mod idle;
mod ingest;
mod suite;
mod util;

use std::process::ExitCode;

const USAGE: &str = "\
usage: wirelab-bench <tool> [--flag value ...]
  udp-fanout --udp ADDR --ws URL --clients N --rate PER_S --secs S [--settle S]
             [--server-pid PID]  (its CPU share during the flood goes in the result)
  ws-idle    --ws URL --clients N --hold S
  tcp-ingest --tcp ADDR --secs S
  dash       --ws URL            (reads every frame until stdin closes)
  suite      [--out BENCHMARKS.md] [--runs 3] [--quick] [--rt]
             [--only http,fanout,idle,tcp,dashboard] [--bin-dir DIR] [--root DIR]
             [--profile TEXT] [--dashboard-profile FILE]
";

/// The flags each tool reads; any other is refused before the tool starts (a mistyped or
/// unknown flag, `--help` included, must not start a suite that rewrites BENCHMARKS.md).
fn known_flags(tool: &str) -> &'static [&'static str] {
    match tool {
        "udp-fanout" => &[
            "udp",
            "ws",
            "clients",
            "rate",
            "secs",
            "settle",
            "server-pid",
        ],
        "ws-idle" => &["ws", "clients", "hold"],
        "tcp-ingest" => &["tcp", "secs"],
        "dash" => &["ws"],
        "suite" => &[
            "out",
            "runs",
            "quick",
            "rt",
            "only",
            "bin-dir",
            "root",
            "profile",
            "dashboard-profile",
        ],
        _ => &[],
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(tool) = args.next() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    if matches!(tool.as_str(), "-h" | "--help" | "help") {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let flags = match util::Flags::parse(args) {
        Ok(f) if f.has("help") => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(f) => f,
        Err(e) => {
            eprint!("wirelab-bench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Some(unknown) = flags.unknown(known_flags(&tool)) {
        eprint!("wirelab-bench {tool}: unknown flag --{unknown}\n{USAGE}");
        return ExitCode::from(2);
    }
    let result = match tool.as_str() {
        "udp-fanout" => fanout::main(&flags),
        "ws-idle" => idle::main(&flags),
        "tcp-ingest" => ingest::main(&flags),
        "dash" => dash::main(&flags),
        "suite" => suite::main(&flags),
        _ => Err(format!("unknown tool {tool}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wirelab-bench {tool}: {e}");
            ExitCode::FAILURE
        }
    }
}
