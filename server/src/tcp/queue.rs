//! One connection's outgoing queue, bounded in bytes rather than in messages.
//!
//! Every chunk waiting to be written holds owned permits from the queue's own
//! [`Semaphore`] (one per byte, as mini-redis holds one per connection); the permits go
//! back when the chunk has been written. A sender never waits: when a receiver's peer
//! stops reading and its queue is full, [`OutQueue::try_push`] says so at once and the
//! caller drops the chunk for that receiver (and counts it), so one slow reader can stall
//! neither the sender nor anybody else.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

/// Bytes waiting per connection at most.
pub(crate) const QUEUE_BYTES: usize = 256 * 1024;

/// A chunk waiting to be written.
#[derive(Debug)]
pub(crate) struct Outgoing {
    /// The bytes; relayed copies share one allocation.
    pub(crate) bytes: Bytes,
    /// Sent from the page (published as a `TcpData` event once written), rather than
    /// relayed (counted only).
    pub(crate) from_page: bool,
    /// Its share of the queue's byte budget, given back when the chunk is dropped.
    _budget: OwnedSemaphorePermit,
}

/// Why a chunk was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PushError {
    /// The queue holds its budget already: the peer is not reading.
    Full,
    /// The connection's loop has ended.
    Closed,
}

/// The sending side of one connection's queue.
#[derive(Debug)]
pub(crate) struct OutQueue {
    /// Chunks in order, to the connection's loop; bounded by `budget`, not by count.
    tx: mpsc::UnboundedSender<Outgoing>,
    /// One permit per byte that may wait.
    budget: Arc<Semaphore>,
    /// The budget's size: a chunk larger than this takes the whole budget.
    cap: usize,
}

impl OutQueue {
    /// A queue holding at most `cap` bytes, and the receiving end for the loop.
    pub(crate) fn new(cap: usize) -> (OutQueue, mpsc::UnboundedReceiver<Outgoing>) {
        let cap = cap.clamp(1, u32::MAX as usize);
        let (tx, rx) = mpsc::unbounded_channel();
        let queue = OutQueue {
            tx,
            budget: Arc::new(Semaphore::new(cap)),
            cap,
        };
        (queue, rx)
    }

    /// Queues `bytes` if the budget has room for them, without waiting.
    pub(crate) fn try_push(&self, bytes: Bytes, from_page: bool) -> Result<(), PushError> {
        if self.tx.is_closed() {
            return Err(PushError::Closed);
        }
        let need = bytes.len().min(self.cap) as u32;
        let permit = self
            .budget
            .clone()
            .try_acquire_many_owned(need)
            .map_err(|_| PushError::Full)?;
        self.tx
            .send(Outgoing {
                bytes,
                from_page,
                _budget: permit,
            })
            .map_err(|_| PushError::Closed)
    }

    /// Bytes that may still be queued.
    pub(crate) fn room(&self) -> usize {
        self.budget.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_in_bytes_and_comes_back_when_a_chunk_is_written() {
        let (q, mut rx) = OutQueue::new(10);
        assert_eq!(q.try_push(Bytes::from_static(b"123456"), false), Ok(()));
        assert_eq!(q.room(), 4);
        assert_eq!(
            q.try_push(Bytes::from_static(b"12345"), false),
            Err(PushError::Full)
        );
        assert_eq!(q.try_push(Bytes::from_static(b"1234"), true), Ok(()));
        assert_eq!(q.room(), 0);
        let first = rx.try_recv().unwrap();
        assert_eq!((&first.bytes[..], first.from_page), (&b"123456"[..], false));
        drop(first);
        assert_eq!(q.room(), 6);
        assert_eq!(q.try_push(Bytes::from_static(b"12345"), false), Ok(()));
        assert!(rx.try_recv().unwrap().from_page);
    }

    #[test]
    fn a_chunk_larger_than_the_budget_takes_all_of_it() {
        let (q, mut rx) = OutQueue::new(4);
        assert_eq!(q.try_push(Bytes::from(vec![0u8; 100]), true), Ok(()));
        assert_eq!(q.room(), 0);
        assert_eq!(
            q.try_push(Bytes::from_static(b"x"), true),
            Err(PushError::Full)
        );
        assert_eq!(rx.try_recv().unwrap().bytes.len(), 100);
    }

    #[test]
    fn a_closed_loop_refuses_chunks() {
        let (q, rx) = OutQueue::new(4);
        drop(rx);
        assert_eq!(
            q.try_push(Bytes::from_static(b"x"), false),
            Err(PushError::Closed)
        );
    }
}
