# syntax=docker/dockerfile:1
#
# One image with all four binaries: mirror-receiver, mirror-applier, mirrorctl, mirror-sim.
#
#   docker build -t superoffice-mirror .
#   docker run --rm superoffice-mirror mirror-receiver --help
#
# Stages: `chef` (the Rust toolchain + cargo-chef), `planner` (the dependency recipe),
# `builder` (dependencies first, cached until Cargo.toml/Cargo.lock change, then the workspace)
# and `runtime` (Debian slim, the binaries, a non-root user).

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS chef
ARG CARGO_CHEF_VERSION=0.1.77
RUN cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}"
WORKDIR /build

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
ENV CARGO_TERM_COLOR=never
COPY --from=planner /build/recipe.json recipe.json
# Dependencies only: this layer is reused as long as the recipe (manifests and lock file) is.
RUN cargo chef cook --release --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked \
        --package mirror-receiver --package mirror-applier --package mirror-sim \
    && mkdir -p /out \
    && cp target/release/mirror-receiver target/release/mirror-applier \
          target/release/mirrorctl target/release/mirror-sim /out/

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# tini forwards SIGTERM to the service (graceful shutdown) and reaps zombies; curl serves the
# container health checks; ca-certificates lets the applier verify SQL Server's TLS certificate.
# Versions come with the pinned Debian release and its security updates.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl tini \
    && rm -rf /var/lib/apt/lists/*
ARG UID=10001
RUN groupadd --system --gid "${UID}" mirror \
    && useradd --system --uid "${UID}" --gid mirror --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin mirror
COPY --from=builder /out/ /usr/local/bin/
# The one writable place in the image, for files the services generate (the compose stack's
# throwaway keys); the root file system can stay read-only.
RUN install -d -o mirror -g mirror -m 0750 /var/lib/mirror
# Containers listen on every interface; the defaults (127.0.0.1) suit a developer's machine only.
ENV MIRROR__HTTP__LISTEN=0.0.0.0:8080 \
    MIRROR__METRICS__LISTEN=0.0.0.0:9090 \
    MIRROR__LOG__FORMAT=json
USER 10001:10001
EXPOSE 8080 9090
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["mirror-receiver"]

LABEL org.opencontainers.image.title="superoffice-mirror" \
      org.opencontainers.image.description="SuperOffice CRM Online Database Mirroring: receiver, applier, mirrorctl and simulator" \
      org.opencontainers.image.licenses="Apache-2.0"
