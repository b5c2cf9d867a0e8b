//! Connecting to RabbitMQ, with the timeout lapin does not enforce itself.
//!
//! lapin's connect can hang on a half-open TCP connection or a broker that accepts the socket but
//! never finishes the handshake, so every connect is bounded by `amqp.connect_timeout_secs`.
//! Reconnecting is the caller's job (a supervisor loop with backoff): lapin's own auto-recovery is
//! left off so that a lost connection is visible and the topology is declared again explicitly.

use lapin::{Connection, ConnectionProperties};

use crate::config::AmqpSettings;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("cannot connect to the message broker: {0}")]
    Connect(#[from] lapin::Error),
    #[error("cannot connect to the message broker: no answer within {0} s")]
    ConnectTimeout(u64),
}

/// Opens one AMQP connection to `settings.url`, named after the running binary so operators can
/// tell connections apart in the management UI.
pub async fn connect(settings: &AmqpSettings) -> Result<Connection, BrokerError> {
    let name = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "mirror".to_owned());
    let properties = ConnectionProperties::default().with_connection_name(name.as_str().into());
    match tokio::time::timeout(
        settings.connect_timeout(),
        Connection::connect(&settings.url, properties),
    )
    .await
    {
        Ok(result) => Ok(result?),
        Err(_elapsed) => Err(BrokerError::ConnectTimeout(settings.connect_timeout_secs)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[tokio::test]
    async fn connects_to_the_local_broker() {
        let conn = connect(&AmqpSettings::default()).await.unwrap();
        assert!(conn.status().connected());
        conn.close(200, "OK".into()).await.unwrap();
    }

    #[tokio::test]
    async fn a_closed_port_fails_fast() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let settings = AmqpSettings {
            url: format!("amqp://guest:guest@127.0.0.1:{port}/%2f"),
            ..AmqpSettings::default()
        };
        let err = connect(&settings).await.unwrap_err();
        assert!(matches!(err, BrokerError::Connect(_)), "{err}");
    }

    #[tokio::test]
    async fn a_silent_peer_times_out() {
        // Accepts the TCP connection but never speaks AMQP.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let _held = tokio::spawn(async move {
            let mut sockets = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                sockets.push(socket);
            }
        });
        let settings = AmqpSettings {
            url: format!("amqp://guest:guest@127.0.0.1:{port}/%2f"),
            connect_timeout_secs: 1,
            ..AmqpSettings::default()
        };
        let started = Instant::now();
        let err = connect(&settings).await.unwrap_err();
        assert!(matches!(err, BrokerError::ConnectTimeout(1)), "{err}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}
