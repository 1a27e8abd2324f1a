#!/usr/bin/env bash
# tests/integration/policyd_redis.sh - two outpost-policyd daemons sharing
# one quota in Redis, one of them behind a real, private Postfix
#
# Its own redis-server on a free 127.0.0.1 port (no persistence, in the
# test's directory; if it cannot start, this FAILS).  Two outpost-policyd
# daemons, A and B (two "MTAs"), with the same limit (20 recipients per
# hour per sender) on that Redis, each on its own unix socket.  A private
# Postfix (tests/integration/lib.sh: smtpd on a free loopback port,
# smtp-sink next hop) asks daemon A at RCPT and END-OF-MESSAGE:
#   - one message to 30 recipients: 20 accepted, 10 x 450 4.7.1, and the
#     message reaches smtp-sink; outpostctl quota show says 20; Redis holds
#     no reservation afterwards (outpost:res, outpost:rexp), and once
#     store.reserve_ttl has passed and a script swept, still 20;
#   - shared quota: after outpostctl quota reset, 15 recipients through
#     Postfix and daemon A, then 10 RCPT requests pipelined in one write
#     to daemon B (tests' own client on its socket): 5 DUNNO then 5 x
#     450 4.7.1, in order; END-OF-MESSAGE commits 5; quota show says 20;
#   - release: on daemon B, 4 admitted recipients are counted and held in
#     outpost:res; a new instance on the connection gives them back; the
#     connection closed before END-OF-MESSAGE gives back the new one;
#   - Redis away: a hung server (SIGSTOP) and a stopped one each get
#     "DEFER_IF_PERMIT Service temporarily unavailable" within
#     store.timeout (1 s) plus a margin, the daemons stay up; the server
#     back (SIGCONT; a new redis-server on the same port): the next
#     request to A and to B (whose idle connection the restart broke) is
#     answered normally;
#   - SIGTERM: both daemons exit 0 (under ASan: no leak reports).
# Prints PASS/FAIL per check, exits non-zero on any failure, and stops every
# process it started.  Needs root (Postfix), postfix, swaks, smtp-sink,
# redis-server, redis-cli.
#
# Environment: OUTPOST_BUILD (default TOP/build).

set -u
. "$(dirname "$0")/lib.sh"

it_init policyd_redis
T=$IT_T
POLICYD=$IT_BUILD/policy/outpost-policyd
CTL=$IT_BUILD/tools/outpostctl
SENDER=alice@example.com
LIMIT=sender-hourly
TIMEOUT_S=1		# store.timeout
RESERVE_TTL=4		# store.reserve_ttl, seconds
MARGIN_S=1.5		# on top of store.timeout for a store-error answer

fatal_setup() {
	it_setup_failed "$*" "$T/redis.log" "$T/policyd-a.log" "$T/policyd-b.log"
}

it_need postfix smtp-sink swaks redis-server redis-cli "$IT_PY" "$POLICYD" \
    "$CTL"
it_need_root "private Postfix"

SMTP_PORT=$(it_free_port)
SINK_PORT=$(it_free_port)
RPORT=$(it_free_port)
SOCK_A=$T/policy-a.sock
SOCK_B=$T/policy-b.sock
it_log "smtpd 127.0.0.1:$SMTP_PORT, smtp-sink 127.0.0.1:$SINK_PORT," \
    "redis 127.0.0.1:$RPORT, policyd A unix:$SOCK_A, B unix:$SOCK_B"

# ---- redis-server --------------------------------------------------------------

# rcli - redis-cli on our server
rcli() {
	redis-cli -h 127.0.0.1 -p "$RPORT" "$@"
}

# redis_up - PING answered
redis_up() {
	[ "$(rcli ping 2>/dev/null)" = PONG ]
}

# redis_start - start our redis-server on RPORT (again); sets REDIS_PID
redis_start() {
	it_spawn "$T/redis.log" redis-server --port "$RPORT" \
	    --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
	    --dir "$T"
	REDIS_PID=$IT_LASTPID
	it_wait 10 redis_up
}

if redis_start; then
	it_pass "redis-server starts on 127.0.0.1:$RPORT"
else
	cat "$T/redis.log" >&2
	it_fail "redis-server starts on 127.0.0.1:$RPORT"
	it_finish
	exit 1
fi

# ---- two daemons on one Redis -------------------------------------------------

# write_conf FILE SOCKET - the same store and limit, a daemon's own socket
write_conf() {
	cat >"$1" <<EOC
store = { backend = "redis"; url = "redis://127.0.0.1:$RPORT/0";
          timeout = "${TIMEOUT_S}s"; reserve_ttl = $RESERVE_TTL;
          on_error = "tempfail"; };
limits = (
  { name = "$LIMIT"; key = "sender"; count = "recipients";
    kind = "window"; limit = 20; period = "1h"; action = "defer"; }
);
policyd = {
  listen = [ "unix:$2" ];
  socket_group = "postfix";
  idle_timeout = "120s";
};
EOC
}
CONF_A=$T/a.conf
CONF_B=$T/b.conf
write_conf "$CONF_A" "$SOCK_A"
write_conf "$CONF_B" "$SOCK_B"
"$POLICYD" -n -c "$CONF_A" >/dev/null ||
    fatal_setup "outpost-policyd -n rejects the config"
it_spawn "$T/policyd-a.log" "$POLICYD" -f -c "$CONF_A"
PID_A=$IT_LASTPID
it_spawn "$T/policyd-b.log" "$POLICYD" -f -c "$CONF_B"
PID_B=$IT_LASTPID
it_wait 10 test -S "$SOCK_A" || fatal_setup "policyd A did not listen on $SOCK_A"
it_wait 10 test -S "$SOCK_B" || fatal_setup "policyd B did not listen on $SOCK_B"

# daemons_up - both daemons still run
daemons_up() {
	kill -0 "$PID_A" 2>/dev/null && kill -0 "$PID_B" 2>/dev/null
}

# used KEY - the "used" of LIMIT for KEY (it_quota_used)
used() {
	it_quota_used "$CONF_A" "$1" "$LIMIT"
}

# reservations - "HASH/LAPSING/LEGACY": fields of outpost:res, members of
# outpost:rexp that can lapse (the sentinel's score is +inf), and
# outpost:r:* keys of the older layout
reservations() {
	local h z l
	h=$(rcli hlen outpost:res 2>&1)
	z=$(rcli zcount outpost:rexp -inf '(+inf' 2>&1)
	l=$(rcli --scan --pattern 'outpost:r:*' 2>&1 | wc -l)
	echo "$h/$z/$l"
}

# The tests' policy client: requests as smtpd sends them, replies in order.
cat >"$T/polc.py" <<'EOPY'
import socket
import subprocess
import sys
import time


def req(state, sender, instance, rcpt="", count=0, size=0):
    return ("request=smtpd_access_policy\nprotocol_state=%s\n"
            "protocol_name=ESMTP\nclient_address=127.0.0.1\n"
            "client_name=localhost\nreverse_client_name=localhost\n"
            "helo_name=client.outpost.test\nqueue_id=\ninstance=%s\n"
            "sender=%s\nrecipient=%s\nrecipient_count=%d\nsize=%d\n\n" %
            (state, instance, sender, rcpt, count, size)).encode()


class Conn:
    def __init__(self, path, timeout=10):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def replies(self, n):
        """n replies, "action=..." without the empty line; EOF, TIMEOUT"""
        out = []
        while len(out) < n:
            i = self.buf.find(b"\n\n")
            if i >= 0:
                out.append(self.buf[:i].decode("ascii", "replace"))
                self.buf = self.buf[i + 2:]
                continue
            try:
                r = self.s.recv(65536)
            except socket.timeout:
                out.append("TIMEOUT")
                break
            if not r:
                out.append("EOF")
                break
            self.buf += r
        return out

    def ask(self, data):
        """one request: (reply, seconds)"""
        t0 = time.monotonic()
        self.send(data)
        r = self.replies(1)[0]
        return r, time.monotonic() - t0

    def close(self):
        self.s.close()


def run(*argv):
    return subprocess.run(argv, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True).stdout
EOPY

# polc SCRIPTNAME ARGS... - run a Python snippet (stdin) with polc imported
polc() {
	timeout 60 "$IT_PY" - "$T" "$@"
}

sink_start "$T/sink" "$SINK_PORT" || fatal_setup "start smtp-sink"
pf_setup "$T/pf" "$SMTP_PORT" "$SINK_PORT" ""
postconf -c "$T/pf/etc" -e \
    "smtpd_recipient_restrictions = check_policy_service { unix:$SOCK_A, default_action=DEFER_IF_PERMIT }" \
    "smtpd_end_of_data_restrictions = check_policy_service { unix:$SOCK_A, default_action=DEFER_IF_PERMIT }" ||
    fatal_setup "postconf"
pf_start "$SMTP_PORT" || fatal_setup "start postfix"

# ---- 30 recipients through Postfix and daemon A, limit 20 ---------------------

msg=$(it_new_msg "$T/msgs" thirty "Alice <$SENDER>" "thirty recipients")
printf 'Thirty recipients, twenty allowed.\n' | it_crlf "$msg"
it_send "$T/swaks1.log" "$SENDER" "$(it_rcpt_list rcpt 30)" "$msg" "$SMTP_PORT"
ok=$(grep -c '^ *<-  *250 2.1.5' "$T/swaks1.log")
deferred=$(grep -c '^ *<\*\* *450 4.7.1' "$T/swaks1.log")
it_log "RCPT: $ok accepted, $deferred deferred"
grep '450 4.7.1' "$T/swaks1.log" | head -n 1 | sed 's/^/    /'
it_check "Postfix + A, 30 recipients: 20 accepted ($ok)" [ "$ok" -eq 20 ]
it_check "Postfix + A, 30 recipients: 10 x 450 4.7.1 ($deferred)" \
    [ "$deferred" -eq 10 ]
it_check "the reply says the quota" grep -Eq \
    "450 4.7.1 .*Quota exceeded for $SENDER: 20/20 recipients per 1h" \
    "$T/swaks1.log"
it_check "the message is accepted for the 20" grep -q \
    '^ *<-  *250 2.0.0 Ok: queued' "$T/swaks1.log"
f=$(sink_wait "$(it_msg_tag "$msg")" 30) || f=
it_check "the message reaches smtp-sink" [ -n "$f" ]
if [ -n "$f" ]; then
	n=$(grep -c '^X-Rcpt-Args: ' "$f")
	# smtp-sink records one X-Rcpt-Args line per recipient
	it_check "smtp-sink got it for 20 recipients ($n)" [ "$n" -eq 20 ]
fi
u=$(used "$SENDER")
it_check "outpostctl quota show (Redis) says 20 (got $u)" [ "$u" = 20 ]
r=$(reservations)
it_check "no reservation left in Redis after the commit (res/rexp/legacy $r)" \
    [ "$r" = 0/0/0 ]

# ---- shared quota: Postfix + A, then B pipelined --------------------------------

"$CTL" quota reset "$SENDER" -c "$CONF_A" >"$T/reset1.out" 2>&1
it_check "outpostctl quota reset" [ $? -eq 0 ]
u=$(used "$SENDER")
it_check "quota show says 0 after the reset (got $u)" [ "$u" = 0 ]
msg2=$(it_new_msg "$T/msgs" fifteen "Alice <$SENDER>" "fifteen recipients")
printf 'Fifteen recipients.\n' | it_crlf "$msg2"
it_send "$T/swaks2.log" "$SENDER" "$(it_rcpt_list fifteen 15)" "$msg2" \
    "$SMTP_PORT"
ok=$(grep -c '^ *<-  *250 2.1.5' "$T/swaks2.log")
deferred=$(grep -c '^ *<\*\* *450' "$T/swaks2.log")
it_check "Postfix + A, 15 recipients: 15 accepted, none deferred ($ok, $deferred)" \
    [ "$ok.$deferred" = 15.0 ]
it_check "the message of 15 is queued" grep -q \
    '^ *<-  *250 2.0.0 Ok: queued' "$T/swaks2.log"
u=$(used "$SENDER")
it_check "quota show says 15 (got $u)" [ "$u" = 15 ]

polc "$SOCK_B" "$SENDER" >"$T/pipe.out" 2>&1 <<'EOPY'
import sys
sys.path.insert(0, sys.argv[1])
from polc import Conn, req
c = Conn(sys.argv[2])
sender = sys.argv[3]
# ten RCPT requests of one instance, one write
c.send(b"".join(req("RCPT", sender, "b.1", "b%d@example.net" % i)
                for i in range(1, 11)))
for i, r in enumerate(c.replies(10), 1):
    print("rcpt%d %s" % (i, r))
c.send(req("END-OF-MESSAGE", sender, "b.1", "", 5, 500))
print("eom %s" % c.replies(1)[0])
c.close()
EOPY
T_COMMIT=$(date +%s.%N)
sed 's/^/    /' "$T/pipe.out"
it_check "B, 10 pipelined RCPTs: replies 1-5 are DUNNO" [ \
    "$(grep -c '^rcpt[1-5] action=DUNNO$' "$T/pipe.out")" -eq 5 ]
it_check "B, 10 pipelined RCPTs: replies 6-10 are 450 4.7.1 (20/20)" [ \
    "$(grep -Ec "^rcpt([6-9]|10) action=450 4\.7\.1 Quota exceeded for $SENDER: 20/20 recipients per 1h" \
    "$T/pipe.out")" -eq 5 ]
it_check "B, END-OF-MESSAGE for 5: DUNNO" grep -q '^eom action=DUNNO$' \
    "$T/pipe.out"
u=$(used "$SENDER")
it_check "quota show says 20 after A's 15 and B's 5 (got $u)" [ "$u" = 20 ]
r=$(reservations)
it_check "no reservation left in Redis after B's commit (res/rexp/legacy $r)" \
    [ "$r" = 0/0/0 ]

# ---- the commits outlive reserve_ttl ----------------------------------------------
# Had the commits left reservations behind, the first script run after
# reserve_ttl would refund them: wait reserve_ttl from B's commit, make a
# script run (a request of another sender on B), and quota show still
# says 20.
wait_s=$(awk -v t="$T_COMMIT" -v ttl="$RESERVE_TTL" -v now="$(date +%s.%N)" \
    'BEGIN { w = t + ttl + 0.5 - now; print (w > 0 ? w : 0) }')
it_log "waiting ${wait_s}s for store.reserve_ttl ($RESERVE_TTL s) to pass"
sleep "$wait_s"
polc "$SOCK_B" >"$T/sweep.out" 2>&1 <<'EOPY'
import sys
sys.path.insert(0, sys.argv[1])
from polc import Conn, req
c = Conn(sys.argv[2])
print("sweep %s" % c.ask(req("RCPT", "sweep@example.com", "s.1",
                             "r@example.net"))[0])
# committed, so that no reservation of it is left for the checks below
print("sweep-eom %s" % c.ask(req("END-OF-MESSAGE", "sweep@example.com",
                                 "s.1", "", 1, 100))[0])
c.close()
EOPY
it_check "a message after reserve_ttl is answered DUNNO, DUNNO" [ \
    "$(grep -c '^sweep\(-eom\)\{0,1\} action=DUNNO$' "$T/sweep.out")" -eq 2 ]
u=$(used "$SENDER")
it_check "after reserve_ttl and a sweep, quota show still says 20 (got $u)" \
    [ "$u" = 20 ]

# ---- release: a new instance, a connection closed before END-OF-MESSAGE ------

"$CTL" quota reset "$SENDER" -c "$CONF_A" >"$T/reset2.out" 2>&1
it_check "outpostctl quota reset" [ $? -eq 0 ]
# The client asks B, then runs outpostctl and redis-cli itself while its
# connection (and so the reservations) is still open.
polc "$SOCK_B" "$SENDER" "$CTL" "$CONF_A" "$RPORT" >"$T/release.out" 2>&1 <<'EOPY'
import json, sys
sys.path.insert(0, sys.argv[1])
from polc import Conn, req, run
sock, sender, ctl, conf, port = sys.argv[2:7]


def used():
    try:
        rows = json.loads(run(ctl, "quota", "show", sender, "-c", conf,
                              "--json"))
    except ValueError:
        return "ERR"
    return next((r["used"] for r in rows
                 if r["limit"] == "sender-hourly"), 0)


def held():
    return run("redis-cli", "-h", "127.0.0.1", "-p", port, "hlen",
               "outpost:res").strip()


c = Conn(sock)
c.send(b"".join(req("RCPT", sender, "rel.1", "r%d@example.net" % i)
                for i in range(1, 5)))
print("first %s" % " ".join(c.replies(4)))
print("held4 used=%s res=%s" % (used(), held()))
print("second %s" % c.ask(req("RCPT", sender, "rel.2", "s1@example.net"))[0])
print("held1 used=%s res=%s" % (used(), held()))
c.close()
EOPY
sed 's/^/    /' "$T/release.out"
it_check "B, 4 RCPTs of instance rel.1: DUNNO x 4" grep -q \
    '^first action=DUNNO action=DUNNO action=DUNNO action=DUNNO$' \
    "$T/release.out"
it_check "while the 4 are reserved: quota show 4, 4 in outpost:res" grep -q \
    '^held4 used=4 res=4$' "$T/release.out"
it_check "a RCPT of a new instance rel.2: DUNNO" grep -q \
    '^second action=DUNNO$' "$T/release.out"
it_check "the new instance gave back rel.1's 4: quota show 1, 1 in outpost:res" \
    grep -q '^held1 used=1 res=1$' "$T/release.out"
# The daemon notices the close in its own time: poll (bounded).
sender_free() {
	[ "$(used "$SENDER")" = 0 ]
}
it_wait 5 sender_free
it_check "the connection closed before END-OF-MESSAGE gave back rel.2's 1 (quota show $(used "$SENDER"))" \
    [ "$(used "$SENDER")" = 0 ]
r=$(reservations)
it_check "no reservation left in Redis after the releases (res/rexp/legacy $r)" \
    [ "$r" = 0/0/0 ]
it_check "both daemons are up" daemons_up

# ---- Redis away ------------------------------------------------------------------------
# One connection per daemon for the whole part: the daemons' own
# connections to Redis are what fails and comes back.

# outage_client PHASE... - ask A (B for the "b-*" phases) one RCPT per phase; each
# phase waits for the file T/go.PHASE, prints "PHASE reply seconds"
outage_client() {
	polc "$SOCK_A" "$SOCK_B" "$@" >"$T/outage.out" 2>&1 <<'EOPY'
import os, sys, time
sys.path.insert(0, sys.argv[1])
from polc import Conn, req
a = Conn(sys.argv[2], timeout=20)
b = Conn(sys.argv[3], timeout=20)
for n, phase in enumerate(sys.argv[4:]):
    go = os.path.join(sys.argv[1], "go." + phase)
    t_end = time.monotonic() + 30
    while not os.path.exists(go) and time.monotonic() < t_end:
        time.sleep(0.05)
    c = b if phase.startswith("b-") else a
    r, secs = c.ask(req("RCPT", "down@example.com", "o.%d" % n,
                        "r@example.net"))
    print("%s %s %.3f" % (phase, r, secs), flush=True)
    open(go + ".done", "w").close()
EOPY
}
# phase NAME - let the client ask, wait for its answer (bounded)
phase() {
	touch "$T/go.$1"
	it_wait 20 test -e "$T/go.$1.done" || it_log "no answer in phase $1"
}
outage_client up hung back gone a-back b-back &
OPID=$!
IT_PIDS+=("$OPID")
phase up
kill -STOP "$REDIS_PID"
phase hung
kill -CONT "$REDIS_PID"
sleep 0.3
phase back
it_check "both daemons are up after a hung Redis" daemons_up
it_stop_pid "$REDIS_PID"
it_check "redis-server stopped" eval '! redis_up'
phase gone
it_check "both daemons are up after Redis went away" daemons_up
redis_start
it_check "redis-server starts again on 127.0.0.1:$RPORT" [ $? -eq 0 ]
sleep 0.3		# past the store's reconnect hold-down (100 ms)
phase a-back
phase b-back
wait "$OPID"
sed 's/^/    /' "$T/outage.out"

# in_time PHASE REPLY - PHASE got REPLY within store.timeout + MARGIN_S
in_time() {
	awk -v p="$1" -v r="$2" -v max="$(echo "$TIMEOUT_S + $MARGIN_S" | bc)" '
	    $1 == p { secs = $NF; $1 = ""; $NF = ""; sub(/^ /, ""); sub(/ $/, "")
		if ($0 == r && secs + 0 <= max + 0) ok = 1 }
	    END { exit !ok }' "$T/outage.out"
}
DEFER="action=DEFER_IF_PERMIT Service temporarily unavailable"
it_check "A answers DUNNO with Redis up" in_time up action=DUNNO
it_check "Redis hung (SIGSTOP): A answers DEFER_IF_PERMIT within ${TIMEOUT_S}+${MARGIN_S} s" \
    in_time hung "$DEFER"
it_check "Redis resumed: A's next request is answered DUNNO" \
    in_time back action=DUNNO
it_check "Redis stopped: A answers DEFER_IF_PERMIT within ${TIMEOUT_S}+${MARGIN_S} s" \
    in_time gone "$DEFER"
it_check "Redis restarted: A's next request is answered DUNNO (reconnect)" \
    in_time a-back action=DUNNO
it_check "Redis restarted: B's next request is answered DUNNO (its broken idle connection replaced)" \
    in_time b-back action=DUNNO
it_check "A logs the store errors" [ \
    "$(grep -c 'policy=error stage=RCPT' "$T/policyd-a.log")" -ge 2 ]

# ---- stop ------------------------------------------------------------------------

for d in A:"$PID_A" B:"$PID_B"; do
	pid=${d#*:} d=${d%%:*}
	kill -TERM "$pid"
	it_wait 15 eval "! kill -0 $pid 2>/dev/null"
	wait "$pid"
	rc=$?
	it_check "daemon $d exits 0 after SIGTERM (got $rc)" [ "$rc" -eq 0 ]
done
if grep -l 'ERROR: \(Address\|Leak\)Sanitizer\|runtime error:' \
    "$T/policyd-a.log" "$T/policyd-b.log" >/dev/null; then
	grep -h -A 15 'ERROR: \|runtime error:' "$T/policyd-a.log" \
	    "$T/policyd-b.log" | head -n 60
	it_fail "no sanitizer report in the daemons' logs"
else
	it_pass "no sanitizer report in the daemons' logs"
fi

it_finish
