#!/usr/bin/env bash
# N jobs at once (default 12), each bumping one image: all joining one review
# branch (--join), against one review branch each (the default). Local bare
# repository (the path transport), release build, --forge none.
#
#   bench/join.sh [N] [ROUNDS]
set -euo pipefail
N=${1:-12}
ROUNDS=${2:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${TAGBUMP:-$ROOT/target/release/tagbump}
[ -x "$BIN" ] || cargo build --release --manifest-path "$ROOT/Cargo.toml" >/dev/null
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

seed() {
  rm -rf "$WORK/repo.git" "$WORK/seed"
  git init -q --bare --initial-branch=main "$WORK/repo.git"
  git init -q --initial-branch=main "$WORK/seed"
  for i in $(seq 0 $((N - 1))); do
    mkdir -p "$WORK/seed/apps/svc-$i"
    printf 'image:\n  repository: registry.example.com/team/svc-%s\n  tag: "1.0.0"\n' "$i" \
      >"$WORK/seed/apps/svc-$i/values.yaml"
  done
  git -C "$WORK/seed" add -A
  git -C "$WORK/seed" -c user.name=b -c user.email=b@b commit -qm seed
  git -C "$WORK/seed" push -q "$WORK/repo.git" main
}

jobs() { # extra flags for every job
  for i in $(seq 0 $((N - 1))); do
    "$BIN" update --repo "$WORK/repo.git" --image "registry.example.com/team/svc-$i:2.0.$i" \
      --in "apps/svc-$i" --forge none --attempts 100 -q "$@" >/dev/null 2>&1 &
  done
  wait
}

measure() { # label, flags
  local label=$1; shift
  local total=0
  for _ in $(seq "$ROUNDS"); do
    seed
    local start; start=$(date +%s%N)
    jobs "$@"
    local end; end=$(date +%s%N)
    total=$((total + end - start))
  done
  printf '%-40s %6d ms (mean of %d)\n' "$label" $((total / ROUNDS / 1000000)) "$ROUNDS"
}

echo "$N jobs at once"
measure "joined: one branch (--join)" --branch release/1 --join
echo "  commits on the joined branch: $(git -C "$WORK/repo.git" rev-list --count main..release/1)"
measure "separate: one review branch each"
echo "  review branches: $(git -C "$WORK/repo.git" for-each-ref refs/heads/tagbump | wc -l)"
