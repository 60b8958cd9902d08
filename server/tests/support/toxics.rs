//! toxiproxy's HTTP API of a test lab, as the fault tests call it.

use super::lab::TestLab;
use super::raw_http::call;

/// One request to the lab's toxiproxy API: its status and body.
pub(crate) async fn api(lab: &TestLab, method: &str, path: &str, body: &str) -> (u16, String) {
    let addr = lab.toxiproxy_api.expect("the API runs");
    call(addr, method, path, body, "curl/8.0").await
}

/// Adds a toxic to proxy `proxy` (or a lab service: `@tcp`, `@http`, `@udp`).
pub(crate) async fn toxic(lab: &TestLab, proxy: &str, json: &str) {
    let (status, body) = api(lab, "POST", &format!("/proxies/{proxy}/toxics"), json).await;
    assert_eq!(status, 200, "{json}: {body}");
}

/// Removes toxic `toxic` of proxy `proxy`.
pub(crate) async fn remove(lab: &TestLab, proxy: &str, toxic: &str) {
    let path = format!("/proxies/{proxy}/toxics/{toxic}");
    let (status, body) = api(lab, "DELETE", &path, "").await;
    assert_eq!(status, 204, "{body}");
}
