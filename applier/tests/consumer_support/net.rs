//! Network stand-ins for the consumer suites: a TCP proxy that can cut a worker off from RabbitMQ
//! or PostgreSQL, and a bare HTTP GET for the probe endpoints.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A minimal HTTP/1.0 GET, enough for the probe endpoints.
pub async fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A TCP proxy the test can cut: `down()` drops every open connection and refuses new ones
/// until `up()`. Stands between a worker and RabbitMQ or PostgreSQL to simulate an outage.
pub struct Proxy {
    pub port: u16,
    state: Arc<std::sync::Mutex<ProxyState>>,
    task: JoinHandle<()>,
}

struct ProxyState {
    up: bool,
    connections: CancellationToken,
}

impl Proxy {
    pub async fn start(target: &'static str) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(std::sync::Mutex::new(ProxyState {
            up: true,
            connections: CancellationToken::new(),
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let cut = {
                    let state = shared.lock().unwrap();
                    if !state.up {
                        continue;
                    }
                    state.connections.clone()
                };
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        () = cut.cancelled() => {}
                    }
                });
            }
        });
        Proxy { port, state, task }
    }

    /// Cuts every connection and refuses new ones.
    pub fn down(&self) {
        let mut state = self.state.lock().unwrap();
        state.up = false;
        state.connections.cancel();
        state.connections = CancellationToken::new();
    }

    pub fn up(&self) {
        self.state.lock().unwrap().up = true;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.down();
        self.task.abort();
    }
}
