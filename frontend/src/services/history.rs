//! The server's recorded history (`GET /api/events`), for "load older" and for searching
//! the whole history. A server without the store answers 404; that is reported as
//! "not available", not as a failure.

use gloo_net::http::Request;
use wirelab_shared::Event;
use wirelab_shared::decode::Fields;
use wirelab_shared::json::{self, Error, FromJson, Value};

use crate::link::{percent_encode, with_token};

/// One page of history: `{"events":[...]}`.
#[derive(Debug, Default)]
pub struct Page {
    pub events: Vec<Event>,
}

impl FromJson for Page {
    fn from_json(value: Value<'_>) -> Result<Self, Error> {
        let mut f = Fields::of(value)?;
        let events = f.need("events");
        f.done().map(|()| Page { events })
    }
}

/// What to ask for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Query {
    pub since_seq: Option<u64>,
    pub until_seq: Option<u64>,
    pub protocol: Option<String>,
    pub peer: Option<String>,
    pub q: Option<String>,
    pub limit: u32,
}

impl Query {
    /// The request path, query string included.
    pub fn path(&self, token: Option<&str>) -> String {
        let mut parts = vec![format!("limit={}", self.limit.max(1))];
        if let Some(s) = self.since_seq {
            parts.push(format!("since_seq={s}"));
        }
        if let Some(s) = self.until_seq {
            parts.push(format!("until_seq={s}"));
        }
        for (k, v) in [
            ("protocol", &self.protocol),
            ("peer", &self.peer),
            ("q", &self.q),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                parts.push(format!("{k}={}", percent_encode(v)));
            }
        }
        with_token(&format!("/api/events?{}", parts.join("&")), token)
    }
}

/// Why history could not be had.
#[derive(Debug, PartialEq)]
pub enum HistoryError {
    /// The server has no history API (404): it runs without the recording store.
    Unavailable,
    Failed(String),
}

/// Fetches one page.
pub async fn fetch(query: &Query, token: Option<&str>) -> Result<Page, HistoryError> {
    let resp = Request::get(&query.path(token))
        .send()
        .await
        .map_err(|e| HistoryError::Failed(e.to_string()))?;
    let json = resp
        .headers()
        .get("content-type")
        .is_some_and(|t| t.contains("json"));
    match resp.status() {
        // A server without the API may answer every path with the page itself.
        200 if !json => Err(HistoryError::Unavailable),
        200 => {
            let text = resp
                .text()
                .await
                .map_err(|e| HistoryError::Failed(e.to_string()))?;
            json::from_str::<Page>(&text)
                .map_err(|e| HistoryError::Failed(format!("unreadable answer: {e}")))
        }
        404 | 405 | 501 => Err(HistoryError::Unavailable),
        s => Err(HistoryError::Failed(format!(
            "HTTP {s}: {}",
            resp.text().await.unwrap_or_default()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_paths() {
        let q = Query {
            until_seq: Some(99),
            q: Some("a b".into()),
            protocol: Some(String::new()),
            limit: 500,
            ..Default::default()
        };
        assert_eq!(q.path(None), "/api/events?limit=500&until_seq=99&q=a%20b");
        assert_eq!(
            Query::default().path(Some("t")),
            "/api/events?limit=1&token=t"
        );
    }
}
