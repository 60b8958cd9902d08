//! The one path every byte stream of the lab takes: read, tap, stages, write.
//!
//! ```text
//!   socket ──read──▶ tap ──▶ stages ──▶ write ──▶ socket
//!                    │        │
//!                    │        └─ faults (a proxy's toxics: a fault line per direction,
//!                    │           [`crate::faults`]), breakpoints, TLS (later issues);
//!                    │           with nothing to do, the read buffer goes straight to
//!                    │           the write
//!                    └─ counters (exact, every byte) and data events (reads merged
//!                       per 16 ms window, the first `--snaplen` bytes captured)
//! ```
//!
//! Bytes travel one of two ways, named as toxiproxy names its streams: [`Flow::Up`], from
//! the side that connected (a client of the TCP service, a client of a proxy) toward the
//! side it connected to (the lab's service, a proxy's upstream), and [`Flow::Down`], back.
//!
//! ## Layout
//! - [`merge`]: reads merged into data events, bounded under a flood.
//! - [`stage`]: [`Stage`], the hook later stages plug into, and [`Stages`], a chain.
//! - [`tap`]: [`Tap`], the counters and the merger of one direction of one stream.
//! - [`pump`]: [`pump()`], one direction of a relayed stream, with a bounded window:
//!   it reads at most [`pump::WINDOW`] bytes, and reads again only once they have been
//!   written, so a slow side stops the reads from the fast one (back-pressure) and memory
//!   stays flat whatever the transfer's size.
//! - [`splice`]: a flood's bytes moved socket to socket in the kernel (splice(2) through a
//!   pipe) once the window's capture is full and no stage runs; counted all the same.
//!
//! Who uses what: a proxy's connections run two [`pump()`]s (one per flow). The TCP
//! service is many-to-many (broadcast, echo), so it keeps its own loop and queues, and
//! runs its reads through a [`Tap`] and [`Flow::Up`]'s [`Stages`], and each chunk it is
//! about to write through [`Flow::Down`]'s: a stage applies to it as to a proxy.

pub mod merge;
pub mod pump;
pub mod splice;
pub mod stage;
pub mod tap;

pub use pump::{PumpEnd, pump};
pub use stage::{Stage, Stages, Verdict};
pub use tap::Tap;

/// Which way bytes travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// From the side that connected toward the side it connected to.
    Up,
    /// Back toward the side that connected.
    Down,
}
