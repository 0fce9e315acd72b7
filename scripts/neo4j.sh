#!/usr/bin/env bash
# Run a real Neo4j Community Edition 5.26 LTS server for development and tests,
# without Docker: the server jars come from Maven Central (scripts/neo4j/pom.xml)
# and the JVM is started directly on org.neo4j.server.CommunityEntryPoint, which is
# what the `neo4j console` launcher of the official tarball runs.
#
# Usage: bash scripts/neo4j.sh start|stop|restart|status|uri
#
#   start    idempotent; prints exactly one line on stdout, the Bolt URI
#            (bolt://127.0.0.1:7687); progress goes to stderr
#   stop     stops the server started by this script; exit 0 if not running
#   status   prints "running ..." (exit 0) or "stopped" (exit 1)
#   uri      prints the Bolt URI
#
# Environment (all optional):
#   NEO4J_BOLT_PORT      Bolt port on 127.0.0.1            (default 7687)
#   NEO4J_HTTP_PORT      HTTP port on 127.0.0.1, 0 = off   (default 7474)
#   NEO4J_PASSWORD       password of user "neo4j"          (default cmdb-dev-password)
#                        only applied when the database is created: to change it
#                        later, stop, delete .neo4j/data, start
#   NEO4J_HEAP           JVM heap, Neo4j size syntax       (default 2g: a 50k-CI batch,
#                        Limits.MAX_BATCH, needs ~1.5 GB of transaction memory)
#   NEO4J_PAGECACHE      page cache size                   (default 1g)
#   NEO4J_START_TIMEOUT  seconds to wait for Bolt          (default 120)
#   NEO4J_STOP_TIMEOUT   seconds to wait for a clean stop  (default 120)
#   JAVA_HOME            JDK to use (17 or 21); else `java` on PATH
#
# Everything lives in the git-ignored folder .neo4j/ at the repo root:
#   lib/ (jars, reused while scripts/neo4j/pom.xml is unchanged), conf/neo4j.conf,
#   data/, logs/ (neo4j.log, debug.log, console.log), run/neo4j.pid
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd)
POM="$SCRIPT_DIR/neo4j/pom.xml"

NEO4J_DIR="$REPO_ROOT/.neo4j"
LIB_DIR="$NEO4J_DIR/lib"
CONF_DIR="$NEO4J_DIR/conf"
DATA_DIR="$NEO4J_DIR/data"
LOGS_DIR="$NEO4J_DIR/logs"
RUN_DIR="$NEO4J_DIR/run"
PLUGINS_DIR="$NEO4J_DIR/plugins"
IMPORT_DIR="$NEO4J_DIR/import"
PID_FILE="$RUN_DIR/neo4j.pid"
CONSOLE_LOG="$LOGS_DIR/console.log"
LIB_STAMP="$LIB_DIR/.pom.sha256"
PASSWORD_STAMP="$RUN_DIR/initial-password.sha256"

BOLT_PORT="${NEO4J_BOLT_PORT:-7687}"
HTTP_PORT="${NEO4J_HTTP_PORT:-7474}"
PASSWORD="${NEO4J_PASSWORD:-cmdb-dev-password}"
HEAP="${NEO4J_HEAP:-2g}"
PAGECACHE="${NEO4J_PAGECACHE:-1g}"
START_TIMEOUT="${NEO4J_START_TIMEOUT:-120}"
STOP_TIMEOUT="${NEO4J_STOP_TIMEOUT:-120}"
URI="bolt://127.0.0.1:$BOLT_PORT"

ENTRY_POINT=org.neo4j.server.CommunityEntryPoint
ADMIN_ENTRY_POINT=org.neo4j.server.startup.Neo4jAdminCommand

log() { printf 'neo4j.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- tools -------------------------------------------------------------------

find_java() {
    if [[ -n "${JAVA_HOME:-}" ]]; then
        JAVA="$JAVA_HOME/bin/java"
        [[ -x "$JAVA" ]] || die "JAVA_HOME=$JAVA_HOME has no bin/java; install Java 17 or 21 (apt-get install openjdk-17-jdk-headless) or fix JAVA_HOME"
    else
        JAVA=$(command -v java || true)
        [[ -n "$JAVA" ]] || die "java not found on PATH and JAVA_HOME is unset; install Java 17 or 21 (apt-get install openjdk-17-jdk-headless)"
    fi
    # Neo4j 5.26 supports Java 17 and 21 only; older ones cannot load the classes.
    local version major
    version=$("$JAVA" -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')
    major=${version%%.*}
    [[ "$major" =~ ^[0-9]+$ ]] || die "cannot tell the version of $JAVA ($version)"
    ((major >= 17)) || die "$JAVA is Java $version; Neo4j 5.26 needs Java 17 or 21"
    if ((major != 17 && major != 21)); then
        log "warning: Java $version is not supported by Neo4j 5.26 (17 or 21 are); trying anyway"
    fi
}

require_mvn() {
    command -v mvn >/dev/null 2>&1 ||
        die "mvn (Maven) not found; it is needed once to fetch the Neo4j jars (apt-get install maven)"
}

# --- process / port helpers -----------------------------------------------------

# True if something accepts TCP connections on 127.0.0.1:$1 (bash /dev/tcp, so no
# extra tool is needed; `timeout` guards against a connect that hangs).
port_open() {
    # shellcheck disable=SC2016  # $1 is expanded by the inner bash, on purpose
    timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# True if pid $1 is alive and is *our* server (its command line names our home dir),
# so a stale pid file whose number was reused by another process is never trusted.
is_our_server() {
    local pid=$1 cmdline
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ -r "/proc/$pid/cmdline" ]] || return 1
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ "$cmdline" == *"$ENTRY_POINT"*"--home-dir=$NEO4J_DIR"* ]]
}

# Prints the pid of our running server, if any: from the pid file, or (if the pid
# file was lost) by looking for a JVM started with our home dir.
server_pid() {
    local pid dir
    if [[ -f "$PID_FILE" ]]; then
        pid=$(<"$PID_FILE")
        if is_our_server "$pid"; then
            echo "$pid"
            return 0
        fi
    fi
    for dir in /proc/[0-9]*; do
        pid=${dir#/proc/}
        if is_our_server "$pid"; then
            echo "$pid" >"$PID_FILE" 2>/dev/null || true
            echo "$pid"
            return 0
        fi
    done
    return 1
}

# console.log has JVM-level failures (bad flag, crash); neo4j.log has Neo4j's own
# errors (port in use, bad setting); debug.log has the details.
print_log_tail() {
    local f
    for f in "$CONSOLE_LOG" "$LOGS_DIR/neo4j.log"; do
        if [[ -s "$f" ]]; then
            log "---- last lines of $f ----"
            tail -n 25 "$f" >&2
        fi
    done
    log "---- more in $LOGS_DIR/debug.log ----"
}

# --- setup ----------------------------------------------------------------------

# Copy the server jars from Maven Central into .neo4j/lib, unless they are there
# already for this exact pom (a stamp file holds the pom's hash). The copy goes to
# a temporary folder first so that an interrupted download never looks complete.
fetch_jars() {
    local want have=""
    want=$(sha256sum "$POM" | cut -d' ' -f1)
    [[ -f "$LIB_STAMP" ]] && have=$(<"$LIB_STAMP")
    if [[ "$want" == "$have" ]] && compgen -G "$LIB_DIR/neo4j-*.jar" >/dev/null; then
        return 0
    fi
    require_mvn
    log "fetching Neo4j jars from Maven Central (first time only, ~125 MB) ..."
    local tmp="$NEO4J_DIR/lib.tmp" started=$SECONDS
    rm -rf "$tmp"
    # Maven's output (errors only, with -q) goes to a log shown on failure only.
    if ! mvn -q -B -f "$POM" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$tmp" >"$LOGS_DIR/mvn-fetch.log" 2>&1; then
        cat "$LOGS_DIR/mvn-fetch.log" >&2
        die "mvn could not fetch the Neo4j jars (see above)"
    fi
    compgen -G "$tmp/neo4j-[0-9]*.jar" >/dev/null || die "mvn finished but no neo4j jar is in $tmp"
    echo "$want" >"$tmp/.pom.sha256"
    rm -rf "$LIB_DIR"
    mv "$tmp" "$LIB_DIR"
    log "fetched $(find "$LIB_DIR" -name '*.jar' | wc -l) jars in $((SECONDS - started)) s"
}

# Rewritten on every start so that changed env vars take effect. Only what differs
# from Neo4j's defaults is set.
write_config() {
    # NEO4J_HTTP_PORT=0 turns the HTTP connector off (Bolt is all the drivers need).
    local http_enabled=true http_port=$HTTP_PORT
    if [[ "$HTTP_PORT" == 0 ]]; then
        http_enabled=false
        http_port=7474
    fi
    cat >"$CONF_DIR/neo4j.conf" <<EOF
# Written by scripts/neo4j.sh on every start; edits here are lost.

# Reachable from this machine only.
server.default_listen_address=127.0.0.1
server.default_advertised_address=127.0.0.1
server.bolt.enabled=true
server.bolt.listen_address=127.0.0.1:$BOLT_PORT
server.bolt.tls_level=DISABLED
server.http.enabled=$http_enabled
server.http.listen_address=127.0.0.1:$http_port
server.https.enabled=false

# Keep everything inside .neo4j/ (lib/ and plugins/ are found from --home-dir).
server.directories.data=$DATA_DIR
server.directories.logs=$LOGS_DIR
server.directories.run=$RUN_DIR
server.directories.plugins=$PLUGINS_DIR
server.directories.import=$IMPORT_DIR

# Modest memory for a 2-core / 24 GiB dev box; the heap size is passed to the
# JVM as -Xms/-Xmx by neo4j.sh, these lines let Neo4j account for it.
server.memory.heap.initial_size=$HEAP
server.memory.heap.max_size=$HEAP
server.memory.pagecache.size=$PAGECACHE

# Authentication on; the neo4j user's password is set by neo4j-admin before the
# first start (NEO4J_PASSWORD). No global db.transaction.timeout on purpose:
# callers (benchmarks) set per-transaction timeouts.
dbms.security.auth_enabled=true

# No network here, and nothing to report anyway.
dbms.usage_report.enabled=false

# Stop in ~4 s instead of ~13 s: by default the Bolt server waits 5 s for its
# thread pool and 5 s for its connections even when nothing is connected.
# Bolt shuts down after the databases are checkpointed and closed, so the cut is
# harmless; it only logs two "Termination of ... event loop group has exceeded
# maximum permitted duration" warnings in debug.log on stop.
# Internal settings: they exist in the pinned 5.26.x; if a version bump rejects
# them at start-up (unknown setting), delete these two lines.
internal.server.bolt.connection_shutdown_wait_time=1s
internal.server.bolt.thread_pool_shutdown_wait_time=1s
EOF
}

# The password of the built-in "neo4j" user can only be chosen before the system
# database exists: `neo4j-admin dbms set-initial-password` writes data/dbms/auth.ini,
# which the server imports when it creates the system database on its first start.
# We run neo4j-admin's own entry point from the same jars (the tarball's shell
# wrapper does the same). Later starts keep whatever password the database has.
set_initial_password() {
    local want_hash
    want_hash=$(printf '%s' "$PASSWORD" | sha256sum | cut -d' ' -f1)
    if [[ -d "$DATA_DIR/databases/system" ]]; then
        if [[ -f "$PASSWORD_STAMP" && "$(<"$PASSWORD_STAMP")" != "$want_hash" ]]; then
            log "warning: NEO4J_PASSWORD differs from the password the database was created with;" \
                "it is not applied to an existing database (stop, delete .neo4j/data, start to reset)"
        fi
        return 0
    fi
    ((${#PASSWORD} >= 8)) || die "NEO4J_PASSWORD must be at least 8 characters (Neo4j's minimum)"
    log "setting the initial password of user neo4j"
    # env -u JAVA_OPTS: the admin launcher would pass a caller's JAVA_OPTS through.
    if ! env -u JAVA_OPTS NEO4J_HOME="$NEO4J_DIR" NEO4J_CONF="$CONF_DIR" \
        "$JAVA" -cp "$LIB_DIR/*" "$ADMIN_ENTRY_POINT" \
        dbms set-initial-password "$PASSWORD" >"$LOGS_DIR/set-initial-password.log" 2>&1; then
        cat "$LOGS_DIR/set-initial-password.log" >&2
        die "neo4j-admin dbms set-initial-password failed"
    fi
    echo "$want_hash" >"$PASSWORD_STAMP"
}

# --- commands -------------------------------------------------------------------

wait_for_bolt() {
    local pid=$1 deadline=$((SECONDS + START_TIMEOUT))
    while ! port_open "$BOLT_PORT"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            print_log_tail
            rm -f "$PID_FILE"
            die "Neo4j exited during start-up (logs in $LOGS_DIR)"
        fi
        if ((SECONDS >= deadline)); then
            print_log_tail
            log "Bolt did not answer on port $BOLT_PORT within $START_TIMEOUT s; stopping the half-started server"
            stop_server >/dev/null || true
            die "Neo4j did not start (logs in $LOGS_DIR)"
        fi
        sleep 1
    done
}

start_server() {
    # Serialise concurrent `start`s (two `make` targets at once) on a lock file.
    mkdir -p "$RUN_DIR"
    exec 9>"$RUN_DIR/neo4j.sh.lock"
    if command -v flock >/dev/null 2>&1; then
        flock -w "$((START_TIMEOUT + 600))" 9 || die "another neo4j.sh holds $RUN_DIR/neo4j.sh.lock"
    fi

    local pid
    if pid=$(server_pid); then
        # Ours, still starting (or already up): just wait for it.
        log "Neo4j already running (pid $pid)"
        wait_for_bolt "$pid"
        echo "$URI"
        return 0
    fi
    if port_open "$BOLT_PORT"; then
        # Someone else's server (another checkout, a manual run): use it as it is.
        log "something already answers on 127.0.0.1:$BOLT_PORT; not starting another server"
        echo "$URI"
        return 0
    fi
    if [[ "$HTTP_PORT" != 0 ]] && port_open "$HTTP_PORT"; then
        die "port $HTTP_PORT (HTTP) is taken; set NEO4J_HTTP_PORT to a free port, or 0 to disable HTTP"
    fi

    find_java
    mkdir -p "$CONF_DIR" "$DATA_DIR" "$LOGS_DIR" "$PLUGINS_DIR" "$IMPORT_DIR"
    fetch_jars
    write_config
    set_initial_password

    # JVM flags: the ones the official neo4j.conf (5.26) passes via
    # server.jvm.additional, less -XX:+AlwaysPreTouch (it would touch the whole
    # heap at start-up, slower for no gain on a dev box). The --add-opens let
    # Neo4j's page cache and Netty reach JDK internals (direct buffers, file
    # channels) without warnings or slower fallbacks. Heap is fixed (Xms = Xmx) as
    # Neo4j recommends.
    local -a jvm_opts=(
        "-Xms$HEAP" "-Xmx$HEAP"
        -XX:+UseG1GC
        -XX:-OmitStackTraceInFastThrow
        -XX:+UnlockExperimentalVMOptions
        -XX:+TrustFinalNonStaticFields
        -XX:+DisableExplicitGC
        -XX:+ExitOnOutOfMemoryError
        -Djdk.nio.maxCachedBufferSize=1024
        -Dio.netty.tryReflectionSetAccessible=true
        -Djdk.tls.ephemeralDHKeySize=2048
        -Djdk.tls.rejectClientInitiatedRenegotiation=true
        -XX:FlightRecorderOptions=stackdepth=256
        -XX:+UnlockDiagnosticVMOptions
        -XX:+DebugNonSafepoints
        --add-opens=java.base/java.nio=ALL-UNNAMED
        --add-opens=java.base/java.io=ALL-UNNAMED
        --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
        --enable-native-access=ALL-UNNAMED
        -Dlog4j2.disable.jmx=true
        -Dfile.encoding=UTF-8
    )
    # Same class path as the tarball launcher: conf/ (for log config overrides),
    # plugins/ and lib/.
    local classpath="$CONF_DIR/*:$PLUGINS_DIR/*:$LIB_DIR/*"

    [[ -f "$CONSOLE_LOG" ]] && mv -f "$CONSOLE_LOG" "$CONSOLE_LOG.1"
    log "starting Neo4j (Bolt 127.0.0.1:$BOLT_PORT, heap $HEAP, page cache $PAGECACHE; log $CONSOLE_LOG)"
    # nohup + stdin/stdout/stderr redirected: the server outlives this script and
    # `make`, and never holds the caller's pipes open (so `$(neo4j.sh start)` returns).
    # 9>&- closes the lock file: the server must not hold the start lock forever.
    # setsid (when present) puts it in its own session, so a Ctrl-C in the terminal
    # that ran `make neo4j` does not reach it. In a non-interactive script the
    # background job is not a process-group leader, so setsid execs in place and $!
    # is the JVM's pid.
    local -a detach=(nohup)
    command -v setsid >/dev/null 2>&1 && detach+=(setsid)
    (cd "$NEO4J_DIR" && exec "${detach[@]}" "$JAVA" "${jvm_opts[@]}" -cp "$classpath" "$ENTRY_POINT" \
        --home-dir="$NEO4J_DIR" --config-dir="$CONF_DIR" \
        </dev/null >"$CONSOLE_LOG" 2>&1 9>&-) &
    pid=$!
    echo "$pid" >"$PID_FILE"

    local started=$SECONDS
    wait_for_bolt "$pid"
    log "Neo4j is up after $((SECONDS - started)) s (pid $pid)"
    echo "$URI"
}

stop_server() {
    local pid
    if ! pid=$(server_pid); then
        rm -f "$PID_FILE"
        if port_open "$BOLT_PORT"; then
            log "not running from this checkout (but something else answers on port $BOLT_PORT; left alone)"
        else
            log "not running"
        fi
        return 0
    fi
    log "stopping Neo4j (pid $pid)"
    # SIGTERM makes Neo4j shut down cleanly (checkpoint, close the store).
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            # The store recovers from its transaction logs on the next start.
            log "still running after $STOP_TIMEOUT s; killing it (SIGKILL)"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 1
            break
        fi
        sleep 0.5
    done
    rm -f "$PID_FILE"
    log "stopped"
}

status_server() {
    local pid
    if pid=$(server_pid); then
        if port_open "$BOLT_PORT"; then
            echo "running (pid $pid) $URI"
        else
            echo "running (pid $pid, starting up; Bolt not answering yet)"
        fi
        return 0
    fi
    if port_open "$BOLT_PORT"; then
        echo "running (not started by this script) $URI"
        return 0
    fi
    echo "stopped"
    return 1
}

main() {
    case "${1:-}" in
    start) start_server ;;
    stop) stop_server ;;
    restart)
        stop_server
        start_server
        ;;
    status) status_server ;;
    uri) echo "$URI" ;;
    *)
        echo "usage: bash scripts/neo4j.sh start|stop|restart|status|uri" >&2
        exit 2
        ;;
    esac
}

main "$@"
