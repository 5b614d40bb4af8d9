# syntax=docker/dockerfile:1
# Image with both executables: `docker run IMAGE pipeline aggregator`, `docker run IMAGE sim-exchange`.

FROM swift:6.2-bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      librdkafka-dev libsnappy-dev zlib1g-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift Package.resolve[d] ./
# SwiftPM insists that every declared target's directory exists, test targets included.
COPY Sources ./Sources
COPY Tests ./Tests
# The cache mount keeps fetched dependencies and objects between builds. One product per
# `swift build`: --product takes a single value.
RUN --mount=type=cache,target=/src/.build \
    swift build -c release --static-swift-stdlib --product pipeline \
 && swift build -c release --static-swift-stdlib --product sim-exchange \
 && bin="$(swift build -c release --static-swift-stdlib --show-bin-path)" \
 && mkdir -p /out \
 && cp "$bin/pipeline" "$bin/sim-exchange" /out/

FROM debian:bookworm-slim AS runtime
# librdkafka1 is 2.0.2 here: fine against Apache Kafka (it is only Tansu that needs >= 2.2).
# wget serves the Compose health checks; tini forwards SIGTERM so the services shut down cleanly.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      librdkafka1 libsnappy1v5 zlib1g ca-certificates wget tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --create-home app \
 && mkdir -p /data && chown app:app /data
COPY --from=build /out/ /usr/local/bin/
USER 10001:10001
WORKDIR /app
EXPOSE 9001 9101 9102 9103 9104
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["pipeline", "--help"]
