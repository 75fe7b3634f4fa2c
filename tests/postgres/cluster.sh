#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for the tests that run against
# PostgreSQL (ctest -L postgres):
#   cluster.sh start STATE_DIR   install postgresql-15 if missing, make a
#                                cluster in a fresh temporary directory,
#                                listening on 127.0.0.1 only, and write its
#                                libpq connection string to STATE_DIR/conninfo
#   cluster.sh stop STATE_DIR    stop it and remove its directory
# The cluster has C collation (byte order, as SQLite compares text), fsync on,
# and trust authentication for one role on loopback only: a test fixture,
# never a deployment (docs/POSTGRES.md).
set -euo pipefail
cmd=${1:?usage: cluster.sh start|stop STATE_DIR}
state=${2:?usage: cluster.sh start|stop STATE_DIR}
BIN=${CARESEAL_PG_BIN:-/usr/lib/postgresql/15/bin}

as_owner() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

stop_cluster() {
  if [[ -f "$state/datadir" ]]; then
    local dir
    dir=$(cat "$state/datadir")
    if [[ -d "$dir/data" ]]; then
      as_owner "$BIN/pg_ctl" stop -D "$dir/data" -m immediate -w >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    rm -f "$state/datadir" "$state/conninfo"
  fi
}

case "$cmd" in
  start)
    if [[ ! -x "$BIN/initdb" ]]; then
      SUDO=()
      if [[ $(id -u) -ne 0 ]]; then
        if ! sudo -n true 2>/dev/null; then
          echo "postgres tests: postgresql-15 missing; run as root or: sudo apt-get install -y postgresql-15" >&2
          exit 1
        fi
        SUDO=(sudo -n)
      fi
      echo "postgres tests: installing postgresql-15 (apt-get)"
      export DEBIAN_FRONTEND=noninteractive
      "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq
      "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends postgresql-15 >/dev/null
    fi
    mkdir -p "$state"
    stop_cluster  # one left behind by an interrupted run
    dir=$(mktemp -d /tmp/careseal-pg.XXXXXX)
    chmod 755 "$dir"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$dir"
    echo "$dir" >"$state/datadir"
    as_owner "$BIN/initdb" -D "$dir/data" -U careseal -A trust --locale=C \
      -E UTF8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    # A free loopback port: the first of a range nobody answers on that the
    # server then binds (retried if another process took it meanwhile).
    for port in $(shuf -i 20000-60000 -n 20); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
      if as_owner "$BIN/pg_ctl" start -D "$dir/data" -w -t 60 -l "$dir/server.log" \
          -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=on -c max_connections=300 -c shared_buffers=64MB" \
          >/dev/null 2>&1; then
        echo "host=127.0.0.1 port=$port user=careseal dbname=postgres" >"$state/conninfo"
        echo "postgres tests: cluster on 127.0.0.1:$port ($dir)"
        exit 0
      fi
    done
    cat "$dir/server.log" >&2 || true
    echo "postgres tests: the cluster did not start" >&2
    exit 1
    ;;
  stop)
    stop_cluster
    ;;
  *)
    echo "usage: cluster.sh start|stop STATE_DIR" >&2
    exit 2
    ;;
esac
