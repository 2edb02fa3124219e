# A small image for GitLab jobs (`image:`) and other CI: the static tagbump
# binary, CA certificates, a shell (GitLab runs job scripts with one), non-root.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends musl-tools \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
RUN cargo build --locked --release --target x86_64-unknown-linux-musl \
 && install -m 0755 target/x86_64-unknown-linux-musl/release/tagbump /tagbump

FROM alpine:3.20
RUN apk add --no-cache ca-certificates \
 && adduser -D -u 10001 -h /home/tagbump tagbump
COPY --from=build /tagbump /usr/local/bin/tagbump
USER 10001
ENV HOME=/home/tagbump
ENTRYPOINT []
CMD ["tagbump", "--help"]
