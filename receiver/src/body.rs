//! Reading a request body within the configured limit.
//!
//! The body is read here rather than by an extractor so that an oversize call is refused with a
//! SOAP fault naming the limit (SuperOffice logs it) instead of a bare 413, and so that reading
//! happens only after the call holds a concurrency permit: memory stays bounded at about body
//! limit × concurrent calls.

use std::time::Duration;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request body is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("{0}")]
    Read(String),
    #[error("the request body did not arrive within {0} s")]
    Timeout(u64),
}

/// Reads all of `body`, refusing it as soon as it passes `limit` bytes. `expected` is the
/// Content-Length, if the client sent one (an early refusal, and a right-sized buffer).
pub async fn read(
    body: Body,
    expected: Option<usize>,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, BodyError> {
    if expected.is_some_and(|len| len > limit) {
        return Err(BodyError::TooLarge { limit });
    }
    let reading = async {
        let mut buffer = BytesMut::with_capacity(expected.unwrap_or(16 * 1024).min(limit));
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| BodyError::Read(e.to_string()))?;
            if buffer.len() + chunk.len() > limit {
                return Err(BodyError::TooLarge { limit });
            }
            buffer.extend_from_slice(&chunk);
        }
        Ok(buffer.freeze())
    };
    tokio::time::timeout(timeout, reading)
        .await
        .unwrap_or(Err(BodyError::Timeout(timeout.as_secs())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn reads_a_body_within_the_limit() {
        let got = read(Body::from("hello"), Some(5), 5, T).await.unwrap();
        assert_eq!(&got[..], b"hello");
    }

    #[tokio::test]
    async fn refuses_an_announced_oversize_body_before_reading() {
        let err = read(Body::from("hello"), Some(6000), 1024, T)
            .await
            .unwrap_err();
        assert!(matches!(err, BodyError::TooLarge { limit: 1024 }));
    }

    #[tokio::test]
    async fn refuses_an_oversize_body_without_content_length() {
        let chunks = futures::stream::iter(
            (0..10).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 500]))),
        );
        let err = read(Body::from_stream(chunks), None, 2000, T)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the request body is larger than the limit of 2000 bytes"
        );
    }

    #[tokio::test]
    async fn a_stalled_body_times_out() {
        let stalled = futures::stream::pending::<Result<Bytes, std::io::Error>>();
        let err = read(
            Body::from_stream(stalled),
            None,
            2000,
            Duration::from_millis(50),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, BodyError::Timeout(_)));
    }
}
