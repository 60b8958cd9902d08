//! The pause after failed `accept` calls (out of file descriptors, say), and the one
//! accept step the TCP, HTTP and WebSocket services' loops share.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// The first pause after a failed `accept`; it doubles on each failure in a row...
const BACKOFF_MIN: Duration = Duration::from_millis(5);
/// ...up to this.
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The pause after each failed `accept` in a row: mini-redis's doubling back-off, but
/// capped rather than giving up, since a lab should outlive a burst of `EMFILE`.
#[derive(Debug)]
pub struct Backoff {
    /// The next pause.
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff { next: BACKOFF_MIN }
    }
}

impl Backoff {
    /// The pause to take now; the next one is twice as long, up to [`BACKOFF_MAX`].
    pub fn next_pause(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        pause
    }

    /// After a successful `accept`: start again from [`BACKOFF_MIN`].
    pub fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }

    /// The next connection on `listener`; a failed `accept` is logged (as `what`'s) and
    /// followed by the next pause. `None` once `shutdown` is cancelled, pause or not.
    pub async fn accept(
        &mut self,
        listener: &TcpListener,
        shutdown: &CancellationToken,
        what: &str,
    ) -> Option<(TcpStream, SocketAddr)> {
        loop {
            let accepted = tokio::select! {
                r = listener.accept() => r,
                _ = shutdown.cancelled() => return None,
            };
            match accepted {
                Ok(conn) => {
                    self.reset();
                    return Some(conn);
                }
                Err(e) => {
                    let pause = self.next_pause();
                    tracing::warn!("{what} accept failed: {e}; trying again in {pause:?}");
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = shutdown.cancelled() => return None,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_accepts_back_off_doubling_up_to_a_cap_and_success_resets() {
        let mut b = Backoff::default();
        let pauses: Vec<u64> = (0..10).map(|_| b.next_pause().as_millis() as u64).collect();
        assert_eq!(pauses, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        b.reset();
        assert_eq!(b.next_pause(), BACKOFF_MIN);
    }
}
