//! Reading events back: one filter for the API, the exports and replay, and keyset paging
//! on `seq` (a page never skips or repeats an event, however many arrive meanwhile).

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params_from_iter};
use serde::Deserialize;
use wirelab_shared::{Event, Protocol};

/// Events per page when the client does not say.
pub const DEFAULT_LIMIT: usize = 500;
/// Events per page at most.
pub const MAX_LIMIT: usize = 5000;
/// A page stops early past this many bytes of JSON (5000 events of 64 KiB would be 320 MB).
pub const PAGE_BYTES: usize = 8 << 20;

/// Which events. Every field that is set narrows the choice.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Filter {
    /// Only events after this `seq` (the last one the client has).
    pub since_seq: Option<u64>,
    /// Only events up to and including this `seq`.
    pub until_seq: Option<u64>,
    /// Only events before this `seq` (for loading older history, newest first).
    pub before_seq: Option<u64>,
    /// Only these protocols: `tcp`, `udp`, `http`, `ws`, `pool`, `system`, comma-separated.
    pub protocol: Option<String>,
    /// Only this peer: `127.0.0.1:5000` exactly, or every port of a host (`127.0.0.1`,
    /// `::1`).
    pub peer: Option<String>,
    /// Only events whose text (peer, payload as text or hex, HTTP request line and
    /// headers, chat, notices) contains this, ignoring ASCII case.
    pub q: Option<String>,
}

/// Oldest first (`asc`, the default) or newest first (`desc`).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    #[default]
    Asc,
    Desc,
}

/// One page of events.
#[derive(Debug, Default)]
pub struct Page {
    /// Each event's JSON, in the order asked for.
    pub events: Vec<String>,
    /// The `seq` to continue from when there are more: pass it as `since_seq` (oldest
    /// first) or `before_seq` (newest first).
    pub next: Option<u64>,
}

impl Filter {
    /// The protocols asked for, or an error naming the unknown one.
    pub fn protocols(&self) -> Result<Vec<Protocol>, String> {
        let Some(list) = self.protocol.as_deref() else {
            return Ok(Vec::new());
        };
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                Protocol::parse(s).ok_or_else(|| {
                    format!("unknown protocol {s:?}: use tcp, udp, http, ws, pool or system")
                })
            })
            .collect()
    }

    /// The WHERE clause and its parameters.
    fn sql(&self) -> Result<(String, Vec<Value>), String> {
        let mut clauses: Vec<String> = Vec::new();
        let mut params: Vec<Value> = Vec::new();
        // Each `?` of a clause becomes the number of its value among all the parameters.
        let mut bind = |clause: &str, values: Vec<Value>, params: &mut Vec<Value>| {
            let mut numbered = String::with_capacity(clause.len() + 8);
            for c in clause.chars() {
                numbered.push(c);
                if c == '?' {
                    numbered.push_str(&(params.len() + 1).to_string());
                    params.push(Value::Null);
                }
            }
            let first = params.len() - values.len();
            for (i, v) in values.into_iter().enumerate() {
                params[first + i] = v;
            }
            clauses.push(numbered);
        };
        let int = |n: u64| Value::Integer(n.min(i64::MAX as u64) as i64);
        if let Some(s) = self.since_seq {
            bind("seq > ?", vec![int(s)], &mut params);
        }
        if let Some(u) = self.until_seq {
            bind("seq <= ?", vec![int(u)], &mut params);
        }
        if let Some(b) = self.before_seq {
            bind("seq < ?", vec![int(b)], &mut params);
        }
        let protocols = self.protocols()?;
        if !protocols.is_empty() {
            let marks = vec!["?"; protocols.len()].join(", ");
            let values = protocols
                .iter()
                .map(|p| Value::Text(p.as_str().into()))
                .collect();
            bind(&format!("protocol IN ({marks})"), values, &mut params);
        }
        if let Some(peer) = self
            .peer
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            if peer.parse::<std::net::SocketAddr>().is_ok() {
                bind("peer = ?", vec![Value::Text(peer.into())], &mut params);
            } else {
                let host = peer.trim_start_matches('[').trim_end_matches(']');
                let pattern = if host.contains(':') {
                    format!("[{}]:%", escape_like(host))
                } else {
                    format!("{}:%", escape_like(host))
                };
                bind(
                    r"(peer = ? OR peer LIKE ? ESCAPE '\')",
                    vec![Value::Text(peer.into()), Value::Text(pattern)],
                    &mut params,
                );
            }
        }
        if let Some(q) = self.q.as_deref().filter(|q| !q.is_empty()) {
            let pattern = format!("%{}%", escape_like(q));
            bind(
                r"text LIKE ? ESCAPE '\'",
                vec![Value::Text(pattern)],
                &mut params,
            );
        }
        let sql = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        Ok((sql, params))
    }
}

/// `s` with LIKE's wildcards taken literally.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// At most `limit` events matching `filter`, in `order`, and where to go on from.
pub fn page(
    conn: &Connection,
    filter: &Filter,
    order: Order,
    limit: usize,
) -> Result<Page, String> {
    let limit = limit.clamp(1, MAX_LIMIT);
    let (clause, params) = filter.sql()?;
    let dir = match order {
        Order::Asc => "ASC",
        Order::Desc => "DESC",
    };
    let sql = format!(
        "SELECT seq, json FROM events {clause} ORDER BY seq {dir} LIMIT {}",
        limit + 1
    );
    let run = || -> rusqlite::Result<Page> {
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params_from_iter(params.iter()))?;
        let mut page = Page::default();
        let (mut bytes, mut last) = (0usize, None);
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            if page.events.len() == limit || (bytes > PAGE_BYTES && !page.events.is_empty()) {
                page.next = last;
                break;
            }
            let json: String = row.get(1)?;
            bytes += json.len();
            page.events.push(json);
            last = Some(seq as u64);
        }
        Ok(page)
    };
    run().map_err(|e| format!("reading the store failed: {e}"))
}

/// The event `seq`, if the store has it.
pub fn get(conn: &Connection, seq: u64) -> rusqlite::Result<Option<Event>> {
    let json: Option<String> = conn
        .query_row(
            "SELECT json FROM events WHERE seq = ?1",
            [seq.min(i64::MAX as u64) as i64],
            |r| r.get(0),
        )
        .optional()?;
    Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::row::Row;
    use crate::store::schema;
    use wirelab_shared::{Direction, EventKind, Payload};

    fn udp(seq: u64, peer: &str, data: &str) -> Event {
        Event {
            seq,
            ts_us: seq * 10,
            kind: EventKind::UdpDatagram {
                peer: peer.into(),
                dir: Direction::In,
                size: data.len() as u64,
                payload: Payload::capture(data.as_bytes(), 64),
            },
        }
    }

    fn chat(seq: u64, text: &str) -> Event {
        Event {
            seq,
            ts_us: seq * 10,
            kind: EventKind::Chat {
                from: "ws#1".into(),
                text: text.into(),
            },
        }
    }

    fn db(events: &[Event]) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        schema::create(&conn).unwrap();
        for ev in events {
            let r = Row::of(ev);
            conn.execute(
                "INSERT INTO events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                rusqlite::params![
                    r.seq, r.ts_us, r.protocol, r.kind, r.peer, r.dir, r.size, r.text, r.json
                ],
            )
            .unwrap();
        }
        conn
    }

    fn seqs(page: &Page) -> Vec<u64> {
        page.events
            .iter()
            .map(|j| serde_json::from_str::<Event>(j).unwrap().seq)
            .collect()
    }

    fn sample() -> Connection {
        db(&[
            udp(1, "127.0.0.1:5000", "hello"),
            udp(2, "127.0.0.1:5001", "50% off_sale"),
            chat(3, "Hello chat"),
            udp(4, "[::1]:6000", "v6"),
            udp(5, "10.0.0.1:5000", "other host"),
        ])
    }

    fn run(conn: &Connection, f: Filter) -> Vec<u64> {
        seqs(&page(conn, &f, Order::Asc, 100).unwrap())
    }

    #[test]
    fn each_filter_narrows() {
        let conn = sample();
        assert_eq!(run(&conn, Filter::default()), [1, 2, 3, 4, 5]);
        let since = Filter {
            since_seq: Some(2),
            ..Default::default()
        };
        assert_eq!(run(&conn, since), [3, 4, 5]);
        let until = Filter {
            until_seq: Some(2),
            ..Default::default()
        };
        assert_eq!(run(&conn, until), [1, 2]);
        let before = Filter {
            before_seq: Some(3),
            ..Default::default()
        };
        assert_eq!(run(&conn, before), [1, 2]);
        let ws = Filter {
            protocol: Some("ws".into()),
            ..Default::default()
        };
        assert_eq!(run(&conn, ws), [3]);
        let both = Filter {
            protocol: Some("ws, udp".into()),
            ..Default::default()
        };
        assert_eq!(run(&conn, both), [1, 2, 3, 4, 5]);
        let exact = Filter {
            peer: Some("127.0.0.1:5000".into()),
            ..Default::default()
        };
        assert_eq!(run(&conn, exact), [1]);
        let host = Filter {
            peer: Some("127.0.0.1".into()),
            ..Default::default()
        };
        assert_eq!(run(&conn, host), [1, 2]);
        let v6 = Filter {
            peer: Some("::1".into()),
            ..Default::default()
        };
        assert_eq!(run(&conn, v6), [4]);
        let q = Filter {
            q: Some("HELLO".into()),
            ..Default::default()
        };
        assert_eq!(run(&conn, q), [1, 3]);
        // LIKE's wildcards are taken literally.
        let pct = Filter {
            q: Some("0% off_".into()),
            ..Default::default()
        };
        assert_eq!(run(&conn, pct), [2]);
        let none = Filter {
            q: Some("o_f".into()),
            ..Default::default()
        };
        assert_eq!(run(&conn, none), Vec::<u64>::new());
        let bad = Filter {
            protocol: Some("smtp".into()),
            ..Default::default()
        };
        assert!(
            page(&conn, &bad, Order::Asc, 10)
                .unwrap_err()
                .contains("smtp")
        );
    }

    #[test]
    fn pages_follow_on_in_both_orders() {
        let conn = sample();
        let mut f = Filter::default();
        let first = page(&conn, &f, Order::Asc, 2).unwrap();
        assert_eq!((seqs(&first), first.next), (vec![1, 2], Some(2)));
        f.since_seq = first.next;
        let second = page(&conn, &f, Order::Asc, 2).unwrap();
        assert_eq!((seqs(&second), second.next), (vec![3, 4], Some(4)));
        f.since_seq = second.next;
        let last = page(&conn, &f, Order::Asc, 2).unwrap();
        assert_eq!((seqs(&last), last.next), (vec![5], None));

        let mut f = Filter::default();
        let newest = page(&conn, &f, Order::Desc, 3).unwrap();
        assert_eq!((seqs(&newest), newest.next), (vec![5, 4, 3], Some(3)));
        f.before_seq = newest.next;
        let older = page(&conn, &f, Order::Desc, 3).unwrap();
        assert_eq!((seqs(&older), older.next), (vec![2, 1], None));
    }

    #[test]
    fn get_finds_one_event() {
        let conn = sample();
        assert_eq!(get(&conn, 3).unwrap().unwrap(), chat(3, "Hello chat"));
        assert_eq!(get(&conn, 99).unwrap(), None);
    }
}
