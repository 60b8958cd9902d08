//! permessage-deflate (RFC 7692): compressed messages, agreed at the upgrade.
//!
//! Both sides agree to keep no context between messages (`server_no_context_takeover`,
//! `client_no_context_takeover`), so:
//! - a hub frame is compressed once and the same bytes go to every client that takes
//!   them ([`Frame::deflated_for`](crate::hub::Frame::deflated_for)); with a shared
//!   context each client would need its own compression of it;
//! - a client costs no memory for compression between messages: the compressor and the
//!   decompressor are per thread, reset for each message.
//!
//! The WebSocket service ([`crate::wsservice`]) uses the same code; it also honours an
//! offer that asks the server for a smaller window (`server_max_window_bits`, 9 to 15),
//! compressing its own messages with that window ([`negotiate`], [`compress_window`]).
//! `/ws` declines such an offer: it shares one compression of a frame among all its
//! clients, made with 15 bits.
//!
//! When compressing pays ([`Policy`]): on loopback, bytes are cheap and deflating costs
//! the lab's CPU, so a lone local dashboard gets plain frames; a frame shared by many
//! clients is compressed once for all of them (each copy the kernel makes is then about
//! a sixth as long), and a client on another machine gets everything compressed.

use std::cell::RefCell;

use bytes::Bytes;
use clap::ValueEnum;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::ws::frame::WsError;

/// What the server answers to an offer it accepts.
pub const RESPONSE: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// Shared frames are compressed once at least this many clients that agreed to
/// permessage-deflate are connected (on loopback; a remote client always gets them
/// compressed).
pub const SHARED_FROM: usize = 8;

/// A client's own messages (hello, snapshot, replies) shorter than this go uncompressed.
pub const OWN_FROM: usize = 512;

/// Longer messages are compressed on a blocking thread, not on the runtime's worker (a
/// MiB takes a few milliseconds).
pub const INLINE_UP_TO: usize = 256 * 1024;

/// The four bytes a sync flush ends with, which a sender leaves out (RFC 7692 7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// `--ws-compress`: when the lab compresses WebSocket messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Policy {
    /// Never: permessage-deflate is not agreed.
    Off,
    /// Where it pays: frames shared by many clients, and everything to clients that are
    /// not on loopback.
    Auto,
    /// Every message of 512 bytes or more, to every client that agreed.
    Always,
}

impl Policy {
    /// Whether a message goes compressed to a client: only if it `agreed`; then always
    /// under `always`, never under `off`, and under `auto` when the client is not on
    /// `loopback` or the message is a frame `shared` widely enough (or compressed already)
    /// that compressing it once pays.
    pub fn compresses(self, agreed: bool, loopback: bool, shared: bool) -> bool {
        agreed
            && match self {
                Policy::Off => false,
                Policy::Auto => !loopback || shared,
                Policy::Always => true,
            }
    }
}

/// Whether `offers` (the request's `Sec-WebSocket-Extensions` values) include a
/// permessage-deflate `/ws` can accept: one with no parameter it does not know, and no
/// `server_max_window_bits` below 15 (its shared compressions use 15).
pub fn accepts<'a>(offers: impl IntoIterator<Item = &'a str>) -> bool {
    negotiate(offers, false).is_some()
}

/// What was agreed to: the window the server compresses with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreed {
    /// The `server_max_window_bits` the client asked for (9 to 15), if it asked.
    pub server_max_window_bits: Option<u8>,
}

impl Agreed {
    /// The window bits the server's compressor uses.
    pub fn window_bits(&self) -> u8 {
        self.server_max_window_bits.unwrap_or(15)
    }

    /// The `Sec-WebSocket-Extensions` answer: [`RESPONSE`], and the window it keeps to
    /// when the client asked for one.
    pub fn response(&self) -> String {
        match self.server_max_window_bits {
            Some(bits) => format!("{RESPONSE}; server_max_window_bits={bits}"),
            None => RESPONSE.to_owned(),
        }
    }
}

/// The first permessage-deflate offer (in the client's order) that can be honoured: no
/// parameter unknown or repeated, and a `server_max_window_bits` of 15, or of 9 to 15
/// when `smaller_windows` (the compressor then keeps to it; zlib's smallest raw window is
/// 9 bits, so an offer of 8 is declined).
pub fn negotiate<'a>(
    offers: impl IntoIterator<Item = &'a str>,
    smaller_windows: bool,
) -> Option<Agreed> {
    offers
        .into_iter()
        .flat_map(|v| v.split(','))
        .find_map(|offer| {
            let mut params = offer.split(';').map(str::trim);
            if params.next() != Some("permessage-deflate") {
                return None;
            }
            let mut agreed = Agreed {
                server_max_window_bits: None,
            };
            let mut names: Vec<&str> = Vec::new();
            for param in params {
                let (name, value) = param.split_once('=').unwrap_or((param, ""));
                let (name, value) = (name.trim(), value.trim().trim_matches('"'));
                if names.contains(&name) {
                    return None;
                }
                names.push(name);
                match name {
                    "server_no_context_takeover" | "client_no_context_takeover"
                        if value.is_empty() => {}
                    // Any window the client compresses with is one our inflater (15 bits)
                    // reads.
                    "client_max_window_bits"
                        if value.is_empty() || window(value).is_some_and(|b| b >= 8) => {}
                    "server_max_window_bits" => {
                        let bits = window(value).filter(|&b| b >= 9)?;
                        if bits < 15 && !smaller_windows {
                            return None;
                        }
                        agreed.server_max_window_bits = Some(bits);
                    }
                    _ => return None,
                }
            }
            Some(agreed)
        })
}

/// A window size parameter's value: 8 to 15.
fn window(value: &str) -> Option<u8> {
    value.parse::<u8>().ok().filter(|b| (8..=15).contains(b))
}

thread_local! {
    static DEFLATE: RefCell<Compress> = RefCell::new(Compress::new(Compression::fast(), false));
    /// Compressors with a smaller window (9 to 14 bits), made when first needed.
    static SMALL: RefCell<[Option<Compress>; 6]> = RefCell::new(Default::default());
    static INFLATE: RefCell<Decompress> = RefCell::new(Decompress::new(false));
}

/// `message` compressed as one permessage-deflate payload (sent with RSV1 set).
pub fn compress(message: &[u8]) -> Bytes {
    DEFLATE.with_borrow_mut(|c| compress_with(c, message))
}

/// [`compress`] with a window of `bits` (9 to 15; others are taken as 15), for a client
/// that asked for a smaller one (`server_max_window_bits`).
pub fn compress_window(message: &[u8], bits: u8) -> Bytes {
    if !(9..15).contains(&bits) {
        return compress(message);
    }
    SMALL.with_borrow_mut(|small| {
        let c = small[usize::from(bits - 9)].get_or_insert_with(|| {
            Compress::new_with_window_bits(Compression::fast(), false, bits)
        });
        compress_with(c, message)
    })
}

fn compress_with(c: &mut Compress, message: &[u8]) -> Bytes {
    {
        c.reset();
        let mut out = Vec::with_capacity(message.len() / 4 + 64);
        let mut input = message;
        loop {
            let before = c.total_in();
            let status = c
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .expect("deflate cannot fail on a reset stream");
            input = &input[(c.total_in() - before) as usize..];
            // Done once all input is in and the flush left room to spare.
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
            debug_assert!(status == Status::Ok || status == Status::BufError);
            out.reserve(out.capacity().max(64));
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        Bytes::from(out)
    }
}

/// A client's compressed message, inflated; past `max` bytes it is refused as too big
/// (a small message may inflate to a huge one), and bytes that are not deflate are a
/// protocol error.
pub fn decompress(payload: &[u8], max: usize) -> Result<Vec<u8>, WsError> {
    INFLATE.with_borrow_mut(|d| {
        d.reset(false);
        let mut out = Vec::with_capacity((payload.len() * 4).max(64).min(max + 1));
        for mut input in [payload, &TAIL[..]] {
            loop {
                let (before, made) = (d.total_in(), out.len());
                let status = d
                    .decompress_vec(input, &mut out, FlushDecompress::Sync)
                    .map_err(|_| WsError::Protocol("a compressed message that is not deflate"))?;
                input = &input[(d.total_in() - before) as usize..];
                if out.len() > max {
                    return Err(WsError::TooBig { limit: max });
                }
                if status == Status::StreamEnd || (input.is_empty() && out.len() < out.capacity()) {
                    break;
                }
                if out.len() == out.capacity() {
                    out.reserve(out.capacity().min(max + 1 - out.len()).max(64));
                } else if d.total_in() == before && out.len() == made {
                    break; // no progress possible: the input is used up
                }
            }
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_compressed_inflates_to_itself() {
        let json =
            br#"{"type":"events","events":[{"seq":1,"kind":{"type":"udp_datagram"}}]}"#.repeat(500);
        let packed = compress(&json);
        assert!(
            packed.len() * 10 < json.len(),
            "{} of {}",
            packed.len(),
            json.len()
        );
        assert!(!packed.ends_with(&TAIL), "the flush's tail is left out");
        assert_eq!(decompress(&packed, json.len()).unwrap(), json);
        assert_eq!(decompress(&compress(b""), 10).unwrap(), b"");
        // Incompressible bytes make it through too.
        let noise: Vec<u8> = (0..70_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert_eq!(decompress(&compress(&noise), noise.len()).unwrap(), noise);
    }

    #[test]
    fn a_bomb_is_refused_at_the_limit_and_garbage_is_a_protocol_error() {
        let zeros = vec![0u8; 1 << 20];
        let bomb = compress(&zeros);
        assert!(bomb.len() < 20_000);
        assert!(matches!(
            decompress(&bomb, 64 * 1024),
            Err(WsError::TooBig { limit: 65536 })
        ));
        assert!(matches!(
            decompress(&[0xff, 0xff, 0xff, 0xff, 0x12], 1024),
            Err(WsError::Protocol(_))
        ));
    }

    #[test]
    fn any_bytes_inflate_or_fail_without_hanging() {
        let mut x = 0x9e37_79b9_u32;
        for len in 0..400 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            if let Ok(out) = decompress(&bytes, 4096) {
                assert!(out.len() <= 4096);
            }
        }
    }

    #[test]
    fn the_policy_compresses_only_for_clients_that_agreed_and_where_it_pays() {
        use Policy::*;
        for p in [Off, Auto, Always] {
            assert!(
                !p.compresses(false, false, true),
                "{p:?}: never without agreeing"
            );
        }
        assert!(!Off.compresses(true, false, true));
        assert!(Always.compresses(true, true, false));
        assert!(
            !Auto.compresses(true, true, false),
            "a lone local client: plain"
        );
        assert!(Auto.compresses(true, true, true), "a widely shared frame");
        assert!(Auto.compresses(true, false, false), "a client off loopback");
    }

    #[test]
    fn offers_are_accepted_only_with_parameters_it_can_honour() {
        // What Chromium and Firefox offer.
        assert!(accepts(["permessage-deflate; client_max_window_bits"]));
        assert!(accepts(["x-webkit-deflate-frame, permessage-deflate"]));
        assert!(accepts([
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=10"
        ]));
        assert!(!accepts(["permessage-deflate; server_max_window_bits=10"]));
        assert!(!accepts(["permessage-deflate; mystery"]));
        assert!(!accepts(["deflate-frame"]));
        assert!(!accepts([]));
        assert!(!accepts([
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover"
        ]));
    }

    #[test]
    fn the_service_honours_a_smaller_server_window_and_answers_with_it() {
        // Autobahn 13.7: three offers, the first asking for a 9-bit window.
        let offers = [
            "permessage-deflate; client_no_context_takeover; client_max_window_bits; \
             server_no_context_takeover; server_max_window_bits=9, \
             permessage-deflate; server_no_context_takeover, permessage-deflate",
        ];
        let agreed = negotiate(offers, true).unwrap();
        assert_eq!(agreed.window_bits(), 9);
        assert_eq!(
            agreed.response(),
            format!("{RESPONSE}; server_max_window_bits=9")
        );
        // /ws passes over it to the next offer it can honour.
        let plain = negotiate(offers, false).unwrap();
        assert_eq!(
            (plain.window_bits(), plain.response()),
            (15, RESPONSE.into())
        );
        assert_eq!(
            negotiate(["permessage-deflate; server_max_window_bits=8"], true),
            None
        );
        // What a 9-bit compressor makes inflates, and uses no distance past 512 bytes:
        // a repeat 1,000 bytes back is not found, so it compresses worse than with 15.
        let data: Vec<u8> = (0..1000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .cycle()
            .take(8000)
            .collect();
        let small = compress_window(&data, 9);
        let large = compress_window(&data, 15);
        assert_eq!(decompress(&small, data.len()).unwrap(), data);
        assert!(
            small.len() > 2 * large.len(),
            "{} vs {}",
            small.len(),
            large.len()
        );
    }
}
