//! The upstream leg's connect: every address the upstream resolves to, in turn, within
//! one time limit, as Go's `Dial` (so toxiproxy) does.

use super::*;

/// How long the upstream's handshake may take (every address it resolves to, together).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The least time one of several addresses gets (Go's `Dial` gives each at least 2 s).
const CONNECT_SHARE_MIN: Duration = Duration::from_secs(2);

/// Connects to `upstream` (loopback only unless `allow_outbound`), trying each address it
/// resolves to in turn, or says why not.
pub(super) async fn connect(upstream: &str, allow_outbound: bool) -> Result<TcpStream, String> {
    let targets = crate::tcp::connect::resolve_all(upstream, allow_outbound).await?;
    connect_any(&targets).await
}

/// The first of `targets` that accepts, in order, all within [`CONNECT_TIMEOUT`], as Go's
/// `Dial` (so toxiproxy) does: each gets an even share of the time left (at least
/// [`CONNECT_SHARE_MIN`]), so one that never answers leaves time for the next. Otherwise
/// why each failed.
pub(super) async fn connect_any(targets: &[SocketAddr]) -> Result<TcpStream, String> {
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    let mut failed = Vec::new();
    for (i, &target) in targets.iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        let share = (left / (targets.len() - i) as u32)
            .max(CONNECT_SHARE_MIN)
            .min(left);
        failed.push(match timeout(share, TcpStream::connect(target)).await {
            Err(_) => format!(
                "the upstream {target} did not answer within {:.1} s",
                share.as_secs_f64()
            ),
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                format!("the upstream {target} refused the connection: nothing listens there")
            }
            Ok(Err(e)) => format!("connecting to the upstream {target} failed: {e}"),
            Ok(Ok(stream)) => return Ok(stream),
        });
    }
    Err(failed.join("; "))
}
