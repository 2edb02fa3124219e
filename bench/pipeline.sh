#!/usr/bin/env bash
# Benchmark: tagbump's update vs the git CLI doing the same job, on a large
# manifest repo served by a real sshd on 127.0.0.1. Run by hand:
#
#   bench/pipeline.sh            # FILES=8000 COMMITS=20000 RUNS=5 by default
#
# Each variant clones main over SSH, changes one image tag, commits and
# pushes to main; wall time and peak RSS (largest process) are the median
# of RUNS runs. Variants:
#   floor       bare depth-1 `git clone` + commit built with plumbing + `git push`
#               (the transfer floor: no checkout, no YAML work)
#   tagbump     tagbump update --set FILE:image.tag=… --direct
#   tagbump-img tagbump update --image … --in apps/svc-N --direct (image scan)
#   tagbump-all tagbump update --image … --direct (scans all FILES YAML files)
#   git-shallow git clone --depth 1 + checkout, sed, git commit, git push
#   git-full    git clone --single-branch (full history) + checkout, sed, commit, push
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${FILES:-8000}
COMMITS=${COMMITS:-20000}
RUNS=${RUNS:-5}
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/tagbump-bench.XXXXXX)
trap 'kill $(cat "$WORK/sshd.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$WORK"' EXIT

need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
[ -x /usr/bin/time ] || need+=(time)
command -v git >/dev/null || need+=(git)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

echo "== building tagbump (release)"
cargo build --release --locked -q
TAGBUMP=$PWD/target/release/tagbump

echo "== generating a manifest repo: $FILES files, $COMMITS commits"
mkdir -p "$WORK/repos"
git init -q --bare --initial-branch=main "$WORK/repos/manifests.git"
python3 - "$FILES" "$COMMITS" <<'PY' | git -C "$WORK/repos/manifests.git" fast-import --quiet
import sys
files, commits = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout.buffer
def data(text):
    b = text.encode()
    out.write(b"data %d\n" % len(b)); out.write(b); out.write(b"\n")
def values(i, tag):
    return (f"# Values for svc-{i}\nreplicaCount: 2\nimage:\n  repository: registry.example.com/team/svc-{i}\n"
            f"  tag: \"{tag}\"   # written by CI\n  pullPolicy: IfNotPresent\nresources:\n  limits: {{cpu: 500m, memory: 256Mi}}\n")
def deploy(i):
    return (f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: svc-{i}\nspec:\n  template:\n    spec:\n"
            f"      containers:\n        - name: app\n          image: registry.example.com/team/svc-{i}:1.0.0\n")
services = files // 2
t = 1700000000
out.write(b"commit refs/heads/main\nmark :1\ncommitter seed <seed@example.test> %d +0000\n" % t)
data("initial manifests")
for i in range(services):
    out.write(f"M 100644 inline apps/svc-{i}/values.yaml\n".encode()); data(values(i, "1.0.0"))
    out.write(f"M 100644 inline apps/svc-{i}/deployment.yaml\n".encode()); data(deploy(i))
for n in range(1, commits):
    i = (n * 7919) % services
    out.write(b"commit refs/heads/main\ncommitter ci <ci@example.test> %d +0000\n" % (t + n))
    data(f"Update svc-{i} to 1.0.{n}")
    if n == 1:
        out.write(b"from :1\n")
    out.write(f"M 100644 inline apps/svc-{i}/values.yaml\n".encode()); data(values(i, f"1.0.{n}"))
PY
git -C "$WORK/repos/manifests.git" gc -q --aggressive --prune=now 2>/dev/null || git -C "$WORK/repos/manifests.git" gc -q
du -sh "$WORK/repos/manifests.git" | awk '{print "repo size on the server: " $1}'

echo "== starting sshd on 127.0.0.1"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
USER_NAME=$(id -un)
mkdir -p /run/sshd 2>/dev/null || true
ssh-keygen -q -t ed25519 -N '' -f "$WORK/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$WORK/id_ed25519"
cat > "$WORK/git-serve" <<EOF
#!/bin/sh
cmd=\${SSH_ORIGINAL_COMMAND%% *}; path=\${SSH_ORIGINAL_COMMAND#* }; path=\${path#\\'}; path=\${path%\\'}; path=\${path#/}
exec git-shell -c "\$cmd '$WORK/repos/\$path'"
EOF
chmod 755 "$WORK/git-serve"
echo "command=\"$WORK/git-serve\",restrict $(cat "$WORK/id_ed25519.pub")" > "$WORK/authorized_keys"
cat > "$WORK/sshd_config" <<EOF
Port $PORT
ListenAddress 127.0.0.1
HostKey $WORK/host_key
PidFile $WORK/sshd.pid
AuthorizedKeysFile $WORK/authorized_keys
AllowUsers $USER_NAME
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
EOF
/usr/sbin/sshd -f "$WORK/sshd_config" -E "$WORK/sshd.log"
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
KNOWN="[127.0.0.1]:$PORT $(cut -d' ' -f1,2 "$WORK/host_key.pub")"
echo "$KNOWN" > "$WORK/known_hosts"
URL="ssh://$USER_NAME@127.0.0.1:$PORT/manifests.git"
export GIT_SSH_COMMAND="ssh -i $WORK/id_ed25519 -o IdentitiesOnly=yes -o UserKnownHostsFile=$WORK/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes"
export SSH_PRIVATE_KEY; SSH_PRIVATE_KEY=$(cat "$WORK/id_ed25519")
export SSH_KNOWN_HOSTS="$KNOWN"
GITID=(-c user.name=bench -c user.email=bench@example.test)
SVC=$((FILES / 4))
FILE=apps/svc-$SVC/values.yaml

floor() {
  local d=$WORK/run; rm -rf "$d"
  git clone -q --bare --depth 1 --single-branch --branch main "$URL" "$d"
  local blob tree commit
  blob=$(git -C "$d" show "main:$FILE" | sed "s/tag: \"[^\"]*\"/tag: \"$1\"/" | git -C "$d" hash-object -w --stdin)
  GIT_INDEX_FILE=$d/index git -C "$d" read-tree main
  GIT_INDEX_FILE=$d/index git -C "$d" update-index --cacheinfo "100644,$blob,$FILE"
  tree=$(GIT_INDEX_FILE=$d/index git -C "$d" write-tree)
  commit=$(git -C "$d" "${GITID[@]}" commit-tree "$tree" -p main -m "bump $1")
  git -C "$d" push -q "$URL" "$commit:refs/heads/main"
  rm -rf "$d"
}
git_clone_edit_push() {  # $1 = tag, $2.. = extra clone flags
  local tag=$1 d=$WORK/run; shift; rm -rf "$d"
  git clone -q "$@" --single-branch --branch main "$URL" "$d"
  sed -i "s/tag: \"[^\"]*\"/tag: \"$tag\"/" "$d/$FILE"
  git -C "$d" "${GITID[@]}" commit -q -am "bump $tag"
  git -C "$d" push -q origin main
  rm -rf "$d"
}
variant() {
  local tag=$1
  case $2 in
    floor) floor "$tag" ;;
    tagbump) "$TAGBUMP" update --repo "$URL" --direct --set "$FILE:image.tag=$tag" 2>/dev/null ;;
    tagbump-img) "$TAGBUMP" update --repo "$URL" --direct --image "registry.example.com/team/svc-$SVC:$tag" --in "apps/svc-$SVC" 2>/dev/null ;;
    tagbump-all) "$TAGBUMP" update --repo "$URL" --direct --image "registry.example.com/team/svc-$SVC:$tag" 2>/dev/null ;;
    git-shallow) git_clone_edit_push "$tag" --depth 1 ;;
    git-full) git_clone_edit_push "$tag" ;;
  esac
}
export -f floor git_clone_edit_push variant
export WORK URL FILE SVC TAGBUMP
export GITID_NAME=bench

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
REPORT=$OUT/pipeline.md
{
  echo "| variant | wall time (median of $RUNS) | peak RSS (largest process) |"
  echo "|---|---|---|"
} > "$REPORT"
n=0
for v in floor tagbump tagbump-img tagbump-all git-shallow git-full; do
  : > "$WORK/times"
  for r in $(seq "$RUNS"); do
    n=$((n + 1))
    /usr/bin/time -f "%e %M" -o "$WORK/t" bash -c "$(declare -f floor git_clone_edit_push variant); GITID=(-c user.name=bench -c user.email=bench@example.test); variant 9.$n.0 $v"
    cat "$WORK/t" >> "$WORK/times"
  done
  wall=$(cut -d' ' -f1 "$WORK/times" | median)
  rss=$(cut -d' ' -f2 "$WORK/times" | median)
  printf '%-12s %6ss %8s KiB\n' "$v" "$wall" "$rss"
  echo "| $v | ${wall} s | $((rss / 1024)) MiB |" >> "$REPORT"
done
echo "== check: the server repo is intact and linear"
git -C "$WORK/repos/manifests.git" fsck --no-progress --connectivity-only >/dev/null && echo "fsck ok"
echo "$(git -C "$WORK/repos/manifests.git" rev-list --count main) commits on main; merges: $(git -C "$WORK/repos/manifests.git" rev-list --min-parents=2 --count main)"
echo "wrote $REPORT"
