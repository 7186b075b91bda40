#!/usr/bin/env bash
# deploy/services.sh — project-local PostgreSQL + TimescaleDB and Mosquitto.
#
# Installs (Debian 12 / 13) and runs a private PostgreSQL cluster with the
# TimescaleDB extension and a private Mosquitto broker, with all state under
# $MHUB_RUN_DIR (default: <repo>/.run, git-ignored).
#
# Usage: deploy/services.sh COMMAND
#   install               install what is missing (fast no-op when all is there)
#   up                    install, start both services, wait until they answer
#   down [postgres|mosquitto]  stop both services, or one (no error if not running)
#   status                one line per service; exit 0 if both run, 3 otherwise
#   env                   print `export MHUB_DATABASE_URL=...` / `export MHUB_MQTT_URL=...`
#   mqtt-user NAME PASS   add/update an MQTT (gateway) user and reload the broker
#
# Environment (optional):
#   MHUB_RUN_DIR    state folder            (default: <repo root>/.run)
#   MHUB_PG_PORT    PostgreSQL TCP port     (default: 55432, 127.0.0.1 only)
#   MHUB_MQTT_PORT  MQTT TCP port           (default: 18830, 127.0.0.1 only)
set -euo pipefail

msg() { printf 'services: %s\n' "$*" >&2; }
die() { printf 'services: %s\n' "$*" >&2; exit 1; }

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(dirname -- "$SCRIPT_DIR")
RUN_DIR=${MHUB_RUN_DIR:-$REPO_ROOT/.run}
case $RUN_DIR in /*) ;; *) RUN_DIR=$PWD/$RUN_DIR ;; esac
RUN_DIR=${RUN_DIR%/}
PG_PORT=${MHUB_PG_PORT:-55432}
MQTT_PORT=${MHUB_MQTT_PORT:-18830}

check_port_value() {
	if ! [[ $1 =~ ^[0-9]+$ ]] || (($1 < 1 || $1 > 65535)); then
		die "$2='$1' is not a valid TCP port"
	fi
}
check_port_value "$PG_PORT" MHUB_PG_PORT
check_port_value "$MQTT_PORT" MHUB_MQTT_PORT
[[ $PG_PORT != "$MQTT_PORT" ]] || die "MHUB_PG_PORT and MHUB_MQTT_PORT must differ (both are $PG_PORT)"

PG_DIR=$RUN_DIR/pg
PG_DATA=$PG_DIR/data
PG_SOCK=$PG_DIR/socket
PG_LOG=$PG_DIR/postgres.log
MQ_DIR=$RUN_DIR/mosquitto
MQ_CONF=$MQ_DIR/mosquitto.conf
MQ_PASSWD=$MQ_DIR/passwd
MQ_ACL=$MQ_DIR/acl
MQ_LOG=$MQ_DIR/mosquitto.log
MQ_PID=$MQ_DIR/mosquitto.pid
MQ_TEMPLATE=$SCRIPT_DIR/mosquitto.conf.template
SECRETS=$RUN_DIR/secrets
PG_PW_FILE=$SECRETS/pg_password
MQ_PW_FILE=$SECRETS/mqtt_ingest_password
BUILD_DIR=$RUN_DIR/build
TRIXIE_SRC_FILE=/etc/apt/sources.list.d/meterhub-trixie-src.sources
START_TIMEOUT=30

DB_NAME=meterhub
DB_USER=meterhub
MQ_INGEST_USER=ingest

# ---------------------------------------------------------------- helpers ---

is_root() { [[ $EUID -eq 0 ]]; }

# The OS user PostgreSQL runs as (it refuses to run as root), and the name of
# the bootstrap superuser that initdb creates (same name, so peer auth works).
if is_root; then PG_OS_USER=postgres; else PG_OS_USER=$(id -un); fi
PG_SUPER=$PG_OS_USER

# Run a command as the PostgreSQL OS user, from / so that it never complains
# about an unreadable current directory.
as_pg() {
	if is_root; then
		(cd / && runuser -u "$PG_OS_USER" -- "$@")
	else
		(cd / && "$@")
	fi
}

# Write $2 into file $1 only if the content differs; sets WROTE=true if it
# wrote. (Status is passed in a variable, not the exit code, so that callers
# never run it in a `&&` list, where bash ignores `set -e`.)
WROTE=false
write_if_changed() {
	local file=$1 content=$2
	WROTE=false
	if [[ -f $file ]] && [[ "$(cat -- "$file")" == "$content" ]]; then
		return 0
	fi
	printf '%s\n' "$content" >"$file.tmp.$$"
	mv -f -- "$file.tmp.$$" "$file"
	WROTE=true
}

gen_password() { od -An -tx1 -N24 /dev/urandom | tr -d ' \n'; }

# Read a secret, creating it (0600) if it does not exist yet.
ensure_secret() {
	local file=$1
	mkdir -p -- "$SECRETS"
	chmod 0700 -- "$SECRETS"
	if [[ ! -s $file ]]; then
		(umask 077 && gen_password >"$file")
		msg "generated $(basename -- "$file") in $SECRETS"
	fi
	chmod 0600 -- "$file"
}

read_secret() {
	local file=$1
	[[ -s $file ]] || die "missing $file; run 'deploy/services.sh up' first"
	tr -d '\n' <"$file"
}

port_in_use() {
	local port=$1
	if command -v ss >/dev/null 2>&1; then
		[[ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]]
	else
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
	fi
}

# Fail with a clear message if something else holds the port.
require_port_free() {
	local port=$1 var=$2 who=
	if port_in_use "$port"; then
		if command -v ss >/dev/null 2>&1; then
			who=$(ss -Hltnp "sport = :$port" 2>/dev/null | grep -o 'users:(.*)' | head -1 || true)
		fi
		[[ -z $who ]] || msg "port $port is held by $who"
		die "port $port is already in use by another program; set $var to another port"
	fi
}

# Print the last lines of a log file to stderr.
show_log_tail() {
	local file=$1
	if [[ -f $file ]]; then
		msg "last lines of $file:"
		tail -n 40 -- "$file" | sed 's/^/    /' >&2
	fi
}

lock_run_dir() {
	mkdir -p -- "$RUN_DIR"
	exec 9>>"$RUN_DIR/.services.lock"
	flock -w 300 9 || die "another deploy/services.sh is busy with $RUN_DIR (lock $RUN_DIR/.services.lock)"
}

# ------------------------------------------------------------ OS detection ---

OS_ID='' OS_VERSION='' OS_CODENAME='' PG_MAJOR='' PG_BIN=''
detect_os() {
	[[ -r /etc/os-release ]] || die "cannot read /etc/os-release; only Debian 12 and 13 are supported"
	local line
	line=$(. /etc/os-release && printf '%s|%s|%s' "${ID:-}" "${VERSION_ID:-}" "${VERSION_CODENAME:-}")
	IFS='|' read -r OS_ID OS_VERSION OS_CODENAME <<<"$line"
	if [[ $OS_ID != debian ]]; then
		die "unsupported OS '$OS_ID $OS_VERSION' (from /etc/os-release); only Debian 12 (bookworm) and Debian 13 (trixie) are supported"
	fi
	case $OS_VERSION in
	12) PG_MAJOR=15 ;;
	13) PG_MAJOR=17 ;;
	*) die "unsupported Debian version '$OS_VERSION' ($OS_CODENAME); only Debian 12 (bookworm) and Debian 13 (trixie) are supported" ;;
	esac
	PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
}

# For commands that act on an existing cluster: use the binaries matching the
# data folder's PG_VERSION, falling back to the distribution's version.
pg_bin_for_data() {
	if [[ -f $PG_DATA/PG_VERSION ]]; then
		PG_BIN=/usr/lib/postgresql/$(cat -- "$PG_DATA/PG_VERSION")/bin
	else
		detect_os
	fi
}

# ----------------------------------------------------------------- install ---

# Print those of the given packages that are not installed.
missing_packages() {
	local installed pkg
	installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "$@" 2>/dev/null | awk '$2 == "installed" { print $1 }') || true
	for pkg in "$@"; do
		grep -qxF -- "$pkg" <<<"$installed" || printf '%s\n' "$pkg"
	done
}

pg_sharedir() {
	if [[ -x $PG_BIN/pg_config ]]; then
		"$PG_BIN/pg_config" --sharedir
	else
		printf '/usr/share/postgresql/%s\n' "$PG_MAJOR"
	fi
}

timescaledb_installed() { [[ -f "$(pg_sharedir)/extension/timescaledb.control" ]]; }

APT_OPTS=(-y -q -o DPkg::Lock::Timeout=300 --no-install-recommends)

apt_update() {
	msg "apt-get update"
	DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300 update >/dev/null 8>&- 9>&- ||
		die "apt-get update failed"
}

apt_install() {
	(($# > 0)) || return 0
	msg "apt-get install $*"
	DEBIAN_FRONTEND=noninteractive apt-get install "${APT_OPTS[@]}" "$@" >"$RUN_DIR/apt-install.log" 2>&1 8>&- 9>&- || {
		show_log_tail "$RUN_DIR/apt-install.log"
		die "apt-get install $* failed"
	}
}

# The URI and keyring of the configured Debian archive for this release, taken
# from the machine's apt sources (deb822 first, then one-line format).
debian_archive_source() {
	local f out=
	for f in /etc/apt/sources.list.d/*.sources; do
		[[ -f $f && $f != "$TRIXIE_SRC_FILE" ]] || continue
		out=$(awk -v suite="$OS_CODENAME" '
			BEGIN { RS = ""; FS = "\n" }
			{
				types = ""; uris = ""; suites = ""; enabled = "yes"; signed = ""
				for (i = 1; i <= NF; i++) {
					line = $i
					if (line ~ /^[ \t]*#/) continue
					if (match(line, /^[A-Za-z-]+:/)) {
						key = tolower(substr(line, 1, RLENGTH - 1))
						val = substr(line, RLENGTH + 1)
						gsub(/^[ \t]+|[ \t]+$/, "", val)
						if (key == "types") types = " " val " "
						else if (key == "uris") uris = val
						else if (key == "suites") suites = " " val " "
						else if (key == "enabled") enabled = tolower(val)
						else if (key == "signed-by") signed = val
					}
				}
				if (enabled != "no" && types ~ / deb / && suites ~ (" " suite " ") && uris != "") {
					split(uris, u, /[ \t]+/)
					print u[1] "|" signed
					exit
				}
			}' "$f")
		[[ -z $out ]] || break
	done
	if [[ -z $out ]]; then
		for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
			[[ -f $f ]] || continue
			out=$(awk -v suite="$OS_CODENAME" '
				$1 == "deb" {
					i = 2
					if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
					if ($(i + 1) == suite) { print $i "|"; exit }
				}' "$f")
			[[ -z $out ]] || break
		done
	fi
	[[ -n $out ]] || die "cannot find the Debian archive for '$OS_CODENAME' in /etc/apt/sources.list or /etc/apt/sources.list.d/"
	printf '%s\n' "$out"
}

# Add a deb-src-only source for trixie main (source packages only: no binary
# package from trixie can be installed through it).
ensure_trixie_src() {
	local src uri signed content
	src=$(debian_archive_source)
	uri=${src%%|*}
	signed=${src#*|}
	[[ -n $signed ]] || signed=/usr/share/keyrings/debian-archive-keyring.gpg
	content="# Added by meterhub deploy/services.sh: source packages (deb-src) only,
# used to build TimescaleDB for PostgreSQL $PG_MAJOR. No binary packages.
Types: deb-src
URIs: $uri
Suites: trixie
Components: main
Signed-By: $signed"
	write_if_changed "$TRIXIE_SRC_FILE" "$content"
	if $WROTE; then
		msg "added deb-src-only source for trixie main: $TRIXIE_SRC_FILE"
	fi
}

# Build TimescaleDB (Apache-2 edition) from the trixie source package against
# the local PostgreSQL and install it into PostgreSQL's lib/share folders.
build_timescaledb() {
	local src start log=$BUILD_DIR/timescaledb-build.log
	mkdir -p -- "$BUILD_DIR"
	rm -rf -- "$BUILD_DIR"/timescaledb[-_]*
	msg "fetching the timescaledb source package from trixie into $BUILD_DIR"
	(cd -- "$BUILD_DIR" && apt-get -q -o APT::Sandbox::User=root source timescaledb/trixie) >"$log" 2>&1 || {
		show_log_tail "$log"
		die "apt-get source timescaledb/trixie failed"
	}
	src=$(find "$BUILD_DIR" -mindepth 1 -maxdepth 1 -type d -name 'timescaledb-*' | head -n 1)
	[[ -n $src ]] || die "no unpacked timescaledb source found in $BUILD_DIR"
	msg "building $(basename -- "$src") (Apache-2 edition) for PostgreSQL $PG_MAJOR; log: $log"
	start=$SECONDS
	(
		cd -- "$src"
		BUILD_FORCE_REMOVE=true ./bootstrap \
			-DCMAKE_BUILD_TYPE=Release \
			-DPG_CONFIG="$PG_BIN/pg_config" \
			-DAPACHE_ONLY=ON \
			-DUSE_TELEMETRY=OFF \
			-DSEND_TELEMETRY_DEFAULT=OFF \
			-DREGRESS_CHECKS=OFF \
			-DTAP_CHECKS=OFF \
			-DWARNINGS_AS_ERRORS=OFF
		make -C build -j"$(nproc)" install
	) >>"$log" 2>&1 </dev/null || {
		show_log_tail "$log"
		die "building timescaledb failed (full log: $log)"
	}
	timescaledb_installed || die "timescaledb built but $(pg_sharedir)/extension/timescaledb.control is missing"
	msg "timescaledb built and installed in $((SECONDS - start)) s"
}

INSTALL_MISSING=() INSTALL_BUILD=false
compute_install_needs() {
	local runtime=() build=()
	INSTALL_MISSING=() INSTALL_BUILD=false
	case $PG_MAJOR in
	15)
		runtime=(postgresql-15 mosquitto mosquitto-clients acl)
		build=(postgresql-server-dev-15 cmake gcc make libc6-dev dpkg-dev libssl-dev)
		timescaledb_installed || INSTALL_BUILD=true
		;;
	17)
		runtime=(postgresql-17 postgresql-17-timescaledb mosquitto mosquitto-clients acl)
		;;
	esac
	mapfile -t INSTALL_MISSING < <(missing_packages "${runtime[@]}")
	if $INSTALL_BUILD; then
		mapfile -t -O "${#INSTALL_MISSING[@]}" INSTALL_MISSING < <(missing_packages "${build[@]}")
	fi
}

cmd_install() {
	detect_os
	compute_install_needs
	if ((${#INSTALL_MISSING[@]} == 0)) && ! $INSTALL_BUILD; then
		return 0
	fi
	is_root || die "must run as root to install: ${INSTALL_MISSING[*]}$($INSTALL_BUILD && echo ' (and to build timescaledb)')"
	mkdir -p -- "$RUN_DIR"
	# Serialise installs machine-wide (apt, the extension files), then look
	# again: another run may have done the work meanwhile.
	local lockdir=/run/lock
	[[ -d $lockdir ]] || lockdir=/tmp
	exec 8>"$lockdir/meterhub-services-install.lock"
	flock -w 900 8 || die "timed out waiting for another install to finish ($lockdir/meterhub-services-install.lock)"
	compute_install_needs
	if ((${#INSTALL_MISSING[@]} > 0)) || $INSTALL_BUILD; then
		$INSTALL_BUILD && ensure_trixie_src
		apt_update
		apt_install "${INSTALL_MISSING[@]}"
		if $INSTALL_BUILD && ! timescaledb_installed; then
			build_timescaledb
		fi
		timescaledb_installed ||
			die "timescaledb is not installed for PostgreSQL $PG_MAJOR ($(pg_sharedir)/extension/timescaledb.control missing)"
		msg "install complete"
	fi
	exec 8>&-
}

# -------------------------------------------------------------- PostgreSQL ---

# Let the PostgreSQL OS user traverse every ancestor of the run folder
# (a repository cloned into a 0700 folder would otherwise lock it out).
grant_traverse() {
	is_root || return 0
	as_pg test -x "$RUN_DIR" 2>/dev/null && return 0
	local d=$RUN_DIR dirs=()
	while :; do
		dirs=("$d" "${dirs[@]}")
		[[ $d == / ]] && break
		d=$(dirname -- "$d")
	done
	command -v setfacl >/dev/null 2>&1 || die "setfacl is missing (package acl); run 'deploy/services.sh install'"
	for d in "${dirs[@]}"; do
		if ! as_pg test -x "$d" 2>/dev/null; then
			msg "granting $PG_OS_USER traverse permission on $d (setfacl -m u:$PG_OS_USER:x)"
			setfacl -m "u:$PG_OS_USER:x" -- "$d"
		fi
	done
	as_pg test -x "$RUN_DIR" || die "$PG_OS_USER cannot reach $RUN_DIR even after setfacl"
}

PG_PID='' PG_RUN_PORT=''
pg_running() {
	PG_PID='' PG_RUN_PORT=''
	local pidfile=$PG_DATA/postmaster.pid pid
	[[ -f $pidfile ]] || return 1
	pid=$(head -n 1 -- "$pidfile" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	[[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == postgres ]] || return 1
	PG_PID=$pid
	PG_RUN_PORT=$(sed -n 4p -- "$pidfile")
	return 0
}

# psql as the bootstrap superuser over the unix socket.
pg_admin() {
	local port=$1 db=$2
	shift 2
	as_pg "$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$port" -U "$PG_SUPER" -d "$db" "$@"
}

pg_configure() {
	local sock_len hba conf libdir
	PG_CONF_CHANGED=false
	sock_len=$((${#PG_SOCK} + ${#PG_PORT} + 10))
	((sock_len <= 107)) || die "unix socket path $PG_SOCK/.s.PGSQL.$PG_PORT is too long ($sock_len > 107 bytes); set MHUB_RUN_DIR to a shorter path"
	mkdir -p -- "$PG_DIR" "$PG_SOCK"
	chmod 0755 -- "$PG_DIR" "$PG_SOCK"
	if is_root; then
		[[ "$(stat -c %U -- "$PG_DIR")" == "$PG_OS_USER" ]] || chown "$PG_OS_USER:" -- "$PG_DIR"
		[[ "$(stat -c %U -- "$PG_SOCK")" == "$PG_OS_USER" ]] || chown "$PG_OS_USER:" -- "$PG_SOCK"
	fi
	grant_traverse
	if [[ ! -f $PG_DATA/PG_VERSION ]]; then
		msg "initialising a PostgreSQL $PG_MAJOR cluster in $PG_DATA"
		as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U "$PG_SUPER" --auth-local=peer --auth-host=scram-sha-256 \
			-E UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 || {
			show_log_tail "$PG_DIR/initdb.log"
			die "initdb failed"
		}
	fi
	local data_ver
	data_ver=$(cat -- "$PG_DATA/PG_VERSION")
	[[ $data_ver == "$PG_MAJOR" ]] || die "$PG_DATA was created by PostgreSQL $data_ver but this machine runs PostgreSQL $PG_MAJOR; remove $PG_DIR (its data is lost) or point MHUB_RUN_DIR elsewhere"

	hba="# Managed by deploy/services.sh (rewritten on every 'up').
# TYPE  DATABASE  USER       ADDRESS        METHOD
local   all       $PG_SUPER  peer
local   all       all                       scram-sha-256
host    all       all        127.0.0.1/32   scram-sha-256
host    all       all        ::1/128        scram-sha-256"

	conf="# Managed by deploy/services.sh (rewritten on every 'up'); included from postgresql.conf.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_SOCK'
shared_preload_libraries = 'timescaledb'
# The Apache-2 edition cannot run any TimescaleDB background job (policies and
# jobs are TSL features; its one default job fails every hour with \"not
# supported under the current apache license\"), so start no job workers.
timescaledb.max_background_workers = 0
max_connections = 200
shared_buffers = 1GB
max_wal_size = 4GB
checkpoint_timeout = 15min
wal_compression = on
# durability: never trade it for speed
fsync = on
synchronous_commit = on
full_page_writes = on"
	# The telemetry GUC only exists in builds with telemetry code compiled in
	# (our own build and Debian's package leave it out entirely).
	libdir=$("$PG_BIN/pg_config" --pkglibdir 2>/dev/null || echo "/usr/lib/postgresql/$PG_MAJOR/lib")
	if grep -qa 'telemetry_level' -- "$libdir"/timescaledb-[0-9]*.so 2>/dev/null; then
		conf+=$'\n'"timescaledb.telemetry_level = off"
	fi

	write_if_changed "$PG_DATA/pg_hba.conf" "$hba"
	if $WROTE; then PG_CONF_CHANGED=true; fi
	write_if_changed "$PG_DATA/meterhub.conf" "$conf"
	if $WROTE; then PG_CONF_CHANGED=true; fi
	if ! grep -q "^include_if_exists = 'meterhub.conf'" -- "$PG_DATA/postgresql.conf"; then
		printf "\n# meterhub settings (deploy/services.sh)\ninclude_if_exists = 'meterhub.conf'\n" >>"$PG_DATA/postgresql.conf"
		PG_CONF_CHANGED=true
	fi
	if is_root; then
		chown "$PG_OS_USER:" -- "$PG_DATA/pg_hba.conf" "$PG_DATA/meterhub.conf"
	fi
	chmod 0600 -- "$PG_DATA/pg_hba.conf" "$PG_DATA/meterhub.conf"
}

pg_start() {
	# 8>&- 9>&-: a daemon must not inherit (and hold forever) our lock files.
	as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$START_TIMEOUT" start >/dev/null 2>&1 8>&- 9>&- || {
		show_log_tail "$PG_LOG"
		die "PostgreSQL failed to start on port $PG_PORT (or was not ready within ${START_TIMEOUT}s); see $PG_LOG"
	}
}

pg_stop() {
	if pg_running; then
		msg "stopping PostgreSQL (pid $PG_PID)"
		as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null || {
			show_log_tail "$PG_LOG"
			die "PostgreSQL did not stop"
		}
	else
		msg "PostgreSQL is not running"
	fi
}

pg_up() {
	local pending
	# Check the port before touching any configuration.
	if ! pg_running || [[ $PG_RUN_PORT != "$PG_PORT" ]]; then
		require_port_free "$PG_PORT" MHUB_PG_PORT
	fi
	pg_configure
	if pg_running; then
		if [[ $PG_RUN_PORT != "$PG_PORT" ]]; then
			msg "PostgreSQL runs on port $PG_RUN_PORT; restarting it on port $PG_PORT"
			pg_stop
		elif $PG_CONF_CHANGED; then
			as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" reload >/dev/null
			sleep 0.5
			pending=$(pg_admin "$PG_RUN_PORT" postgres -c "SELECT string_agg(name, ', ') FROM pg_settings WHERE pending_restart")
			if [[ -n $pending ]]; then
				msg "settings changed that need a restart ($pending); restarting PostgreSQL"
				pg_stop
			else
				msg "PostgreSQL already running (pid $PG_PID); configuration reloaded"
			fi
		else
			msg "PostgreSQL already running (pid $PG_PID, port $PG_RUN_PORT)"
		fi
	fi
	if ! pg_running; then
		require_port_free "$PG_PORT" MHUB_PG_PORT
		if [[ -f $PG_DATA/postmaster.pid ]]; then
			msg "removing stale $PG_DATA/postmaster.pid (its process is gone)"
			rm -f -- "$PG_DATA/postmaster.pid"
		fi
		msg "starting PostgreSQL $PG_MAJOR on 127.0.0.1:$PG_PORT (log: $PG_LOG)"
		pg_start
		pg_running || {
			show_log_tail "$PG_LOG"
			die "PostgreSQL exited right after starting"
		}
	fi

	# Role, database and extension (idempotent).
	ensure_secret "$PG_PW_FILE"
	local pw
	pw=$(read_secret "$PG_PW_FILE")
	[[ $pw =~ ^[A-Za-z0-9._~-]+$ ]] || die "$PG_PW_FILE must contain only URL-safe characters [A-Za-z0-9._~-]"
	pg_admin "$PG_PORT" postgres >/dev/null <<SQL
\\set pw '$pw'
SELECT format('CREATE ROLE %I LOGIN SUPERUSER', '$DB_USER')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER') \\gexec
ALTER ROLE $DB_USER WITH LOGIN SUPERUSER PASSWORD :'pw';
SELECT format('CREATE DATABASE %I OWNER %I', '$DB_NAME', '$DB_USER')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB_NAME') \\gexec
SQL
	local ext_out
	ext_out=$(pg_admin "$PG_PORT" "$DB_NAME" -c "SET client_min_messages = warning" \
		-c "CREATE EXTENSION IF NOT EXISTS timescaledb" 2>&1) || {
		printf '%s\n' "$ext_out" >&2
		show_log_tail "$PG_LOG"
		die "CREATE EXTENSION timescaledb failed in database $DB_NAME"
	}

	# Check the DSN itself: TCP + password, as the application will connect.
	local deadline=$((SECONDS + START_TIMEOUT)) out=
	while :; do
		if out=$(PGPASSWORD=$pw PGCONNECT_TIMEOUT=3 "$PG_BIN/psql" -X -A -t -v ON_ERROR_STOP=1 \
			-h 127.0.0.1 -p "$PG_PORT" -U "$DB_USER" -d "$DB_NAME" \
			-c "SELECT current_setting('server_version') || ' ' || extversion FROM pg_extension WHERE extname = 'timescaledb'" 2>&1); then
			break
		fi
		if ((SECONDS >= deadline)); then
			printf '%s\n' "$out" >&2
			show_log_tail "$PG_LOG"
			die "PostgreSQL does not answer on 127.0.0.1:$PG_PORT as $DB_USER after ${START_TIMEOUT}s"
		fi
		sleep 0.5
	done
	pg_running || true
	PG_VERSION_INFO=$out
}

# --------------------------------------------------------------- Mosquitto ---

MQ_RUN_PID=''
mq_running() {
	MQ_RUN_PID=''
	local pid
	[[ -f $MQ_PID ]] || return 1
	pid=$(head -n 1 -- "$MQ_PID" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	[[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == mosquitto ]] || return 1
	tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$MQ_CONF" || return 1
	MQ_RUN_PID=$pid
}

# The port the running broker was started with (recorded at start), else the
# one in the generated config.
MQ_PORT_FILE=$MQ_DIR/mosquitto.port
mq_run_port() {
	if [[ -s $MQ_PORT_FILE ]]; then
		cat -- "$MQ_PORT_FILE"
	else
		awk '$1 == "listener" { print $2; exit }' "$MQ_CONF" 2>/dev/null || true
	fi
}

mq_acl_content() {
	cat <<'ACL'
# Managed by deploy/services.sh (rewritten on every 'up'; re-read on SIGHUP).
# Topic scheme: meterhub/v1/<gateway_id>/<kind>, e.g. meterhub/v1/gw1/readings.

# The ingest service reads every gateway's topics (also through shared
# subscriptions such as $share/ingest/meterhub/v1/+/readings) and may publish
# acknowledgements back to a gateway.
user ingest
topic read meterhub/v1/#
topic write meterhub/v1/+/ack

# Gateways log in with their gateway id as user name. A gateway may publish
# only under its own prefix and read only its own acknowledgements; it cannot
# read any other gateway's topics.
pattern write meterhub/v1/%u/#
pattern read meterhub/v1/%u/ack
ACL
}

# Sets MQ_CONF_CHANGED (mosquitto.conf) and MQ_AUTH_CHANGED (passwd, acl).
mq_configure() {
	local tpl conf user
	MQ_CONF_CHANGED=false MQ_AUTH_CHANGED=false
	[[ -f $MQ_TEMPLATE ]] || die "missing $MQ_TEMPLATE"
	mkdir -p -- "$MQ_DIR/data"
	chmod 0700 -- "$MQ_DIR"
	user=$(id -un)
	tpl=$(cat -- "$MQ_TEMPLATE")
	conf=${tpl//@PORT@/$MQTT_PORT}
	conf=${conf//@DIR@/$MQ_DIR}
	conf=${conf//@USER@/$user}
	write_if_changed "$MQ_CONF" "$conf"
	MQ_CONF_CHANGED=$WROTE

	ensure_secret "$MQ_PW_FILE"
	local pw
	pw=$(read_secret "$MQ_PW_FILE")
	[[ $pw =~ ^[A-Za-z0-9._~-]+$ ]] || die "$MQ_PW_FILE must contain only URL-safe characters [A-Za-z0-9._~-]"
	# (Re)set the ingest password when the password file lacks the user or
	# the secret is newer than the last time it was set.
	local marker=$MQ_DIR/.ingest-password-set
	if [[ ! -f $MQ_PASSWD || ! -f $marker || $MQ_PW_FILE -nt $marker ]] ||
		! grep -q "^$MQ_INGEST_USER:" -- "$MQ_PASSWD"; then
		(umask 077 && touch -- "$MQ_PASSWD")
		mosquitto_passwd -b "$MQ_PASSWD" "$MQ_INGEST_USER" "$pw" || die "mosquitto_passwd failed"
		touch -- "$marker"
		MQ_AUTH_CHANGED=true
	fi
	chmod 0600 -- "$MQ_PASSWD"
	write_if_changed "$MQ_ACL" "$(mq_acl_content)"
	if $WROTE; then MQ_AUTH_CHANGED=true; fi
	chmod 0600 -- "$MQ_ACL"
}

mq_stop() {
	if mq_running; then
		local pid=$MQ_RUN_PID i
		msg "stopping Mosquitto (pid $pid)"
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 150; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		if kill -0 "$pid" 2>/dev/null; then
			msg "Mosquitto (pid $pid) did not exit within 30 s; sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			sleep 0.2
		fi
		rm -f -- "$MQ_PID" "$MQ_PORT_FILE"
	else
		msg "Mosquitto is not running"
		rm -f -- "$MQ_PID" "$MQ_PORT_FILE"
	fi
}

mq_ready() {
	local pw=$1
	mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -u "$MQ_INGEST_USER" -P "$pw" -i "services-probe-$$" \
		-t 'meterhub/v1/_probe/ack' -E -W 3 >/dev/null 2>&1
}

mq_up() {
	local old_port
	old_port=$(mq_run_port)
	# Check the port before touching any configuration.
	if ! mq_running || [[ $old_port != "$MQTT_PORT" ]]; then
		require_port_free "$MQTT_PORT" MHUB_MQTT_PORT
	fi
	mq_configure
	if mq_running; then
		if [[ -n $old_port && $old_port != "$MQTT_PORT" ]]; then
			msg "Mosquitto listens on port $old_port; restarting it on port $MQTT_PORT"
			mq_stop
		elif $MQ_CONF_CHANGED; then
			msg "Mosquitto configuration changed; restarting it"
			mq_stop
		elif $MQ_AUTH_CHANGED; then
			msg "Mosquitto already running (pid $MQ_RUN_PID); users/ACL changed, reloading (SIGHUP)"
			kill -HUP "$MQ_RUN_PID"
		else
			msg "Mosquitto already running (pid $MQ_RUN_PID, port $MQTT_PORT)"
		fi
	fi
	local log_size=0 started=false
	if ! mq_running; then
		require_port_free "$MQTT_PORT" MHUB_MQTT_PORT
		rm -f -- "$MQ_PID" "$MQ_PORT_FILE"
		[[ ! -f $MQ_LOG ]] || log_size=$(stat -c %s -- "$MQ_LOG")
		msg "starting Mosquitto on 127.0.0.1:$MQTT_PORT (log: $MQ_LOG)"
		mosquitto -c "$MQ_CONF" -d >>"$MQ_LOG" 2>&1 8>&- 9>&- || {
			show_log_tail "$MQ_LOG"
			die "Mosquitto failed to start"
		}
		started=true
		printf '%s\n' "$MQTT_PORT" >"$MQ_PORT_FILE"
	fi
	local pw deadline=$((SECONDS + START_TIMEOUT))
	pw=$(read_secret "$MQ_PW_FILE")
	until mq_running && mq_ready "$pw"; do
		if $started && [[ -f $MQ_LOG ]] && tail -c +"$((log_size + 1))" -- "$MQ_LOG" | grep -q 'Error'; then
			show_log_tail "$MQ_LOG"
			die "Mosquitto reported an error while starting on 127.0.0.1:$MQTT_PORT"
		fi
		if ((SECONDS >= deadline)); then
			show_log_tail "$MQ_LOG"
			die "Mosquitto does not answer on 127.0.0.1:$MQTT_PORT as $MQ_INGEST_USER after ${START_TIMEOUT}s"
		fi
		sleep 0.3
	done
}

# ---------------------------------------------------------------- commands ---

# (`|| exit 1` is explicit: callers use these in `x=$(...) || ...`, where
# bash does not apply `set -e`.)
database_url() {
	local pw
	pw=$(read_secret "$PG_PW_FILE") || exit 1
	printf 'postgresql://%s:%s@127.0.0.1:%s/%s' "$DB_USER" "$pw" "$PG_PORT" "$DB_NAME"
}
mqtt_url() {
	local pw
	pw=$(read_secret "$MQ_PW_FILE") || exit 1
	printf 'mqtt://%s:%s@127.0.0.1:%s' "$MQ_INGEST_USER" "$pw" "$MQTT_PORT"
}

describe_urls() {  # the URLs without their passwords, and where the passwords live
	printf 'services: DSN      postgresql://%s:***@127.0.0.1:%s/%s (password in %s)\n' \
		"$DB_USER" "$PG_PORT" "$DB_NAME" "$PG_PW_FILE"
	printf 'services: MQTT URL mqtt://%s:***@127.0.0.1:%s (password in %s)\n' \
		"$MQ_INGEST_USER" "$MQTT_PORT" "$MQ_PW_FILE"
}

cmd_up() {
	cmd_install
	lock_run_dir
	command -v mosquitto >/dev/null 2>&1 || die "mosquitto is not installed; run 'deploy/services.sh install' as root"
	PG_VERSION_INFO=
	pg_up
	mq_up
	local mq_ver
	mq_ver=$(mosquitto -h 2>/dev/null | sed -n 's/^mosquitto version \([^ ]*\).*/\1/p' | head -n 1 || true)
	pg_running || true
	mq_running || true
	printf 'services: PostgreSQL %s with timescaledb %s ready on 127.0.0.1:%s (pid %s)\n' \
		"${PG_VERSION_INFO%% *}" "${PG_VERSION_INFO##* }" "$PG_PORT" "$PG_PID"
	printf 'services: Mosquitto %s ready on 127.0.0.1:%s (pid %s)\n' "${mq_ver:-?}" "$MQTT_PORT" "$MQ_RUN_PID"
	describe_urls
	# shellcheck disable=SC2016 # the $(...) is meant literally
	printf 'services: for your shell: eval "$(%s env)"\n' "$SCRIPT_DIR/services.sh"
}

cmd_down() {
	local which=${1:-all}
	case $which in all | postgres | mosquitto) ;; *) die "down takes postgres, mosquitto or nothing (both)" ;; esac
	lock_run_dir
	if [[ $which != mosquitto ]]; then
		if [[ -f $PG_DATA/PG_VERSION ]]; then
			pg_bin_for_data
			pg_stop
		else
			msg "PostgreSQL is not running (no cluster in $PG_DATA)"
		fi
	fi
	[[ $which == postgres ]] || mq_stop
}

cmd_status() {
	local rc=0
	if pg_running; then
		printf 'services: postgresql running port=%s pid=%s data=%s\n' "$PG_RUN_PORT" "$PG_PID" "$PG_DATA"
	else
		printf 'services: postgresql stopped port=%s pid=- data=%s\n' "$PG_PORT" "$PG_DATA"
		rc=3
	fi
	if mq_running; then
		printf 'services: mosquitto  running port=%s pid=%s conf=%s\n' "$(mq_run_port)" "$MQ_RUN_PID" "$MQ_CONF"
	else
		printf 'services: mosquitto  stopped port=%s pid=- conf=%s\n' "$MQTT_PORT" "$MQ_CONF"
		rc=3
	fi
	describe_urls
	return $rc
}

cmd_env() {
	local db mq
	db=$(database_url) || exit 1
	mq=$(mqtt_url) || exit 1
	printf 'export MHUB_DATABASE_URL=%q\n' "$db"
	printf 'export MHUB_MQTT_URL=%q\n' "$mq"
}

cmd_mqtt_user() {
	(($# == 2)) || die "usage: deploy/services.sh mqtt-user NAME PASSWORD"
	local name=$1 pw=$2 i
	[[ $name =~ ^[A-Za-z0-9_.-]+$ ]] || die "MQTT user name '$name' may only contain letters, digits, '_', '.' and '-' (it is used as the topic prefix meterhub/v1/<name>/)"
	[[ $name != "$MQ_INGEST_USER" ]] || die "'$MQ_INGEST_USER' is the ingest service's user; its password lives in $MQ_PW_FILE"
	[[ -n $pw ]] || die "the password must not be empty"
	command -v mosquitto_passwd >/dev/null 2>&1 || die "mosquitto_passwd is missing; run 'deploy/services.sh install' as root"
	lock_run_dir
	[[ -f $MQ_PASSWD ]] || mq_configure
	mosquitto_passwd -b "$MQ_PASSWD" "$name" "$pw" || die "mosquitto_passwd failed for user '$name'"
	chmod 0600 -- "$MQ_PASSWD"
	if mq_running; then
		kill -HUP "$MQ_RUN_PID"
		# Wait until the broker has re-read the password file.
		for ((i = 0; i < 50; i++)); do
			if mosquitto_sub -h 127.0.0.1 -p "$(mq_run_port)" -u "$name" -P "$pw" -i "services-probe-$$" \
				-t "meterhub/v1/$name/ack" -E -W 2 >/dev/null 2>&1; then
				msg "MQTT user '$name' set; broker reloaded (pid $MQ_RUN_PID)"
				return 0
			fi
			sleep 0.1
		done
		die "MQTT user '$name' written to $MQ_PASSWD but the broker does not accept it"
	fi
	msg "MQTT user '$name' set in $MQ_PASSWD (broker not running; it is read at start)"
}

usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' -- "${BASH_SOURCE[0]}"
}

main() {
	local cmd=${1:-}
	(($# == 0)) || shift
	case $cmd in
	install) cmd_install ;;
	up) cmd_up ;;
	down) cmd_down "$@" ;;
	status) cmd_status ;;
	env) cmd_env ;;
	mqtt-user) cmd_mqtt_user "$@" ;;
	-h | --help | help) usage ;;
	'') usage >&2; exit 2 ;;
	*) msg "unknown command '$cmd'"; usage >&2; exit 2 ;;
	esac
}

main "$@"
