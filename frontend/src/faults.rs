//! The Proxies panel's "add fault" form, without the browser: its presets (3G, satellite,
//! flaky) and the custom form's attributes, each made into `toxic_add` commands.

use wirelab_shared::CommandKind;

/// The presets, as the form lists them: value, label.
pub const PRESETS: &[(&str, &str)] = &[
    ("3g", "3G: 300 ms latency + 750 KB/s"),
    ("satellite", "satellite: 600 ms latency"),
    ("flaky", "flaky: 5% of connections reset"),
    ("wifi", "lossy Wi-Fi: 2% loss in bursts"),
    ("custom", "custom…"),
];

/// toxiproxy's types the custom form offers.
pub const TYPES: &[&str] = &[
    "latency",
    "bandwidth",
    "slow_close",
    "timeout",
    "reset_peer",
    "slicer",
    "limit_data",
    "packet_loss",
    "corrupt",
    "loss",
    "duplicate",
    "reorder",
    "truncate",
];

/// Which connections a fault is kept to: all (`None`s), one (its id), or one peer's.
pub type Scope = (Option<u64>, Option<String>);

/// The commands preset `preset` makes on proxy `proxy`, on `stream`, kept to `scope`;
/// `None` for `custom` (or an unknown name).
pub fn preset(proxy: &str, preset: &str, stream: &str, scope: &Scope) -> Option<Vec<CommandKind>> {
    let add = |name: &str, kind: &str, toxicity: Option<f64>, attributes: &[(&str, f64)]| {
        let at = match scope {
            (Some(c), _) => format!("_conn{c}"),
            (None, Some(_)) => "_peer".to_owned(),
            _ => String::new(),
        };
        CommandKind::ToxicAdd {
            proxy: proxy.to_owned(),
            name: format!("{name}_{stream}{at}"),
            kind: kind.to_owned(),
            stream: stream.to_owned(),
            toxicity,
            attributes: attributes
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
            conn: scope.0,
            peer: scope.1.clone(),
        }
    };
    Some(match preset {
        "3g" => vec![
            add("3g_latency", "latency", None, &[("latency", 300.0)]),
            add("3g_bandwidth", "bandwidth", None, &[("rate", 750.0)]),
        ],
        "satellite" => vec![add("satellite", "latency", None, &[("latency", 600.0)])],
        "flaky" => vec![add("flaky", "reset_peer", Some(0.05), &[("timeout", 0.0)])],
        // toxiproxy's packet_loss: on datagrams 2% lost, a loss making the next one 25%
        // likely (bursts); on a stream, chunks dropped as toxiproxy drops them.
        "wifi" => vec![add(
            "wifi",
            "packet_loss",
            None,
            &[("loss_rate", 0.02), ("correlation", 0.25)],
        )],
        _ => return None,
    })
}

/// `latency=100 jitter=10` or `loss_rate=0.02` (spaces or commas between) as attributes:
/// whole numbers, or decimals (chances).
pub fn attributes(text: &str) -> Result<Vec<(String, f64)>, String> {
    text.split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}`: write name=number, e.g. latency=100"))?;
            let value = value.trim();
            let n = match value.parse::<i64>() {
                Ok(n) => n as f64,
                Err(_) => {
                    decimal(value).ok_or_else(|| format!("`{pair}`: `{value}` is not a number"))?
                }
            };
            Ok((name.trim().to_owned(), n))
        })
        .collect()
}

/// The form's scope: empty (every connection), `conn 12`, or `peer 10.0.0.7` (an
/// address, with or without its port).
pub fn scope(text: &str) -> Result<Scope, String> {
    let text = text.trim();
    match text.split_once([' ', '=']) {
        _ if text.is_empty() => Some((None, None)),
        Some(("conn", id)) => id.trim().parse().map(|c| (Some(c), None)).ok(),
        Some(("peer", p)) if !p.trim().is_empty() => Some((None, Some(p.trim().to_owned()))),
        _ => None,
    }
    .ok_or_else(|| format!("scope `{text}`: all, or conn 12, or peer 10.0.0.7"))
}

/// A toxicity typed in the form: empty is toxiproxy's 1; else 0 to 1, or a percentage.
pub fn toxicity(text: &str) -> Result<Option<f64>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let (number, pct) = match text.strip_suffix('%') {
        Some(n) => (n.trim(), true),
        None => (text, false),
    };
    let t = decimal(number)
        .ok_or_else(|| format!("toxicity `{text}`: a number from 0 to 1, or a percentage"))?;
    let t = if pct { t / 100.0 } else { t };
    match (0.0..=1.0).contains(&t) {
        true => Ok(Some(t)),
        false => Err(format!("toxicity `{text}` is not between 0 and 1")),
    }
}

/// `12`, `0.05`, `.5`: digits with at most one point. Read by hand: std's float parser
/// is some 10 KiB of the page's wasm, for one form field.
fn decimal(text: &str) -> Option<f64> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !digits(whole) || !digits(frac) || whole.len() > 6 {
        return None;
    }
    let mut value = 0f64;
    for b in whole.bytes() {
        value = value * 10.0 + f64::from(b - b'0');
    }
    let mut scale = 1f64;
    for b in frac.bytes().take(6) {
        scale /= 10.0;
        value += f64::from(b - b'0') * scale;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_make_the_toxics_the_issue_names() {
        let all = (None, None);
        let three_g = preset("redis", "3g", "downstream", &all).unwrap();
        assert_eq!(three_g.len(), 2);
        let CommandKind::ToxicAdd {
            kind, attributes, ..
        } = &three_g[1]
        else {
            panic!("a toxic_add")
        };
        assert_eq!(
            (kind.as_str(), attributes.as_slice()),
            ("bandwidth", &[("rate".to_owned(), 750.0)][..])
        );
        let flaky = preset("redis", "flaky", "both", &all).unwrap();
        let CommandKind::ToxicAdd { toxicity, name, .. } = &flaky[0] else {
            panic!("a toxic_add")
        };
        assert_eq!((*toxicity, name.as_str()), (Some(0.05), "flaky_both"));
        assert!(preset("redis", "custom", "both", &all).is_none());
        let one = preset("redis", "satellite", "both", &(Some(7), None)).unwrap();
        let CommandKind::ToxicAdd { name, conn, .. } = &one[0] else {
            panic!("a toxic_add")
        };
        assert_eq!((name.as_str(), *conn), ("satellite_both_conn7", Some(7)));
    }

    #[test]
    fn a_scope_is_every_connection_one_or_one_peers() {
        assert_eq!(scope(" ").unwrap(), (None, None));
        assert_eq!(scope("conn 12").unwrap(), (Some(12), None));
        assert_eq!(scope("conn=3").unwrap(), (Some(3), None));
        assert_eq!(
            scope("peer 10.0.0.7:53").unwrap(),
            (None, Some("10.0.0.7:53".to_owned()))
        );
        for bad in ["conn x", "peer", "everything"] {
            assert!(scope(bad).unwrap_err().contains("conn 12"), "{bad}");
        }
    }

    #[test]
    fn attributes_and_toxicity_are_read_or_refused_with_a_reason() {
        assert_eq!(
            attributes("latency=100, jitter=10").unwrap(),
            [("latency".to_owned(), 100.0), ("jitter".to_owned(), 10.0)]
        );
        assert_eq!(
            attributes("loss_rate=0.02 bytes=10000000").unwrap(),
            [("loss_rate".to_owned(), 0.02), ("bytes".to_owned(), 1e7)]
        );
        assert!(attributes("latency").unwrap_err().contains("name=number"));
        assert!(attributes("rate=fast").is_err());
        assert_eq!(toxicity("").unwrap(), None);
        assert_eq!(toxicity("5%").unwrap(), Some(0.05));
        assert_eq!(toxicity("0.5").unwrap(), Some(0.5));
        assert!(toxicity("2").is_err());
        assert_eq!(toxicity(".25").unwrap(), Some(0.25));
        assert_eq!(toxicity("1.").unwrap(), Some(1.0));
        for bad in [".", "1.2.3", "-0.5", "0,5", "1e-1", "half"] {
            assert!(toxicity(bad).is_err(), "{bad}");
        }
    }
}
