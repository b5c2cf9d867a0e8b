//! The cycle's first step against a real receiver: a wrongly signed Authenticate answer stops the
//! cycle before anything is sent, and a token the receiver does not trust fails the cycle too.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::time::Duration;

use mirror_common::config::Settings;
use mirror_common::shutdown::CancellationToken;
use mirror_sim::driver::{CycleOptions, CycleStatus, Endpoint, Quiet, run_cycle};
use mirror_sim::keys::Keys;
use mirror_sim::scenario::Step;
use mirror_sim::source::Source;

const CLIENT_ID: &str = "0123456789abcdef0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_answer_or_an_untrusted_token_stops_the_cycle() {
    let keys = Keys::generate(1024).unwrap();
    let prefix = format!(
        "mirror-sim-auth-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let dir = std::env::temp_dir().join(&prefix);
    let files = keys.write(&dir).unwrap();
    let settings = Settings::load(
        None,
        [
            ("MIRROR__AUTH__CLIENT_ID", CLIENT_ID.to_owned()),
            ("MIRROR__AUTH__ENVIRONMENT", "custom".to_owned()),
            (
                "MIRROR__AUTH__CERTIFICATE_FILE",
                files.issuer_certificate.display().to_string(),
            ),
            (
                "MIRROR__AUTH__PRIVATE_KEY_FILE",
                files.application_key_pem.display().to_string(),
            ),
            ("MIRROR__AMQP__PREFIX", prefix.clone()),
            ("MIRROR__AMQP__PARTITIONS", "1".to_owned()),
            ("MIRROR__HTTP__LISTEN", "127.0.0.1:0".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    )
    .unwrap();
    let receiver = mirror_receiver::Application::build(settings.clone(), Default::default())
        .await
        .unwrap();
    let url = format!("http://127.0.0.1:{}{}", receiver.port(), settings.http.path);
    let stop = CancellationToken::new();
    let server = tokio::spawn(receiver.run(stop.clone()));

    let source = Source::new("Cust42", 1, 50).unwrap();
    let cycle = |endpoint: Endpoint| {
        let source = &source;
        async move {
            run_cycle(
                &endpoint,
                source,
                1,
                Step::Initial,
                &CycleOptions::default(),
                &Quiet,
                &CancellationToken::new(),
            )
            .await
        }
    };

    // The right keys: the answer verifies (the receiver may still ask to skip the cycle or fail
    // later calls while its broker connects; only Authenticate matters here).
    let good = Endpoint::new(&url, keys.credentials(CLIENT_ID), Duration::from_secs(30)).unwrap();
    let ok = cycle(good).await;

    // The receiver signs with a key the simulator does not expect.
    let other = Keys::generate(1024).unwrap();
    let mut wrong_key = keys.credentials(CLIENT_ID);
    wrong_key.application_key = other.application.public_key();
    let wrong_answer =
        cycle(Endpoint::new(&url, wrong_key, Duration::from_secs(30)).unwrap()).await;

    // Tokens from an issuer the receiver does not trust.
    let untrusted =
        cycle(Endpoint::new(&url, other.credentials(CLIENT_ID), Duration::from_secs(30)).unwrap())
            .await;

    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), server).await;
    mirror_sim::demo::delete_topology(&settings).await;
    std::fs::remove_dir_all(dir).unwrap();

    match &ok.status {
        CycleStatus::Skipped => assert_eq!(ok.calls, 1),
        CycleStatus::Completed | CycleStatus::Failed(_) => {
            assert!(
                ok.calls >= 2,
                "Authenticate passed, TableSchema was tried: {ok:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    let CycleStatus::Failed(error) = &wrong_answer.status else {
        panic!("{wrong_answer:?}");
    };
    assert!(error.contains("signed answer does not verify"), "{error}");
    assert_eq!(wrong_answer.calls, 1, "nothing after Authenticate");
    assert!(wrong_answer.tables.is_empty());
    let CycleStatus::Failed(error) = &untrusted.status else {
        panic!("{untrusted:?}");
    };
    assert!(error.starts_with("Authenticate failed:"), "{error}");
    assert_eq!(untrusted.calls, 1);
}
