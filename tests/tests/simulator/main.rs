//! The simulator suite: SuperOffice's Mirroring Task played by `mirror-sim` against the real
//! receiver and TWO real applier workers, through every scenario the simulator offers, checked
//! row by row by its verifier — which must also catch a corrupted mirror. Half-way through, the
//! worker applying everything stops gracefully and the other takes over its partitions. A token
//! signed by a key the receiver does not trust gets nothing published. And the worker group
//! scales from one worker to three and back under load with every mirror exact.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cycles;
mod scaling;
mod scenarios;
mod token;

use std::sync::Arc;
use std::time::Duration;

use mirror_common::auth::TokenIssuer;
use mirror_sim::driver::{Credentials, Endpoint};
use mirror_tests::{CLIENT_ID, Pipeline, keys};

/// The simulator's credentials with tokens from `issuer`.
pub fn credentials(issuer: TokenIssuer) -> Credentials {
    Credentials {
        issuer,
        application_key: keys::shared().application_public.clone(),
        client_id: CLIENT_ID.to_owned(),
    }
}

/// A simulator endpoint for the pipeline's receiver, signing with `issuer`.
pub fn endpoint(pipeline: &Pipeline, issuer: TokenIssuer) -> Arc<Endpoint> {
    Arc::new(
        Endpoint::new(
            pipeline.url(),
            credentials(issuer),
            Duration::from_secs(120),
        )
        .unwrap(),
    )
}
