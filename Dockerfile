# syntax=docker/dockerfile:1
# The tagbump image for GitLab jobs (`image:`) and other CI: the released static
# binary, Alpine's CA certificates and busybox shell (GitLab runs job scripts
# with one), a non-root user. Built from the release archives, not from source:
# the release pipelines (.github/workflows/release.yml, .gitlab-ci.yml) unpack
# tagbump-<arch>-unknown-linux-musl.tar.gz into image/<TARGETARCH>/ and run
#   docker buildx build --platform linux/amd64,linux/arm64 .
# Nothing runs for the target platform, so no emulation is needed.
# From source instead:
#   cargo build --release --target x86_64-unknown-linux-musl
#   mkdir -p image/amd64 && cp target/x86_64-unknown-linux-musl/release/tagbump image/amd64/
#   docker build .

# The user is made on the build machine's platform; /etc/passwd is text.
FROM --platform=$BUILDPLATFORM alpine:3.22 AS user
RUN adduser -D -u 10001 -h /home/tagbump tagbump

FROM alpine:3.22
ARG TARGETARCH
COPY --from=user /etc/passwd /etc/group /etc/
COPY --from=user --chown=10001:10001 /home/tagbump /home/tagbump
COPY --chmod=0755 image/${TARGETARCH}/tagbump /usr/local/bin/tagbump
USER 10001:10001
WORKDIR /home/tagbump
ENV HOME=/home/tagbump
ENTRYPOINT []
CMD ["tagbump", "--help"]
