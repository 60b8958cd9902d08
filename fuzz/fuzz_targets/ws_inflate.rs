//! A permessage-deflate payload, inflated as the `/ws` socket inflates a client's
//! compressed message (`wirelab::ws::deflate::decompress`), under a size limit.
//!
//! The first two input bytes choose the limit. Checked beyond "no panic":
//! - what inflates never exceeds the limit;
//! - the limit is exact: inflated with a large limit to `v`, the same payload under a
//!   smaller limit gives `v` when `v` fits and "too big" when it does not; a payload too
//!   big for the large limit is too big for the smaller one too;
//! - what inflated, compressed again by the server's own deflater, inflates to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wirelab::ws::deflate::{compress, decompress};
use wirelab::ws::frame::WsError;

/// The large limit the small one is compared with (`--max-ws-message`'s default).
const LARGE: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((limit, payload)) = data.split_first_chunk::<2>() else {
        return;
    };
    let max = usize::from(u16::from_le_bytes(*limit));

    let small = decompress(payload, max);
    if let Ok(v) = &small {
        assert!(v.len() <= max, "{} bytes past the limit {max}", v.len());
    }
    match (decompress(payload, LARGE), &small) {
        (Ok(v), Ok(s)) => assert_eq!(&v, s),
        (Ok(v), Err(WsError::TooBig { limit })) => {
            assert_eq!(*limit, max);
            assert!(v.len() > max, "{} bytes refused as over {max}", v.len());
        }
        (Ok(v), Err(e)) => panic!("inflates to {} bytes with a large limit, but: {e}", v.len()),
        (Err(WsError::TooBig { .. }), Err(WsError::TooBig { .. })) => {}
        (Err(WsError::TooBig { .. }), other) => panic!("too big for {LARGE}, but {other:?}"),
        (Err(WsError::Protocol(_)), Err(WsError::Protocol(_) | WsError::TooBig { .. })) => {}
        (Err(e), other) => panic!("{e} with a large limit, but {other:?} under {max}"),
    }

    if let Ok(v) = small {
        assert_eq!(decompress(&compress(&v), max).expect("our own deflate"), v);
    }
});
