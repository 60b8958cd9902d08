//! Side effects, kept out of the components (after yew's `async_clock` example): the
//! push channel, downloads and the clipboard, the history API, and the browser's clock.

pub mod browser;
pub mod history;
pub mod socket;
