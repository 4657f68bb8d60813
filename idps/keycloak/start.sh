#!/usr/bin/env bash
# Starts the installed Keycloak in dev mode on 127.0.0.1 with the loadtest realm and USERS test
# users imported, prints `listening on ISSUER` once it serves the realm, and stops it on SIGTERM
# or SIGINT. Each start has a home of its own (RUN_DIR), so runs never share an import folder.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=versions.sh
source "$here/versions.sh"
dist="$root/target/keycloak/keycloak-$KEYCLOAK_VERSION"
if [ ! -x "$dist/bin/kc.sh" ]; then
  echo "Keycloak $KEYCLOAK_VERSION is not installed: run bash idps/keycloak/install.sh first" >&2
  exit 2
fi
port="${PORT:-0}"
users="${USERS:-1000}"
boot_timeout_s="${BOOT_TIMEOUT_S:-240}"
# A run directory of the caller's is kept (it holds keycloak.log); a temporary one is removed.
keep_run_dir=1
if [ -n "${RUN_DIR:-}" ]; then
  run_dir="$RUN_DIR"
  mkdir -p "$run_dir"
else
  mkdir -p "$root/target/keycloak"
  run_dir="$(mktemp -d "$root/target/keycloak/run.XXXXXX")"
  keep_run_dir=0
fi
# HTTPS (and HTTP/2 by ALPN) when TLS_CERT and TLS_KEY name PEM files. Dev mode keeps plain
# HTTP on as well, whatever --http-enabled says: it gets a free port of its own, and the issuer
# printed is the HTTPS one.
listen=(--http-host=127.0.0.1 --http-port="$port")
scheme=http
if [ -n "${TLS_CERT:-}" ]; then
  listen=(--http-host=127.0.0.1 --http-port=0 --https-port="$port"
    --https-certificate-file="$TLS_CERT" --https-certificate-key-file="${TLS_KEY:?TLS_KEY must name the key of TLS_CERT}")
  scheme=https
fi

# A home of its own: kc.sh finds the home from its own path, and dev mode imports every file in
# the home's data/import. The libraries and themes are shared, read-only after the first start.
home="$run_dir/home"
rm -rf "$home"
mkdir -p "$home/data/import"
cp -R "$dist/bin" "$dist/conf" "$home/"
for shared in lib themes providers; do
  ln -s "$dist/$shared" "$home/$shared"
done
cp "$here/loadtest-realm.json" "$home/data/import/loadtest-realm.json"
bash "$here/users.sh" "$users" >"$home/data/import/loadtest-users-0.json"

log="$run_dir/keycloak.log"
# A test target on a shared machine: a bounded heap instead of 70 % of the machine's memory.
export JAVA_OPTS_KC_HEAP="${JAVA_OPTS_KC_HEAP:--Xms256m -Xmx2g}"
"$home/bin/kc.sh" start-dev "${listen[@]}" --http-management-port=0 \
  --db=dev-mem --import-realm >"$log" 2>&1 &
keycloak=$!

tailer=""
# One way out, whatever the path (a signal, a failed start, Keycloak exiting on its own): the
# JVM stopped (kc.sh passes SIGTERM on to it) and waited for, the log follower ended, and a
# temporary run directory removed.
cleanup() {
  trap - EXIT TERM INT
  [ -z "$tailer" ] || kill "$tailer" 2>/dev/null || true
  kill -TERM "$keycloak" 2>/dev/null || true
  wait "$keycloak" 2>/dev/null || true
  [ "$keep_run_dir" = 1 ] || rm -rf "$run_dir"
}
trap cleanup EXIT
trap 'exit 0' TERM INT

deadline=$((SECONDS + boot_timeout_s))
url=""
while [ -z "$url" ]; do
  if ! kill -0 "$keycloak" 2>/dev/null; then
    echo "Keycloak exited while starting; the end of $log:" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "Keycloak did not start within ${boot_timeout_s} s; the end of $log:" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
  url="$(grep 'Listening on: ' "$log" | grep -o "$scheme://127\.0\.0\.1:[0-9]*" | head -n 1 || true)"
  [ -n "$url" ] || sleep 0.2
done
echo "listening on $url/realms/loadtest"
# Keycloak's own log, for whoever reads this script's stderr, from here on; the follower ends
# with the JVM.
tail --pid="$keycloak" -n +1 -f "$log" >&2 &
tailer=$!
wait "$keycloak"
