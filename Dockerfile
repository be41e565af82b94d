# syntax=docker/dockerfile:1
# driftless in a container: a static (musl) binary, CA certificates, git (driftless asks
# it which commit a build came from, for the stale-base guard) and a non-root user.
#   docker run --rm -v "$PWD:/work" -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY \
#     ghcr.io/driftless-dev/driftless deploy staging --yes
FROM rust:1.94-alpine3.22 AS build
RUN apk add --no-cache musl-dev gcc make perl
WORKDIR /src
COPY . .
# The commit for `driftless --version` (.git is not in the build context).
ARG DRIFTLESS_COMMIT=
ENV DRIFTLESS_COMMIT=${DRIFTLESS_COMMIT}
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked && cp target/release/driftless /usr/local/bin/driftless

FROM alpine:3.22
RUN apk add --no-cache ca-certificates git \
 && adduser -D -H -u 10001 driftless \
 && git config --system --add safe.directory '*'
COPY --from=build /usr/local/bin/driftless /usr/local/bin/driftless
USER 10001:10001
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/driftless"]
CMD ["--help"]
