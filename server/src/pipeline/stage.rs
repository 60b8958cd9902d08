//! The hook between the tap and the write: what the issues after relay mode plug in
//! (faults, breakpoints, TLS). No stage exists yet; the chain is there so that they
//! apply to every stream alike, and its cost when empty is one branch per read.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use bytes::Bytes;

use super::Flow;

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
}

impl Stages {
    /// A chain of `chain`, run in order.
    pub fn new(chain: Vec<Box<dyn Stage>>) -> Stages {
        Stages {
            chain,
            dropped: AtomicU64::new(0),
        }
    }

    /// No stage: callers may write the read buffer as it is, without making a chunk.
    pub fn is_empty(&self) -> bool {
        self.chain.is_empty()
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
