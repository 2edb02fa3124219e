#!/usr/bin/env bash
# What asking the registry costs: `tagbump update --verify-image` and
# `--pin-digest` against the same update without them, and the requests each
# sends, beside `skopeo inspect` (the usual shell way to check a tag or read a
# digest in CI). A real registry (Debian's docker-registry, anonymous) on
# 127.0.0.1 with its access log; a tiny image pushed with skopeo.
#
#   bench/registry.sh [RUNS]        (default 20; needs docker-registry, skopeo)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-20}
cargo build --release --quiet
BIN=$PWD/target/release/tagbump
W=$(mktemp -d)
trap 'kill $(cat "$W/pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$W"' EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
HOST=127.0.0.1:$PORT
cat > "$W/config.yml" <<EOF
version: 0.1
log: {level: info, accesslog: {disabled: false}}
storage: {filesystem: {rootdirectory: $W/data}}
http: {addr: $HOST}
EOF
docker-registry serve "$W/config.yml" > "$W/registry.log" 2>&1 &
echo $! > "$W/pid"
for _ in $(seq 50); do curl -s -o /dev/null "http://$HOST/v2/" && break; sleep 0.1; done

# A one-layer OCI image.
python3 - "$W/img" <<'PY'
import hashlib, io, json, os, sys, tarfile
d = sys.argv[1]; os.makedirs(d + "/blobs/sha256")
def blob(b):
    h = hashlib.sha256(b).hexdigest(); open(f"{d}/blobs/sha256/{h}", "wb").write(b)
    return {"digest": "sha256:" + h, "size": len(b)}
raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w") as t:
    data = b"bench\n"; i = tarfile.TarInfo("id.txt"); i.size = len(data); t.addfile(i, io.BytesIO(data))
layer = blob(raw.getvalue())
cfg = blob(json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode())
m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
     "config": dict(cfg, mediaType="application/vnd.oci.image.config.v1+json"),
     "layers": [dict(layer, mediaType="application/vnd.oci.image.layer.v1.tar")]}
top = dict(blob(json.dumps(m).encode()), mediaType=m["mediaType"])
json.dump({"schemaVersion": 2, "manifests": [top]}, open(d + "/index.json", "w"))
open(d + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
PY
skopeo copy -q --dest-tls-verify=false "oci:$W/img" "docker://$HOST/team/app:1.4.2"

# The manifest repository: a local bare repo with one reference to the image.
git init -q --bare --initial-branch=main "$W/repo.git"
git clone -q "$W/repo.git" "$W/seed" 2>/dev/null
mkdir -p "$W/seed/apps/app"
printf 'image: %s/team/app:1.0.0\n' "$HOST" > "$W/seed/apps/app/deploy.yaml"
git -C "$W/seed" add . && git -C "$W/seed" -c user.name=b -c user.email=b@x commit -qm seed
git -C "$W/seed" push -q origin main

requests() { grep -c '"[A-Z]* /v2/' "$W/registry.log" || true; }
mean_ms() { # mean wall time of RUNS runs of "$@", in ms
  local start end
  start=$(date +%s%N)
  for _ in $(seq "$RUNS"); do "$@" > /dev/null 2>&1; done
  end=$(date +%s%N)
  echo $(( (end - start) / RUNS / 1000000 ))
}
row() { # name, command...
  local name=$1; shift
  local before after ms
  before=$(requests); "$@" > /dev/null 2>&1; after=$(requests)
  ms=$(mean_ms "$@")
  printf '| %s | %s ms | %s |\n' "$name" "$ms" "$((after - before))"
}
update() { "$BIN" update --repo "$W/repo.git" --image "$HOST/team/app:1.4.2" --direct --dry-run "$@"; }
echo "| run ($RUNS runs each) | mean | registry requests |"
echo "|---|---|---|"
row "tagbump update --dry-run" update
row "tagbump update --dry-run --verify-image" update --verify-image
row "tagbump update --dry-run --pin-digest" update --pin-digest
row "skopeo inspect --raw (digest by hand)" skopeo inspect --raw --tls-verify=false "docker://$HOST/team/app:1.4.2"
row "skopeo inspect (tag check by hand)" skopeo inspect --tls-verify=false "docker://$HOST/team/app:1.4.2"
