#!/usr/bin/env bash
# quota_lmdb_open - who creates the LMDB quota store, and a damaged one.
#
# Owner: with milter.user and policyd.user naming different users and no
# store yet, outpostctl quota run as root refuses (exit 77) and creates
# nothing.  With policyd.user = "nobody" alone, it creates the file and
# its lock file as nobody, and
# outpost-policyd (started as root, running as nobody) opens the store and
# counts a recipient that outpostctl then shows.
# Damage: with the daemon stopped, the file's data pages are overwritten
# with garbage (a host crash under store.sync = "periodic"); the daemon
# starts again, logs the file moved aside, and counts afresh; the moved
# file is kept beside the new one.
#
# usage: tests/integration/quota_lmdb_open.sh   (OUTPOST_BUILD: the build dir)
set -u
. "$(dirname "$0")/lib.sh"

it_init quota_lmdb_open
T=$IT_T
POLICYD=$IT_BUILD/policy/outpost-policyd
CTL=$IT_BUILD/tools/outpostctl

fatal_setup() {
	it_setup_failed "$*" "$T/policyd.log"
}

it_need "$IT_PY" "$POLICYD" "$CTL" stat dd
it_need_root "a store owned by another user"

PORT=$(it_free_port)
mkdir "$T/store"
chown nobody "$T/store"
chmod 700 "$T/store"
STORE=$T/store/quota.lmdb
cat >"$T/outpost.conf" <<EOC
store = { backend = "lmdb"; path = "$STORE"; map_size = "16m";
  on_error = "tempfail"; };
limits = (
  { name = "rcpt-daily"; key = "sender"; count = "recipients";
    kind = "window"; limit = 100; period = "1d"; action = "defer"; }
);
policyd = { listen = [ "inet:127.0.0.1:$PORT" ]; user = "nobody"; };
EOC

# ask - one message of alice@example.com to one recipient: RCPT, then
# END-OF-MESSAGE (which commits the charge); prints both actions
ask() {
	timeout 10 "$IT_PY" - "$PORT" <<'EOPY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
got = []
for state in (b"RCPT", b"END-OF-MESSAGE"):
    s.sendall(b"request=smtpd_access_policy\nprotocol_state=" + state +
              b"\nsender=alice@example.com\nrecipient=bob@example.org\n"
              b"recipient_count=1\ninstance=q1\n\n")
    r = b""
    while not r.endswith(b"\n\n"):
        b = s.recv(100)
        if not b:
            break
        r += b
    got.append(r.decode(errors="replace").strip())
print(" ".join(got))
EOPY
}

# start - outpost-policyd in the foreground, listening
start() {
	it_spawn "$T/policyd.log" "$POLICYD" -f -c "$T/outpost.conf"
	PID=$IT_LASTPID
	it_wait 10 it_port_open "$PORT"
}

# owned_by_nobody FILE... - each FILE exists and belongs to nobody
owned_by_nobody() {
	local f
	for f in "$@"; do
		[ "$(stat -c %U "$f" 2>/dev/null)" = nobody ] || return 1
	done
}

# Two daemon users for a missing store: refused, nothing created.
sed 's/user = "nobody";/user = "nobody"; };\nmilter = { user = "postfix";/' \
    "$T/outpost.conf" >"$T/two-users.conf"
"$CTL" quota list -c "$T/two-users.conf" >"$T/ctl.out" 2>&1
rc=$?
it_check "outpostctl quota as root refuses to guess between two users" \
    test "$rc" = 77 -a ! -e "$STORE" -a ! -e "$STORE-lock"
it_check "and says which settings differ" grep -q \
    'milter.user "postfix", policyd.user "nobody"' "$T/ctl.out"

"$CTL" quota list -c "$T/outpost.conf" >"$T/ctl.out" 2>&1
it_check "outpostctl quota as root on a missing store succeeds" \
    grep -q "no counters in use" "$T/ctl.out"
it_check "the new store and its lock file belong to policyd.user" \
    owned_by_nobody "$STORE" "$STORE-lock"
start || fatal_setup "outpost-policyd did not listen on 127.0.0.1:$PORT"
it_check "outpost-policyd as nobody admits from that store" \
    test "$(ask)" = "action=DUNNO action=DUNNO"
it_check "the admission is counted" \
    test "$(it_quota_used "$T/outpost.conf" alice@example.com rcpt-daily)" = 1
it_stop_pid "$PID"

# Damage: garbage over every page after the two meta pages that is in use,
# a fixed pseudo-random sequence: LMDB keeps no checksums, and some
# garbage can still trip its own assertions (see outpost.conf(5),
# store.sync), so the test uses the same bytes every run.
"$IT_PY" -c 'import random, sys
random.seed(7)
sys.stdout.buffer.write(bytes(random.getrandbits(8) for _ in range(30 * 4096)))' |
    dd of="$STORE" bs=4096 seek=2 count=30 conv=notrunc iflag=fullblock \
    status=none || fatal_setup "cannot damage $STORE"
start || fatal_setup "outpost-policyd did not start on the damaged store"
it_check "outpost-policyd starts on a damaged store and admits" \
    test "$(ask)" = "action=DUNNO action=DUNNO"
it_check "it logs the damaged file moved aside" \
    grep -q "DAMAGED.*moved aside to $STORE.corrupt-" "$T/policyd.log"
it_check "it counts afresh" \
    test "$(it_quota_used "$T/outpost.conf" alice@example.com rcpt-daily)" = 1
set -- "$STORE".corrupt-*-lock
it_check "the damaged file and its lock file are kept, as nobody's" \
    owned_by_nobody "${1%-lock}" "$1"
it_stop_pid "$PID"
it_finish
