#!/usr/bin/env bash
# Contention benchmark: N concurrent `tagbump update --direct` writers, each
# bumping its own service, against a real sshd with stock settings
# (MaxStartups 10:30:100, the default) and against lighttpd + git http-backend,
# both on 127.0.0.1. Run by hand:
#
#   bench/contention.sh              # N="16 32 64" by default
#   N="32" bench/contention.sh
#
# Default tagbump flags (--attempts 10, --timeout 300). For each transport and
# N it prints: writers landed / lost, the exit codes of the lost ones, retries
# used (total and by the busiest writer), the wall time of the whole burst,
# and whether main's history is linear with exactly N new commits.
set -euo pipefail
cd "$(dirname "$0")/.."
NS=${N:-16 32 64}
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/tagbump-contention.XXXXXX)
cleanup() {
  kill "$(cat "$WORK/sshd.pid" 2>/dev/null)" 2>/dev/null || true
  kill "$(cat "$WORK/lighttpd.pid" 2>/dev/null)" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
[ -x /usr/sbin/lighttpd ] || need+=(lighttpd)
command -v git >/dev/null || need+=(git)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

echo "== building tagbump (release)"
cargo build --release --locked -q
TAGBUMP=$PWD/target/release/tagbump
MAXN=0; for n in $NS; do [ "$n" -gt "$MAXN" ] && MAXN=$n; done
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

seed() {  # $1 = bare repo path: one values file per service, 0..MAXN-1
  rm -rf "$1"; git init -q --bare --initial-branch=main "$1"
  git -C "$1" config http.receivepack true
  local w=$WORK/seed; rm -rf "$w"; git init -q --initial-branch=main "$w"
  for i in $(seq 0 $((MAXN - 1))); do
    mkdir -p "$w/apps/svc-$i"
    printf 'image:\n  repository: registry.example.com/team/svc-%s\n  tag: "1.0.0" # CI\n' "$i" > "$w/apps/svc-$i/values.yaml"
  done
  git -C "$w" add -A
  git -C "$w" -c user.name=seed -c user.email=seed@example.test commit -q -m seed
  git -C "$w" push -q "$1" main
}

echo "== starting sshd (stock MaxStartups) and lighttpd + git http-backend"
mkdir -p "$WORK/repos" "$WORK/www" /run/sshd 2>/dev/null || mkdir -p "$WORK/repos" "$WORK/www"
SSH_PORT=$(free_port); HTTP_PORT=$(free_port)
USER_NAME=$(id -un)
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
Port $SSH_PORT
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
TOKEN=bench-token-0123456789
echo "oauth2:$TOKEN" > "$WORK/users"
cat > "$WORK/lighttpd.conf" <<EOF
server.modules = ("mod_auth", "mod_authn_file", "mod_cgi", "mod_setenv", "mod_alias")
server.bind = "127.0.0.1"
server.port = $HTTP_PORT
server.document-root = "$WORK/www"
server.errorlog = "$WORK/lighttpd.log"
server.pid-file = "$WORK/lighttpd.pid"
server.max-request-size = 0
server.feature-flags = ("server.h2proto" => "disable")
alias.url = ("/" => "$(git --exec-path)/git-http-backend/")
cgi.assign = ("" => "")
setenv.set-environment = ("GIT_PROJECT_ROOT" => "$WORK/repos", "GIT_HTTP_EXPORT_ALL" => "1")
auth.backend = "plain"
auth.backend.plain.userfile = "$WORK/users"
auth.require = ("/" => ("method" => "basic", "realm" => "git", "require" => "valid-user"))
EOF
/usr/sbin/lighttpd -f "$WORK/lighttpd.conf"
for p in $SSH_PORT $HTTP_PORT; do
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break; sleep 0.1; done
done
export SSH_PRIVATE_KEY; SSH_PRIVATE_KEY=$(cat "$WORK/id_ed25519")
export SSH_KNOWN_HOSTS="[127.0.0.1]:$SSH_PORT $(cut -d' ' -f1,2 "$WORK/host_key.pub")"
export TAGBUMP_GIT_TOKEN=$TOKEN

REPORT=$OUT/contention.md
{
  echo "| transport | N | landed | lost (exit codes) | retries (total / most by one writer) | wall time | history |"
  echo "|---|---|---|---|---|---|---|"
} > "$REPORT"
for transport in ssh http; do
  for n in $NS; do
    seed "$WORK/repos/m.git"
    if [ "$transport" = ssh ]; then URL="ssh://$USER_NAME@127.0.0.1:$SSH_PORT/m.git"
    else URL="http://127.0.0.1:$HTTP_PORT/m.git"; fi
    rm -rf "$WORK/runs"; mkdir -p "$WORK/runs"
    start=$(date +%s.%N)
    for i in $(seq 0 $((n - 1))); do
      ( "$TAGBUMP" update --repo "$URL" --direct \
          --image "registry.example.com/team/svc-$i:2.0.$i" >/dev/null 2>"$WORK/runs/$i.err"
        echo $? > "$WORK/runs/$i.code" ) &
    done
    wait
    end=$(date +%s.%N)
    landed=0; lost=0; codes=""; total=0; most=0
    for i in $(seq 0 $((n - 1))); do
      code=$(cat "$WORK/runs/$i.code")
      if [ "$code" = 0 ]; then landed=$((landed + 1)); else lost=$((lost + 1)); codes="$codes $code"; fi
      r=$(grep -c "trying again" "$WORK/runs/$i.err" || true)
      total=$((total + r)); [ "$r" -gt "$most" ] && most=$r
    done
    new=$(( $(git -C "$WORK/repos/m.git" rev-list --count main) - 1 ))
    merges=$(git -C "$WORK/repos/m.git" rev-list --min-parents=2 --count main)
    history="linear, $new new commits"; [ "$merges" = 0 ] || history="$merges merges!"
    wall=$(python3 -c "print(f'{$end - $start:.1f}')")
    printf '%-6s N=%-3s landed %3s/%-3s lost %-3s%s retries %s (max %s) %6ss  %s\n' \
      "$transport" "$n" "$landed" "$n" "$lost" "${codes:+ (exit$codes)}" "$total" "$most" "$wall" "$history"
    echo "| $transport | $n | $landed/$n | $lost${codes:+ (exit$codes)} | $total / $most | ${wall} s | $history |" >> "$REPORT"
    if [ "$lost" -gt 0 ]; then
      echo "   last error of a lost writer:"; for i in $(seq 0 $((n - 1))); do
        [ "$(cat "$WORK/runs/$i.code")" = 0 ] || { grep '^error:' "$WORK/runs/$i.err" | tail -1 | sed 's/^/   /'; break; }
      done
    fi
  done
done
echo "wrote $REPORT"
