#!/usr/bin/env bash
# tests/integration/milter_daemon_lmdb.sh - outpost-milter started as a
# daemon (no -f) shares its LMDB quota store with outpost-policyd and
# outpostctl.
#
# LMDB forbids an environment across fork(): a milter that opened the
# store before daemon(3) ran without its lock file's fcntl lock (it stayed
# with the parent that exited), so the next process to open the file
# believed it was alone and reset the reader table and the writers' mutex
# under the running milter.  Checks:
#   - the daemonized milter holds LMDB's lock on PATH-lock (/proc/locks);
#   - mdb_stat -r lists a reader slot of a test process, and after
#     outpostctl and outpost-policyd opened the file under load (4 miltc
#     clients through the milter) the table was not reset (its high-water
#     mark of slots used stays);
#   - every message of the load is counted: exact totals.
# No MTA; unix sockets only.
set -u
. "$(dirname "$0")/lib.sh"
it_init milter_daemon_lmdb
T=$IT_T

MILTER=$IT_BUILD/milter/outpost-milter
POLICYD=$IT_BUILD/policy/outpost-policyd
CTL=$IT_BUILD/tools/outpostctl
MILTC=$IT_BUILD/tests/miltc
CLIENTS=4
PER_CLIENT=50

fatal_setup() {
	it_setup_failed "$*" "$T/policyd.log" "$T/reader.log"
}

it_need "$MILTER" "$POLICYD" "$CTL" "$MILTC" mdb_stat "$IT_PY"

STORE=$T/quota.lmdb
CONF=$T/outpost.conf
SOCK=unix:$T/milter.sock
cat >"$CONF" <<EOF
milter = { socket = "$SOCK"; quotas = "all"; pid_file = "$T/milter.pid"; };
trusted = { networks = [ "127.0.0.1/32" ]; };
dkim = { keys = (); signing = (); };
store = { backend = "lmdb"; path = "$STORE"; map_size = "64m"; };
limits = (
  { name = "msgs"; key = "sender"; count = "messages"; kind = "window";
    limit = 1000000; period = "1d"; }
);
policyd = { listen = [ "unix:$T/policy.sock" ]; };
EOF
"$MILTER" -n -c "$CONF" >/dev/null 2>"$T/n.err" ||
    fatal_setup "outpost-milter -n: $(cat "$T/n.err")"

# ---- the milter as a daemon ---------------------------------------------------

"$MILTER" -c "$CONF" >"$T/milter.out" 2>&1 ||
    fatal_setup "outpost-milter (daemon) exits $?: $(cat "$T/milter.out")"
it_wait 10 test -s "$T/milter.pid" || fatal_setup "no milter pid file"
MPID=$(cat "$T/milter.pid")
IT_PIDS+=("$MPID")
it_wait 10 test -S "$T/milter.sock" || fatal_setup "no milter socket"
kill -0 "$MPID" 2>/dev/null || fatal_setup "the daemon is not running"
it_pass "setup: outpost-milter runs as a daemon (pid $MPID)"

MSG=$T/m.eml
printf 'From: alice@example.com\r\nTo: bob@example.net\r\nSubject: q\r\n\r\nhello\r\n' >"$MSG"
# one message through the milter: it has used its store
"$MILTC" -s "$SOCK" -f '<first@example.com>' -r '<bob@example.net>' \
    -o /dev/null "$MSG" >"$T/first.res" 2>&1
it_check "a message through the daemon is counted" \
    test "$(it_quota_used "$CONF" first@example.com msgs)" = 1

# lmdb_locked PID - PID holds a POSIX lock on the store's lock file
lmdb_locked() {
	local ino
	ino=$(stat -c %i "$STORE-lock") || return 1
	grep -Eq "POSIX +ADVISORY +(READ|WRITE) +$1 +[0-9a-f]+:[0-9a-f]+:$ino " \
	    /proc/locks
}
it_check "the daemonized milter holds LMDB's lock on $STORE-lock" \
    lmdb_locked "$MPID"

# ---- the reader table --------------------------------------------------------
# A test process opens the file as the stores do and holds one read
# transaction: the table's count of slots used ("Number of readers used",
# a high-water mark) is then at least 1, and only a reset of the table
# lowers it.  A process that opens the file and finds no lock on it (the
# milter's missing) resets the table.
"$IT_PY" - "$STORE" "$T/reader.ready" >"$T/reader.log" 2>&1 <<'PY' &
import ctypes, os, sys, time
lib = ctypes.CDLL("liblmdb.so.0")
env, txn = ctypes.c_void_p(), ctypes.c_void_p()
NOSUBDIR, NOSYNC, NOTLS, WRITEMAP = 0x4000, 0x10000, 0x200000, 0x80000
RDONLY = 0x20000
assert lib.mdb_env_create(ctypes.byref(env)) == 0
assert lib.mdb_env_set_maxdbs(env, 8) == 0
rc = lib.mdb_env_open(env, sys.argv[1].encode(),
    NOSUBDIR | NOTLS | WRITEMAP | NOSYNC, 0o600)
assert rc == 0, rc
assert lib.mdb_txn_begin(env, None, RDONLY, ctypes.byref(txn)) == 0
open(sys.argv[2], "w").write(str(os.getpid()))
for _ in range(600):		# at most 60 s; the test stops it sooner
    time.sleep(0.1)
PY
READER=$!
IT_PIDS+=("$READER")
it_wait 10 test -s "$T/reader.ready" || fatal_setup "reader did not open"

# readers_used - mdb_stat's "Number of readers used"; mdb_stat -r exits 1
# even when it works
readers_used() {
	mdb_stat -n -e -r "$STORE" >"$T/mdb_stat.out" 2>&1
	sed -n 's/^ *Number of readers used: *//p' "$T/mdb_stat.out"
}
used0=$(readers_used)
it_check "mdb_stat -r lists the test reader's slot" \
    grep -Eq "^ *$READER +[0-9a-f]+ +[0-9]+" "$T/mdb_stat.out"
it_check "reader slots used: got ${used0:-none}, want >= 1" \
    test "${used0:-0}" -ge 1
it_stop_pid "$READER"

# ---- outpostctl and outpost-policyd open the file under load ----------------

LOADERS=()
for c in $(seq "$CLIENTS"); do
	(
		for i in $(seq "$PER_CLIENT"); do
			"$MILTC" -s "$SOCK" -f "<load$c@example.com>" \
			    -r '<bob@example.net>' -o /dev/null "$MSG" \
			    >/dev/null 2>&1 || echo "client $c message $i: $?"
		done
	) >"$T/load$c.err" &
	LOADERS+=("$!")
done
# outpostctl opens and closes the file, reads and writes it
for n in $(seq 0 19); do
	"$CTL" quota set "ctl$((n % 4))@example.com" --limit msgs "$n" \
	    -c "$CONF" >/dev/null 2>&1
	"$CTL" quota show "load1@example.com" -c "$CONF" >/dev/null 2>&1
done
it_spawn "$T/policyd.log" "$POLICYD" -f -c "$CONF"
POLICYD_PID=$IT_LASTPID
it_wait 10 test -S "$T/policy.sock" ||
    fatal_setup "outpost-policyd did not start"
for p in "${LOADERS[@]}"; do
	wait "$p"
done
used1=$(readers_used)
it_check "after outpostctl and outpost-policyd opened the file: no reset of the reader table (readers used: got ${used1:-none}, want >= ${used0:-2})" \
    test "${used1:-0}" -ge "${used0:-2}"
it_check "every message of the load passed" \
    test "$(cat "$T"/load*.err | wc -l)" -eq 0
exact=1
for c in $(seq "$CLIENTS"); do
	got=$(it_quota_used "$CONF" "load$c@example.com" msgs)
	[ "$got" = "$PER_CLIENT" ] || {
		echo "    load$c@example.com: got $got, want $PER_CLIENT"
		exact=0
	}
done
it_check "exact counts: $CLIENTS x $PER_CLIENT messages" test "$exact" -eq 1
it_check "the milter still runs" kill -0 "$MPID"
it_check "outpost-policyd still runs" kill -0 "$POLICYD_PID"
it_check "mdb_stat opens the file" mdb_stat -n -e "$STORE"
it_finish
