//! The hook between the tap and the write: what the issues after relay mode plug in
//! (faults, breakpoints, TLS), so that they apply to every stream alike; its cost when
//! empty is one branch per read.
//!
//! Two kinds of stage: a [`Stage`] turns each chunk into another at once (or drops it);
//! a fault [`Line`] (a proxy's toxics, [`crate::faults`]) may hold bytes and end the
//! connection, so a pump with one asks it what is due ([`Stages::wait`],
//! [`Stages::release`]) and stops reading while it holds its most
//! ([`Stages::has_room`]).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, sleep_until};

use super::Flow;
use super::pump::{PumpEnd, write_all};
use crate::faults::{Due, Line};
use crate::hub::counters::add;

/// What a stage does with a chunk.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Hand on these bytes (the chunk, or what the stage made of it).
    Pass(Bytes),
    /// Hand on nothing: the chunk is dropped (and counted by the chain).
    Drop,
}

/// One step between the tap and the write.
pub trait Stage: Send {
    /// A short name, for logs and the page.
    fn name(&self) -> &'static str;
    /// Sees every chunk travelling `flow`, in order.
    fn on_chunk(&mut self, flow: Flow, chunk: Bytes) -> Verdict;
}

/// The stages of one direction of one stream, in order.
#[derive(Default)]
pub struct Stages {
    /// The chain; empty until a later issue installs a stage.
    chain: Vec<Box<dyn Stage>>,
    /// Bytes a stage dropped.
    dropped: AtomicU64,
    /// A proxy's toxics, after the chain (relayed TCP connections only).
    line: Option<Box<Line>>,
}

impl Stages {
    /// A chain of `chain`, run in order.
    pub fn new(chain: Vec<Box<dyn Stage>>) -> Stages {
        Stages {
            chain,
            dropped: AtomicU64::new(0),
            line: None,
        }
    }

    /// No stage but `line`, a proxy's toxics.
    pub fn faults(line: Line) -> Stages {
        Stages {
            line: Some(Box::new(line)),
            ..Stages::default()
        }
    }

    /// No stage has anything to do: callers may write the read buffer as it is, without
    /// making a chunk.
    pub fn is_empty(&self) -> bool {
        self.chain.is_empty() && self.line.as_ref().is_none_or(|l| l.quiet())
    }

    /// Whether there is a fault line, which the pump must wake for ([`Stages::wait`]).
    pub fn timed(&self) -> bool {
        self.line.is_some()
    }

    /// Whether a fault line holds some of the stream's bytes (not yet written).
    pub fn holding(&self) -> bool {
        self.line.as_ref().is_some_and(|l| l.head_at().is_some())
    }

    /// Whether another chunk may be read (a fault line holds less than its most).
    pub fn has_room(&self) -> bool {
        self.line.as_ref().is_none_or(|l| l.has_room())
    }

    /// Until the fault line has something due, or its toxics change; never without one.
    /// Cancel-safe.
    pub async fn wait(&mut self) {
        match &mut self.line {
            Some(line) => line.wait().await,
            None => std::future::pending().await,
        }
    }

    /// Runs `chunk` through the chain, then the fault line, and writes to `to` what is
    /// due, counting every byte written in `counted`. A stage ending the connection, or a
    /// failed write, is how the pump ends.
    pub async fn carry(
        &mut self,
        flow: Flow,
        chunk: Bytes,
        to: &TcpStream,
        counted: &[&AtomicU64],
    ) -> Result<(), PumpEnd> {
        let Some(chunk) = self.run(flow, chunk) else {
            return Ok(());
        };
        match &mut self.line {
            Some(line) => {
                line.push(Instant::now(), chunk);
                self.release(to, counted).await
            }
            None => written(write_all(to, &chunk).await, counted),
        }
    }

    /// Writes to `to` what the fault line has due now.
    pub async fn release(&mut self, to: &TcpStream, counted: &[&AtomicU64]) -> Result<(), PumpEnd> {
        let Some(line) = &mut self.line else {
            return Ok(());
        };
        loop {
            match line.next(Instant::now(), true) {
                Due::Write(bytes) => written(write_all(to, &bytes).await, counted)?,
                Due::Cut { reset, why } => return Err(PumpEnd::Cut { reset, why }),
                Due::Wait(_) | Due::Idle => return Ok(()),
            }
        }
    }

    /// The reading side sent FIN: what the fault line holds is written when due; a
    /// reset_peer ends the connection at its time (armed now if no chunk armed it);
    /// else the FIN waits out slow_close.
    pub async fn finish(&mut self, to: &TcpStream, counted: &[&AtomicU64]) -> Result<(), PumpEnd> {
        while let Some(at) = self.line.as_ref().and_then(|l| l.head_at()) {
            sleep_until(at).await;
            self.release(to, counted).await?;
        }
        let Some(line) = &mut self.line else {
            return Ok(());
        };
        if let Some(at) = line.fin(Instant::now()) {
            sleep_until(at).await;
            self.release(to, counted).await?;
        }
        if let Some(line) = &mut self.line {
            sleep(line.close_delay()).await;
        }
        Ok(())
    }

    /// Runs `chunk` through every stage; `None` when one dropped it.
    pub fn run(&mut self, flow: Flow, chunk: Bytes) -> Option<Bytes> {
        let mut chunk = chunk;
        for stage in &mut self.chain {
            let len = chunk.len() as u64;
            match stage.on_chunk(flow, chunk) {
                Verdict::Pass(next) => chunk = next,
                Verdict::Drop => {
                    self.dropped.fetch_add(len, Relaxed);
                    return None;
                }
            }
        }
        Some(chunk)
    }

    /// Bytes dropped by a stage so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }
}

/// Counts a write's bytes; its error is how the pump ends.
fn written(
    (n, result): (usize, std::io::Result<()>),
    counted: &[&AtomicU64],
) -> Result<(), PumpEnd> {
    for c in counted {
        add(c, n as u64);
    }
    result.map_err(PumpEnd::WriteFailed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upper-cases what goes up; drops what comes down.
    struct Shout;

    impl Stage for Shout {
        fn name(&self) -> &'static str {
            "shout"
        }
        fn on_chunk(&mut self, flow: Flow, chunk: Bytes) -> Verdict {
            match flow {
                Flow::Up => Verdict::Pass(chunk.to_ascii_uppercase().into()),
                Flow::Down => Verdict::Drop,
            }
        }
    }

    #[test]
    fn an_empty_chain_passes_everything_and_stages_run_in_order() {
        let mut none = Stages::default();
        assert!(none.is_empty());
        assert_eq!(
            none.run(Flow::Up, Bytes::from_static(b"hi")),
            Some(Bytes::from_static(b"hi"))
        );
        let mut chain = Stages::new(vec![Box::new(Shout)]);
        assert_eq!(chain.chain[0].name(), "shout");
        assert_eq!(
            chain.run(Flow::Up, Bytes::from_static(b"hi")),
            Some(Bytes::from_static(b"HI"))
        );
        assert_eq!(chain.run(Flow::Down, Bytes::from_static(b"abc")), None);
        assert_eq!(chain.dropped(), 3);
    }
}
