//! A bare signaling client for the tests: JSON messages over the gateway's WebSocket,
//! with the session's room token from the join endpoint.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{
    Connector, MaybeTlsStream, WebSocketStream, connect_async, connect_async_tls_with_config,
};

/// What a test waits for at most.
const PATIENCE: Duration = Duration::from_secs(10);

/// One WebSocket connection to a room.
pub struct SignalClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The last `seq` received.
    pub last_seq: u64,
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// A close frame with this code.
    Closed(u16),
    /// The connection ended without one.
    Dropped,
}

impl SignalClient {
    /// Opens the WebSocket at `signal_url` (a path from the join answer) on `base`.
    pub async fn connect(base: &str, signal_url: &str) -> Self {
        let url = format!("{}{signal_url}", base.replacen("http", "ws", 1));
        let (ws, _) = connect_async(url).await.expect("the WebSocket opens");
        Self { ws, last_seq: 0 }
    }

    /// Opens `wss://` at `signal_url` on `base` (an `https://` gateway), trusting only the
    /// PEM certificate at `cert`.
    pub async fn connect_tls(base: &str, signal_url: &str, cert: &Path) -> Self {
        use rustls_pki_types::pem::PemObject as _;
        let url = format!("{}{signal_url}", base.replacen("https", "wss", 1));
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pki_types::CertificateDer::pem_file_iter(cert).expect("a PEM file") {
            roots
                .add(c.expect("a certificate"))
                .expect("a usable certificate");
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let (ws, _) = connect_async_tls_with_config(
            url,
            None,
            false,
            Some(Connector::Rustls(Arc::new(config))),
        )
        .await
        .expect("the secure WebSocket opens");
        Self { ws, last_seq: 0 }
    }

    /// Connects and joins with `answer` (the body of `POST /sessions/{s}/join`); returns
    /// the client and its welcome.
    pub async fn join(base: &str, answer: &Value) -> (Self, Value) {
        let mut c = Self::connect(base, answer["signal_url"].as_str().expect("a path")).await;
        c.send(json!({"v": 1, "type": "join", "token": answer["token"]}))
            .await;
        let welcome = c.recv().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        (c, welcome)
    }

    /// Sends a JSON message.
    pub async fn send(&mut self, message: Value) {
        self.send_text(message.to_string()).await;
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, text: String) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("the message is sent");
    }

    /// The next JSON message; panics on a timeout or a closed connection.
    pub async fn recv(&mut self) -> Value {
        match self.next().await {
            Ok(m) => m,
            Err(ended) => panic!("expected a message, the connection ended: {ended:?}"),
        }
    }

    /// The next message of `kind`, skipping pings (answered) and others.
    pub async fn recv_kind(&mut self, kind: &str) -> Value {
        loop {
            let m = self.recv().await;
            if m["type"] == kind {
                return m;
            }
        }
    }

    /// The next message, or how the connection ended.
    pub async fn next(&mut self) -> Result<Value, Ended> {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("the server answers in time");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let m: Value = serde_json::from_str(&text).expect("JSON from the server");
                    if let Some(seq) = m["seq"].as_u64() {
                        self.last_seq = self.last_seq.max(seq);
                    }
                    if m["type"] == "ping" {
                        self.send(json!({"v": 1, "type": "pong"})).await;
                        continue;
                    }
                    return Ok(m);
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(frame.map_or(Ended::Dropped, |f| Ended::Closed(u16::from(f.code))));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(Ended::Dropped),
            }
        }
    }

    /// Reads until the connection ends; returns how, and the messages before.
    pub async fn until_closed(&mut self) -> (Ended, Vec<Value>) {
        let mut seen = Vec::new();
        loop {
            match self.next().await {
                Ok(m) => seen.push(m),
                Err(ended) => return (ended, seen),
            }
        }
    }

    /// Ends the TCP connection without a close frame, as a lost link does, and waits until
    /// the gateway has let it go: its side closes only once the room has taken the
    /// participant as disconnected (and dropped its outbox), so whatever is sent to the
    /// participant after this is sent while it is away.
    pub async fn drop_connection(mut self) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let stream = self.ws.get_mut();
        let _ = stream.shutdown().await;
        let mut buf = [0_u8; 4096];
        let closed = tokio::time::timeout(PATIENCE, async {
            while let Ok(n) = stream.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "the gateway lets a dropped connection go");
    }

    /// Closes politely with code 1000.
    pub async fn close(mut self) {
        let _ = self
            .ws
            .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            }))
            .await;
    }
}
