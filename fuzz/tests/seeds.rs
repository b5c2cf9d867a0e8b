//! Runs the SuperOffice fixtures and the committed seed corpora through the fuzz targets' bodies,
//! so the targets' properties are checked on known inputs by an ordinary `cargo test`, without
//! libFuzzer. A crash libFuzzer finds is added to `seeds/<target>/` and stays checked here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use mirror_common::batch;
use mirror_common::soap::{Limits, RequestBody, parse_request};
use mirror_common::wire::{self, Envelope, Message};

fn dir(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Every file of a directory, by name.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// The request bodies among the SuperOffice fixtures (the `.http` capture without its headers).
fn fixture_requests() -> Vec<(String, Vec<u8>)> {
    files(&dir("../testdata/superoffice"))
        .into_iter()
        .filter(|(name, _)| name.contains("-request."))
        .map(|(name, bytes)| {
            if !name.ends_with(".http") {
                return (name, bytes);
            }
            let at = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
            (name, bytes[at + 4..].to_vec())
        })
        .collect()
}

#[test]
fn soap_request_holds_on_the_fixtures_and_its_seeds() {
    let requests = fixture_requests();
    assert_eq!(requests.len(), 5, "one fixture per operation");
    for (name, bytes) in &requests {
        assert!(
            parse_request(bytes, &Limits::default()).is_ok(),
            "{name} parses"
        );
        mirror_fuzz::soap_request(bytes);
    }
    for (_, bytes) in files(&dir("seeds/soap_request")) {
        mirror_fuzz::soap_request(&bytes);
    }
}

#[test]
fn value_decode_holds_on_its_seeds() {
    let seeds = files(&dir("seeds/value_decode"));
    assert!(seeds.len() >= 10, "{} seeds", seeds.len());
    for (_, bytes) in &seeds {
        mirror_fuzz::value_decode(bytes);
    }
}

/// Queue messages as the receiver would publish them for the fixtures.
fn fixture_envelopes() -> Vec<Envelope> {
    fixture_requests()
        .iter()
        .filter_map(|(_, bytes)| {
            let request = parse_request(bytes, &Limits::default()).unwrap();
            let message = match request.body {
                RequestBody::Authenticate => return None,
                RequestBody::TableSchema { tables } => Message::TableSchema {
                    tables: tables.iter().filter_map(|t| t.validate().ok()).collect(),
                },
                RequestBody::RowData { batches } => Message::RowData {
                    batches: batch::decode_batches(&batches).unwrap(),
                },
                RequestBody::Wipe { table } => Message::Wipe { table },
                RequestBody::ReplicationCompleted { summaries } => {
                    Message::ReplicationCompleted { summaries }
                }
            };
            Some(Envelope {
                id: uuid::Uuid::from_u128(0x0192_0f4c_7a3e_7d2e_9b1c_5f00_0000_0001),
                tenant: "Cust24709".into(),
                received_at_ms: 1_631_791_281_000,
                trace_id: "8e7c226a62b25848aa9e99baaf7dde5c".into(),
                message,
            })
        })
        .collect()
}

#[test]
fn wire_message_holds_on_the_fixtures_and_its_seeds() {
    let envelopes = fixture_envelopes();
    assert_eq!(envelopes.len(), 4, "every operation but Authenticate");
    for envelope in &envelopes {
        let bytes = wire::encode(envelope).unwrap();
        mirror_fuzz::wire_message(&bytes);
    }
    let seeds = files(&dir("seeds/wire_message"));
    assert!(!seeds.is_empty());
    for (_, bytes) in &seeds {
        mirror_fuzz::wire_message(bytes);
    }
}
