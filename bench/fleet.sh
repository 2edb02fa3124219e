#!/usr/bin/env bash
# A fleet of N images (default 500) with 8 to 50 tags each in a real registry
# (CNCF distribution, `docker-registry`), and a manifest repository with one
# app per image. Compares one fleet run (`images:` in the config file) with one
# single-image run per image, doing the same job (semver:^1, the newest 1.x
# written, --direct): wall time, registry requests per image, peak memory.
#
#   bench/fleet.sh [N]        needs docker-registry, skopeo, git, curl, GNU time
#
# The tags are written into the registry's storage directly (link files to
# one pushed image's blobs): pushing 15,000 tags through the API would take
# longer than the runs measured.
set -euo pipefail

N=${1:-500}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${TAGBUMP:-$ROOT/target/release/tagbump}
[ -x "$BIN" ] || cargo build --release --manifest-path "$ROOT/Cargo.toml" >/dev/null
WORK=$(mktemp -d)
trap 'kill $REGISTRY_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
HOST=127.0.0.1:$PORT
cat >"$WORK/registry.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $WORK/data
http:
  addr: $HOST
EOF
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REGISTRY_PID=$!
for _ in $(seq 100); do curl -sf "http://$HOST/v2/" >/dev/null && break; sleep 0.1; done

# One real image, pushed with skopeo: its blobs and manifest back every tag.
mkdir -p "$WORK/layout"
python3 - "$WORK/layout" <<'EOF'
import hashlib, json, os, sys, tarfile, io
d = sys.argv[1]
os.makedirs(f"{d}/blobs/sha256", exist_ok=True)
def blob(data):
    h = hashlib.sha256(data).hexdigest()
    open(f"{d}/blobs/sha256/{h}", "wb").write(data)
    return {"digest": f"sha256:{h}", "size": len(data)}
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    info = tarfile.TarInfo("hello"); data = b"hello\n"; info.size = len(data)
    t.addfile(info, io.BytesIO(data))
layer = blob(buf.getvalue()); layer["mediaType"] = "application/vnd.oci.image.layer.v1.tar"
config = blob(json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode())
config["mediaType"] = "application/vnd.oci.image.config.v1+json"
manifest = blob(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": config, "layers": [layer]}).encode())
manifest["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
manifest["annotations"] = {"org.opencontainers.image.ref.name": "seed"}
json.dump({"schemaVersion": 2, "manifests": [manifest]}, open(f"{d}/index.json", "w"))
open(f"{d}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
EOF
skopeo copy -q --dest-tls-verify=false "oci:$WORK/layout:seed" "docker://$HOST/seed/app:1.0.0"

# N repositories, each linking the seed's blobs, with 8..50 tags: 1.0.0 …
# up to the newest 1.x, and a 2.0.0 no ^1 policy may choose.
python3 - "$WORK" "$N" <<'EOF'
import os, random, sys
work, n = sys.argv[1], int(sys.argv[2])
repos = f"{work}/data/docker/registry/v2/repositories"
seed = f"{repos}/seed/app"
links = []
for kind in ("_layers/sha256", "_manifests/revisions/sha256"):
    for h in os.listdir(f"{seed}/{kind}"):
        links.append((kind, h))
manifest = open(f"{seed}/_manifests/tags/1.0.0/current/link").read()
random.seed(7)
newest = {}
for i in range(n):
    name = f"{repos}/team/app{i:03}"
    for kind, h in links:
        os.makedirs(f"{name}/{kind}/{h}", exist_ok=True)
        open(f"{name}/{kind}/{h}/link", "w").write(f"sha256:{h}")
    count = random.randint(8, 50)
    tags = [f"1.{m}.{p}" for m in range(10) for p in range(5)][: count - 1] + ["2.0.0"]
    for tag in tags:
        os.makedirs(f"{name}/_manifests/tags/{tag}/current", exist_ok=True)
        open(f"{name}/_manifests/tags/{tag}/current/link", "w").write(manifest)
    newest[i] = [t for t in tags if t.startswith("1.")][-1]
open(f"{work}/newest", "w").write("\n".join(f"app{i:03} {t}" for i, t in newest.items()))
EOF

# The manifest repository: one Deployment per app, at 1.0.0.
git init -q --bare --initial-branch=main "$WORK/manifests.git"
git clone -q "$WORK/manifests.git" "$WORK/seed" 2>/dev/null
for i in $(seq -f %03g 0 $((N - 1))); do
  mkdir -p "$WORK/seed/apps/app$i"
  printf 'spec:\n  containers:\n    - name: app\n      image: %s/team/app%s:1.0.0\n' "$HOST" "$i" \
    >"$WORK/seed/apps/app$i/deploy.yaml"
done
git -C "$WORK/seed" add -A && git -C "$WORK/seed" -c user.name=b -c user.email=b@b commit -qm seed
git -C "$WORK/seed" push -q origin main
BASE=$(git -C "$WORK/manifests.git" rev-parse main)

{
  echo "repo: $WORK/manifests.git"
  echo "images:"
  for i in $(seq -f %03g 0 $((N - 1))); do
    printf '  - name: %s/team/app%s\n    policy: semver:^1\n    in: [apps/app%s]\n' "$HOST" "$i" "$i"
  done
} >"$WORK/fleet.yaml"

requests() { grep -c '"\(GET\|HEAD\) /v2/team/' "$WORK/registry.log" || true; }
measure() { # label, then the command
  local label=$1; shift
  local before; before=$(requests)
  local start; start=$(date +%s.%N)
  /usr/bin/time -f '%M' -o "$WORK/rss" "$@" >/dev/null 2>"$WORK/err" || { cat "$WORK/err"; exit 1; }
  local end; end=$(date +%s.%N)
  local after; after=$(requests)
  printf '%-28s %8.2f s  %6.2f requests/image  %7d KiB peak\n' "$label" \
    "$(echo "$end - $start" | bc)" "$(echo "scale=2; ($after - $before) / $N" | bc)" "$(cat "$WORK/rss")"
}

echo "$N images, 8-50 tags each (registry $HOST)"
# Both must end with the same files: every app at its newest 1.x.
check() {
  local bad=0
  while read -r app tag; do
    git -C "$WORK/manifests.git" show "main:apps/$app/deploy.yaml" | grep -q ":$tag\$" || bad=$((bad + 1))
  done <"$WORK/newest"
  echo "  apps not at their newest 1.x: $bad"
}

measure "fleet: one run" "$BIN" update --config "$WORK/fleet.yaml" --direct -q
check
git -C "$WORK/manifests.git" update-ref refs/heads/main "$BASE"

single_runs() {
  local peak=0
  for i in $(seq -f %03g 0 $((N - 1))); do
    /usr/bin/time -f '%M' -o "$WORK/one" "$BIN" update --repo "$WORK/manifests.git" \
      --image "$HOST/team/app$i" --tag-policy 'semver:^1' --in "apps/app$i" --direct -q
    local rss; rss=$(cat "$WORK/one"); [ "$rss" -gt "$peak" ] && peak=$rss
  done
  echo "$peak" >"$WORK/single-peak"
}
export -f single_runs
export BIN WORK N HOST
measure "single: one run per image" bash -c single_runs
echo "  (peak of one single run: $(cat "$WORK/single-peak") KiB)"
check
