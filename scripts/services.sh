#!/usr/bin/env bash
# Makes the real services the test suite talks to available, idempotently:
#   PostgreSQL (127.0.0.1:5432), RabbitMQ (127.0.0.1:5672), the machine's Mosquitto
#   (127.0.0.1:1883), a Mosquitto with the project's configuration (127.0.0.1:18830),
#   InfluxDB 1.x (127.0.0.1:18086) and an aiosmtpd SMTP sink (127.0.0.1:18025).
# Installs from apt what is missing, starts what is not running, writes the URLs to
# $STATE/env for the tests. Usage: scripts/services.sh up|down|status
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${FIELDLINE_SERVICES_DIR:-$ROOT/.services}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
MOSQUITTO_PORT="${FIELDLINE_TEST_MOSQUITTO_PORT:-18830}"
INFLUX_PORT="${FIELDLINE_TEST_INFLUX_PORT:-18086}"
SMTP_PORT="${FIELDLINE_TEST_SMTP_PORT:-18025}"

say() { printf 'services: %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port name seconds
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        port_open "$1" && return 0
        sleep 0.1
    done
    say "$2 did not open port $1 within $3 s; see its log in $STATE"
    return 1
}

APT_UPDATED=0
apt_install() { # command package... [apt-get options]
    command -v "$1" >/dev/null 2>&1 && return 0
    shift
    say "installing $* from apt"
    if [ "$APT_UPDATED" = 0 ]; then
        apt-get update -qq >/dev/null
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

up_postgres() {
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
        apt_install psql postgresql
    fi
    if ! port_open 5432; then
        say "starting PostgreSQL"
        local version
        version="$(ls /etc/postgresql | sort -V | tail -1)"
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
        wait_port 5432 PostgreSQL 30
    fi
    # Trust auth on 127.0.0.1 for the suite's throwaway databases.
    for i in $(seq 50); do
        psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    say "PostgreSQL on 127.0.0.1:5432 does not accept user postgres without a password;"
    say "allow it with 'host all all 127.0.0.1/32 trust' in pg_hba.conf"
    return 1
}

up_rabbitmq() {
    apt_install rabbitmq-server rabbitmq-server
    if ! port_open 5672; then
        say "starting RabbitMQ"
        as_root rabbitmq-server -detached
        wait_port 5672 RabbitMQ 90
        as_root rabbitmqctl await_startup >/dev/null 2>&1 || true
    fi
}

up_machine_mosquitto() {
    apt_install mosquitto mosquitto
    if ! port_open 1883; then
        say "starting the machine's Mosquitto on 1883"
        as_root mosquitto -d -c /etc/mosquitto/mosquitto.conf
        wait_port 1883 Mosquitto 10
    fi
}

up_project_mosquitto() {
    local dir="$STATE/mosquitto"
    mkdir -p "$dir"
    touch "$dir/passwords" "$dir/acl"
    # The project's broker settings plus this instance's listener and files.
    {
        cat "$ROOT/deploy/mosquitto/fieldline.conf"
        echo "listener $MOSQUITTO_PORT 127.0.0.1"
        echo "password_file $dir/passwords"
        echo "acl_file $dir/acl"
        echo "pid_file $dir/mosquitto.pid"
        echo "persistence_location $dir/"
        echo "log_dest file $dir/mosquitto.log"
        echo "user root"
    } >"$dir/mosquitto.conf"
    if ! port_open "$MOSQUITTO_PORT"; then
        say "starting the project's Mosquitto on $MOSQUITTO_PORT"
        mosquitto -d -c "$dir/mosquitto.conf"
        wait_port "$MOSQUITTO_PORT" Mosquitto 10
    fi
}

up_influxdb() {
    apt_install influxd influxdb
    local dir="$STATE/influxdb"
    mkdir -p "$dir"
    cat >"$dir/influxdb.conf" <<EOF
reporting-disabled = true
bind-address = "127.0.0.1:$((INFLUX_PORT + 2))"
[meta]
  dir = "$dir/meta"
[data]
  dir = "$dir/data"
  wal-dir = "$dir/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:$INFLUX_PORT"
  log-enabled = false
[monitor]
  store-enabled = false
EOF
    if ! port_open "$INFLUX_PORT"; then
        say "starting InfluxDB on $INFLUX_PORT"
        nohup influxd -config "$dir/influxdb.conf" >"$dir/influxd.log" 2>&1 &
        echo $! >"$dir/influxd.pid"
        wait_port "$INFLUX_PORT" InfluxDB 30
    fi
}

up_smtp() {
    local dir="$STATE/smtp"
    # The whole maildir: aiosmtpd's Mailbox only creates it when the folder is missing.
    mkdir -p "$dir/maildir/tmp" "$dir/maildir/new" "$dir/maildir/cur"
    if ! port_open "$SMTP_PORT"; then
        if ! "$PYTHON" -c 'import aiosmtpd' 2>/dev/null; then
            say "aiosmtpd is missing from $PYTHON; run scripts/test.sh (it installs '.[test]')"
            return 1
        fi
        say "starting the aiosmtpd SMTP sink on $SMTP_PORT"
        nohup "$PYTHON" -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" \
            -c aiosmtpd.handlers.Mailbox "$dir/maildir" >"$dir/aiosmtpd.log" 2>&1 &
        echo $! >"$dir/aiosmtpd.pid"
        wait_port "$SMTP_PORT" aiosmtpd 15
    fi
}

up_chromium() {
    # The console's browser tests (tests/console) drive Debian's Chromium through
    # Playwright; Playwright's own browser downloads are never used.
    apt_install chromium chromium
    apt_install curl curl # tests/demo runs the demo guide's curl lines as printed
}

write_env() {
    cat >"$STATE/env" <<EOF
FIELDLINE_TEST_PG_URL=postgresql://postgres@127.0.0.1:5432/postgres
FIELDLINE_TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2F
FIELDLINE_TEST_MQTT_PORT=1883
FIELDLINE_TEST_MOSQUITTO_PORT=$MOSQUITTO_PORT
FIELDLINE_TEST_MOSQUITTO_DIR=$STATE/mosquitto
FIELDLINE_TEST_INFLUX_URL=http://127.0.0.1:$INFLUX_PORT
FIELDLINE_TEST_SMTP_PORT=$SMTP_PORT
FIELDLINE_TEST_SMTP_MAILDIR=$STATE/smtp/maildir
EOF
}

stop_pidfile() { # file name
    if [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; then
        say "stopping $2"
        kill "$(cat "$1")" || true
    fi
    rm -f "$1"
}

status_line() { # port name
    if port_open "$1"; then echo "up    $2 (127.0.0.1:$1)"; else echo "DOWN  $2 (127.0.0.1:$1)"; fi
}

# Debian's docker-compose 1.29 validates deploy/compose.yaml (tests/deploy); no Docker
# engine is needed for `docker-compose config`, so skip the recommended docker.io.
up_docker_compose() {
    apt_install docker-compose docker-compose --no-install-recommends
}

case "${1:-}" in
up)
    mkdir -p "$STATE"
    up_postgres
    up_rabbitmq
    up_machine_mosquitto
    up_project_mosquitto
    up_influxdb
    up_smtp
    up_chromium
    up_docker_compose
    write_env
    say "all services up; URLs in $STATE/env"
    ;;
down)
    # Only what this script started itself; the machine's services stay.
    stop_pidfile "$STATE/mosquitto/mosquitto.pid" "project Mosquitto"
    stop_pidfile "$STATE/influxdb/influxd.pid" InfluxDB
    stop_pidfile "$STATE/smtp/aiosmtpd.pid" aiosmtpd
    ;;
status)
    status_line 5432 PostgreSQL
    status_line 5672 RabbitMQ
    status_line 1883 "Mosquitto (machine)"
    status_line "$MOSQUITTO_PORT" "Mosquitto (project config)"
    status_line "$INFLUX_PORT" InfluxDB
    status_line "$SMTP_PORT" "SMTP sink (aiosmtpd)"
    ;;
*)
    echo "usage: scripts/services.sh up|down|status" >&2
    echo "  up      install what is missing (apt) and start every service the tests need" >&2
    echo "  down    stop the services this script started (not the machine's own)" >&2
    echo "  status  which services answer on their ports" >&2
    exit 2
    ;;
esac
