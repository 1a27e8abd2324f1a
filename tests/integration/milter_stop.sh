#!/usr/bin/env bash
# tests/integration/milter_stop.sh - SIGTERM while an MTA connection is in
# the middle of a message.
#
# A client speaks the milter protocol (as an MTA: negotiation, CONNECT,
# HELO, MAIL, RCPT, a header field) and then holds the connection.  The
# recipient is reserved in the quota store (milter.quotas = "all").  Then
# SIGTERM: the milter lets the message run for its grace period, then
# closes the connection itself, waits for its thread (which aborts the
# message and refunds the reservation), frees its state and exits 0.
# Before, it freed the SPF pool and configuration that the connection
# thread still used and exited with the thread running, the reservation
# left to lapse.  Checks: the client sees the milter close the connection,
# the milter exits 0, the reservation is refunded, and under an ASan build
# (configure --enable-asan) the log has no AddressSanitizer report.
# Native engine (libmilter closes no connection of its own).
set -u
. "$(dirname "$0")/lib.sh"
it_init milter_stop
T=$IT_T

fatal_setup() {
	it_setup_failed "$*" "$T/milter.log"
}

it_need "$IT_BUILD/milter/outpost-milter" "$IT_BUILD/tools/outpostctl" "$IT_PY"

CONF=$T/outpost.conf
SOCK=unix:$T/milter.sock
cat >"$CONF" <<EOF
milter = { socket = "$SOCK"; quotas = "all"; engine = "native"; };
trusted = { networks = [ "127.0.0.1/32" ]; };
dkim = { keys = (); signing = (); };
store = { backend = "lmdb"; path = "$T/quota.lmdb"; };
limits = (
  { name = "rcpt"; key = "sender"; count = "recipients"; kind = "window";
    limit = 100; period = "1h"; }
);
EOF
outpost_start "$CONF" "$SOCK" "$T/milter.log" || fatal_setup "start outpost-milter"
MPID=$IT_LASTPID

# The client: up to the first header field, then wait (at most 40 s) for
# the milter to close the connection.
"$IT_PY" - "$T/milter.sock" >"$T/client.out" 2>&1 <<'PY' &
import socket, struct, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
def send(cmd, data=b""):
    s.sendall(struct.pack(">I", len(data) + 1) + cmd + data)
def reply():
    n = struct.unpack(">I", s.recv(4, socket.MSG_WAITALL))[0]
    return s.recv(n, socket.MSG_WAITALL)[:1]
send(b"O", struct.pack(">III", 6, 0x1ff, 0))
reply()
send(b"C", b"client.outpost.test\0" + b"4" + struct.pack(">H", 4711) +
     b"127.0.0.1\0")
print("connect", reply())
send(b"H", b"client.outpost.test\0")
print("helo", reply())
send(b"D", b"Mi\0QSTOP1\0")
send(b"M", b"<alice@example.com>\0")
print("mail", reply())
send(b"R", b"<bob@example.net>\0")
print("rcpt", reply())
send(b"L", b"From\0alice@example.com\0")
print("header", reply())
print("held", flush=True)
s.settimeout(40)
t0 = time.time()
try:
    got = s.recv(1)
except OSError as e:
    got = repr(e).encode()
print("closed by the milter" if got == b"" else "got %r" % got,
      "after %d s" % (time.time() - t0), flush=True)
PY
CLIENT=$!
IT_PIDS+=("$CLIENT")
it_wait 10 grep -q '^held' "$T/client.out" ||
    fatal_setup "the client did not get through the header: $(cat "$T/client.out")"
it_check "mid-message: the recipient is reserved" \
    test "$(it_quota_used "$CONF" alice@example.com rcpt)" = 1

kill -TERM "$MPID"
# the grace period is 10 s; then the connection closes and the milter ends
it_wait 25 eval '! kill -0 $MPID 2>/dev/null'
if kill -0 "$MPID" 2>/dev/null; then
	it_fail "the milter exits within 25 s of SIGTERM"
else
	wait "$MPID"
	rc=$?
	it_pass "the milter exits within 25 s of SIGTERM"
	it_check "  with status 0 (got $rc)" test "$rc" -eq 0
fi
wait "$CLIENT"
sed 's/^/    client: /' "$T/client.out"
it_check "the milter closed the held connection itself" \
    grep -q '^closed by the milter' "$T/client.out"
it_check "the held message's reservation is refunded" \
    test "$(it_quota_used "$CONF" alice@example.com rcpt)" = 0
it_check "the milter logged that it closed the connection" \
    grep -q 'closing 1 MTA connections still open' "$T/milter.log"
if grep -qE 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:' \
    "$T/milter.log"; then
	it_fail "milter log has no ASan/UBSan report"
	grep -A20 -E 'ERROR: AddressSanitizer|ERROR: LeakSanitizer' \
	    "$T/milter.log" | head -40
else
	it_pass "milter log has no ASan/UBSan report"
fi
it_finish
