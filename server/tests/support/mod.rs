//! Helpers shared by the integration tests; each test file that needs them says `mod support;`.
//!
//! Every test file is its own crate and uses only some of these helpers, hence the allow.
#![allow(dead_code)]

pub(crate) mod browser;
pub(crate) mod events;
pub(crate) mod http_client;
pub(crate) mod lab;
pub(crate) mod page;
pub(crate) mod raw_http;
pub(crate) mod raw_ws;
pub(crate) mod tools;
pub(crate) mod toxics;
