#!/usr/bin/env bash
# A private Ceph cluster with an S3 gateway (radosgw) for the s3 store's tests.
#
#   scripts/rgw.sh start    start it (or find it running) and print its env lines
#   scripts/rgw.sh env      print the env lines of the running cluster (exit 1 if none)
#   scripts/rgw.sh status   exit 0 when it is running and answers S3 requests
#   scripts/rgw.sh stop     stop every daemon it started and remove its folder
#
# One monitor, one OSD on memstore (RAM), pools of size 1, no auth (auth none, messenger modes
# crc: without those radosgw loops on auth error -13 and dies), radosgw's beast frontend on a
# free loopback port, and one S3 user with a fixed key. `tcp_nodelay=1`: without it beast sends
# a GET's headers and body in two segments under Nagle, and the client's delayed ACK holds the
# body back ~40 ms (GET 48 ms -> 7 ms here; see docs/notes/s3.md). Everything lives in one temp folder;
# `flock` makes concurrent `start` calls (parallel test workers) start a single cluster.
set -euo pipefail

STATE="${CAIRN_RGW_DIR:-${TMPDIR:-/tmp}/cairn-rgw-$(id -u)}"
LOCK="${STATE}.lock"
ACCESS_KEY="cairntestaccesskey"
SECRET_KEY="cairntestsecretkey0123456789"
REGION="us-east-1"
CONF="$STATE/ceph.conf"

log() { echo "rgw.sh: $*" >&2; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

print_env() {
  cat "$STATE/env"
}

# True when the pid runs with our config: a stale pid file must never make us signal a reused pid.
ours() {
  local cmd
  [[ $1 =~ ^[0-9]+$ ]] || return 1
  cmd=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *"$CONF"* ]]
}

# Pids of the daemons we started (pid files written by the daemons themselves).
our_pids() {
  local f pid
  for f in "$STATE"/run/*.pid; do
    [[ -f $f ]] || continue
    pid=$(cat "$f")
    if ours "$pid"; then echo "$pid"; fi
  done
  return 0
}

answers() {
  [[ -f $STATE/env ]] || return 1
  local endpoint
  endpoint=$(sed -n 's/^CAIRN_TEST_S3_ENDPOINT=//p' "$STATE/env")
  # Any HTTP answer (403 to an anonymous request included) means the gateway is serving.
  local code
  code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$endpoint/" || true)
  [[ $code != 000 && -n $code ]]
}

running() {
  [[ -f $STATE/env && -f $STATE/run/rgw.pid ]] || return 1
  ours "$(cat "$STATE/run/rgw.pid")" || return 1
  answers
}

stop_cluster() {
  local pid pids
  pids=$(our_pids)
  for pid in $pids; do kill "$pid" 2>/dev/null || true; done
  for _ in $(seq 50); do
    local alive=0
    for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [[ $alive == 0 ]] && break
    sleep 0.1
  done
  for pid in $pids; do kill -9 "$pid" 2>/dev/null || true; done
  [[ -n ${CAIRN_RGW_KEEP:-} ]] || rm -rf "$STATE"
}

start_cluster() {
  for bin in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool; do
    command -v "$bin" >/dev/null || { log "$bin not found (apt-get install -y radosgw ceph-mon ceph-osd)"; return 1; }
  done
  rm -rf "$STATE"
  mkdir -p "$STATE/run" "$STATE/mon" "$STATE/osd" "$STATE/log"
  local fsid mon_port rgw_port
  fsid=$(uuidgen)
  mon_port=$(free_port)
  rgw_port=$(free_port)
  cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
mon initial members = a
public network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
ms mon client mode = crc
ms client mode = crc
ms mon service mode = crc
ms service mode = crc
ms mon cluster mode = crc
ms cluster mode = crc
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 1
osd crush chooseleaf type = 0
run dir = $STATE/run
pid file = $STATE/run/\$type.pid
admin socket = $STATE/run/\$name.asok
log file = $STATE/log/\$name.log
keyring = $STATE/keyring
crash dir = $STATE/crash

[mon]
mon data = $STATE/mon/\$name

[osd]
osd data = $STATE/osd/\$name
osd objectstore = memstore
memstore device bytes = 4294967296
# Ceph's own default with BlueStore (256 is the ext4/FileStore setting memstore does not need):
# RADOS names are "<bucket marker>_<key>", and keys of LangGraph threads' runs pass 256.
osd max object name len = 2048
osd max object namespace len = 64

[client.rgw]
pid file = $STATE/run/rgw.pid
rgw frontends = beast endpoint=127.0.0.1:$rgw_port tcp_nodelay=1
rgw dns name = localhost
rgw thread pool size = 128
# One line per request at the default level: megabytes per test run.
debug rgw = 0
EOF
  local c=(-c "$CONF")
  # ceph-mon --mkfs wants a keyring even with auth none.
  ceph-authtool --create-keyring "$STATE/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$STATE/monmap" >/dev/null
  ceph-mon "${c[@]}" --mkfs -i a --monmap "$STATE/monmap" --keyring "$STATE/keyring"
  # `9>&-`: the daemons must not inherit the flock descriptor, or they would hold the lock forever.
  ceph-mon "${c[@]}" -i a 9>&- 2>>"$STATE/log/daemons.err"
  local osd_id osd_uuid
  osd_uuid=$(uuidgen)
  osd_id=$(ceph "${c[@]}" --connect-timeout 20 osd create "$osd_uuid")
  mkdir -p "$STATE/osd/osd.$osd_id"
  ceph-osd "${c[@]}" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" >"$STATE/log/osd-mkfs.log" 2>&1
  ceph-osd "${c[@]}" -i "$osd_id" 9>&- 2>>"$STATE/log/daemons.err"
  radosgw "${c[@]}" -n client.rgw 9>&- 2>>"$STATE/log/daemons.err"
  local endpoint="http://127.0.0.1:$rgw_port"
  for _ in $(seq 600); do
    code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$endpoint/" || true)
    [[ $code != 000 && -n $code ]] && break
    if [[ -f $STATE/run/rgw.pid ]] && ! ours "$(cat "$STATE/run/rgw.pid")"; then
      log "radosgw exited; see $STATE/log"
      return 1
    fi
    sleep 0.1
  done
  [[ $code != 000 && -n $code ]] || { log "radosgw did not answer at $endpoint within 60 s; see $STATE/log"; return 1; }
  radosgw-admin "${c[@]}" user create --uid cairn --display-name "cairn tests" \
    --access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY" >/dev/null
  cat >"$STATE/env.tmp" <<EOF
CAIRN_TEST_S3_ENDPOINT=$endpoint
CAIRN_TEST_S3_ACCESS_KEY=$ACCESS_KEY
CAIRN_TEST_S3_SECRET_KEY=$SECRET_KEY
CAIRN_TEST_S3_REGION=$REGION
EOF
  mv "$STATE/env.tmp" "$STATE/env"
}

cmd="${1:-}"
case "$cmd" in
start)
  exec 9>"$LOCK"
  flock 9
  if running; then
    print_env
    exit 0
  fi
  # A half-started or dead cluster from before: clear it and start afresh.
  if [[ -d $STATE ]]; then stop_cluster; fi
  # start_cluster runs under `set -e` (not inside an `if`, which would disable it): any failed
  # step exits, and this trap shows the logs and removes the half-started cluster.
  started=0
  trap 'if [[ $started == 0 ]]; then
    log "start failed; logs:"
    tail -n 20 "$STATE"/log/*.log >&2 2>/dev/null || true
    stop_cluster
  fi' EXIT
  start_cluster
  started=1
  print_env
  ;;
env)
  running || { log "not running"; exit 1; }
  print_env
  ;;
status)
  if running; then
    echo "running: $(sed -n 's/^CAIRN_TEST_S3_ENDPOINT=//p' "$STATE/env")"
  else
    echo "not running"
    exit 1
  fi
  ;;
stop)
  exec 9>"$LOCK"
  flock 9
  if [[ -d $STATE ]]; then stop_cluster; fi
  exit 0
  ;;
*)
  echo "usage: $0 start|stop|status|env" >&2
  exit 2
  ;;
esac
