//! Recorded events in the formats other tools read, written a page at a time so an export
//! of the whole history streams instead of being built in memory.
//!
//! - [`pcapng`]: TCP and UDP traffic for Wireshark and tshark.
//! - [`har`]: HTTP exchanges as HAR 1.2.
//!
//! JSON Lines needs no module: it is the stored JSON, one event a line.

pub mod har;
pub mod pcapng;
