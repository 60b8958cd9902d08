//! Faults: toxiproxy's toxics (its names, attributes and units, so its clients drive them
//! unchanged), on a `tcp` proxy's connections, live.
//!
//! ```text
//!   client ─▶ read ─▶ tap ─▶ stages ─▶ [Line: toxics of Flow::Up] ─▶ write ─▶ upstream
//!   client ◀─ write ◀─ [Line: toxics of Flow::Down] ◀─ stages ◀─ tap ◀─ read ◀─ upstream
//! ```
//!
//! A proxy keeps its toxics in a [`Toxics`]; each of its connections runs one [`Line`] per
//! direction in the pipeline's [`crate::pipeline::Stages`], which the pump asks what is
//! due. A change of the toxics (the API, the page) reaches the live connections too.
//!
//! ## Layout
//! - [`toxic`]: [`Toxic`], one toxic, read and written as toxiproxy's JSON, and
//!   [`ToxicError`], toxiproxy's errors.
//! - [`set`]: [`Toxics`], a proxy's toxics and the signal that wakes its connections;
//!   each toxic's counters.
//! - [`line`]: [`Line`], one direction of one connection through the toxics: which
//!   apply (toxicity drawn once), the pieces held and the instants they may be written,
//!   bounded ([`line::HELD_MAX`]), the instant the connection ends, the notes.
//! - `effect`: what each toxic does to a chunk's pieces, and the state it keeps per
//!   connection.

mod effect;
pub mod line;
pub mod set;
pub mod toxic;

pub use line::{Due, Line};
pub use set::{Entry, Toxics};
pub use toxic::{Kind, Stream, Toxic, ToxicError};
