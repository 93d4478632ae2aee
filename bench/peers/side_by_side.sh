#!/usr/bin/env bash
# The side-by-side run of ../shared/peers/: node-oidc-provider and mandat driven by the same
# `oidc-load` driver, one after the other, on the same machine, into one results file.
#
#   bash bench/peers/side_by_side.sh MANDAT_BIN OIDC_LOAD NODE_DIR OUT_FILE
#
# MANDAT_BIN: a release build of mandat; OIDC_LOAD: the built driver of shared/peers/oidc-load;
# NODE_DIR: the folder prepared by shared/peers/node-oidc/setup.sh. DUR (10 s), CONC (32),
# PREMINT (16000 codes for the token runs) and LOWER ("8 16": the flow at lower concurrency)
# change the runs. mandat runs on a fresh SQLite database in a temporary folder; its driver is
# a single partner client, so the per-client limit is raised for the run
# (MANDAT_OIDC_CLIENT_RATE), as node-oidc-provider has none.
set -euo pipefail
BIN=$(realpath "$1")
LOAD=$(realpath "$2")
NODE_DIR=$(realpath "$3")
OUT=$(realpath -m "$4")
DUR=${DUR:-10}
CONC=${CONC:-32}
PREMINT=${PREMINT:-16000}
LOWER=${LOWER:-8 16}
HERE=$(cd "$(dirname "$0")" && pwd)

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
run() { # pid label command...
  local pid=$1 label=$2
  shift 2
  echo "## $label (load before: $(cut -d' ' -f1-3 /proc/loadavg))" | tee -a "$OUT"
  local c0
  c0=$(cpu_ticks "$pid")
  "$@" 2>&1 | grep -v '^pre-minted' | tee -a "$OUT"
  echo "  server CPU during the run: $(( ($(cpu_ticks "$pid") - c0) * 10 )) ms" | tee -a "$OUT"
  echo | tee -a "$OUT"
}
wait_for() { for _ in $(seq 100); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; return 1; }

{
  echo "# Side by side: node-oidc-provider $(node -p "require('$NODE_DIR/node_modules/oidc-provider/package.json').version") (node $(node --version), NODE_ENV=production, in memory)"
  echo "# then mandat $(git -C "$HERE" rev-parse --short HEAD 2>/dev/null || echo '?') (release, SQLite), same driver, loopback, $(nproc) cores, $(date -u +%FT%TZ)"
  echo
} | tee "$OUT"

# node-oidc-provider
(cd "$NODE_DIR" && NODE_ENV=production exec node server.mjs >server.log 2>&1) &
NODE_PID=$!
trap 'kill $NODE_PID 2>/dev/null || true' EXIT
wait_for http://127.0.0.1:3000/.well-known/openid-configuration
run "$NODE_PID" "node-oidc-provider, flow c=$CONC" "$LOAD" flow -c "$CONC" -d "$DUR"
for c in $LOWER; do run "$NODE_PID" "node-oidc-provider, flow c=$c" "$LOAD" flow -c "$c" -d "$DUR"; done
run "$NODE_PID" "node-oidc-provider, token c=$CONC ($PREMINT pre-minted codes)" \
  "$LOAD" token -c "$CONC" -d "$DUR" --premint "$PREMINT"
kill "$NODE_PID"
sleep 1

# mandat
WORK=$(mktemp -d)
(cd "$WORK" && MANDAT_TRUSTED_PROXIES=127.0.0.1/32 MANDAT_OIDC_CLIENT_RATE=1000000 MANDAT_LOG=warn \
  exec "$BIN" serve >serve.log 2>&1) &
MANDAT_PID=$!
trap 'kill $MANDAT_PID 2>/dev/null || true' EXIT
wait_for http://127.0.0.1:8080/.well-known/openid-configuration
SETUP=$(cd "$WORK" && python3 "$HERE/mandat_setup.py" "$BIN" http://127.0.0.1:8080 "$WORK" 64)
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$SETUP" "$1"; }
ARGS=(--issuer http://127.0.0.1:8080 --client-id "$(field client_id)" --client-secret "$(field client_secret)"
  --scope 'openid profile demarche:social' --login-hint-file "$WORK/mandates.txt"
  --cookie "$(field cookie)" --xff true)
run "$MANDAT_PID" "mandat, flow c=$CONC" "$LOAD" flow "${ARGS[@]}" -c "$CONC" -d "$DUR"
for c in $LOWER; do run "$MANDAT_PID" "mandat, flow c=$c" "$LOAD" flow "${ARGS[@]}" -c "$c" -d "$DUR"; done
run "$MANDAT_PID" "mandat, token c=$CONC ($PREMINT pre-minted codes)" \
  "$LOAD" token "${ARGS[@]}" -c "$CONC" -d "$DUR" --premint "$PREMINT"
kill "$MANDAT_PID"
rm -rf "$WORK"
