#!/usr/bin/env bash
# tests/integration/policyd_commit_fail.sh - outpost-policyd when the LMDB
# transaction of a turn fails to commit
#
# tests/outpost-policyd-test is outpost-policyd with a test hook
# (tests/policyd_hooks.c): while the file $T/fail exists, the LMDB store's
# transactions fail at their end, after the quota calls of the turn ran
# and their completions prepared the replies.  A limit of 100 recipients
# per hour per sender; clients speak the policy protocol on the unix
# socket, several connections at once, each a message of 2 RCPTs and an
# END-OF-MESSAGE (recipient_count=2), as Postfix asks:
#   - no failure: every reply DUNNO, outpostctl quota show counts 2 per
#     message;
#   - failing: every reply is the store-error answer of store.on_error
#     (tempfail: DEFER_IF_PERMIT), logged, and the counter does not move;
#   - the file removed: the same requests are answered DUNNO and counted;
#   - after a reload to store.on_error = "accept": failing turns answer
#     DUNNO, still nothing counted;
#   - the installed outpost-policyd has no hook (strings).
# Needs python3 and the built outpostctl; no root.
set -u
. "$(dirname "$0")/lib.sh"
it_init policyd-commit-fail
T=$IT_T

POLICYD=$IT_BUILD/tests/outpost-policyd-test
CTL=$IT_BUILD/tools/outpostctl
it_need "$IT_PY" "$POLICYD" "$CTL"

# write_conf ON_ERROR
write_conf() {
	cat >"$T/outpost.conf" <<EOC
store = { backend = "lmdb"; path = "$T/quota.lmdb"; on_error = "$1"; };
limits = (
  { name = "rcpt100"; key = "sender"; count = "recipients";
    kind = "window"; limit = 100; period = "1h"; action = "defer"; }
);
policyd = { listen = [ "unix:$T/policyd.sock" ]; };
EOC
}

# messages TAG N - N connections at once, each one message of 2 RCPTs
# and its END-OF-MESSAGE; prints each reply's action, one per line
messages() {
	"$IT_PY" - "$T/policyd.sock" "$1" "$2" <<'EOPY'
import socket, sys, threading
path, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
out = []
lock = threading.Lock()

def ask(f, s, attrs):
    req = "request=smtpd_access_policy\n" + "".join(
        "%s=%s\n" % kv for kv in attrs) + "\n"
    s.sendall(req.encode())
    line = f.readline().strip()
    f.readline()
    return line

def conn(i):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    f = s.makefile("r")
    inst = "%s-%d" % (tag, i)
    base = [("instance", inst), ("sender", "alice@example.com"),
            ("client_address", "127.0.0.1")]
    got = []
    for r in range(2):
        got.append(ask(f, s, [("protocol_state", "RCPT"),
            ("recipient", "r%d@example.net" % r)] + base))
    got.append(ask(f, s, [("protocol_state", "END-OF-MESSAGE"),
        ("recipient_count", "2"), ("size", "100")] + base))
    s.close()
    with lock:
        out.extend(got)

ts = [threading.Thread(target=conn, args=(i,)) for i in range(n)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print("\n".join(out))
EOPY
}

used() {
	it_quota_used "$T/outpost.conf" alice@example.com rcpt100
}

# all_are FILE ACTION COUNT - FILE holds COUNT lines, each "action=ACTION"
all_are() {
	[ "$(wc -l <"$1")" -eq "$3" ] &&
	    [ "$(grep -c -x -F "action=$2" "$1")" -eq "$3" ]
}

write_conf tempfail
OUTPOST_TEST_FAIL_COMMIT=$T/fail it_spawn "$T/policyd.log" \
    "$POLICYD" -f -c "$T/outpost.conf"
PID=$IT_LASTPID
it_wait 10 test -S "$T/policyd.sock" ||
    it_setup_failed "outpost-policyd-test did not start" "$T/policyd.log"

messages ok 1 >"$T/r1"
it_check "no failure: 3 replies, each DUNNO" all_are "$T/r1" DUNNO 3
it_check "no failure: 2 recipients counted (got $(used))" \
    test "$(used)" = 2

touch "$T/fail"
messages bad 4 >"$T/r2"
it_check "failing commits: 12 replies, each DEFER_IF_PERMIT" \
    all_are "$T/r2" "DEFER_IF_PERMIT Service temporarily unavailable" 12
it_check "failing commits: nothing counted (got $(used), want 2)" \
    test "$(used)" = 2
it_check "failing commits: logged as store errors" \
    grep -q 'policy=error .*batch abandoned' "$T/policyd.log"

rm -f "$T/fail"
messages again 4 >"$T/r3"
it_check "commits again: 12 replies, each DUNNO" all_are "$T/r3" DUNNO 12
it_check "commits again: 2 + 8 recipients counted (got $(used))" \
    test "$(used)" = 10

write_conf accept
kill -HUP "$PID"
it_wait 10 grep -q "reloaded" "$T/policyd.log" ||
    it_setup_failed "no reload" "$T/policyd.log"
touch "$T/fail"
messages accept 3 >"$T/r4"
it_check "on_error accept, failing commits: 9 replies, each DUNNO" \
    all_are "$T/r4" DUNNO 9
it_check "on_error accept, failing commits: nothing counted (got $(used))" \
    test "$(used)" = 10
rm -f "$T/fail"

it_stop_pid "$PID"
it_check "the installed daemon has no hook (strings)" \
    sh -c "! strings '$IT_BUILD/policy/outpost-policyd' | grep -q OUTPOST_TEST_FAIL_COMMIT"
it_check "the test daemon has it (the check above can fail)" \
    sh -c "strings '$POLICYD' | grep -q OUTPOST_TEST_FAIL_COMMIT"
it_check "no sanitizer report in the daemon's log" \
    sh -c "! grep -q -E 'AddressSanitizer|LeakSanitizer|runtime error' '$T/policyd.log'"
it_finish
