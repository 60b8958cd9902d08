//! [`command_json`]: a [`Command`] as JSON, as the dashboard sends it (see [`super`] for why
//! by hand). The bytes are `serde_json`'s (`id` first, then the flattened `type` and its
//! fields, `null` for an absent option) but for a toxicity, which is written in decimal
//! with at most nine places where serde would write the shortest text that reads back as
//! the same `f64`: the server reads both as the same toxicity (the form reads at most six
//! places, eight as a percentage).

use super::{Obj, num, pool_spec, string};
use crate::command::{Command, CommandKind};

/// `cmd` as a JSON string.
pub fn command_json(cmd: &Command) -> String {
    let mut out = Vec::with_capacity(96);
    let Command { id, kind } = cmd;
    let mut o = Obj::new(&mut out);
    o.num(k!("id"), *id);
    string(o.key(k!("type")), kind.tag());
    write_kind(&mut o, kind);
    o.end();
    // Only whole strings and ASCII were written.
    String::from_utf8(out).unwrap_or_default()
}

impl CommandKind {
    /// The command's `type` tag, as serde writes it (`rename_all = "snake_case"`).
    pub fn tag(&self) -> &'static str {
        match self {
            CommandKind::Ping => "ping",
            CommandKind::Chat { .. } => "chat",
            CommandKind::TcpSend { .. } => "tcp_send",
            CommandKind::TcpClose { .. } => "tcp_close",
            CommandKind::TcpConnect { .. } => "tcp_connect",
            CommandKind::UdpSend { .. } => "udp_send",
            CommandKind::HttpReplay { .. } => "http_replay",
            CommandKind::Replay { .. } => "replay",
            CommandKind::PoolStart { .. } => "pool_start",
            CommandKind::PoolCancel => "pool_cancel",
            CommandKind::WsServiceSend { .. } => "ws_service_send",
            CommandKind::WsServiceClose { .. } => "ws_service_close",
            CommandKind::ProxyAdd { .. } => "proxy_add",
            CommandKind::ProxySet { .. } => "proxy_set",
            CommandKind::ProxyDelete { .. } => "proxy_delete",
            CommandKind::ToxicAdd { .. } => "toxic_add",
            CommandKind::ToxicRemove { .. } => "toxic_remove",
            CommandKind::RelaySend { .. } => "relay_send",
            CommandKind::RelayWsSend { .. } => "relay_ws_send",
            CommandKind::RelayClose { .. } => "relay_close",
            CommandKind::Subscribe { .. } => "subscribe",
        }
    }
}

fn write_kind(o: &mut Obj<'_>, kind: &CommandKind) {
    match kind {
        CommandKind::Ping | CommandKind::PoolCancel => {}
        CommandKind::Chat { text } => {
            o.str(k!("text"), text);
        }
        CommandKind::TcpSend { conn, data, enc } => {
            o.null_num(k!("conn"), *conn)
                .str(k!("data"), data)
                .word(k!("enc"), *enc);
        }
        CommandKind::TcpClose { conn, reset } => {
            o.num(k!("conn"), *conn).bool(k!("reset"), *reset);
        }
        CommandKind::TcpConnect { addr } => {
            o.str(k!("addr"), addr);
        }
        CommandKind::UdpSend { peer, data, enc } => {
            o.null_str(k!("peer"), peer)
                .str(k!("data"), data)
                .word(k!("enc"), *enc);
        }
        CommandKind::HttpReplay { exchange } => {
            o.num(k!("exchange"), *exchange);
        }
        CommandKind::Replay { seq, target } => {
            o.num(k!("seq"), *seq).null_str(k!("target"), target);
        }
        CommandKind::PoolStart { spec } => pool_spec(o.key(k!("spec")), spec),
        CommandKind::WsServiceSend { client, data, enc } => {
            o.null_num(k!("client"), *client)
                .str(k!("data"), data)
                .word(k!("enc"), *enc);
        }
        CommandKind::WsServiceClose {
            client,
            code,
            reason,
            drop,
        } => {
            o.num(k!("client"), *client)
                .null_num(k!("code"), code.map(u64::from))
                .str(k!("reason"), reason)
                .bool(k!("drop"), *drop);
        }
        CommandKind::ProxyAdd {
            name,
            protocol,
            listen,
            upstream,
        } => {
            o.str(k!("name"), name)
                .word(k!("protocol"), *protocol)
                .str(k!("listen"), listen)
                .str(k!("upstream"), upstream);
        }
        CommandKind::ProxySet { name, enabled } => {
            o.str(k!("name"), name).bool(k!("enabled"), *enabled);
        }
        CommandKind::ProxyDelete { name } => {
            o.str(k!("name"), name);
        }
        CommandKind::ToxicAdd {
            proxy,
            name,
            kind,
            stream,
            toxicity,
            attributes,
            conn,
            peer,
        } => {
            o.str(k!("proxy"), proxy)
                .str(k!("name"), name)
                .str(k!("kind"), kind)
                .str(k!("stream"), stream);
            let out = o.key(k!("toxicity"));
            match toxicity {
                Some(t) => decimal(out, *t),
                None => out.extend_from_slice(b"null"),
            }
            o.list(k!("attributes"), attributes, |out, (name, value)| {
                out.push(b'[');
                string(out, name);
                out.push(b',');
                // Whole: as serde writes a whole float (`300.0`; past 1e16 serde writes
                // `1e16`, read back the same). The form's are at most i64's.
                match value.fract() == 0.0 && value.abs() < u64::MAX as f64 {
                    true => {
                        if *value < 0.0 {
                            out.push(b'-');
                        }
                        num(out, value.abs() as u64);
                        out.extend_from_slice(b".0");
                    }
                    false => decimal(out, *value),
                }
                out.push(b']');
            });
            o.opt_num(k!("conn"), *conn).opt_str(k!("peer"), peer);
        }
        CommandKind::ToxicRemove { proxy, name } => {
            o.str(k!("proxy"), proxy).str(k!("name"), name);
        }
        CommandKind::RelaySend {
            conn,
            leg,
            data,
            enc,
        } => {
            o.num(k!("conn"), *conn)
                .word(k!("leg"), *leg)
                .str(k!("data"), data)
                .word(k!("enc"), *enc);
        }
        CommandKind::RelayWsSend {
            conn,
            leg,
            data,
            enc,
            binary,
        } => {
            o.num(k!("conn"), *conn)
                .word(k!("leg"), *leg)
                .str(k!("data"), data)
                .word(k!("enc"), *enc)
                .bool(k!("binary"), *binary);
        }
        CommandKind::RelayClose { conn, leg, reset } => {
            o.num(k!("conn"), *conn)
                .word(k!("leg"), *leg)
                .bool(k!("reset"), *reset);
        }
        CommandKind::Subscribe { protocols } => {
            o.list(k!("protocols"), protocols, |out, p| string(out, p.as_str()));
        }
    }
}

/// `t` in decimal, rounded to nine places (`1.0`, `0.05`, `-2.5`); `null` when it is not
/// finite, as serde writes it. Not core's float formatting: its tables would cost the
/// dashboard's wasm more than this whole module.
fn decimal(out: &mut Vec<u8>, t: f64) {
    if !t.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    if t.is_sign_negative() && t != 0.0 {
        out.push(b'-');
    }
    const SCALE: f64 = 1e9;
    // Beyond u64's range the places are lost anyway; saturate (toxicities are 0 to 1).
    let scaled = (t.abs() * SCALE).round() as u64;
    num(out, scaled / 1_000_000_000);
    out.push(b'.');
    let mut frac = scaled % 1_000_000_000;
    if frac == 0 {
        out.push(b'0');
        return;
    }
    let mut digits = [b'0'; 9];
    for d in digits.iter_mut().rev() {
        *d = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    let len = digits.iter().rposition(|&d| d != b'0').map_or(1, |i| i + 1);
    out.extend_from_slice(&digits[..len]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::tests::samples;

    #[test]
    fn every_command_is_written_as_serde_writes_it() {
        let kinds = samples();
        let mut tags: Vec<_> = kinds.iter().map(CommandKind::tag).collect();
        tags.sort_unstable();
        tags.dedup();
        assert_eq!(tags.len(), 21, "every kind has a sample");
        for (id, kind) in kinds.into_iter().enumerate() {
            let cmd = Command {
                id: id as u64 * 1_000_003,
                kind,
            };
            let ours = command_json(&cmd);
            assert_eq!(ours, serde_json::to_string(&cmd).unwrap());
            assert_eq!(serde_json::from_str::<Command>(&ours).unwrap(), cmd);
        }
    }

    #[test]
    fn toxicities_read_back_as_the_form_read_them() {
        let toxic = |toxicity| Command {
            id: 1,
            kind: CommandKind::ToxicAdd {
                proxy: "p\"".into(),
                name: String::new(),
                kind: "latency".into(),
                stream: "downstream".into(),
                toxicity,
                attributes: vec![
                    ("latency".into(), -5.0),
                    ("jitter".into(), 1e14),
                    ("loss_rate".into(), 0.02),
                ],
                conn: Some(3),
                peer: Some("10.0.0.7:53".into()),
            },
        };
        let read = |t: Option<f64>| {
            let text = command_json(&toxic(t));
            match serde_json::from_str::<Command>(&text).unwrap().kind {
                CommandKind::ToxicAdd {
                    toxicity,
                    attributes,
                    ..
                } => {
                    let want = [("latency", -5.0), ("jitter", 1e14), ("loss_rate", 0.02)];
                    for ((name, v), (want_name, w)) in attributes.iter().zip(want) {
                        assert_eq!((name.as_str(), *v), (want_name, w));
                    }
                    assert!(text.contains(r#"["jitter",100000000000000.0]"#), "{text}");
                    assert!(text.contains(r#"["loss_rate",0.02]"#), "{text}");
                    (toxicity, text)
                }
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(read(None).0, None);
        let (t, text) = read(Some(1.0));
        assert_eq!(t, Some(1.0));
        assert!(text.contains(r#""toxicity":1.0,"#), "{text}");
        assert!(read(Some(0.05)).1.contains(r#""toxicity":0.05,"#));
        assert!(read(Some(-2.5)).1.contains(r#""toxicity":-2.5,"#));
        assert_eq!(read(Some(f64::NAN)).0, None);
        // Every value the form can make: up to six places, or a percentage of those.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let places = (seed % 9) as i32;
            let n = (seed >> 8) % 10u64.pow(places as u32 + 1);
            let t = n as f64 / 10f64.powi(places);
            let back = read(Some(t)).0.unwrap();
            assert!((back - t).abs() <= t * 1e-15, "{t} read back as {back}");
        }
    }
}
