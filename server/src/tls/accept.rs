//! One TLS handshake on a lab service: the ClientHello read (and shown) first, the site
//! picked by its SNI, rustls's handshake under a deadline, and one event for how it went.

use std::io;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rustls::{AlertDescription, Error as TlsError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wirelab_shared::{EventKind, TlsHandshake};

use super::hello::{self, Read};
use super::sites::Sites;
use super::wire::{Rewind, Wire};
use crate::hub::Hub;

/// How long a client has to finish its handshake, from its connection.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a handshake comes from, for its event.
pub struct Who<'a> {
    pub service: &'a str,
    pub conn: u64,
    pub peer: &'a str,
}

/// Runs the server side of a handshake on `stream` with `sites`, and publishes it as an
/// event; the connection on success.
pub async fn accept(sites: &Sites, hub: &Hub, who: Who<'_>, stream: TcpStream) -> Option<Wire> {
    let (wire, event) = handshake_event(sites, who, stream).await;
    hub.publish(EventKind::Tls(Box::new(event)));
    wire
}

/// Runs the server side of a handshake on `stream`: the connection on success, and the
/// handshake's event (for the caller to complete and publish).
pub async fn handshake_event(
    sites: &Sites,
    who: Who<'_>,
    stream: TcpStream,
) -> (Option<Wire>, TlsHandshake) {
    let start = Instant::now();
    let mut event = TlsHandshake {
        service: who.service.to_owned(),
        conn: who.conn,
        peer: who.peer.to_owned(),
        ..TlsHandshake::default()
    };
    let result = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(sites, stream, &mut event))
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "the handshake did not finish within {} s",
                HANDSHAKE_TIMEOUT.as_secs()
            ))
        });
    event.handshake_us = start.elapsed().as_micros() as u64;
    match result {
        Ok(wire) => (Some(wire), event),
        Err(why) => {
            event.error = Some(why);
            (None, event)
        }
    }
}

async fn handshake(
    sites: &Sites,
    mut stream: TcpStream,
    event: &mut TlsHandshake,
) -> Result<Wire, String> {
    let mut buf = BytesMut::with_capacity(2048);
    let hello = loop {
        match stream.read_buf(&mut buf).await {
            Ok(0) if buf.is_empty() => {
                return Err("the client closed before sending a ClientHello".into());
            }
            Ok(0) => {
                return Err(format!(
                    "the client closed after {} bytes of a ClientHello",
                    buf.len()
                ));
            }
            Ok(_) => {}
            Err(e) => return Err(format!("reading the ClientHello: {e}")),
        }
        // Parsed again only once the next record is whole (or what came is no TLS).
        if buf.len() < hello::wanted(&buf) {
            continue;
        }
        match hello::read(&buf) {
            Read::More => continue,
            Read::Hello(hello, _) => break hello,
            Read::Not(what) => {
                if hello::plain_http(&buf) {
                    // What nginx does: say so in plain HTTP, which the client can read.
                    let _ = stream.write_all(PLAIN_HTTP_ANSWER.as_bytes()).await;
                    let _ = stream.shutdown().await;
                }
                return Err(format!("{what}: not a TLS handshake"));
            }
        }
    };
    event.sni = hello.sni.clone();
    event.alpn = hello.alpn.clone();
    event.versions = hello.version_names();
    event.ciphers = hello.cipher_names();
    event.groups = hello.group_names();
    event.key_shares = hello.key_share_names();
    event.sig_algs = hello.sig_alg_names();
    event.ja4 = hello.ja4();
    let site = sites.pick(&hello.sni);
    event.cert = match site.broken {
        "" => format!("{} (the lab's CA)", site.name),
        broken => format!("{}: {broken}", site.name),
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(site.config.clone());
    match acceptor.accept(Rewind::new(buf.freeze(), stream)).await {
        Ok(stream) => {
            let (_, conn) = stream.get_ref();
            event.version = conn
                .protocol_version()
                .map(|v| hello::version_name(u16::from(v)))
                .unwrap_or_default();
            event.cipher = conn
                .negotiated_cipher_suite()
                .and_then(|s| s.suite().as_str())
                .unwrap_or_default()
                .to_owned();
            event.alpn_chosen = conn
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .unwrap_or_default();
            Ok(Wire::Tls(Box::new(stream)))
        }
        Err(e) => Err(failure(&e)),
    }
}

/// What nginx answers a plain HTTP request on its TLS port, in the lab's words.
const PLAIN_HTTP_ANSWER: &str = "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\n\
Connection: close\r\nContent-Length: 72\r\n\r\n\
wirelab: a plain HTTP request was sent to a TLS port; use https:// here\n";

/// Why a handshake failed, in words: who ended it, and with what alert.
fn failure(e: &io::Error) -> String {
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<TlsError>()) else {
        return match e.kind() {
            io::ErrorKind::UnexpectedEof => {
                "the client closed the connection during the handshake".into()
            }
            _ => format!("the handshake failed: {e}"),
        };
    };
    match tls {
        TlsError::AlertReceived(alert) => {
            let what = alert_words(*alert);
            match alert {
                AlertDescription::UnknownCA
                | AlertDescription::BadCertificate
                | AlertDescription::CertificateExpired
                | AlertDescription::CertificateUnknown
                | AlertDescription::CertificateRevoked
                | AlertDescription::UnsupportedCertificate
                | AlertDescription::AccessDenied => {
                    format!(
                        "the client rejected the certificate: {what} (its alert {})",
                        u8::from(*alert)
                    )
                }
                _ => format!(
                    "the client ended the handshake: {what} (its alert {})",
                    u8::from(*alert)
                ),
            }
        }
        other => format!("the lab ended the handshake: {other}"),
    }
}

/// An alert's name as OpenSSL prints it (`unknown CA`).
fn alert_words(alert: AlertDescription) -> String {
    match alert {
        AlertDescription::UnknownCA => "unknown CA".into(),
        AlertDescription::BadCertificate => "bad certificate".into(),
        AlertDescription::CertificateExpired => "certificate expired".into(),
        AlertDescription::CertificateUnknown => "certificate unknown".into(),
        AlertDescription::CertificateRevoked => "certificate revoked".into(),
        AlertDescription::UnsupportedCertificate => "unsupported certificate".into(),
        AlertDescription::ProtocolVersion => "protocol version".into(),
        AlertDescription::HandshakeFailure => "handshake failure".into(),
        AlertDescription::DecodeError => "decode error".into(),
        AlertDescription::IllegalParameter => "illegal parameter".into(),
        AlertDescription::NoApplicationProtocol => "no application protocol".into(),
        AlertDescription::UnrecognisedName => "unrecognized name".into(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_http_answer_says_its_length() {
        let (head, body) = PLAIN_HTTP_ANSWER.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
    }
}
