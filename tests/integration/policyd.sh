#!/usr/bin/env bash
# tests/integration/policyd.sh - outpost-policyd behind a real, private Postfix
#
# A private Postfix instance (tests/integration/lib.sh: own directories,
# smtpd on a free 127.0.0.1 port, every message relayed to smtp-sink) asks
# outpost-policyd (check_policy_service at RCPT and END-OF-MESSAGE, over
# its unix socket) about every recipient; the limit is 20 recipients per
# hour per sender, in an LMDB store shared with outpostctl:
#   - one message to 30 recipients: 20 accepted, 10 x 450 4.7.1, and the
#     message reaches smtp-sink for the 20;
#   - outpostctl quota show says 20;
#   - the next message is deferred (450 4.7.1);
#   - after outpostctl quota reset it goes through.
# Then robustness, over TCP: 10,000 malformed requests (junk, oversized
# lines, NUL bytes, requests cut short, no "request" attribute) on their own
# connections and 500 idle connections, alongside a well-behaved client
# that must get every answer; the daemon stays up and its RSS bounded;
# then 3,000 connections at once, each answered.
# Last: SIGHUP reload (the new limit applies; a bad file keeps the old
# config), the idle timeout closes a connection and releases its
# reservation; SIGTERM while a
# client has replies queued: they arrive whole, then the daemon exits 0.
# Prints PASS/FAIL per check, exits non-zero on any failure, and stops every
# process it started.  Needs root (Postfix), postfix, swaks, smtp-sink.
#
# Environment: OUTPOST_BUILD (default TOP/build).

set -u
. "$(dirname "$0")/lib.sh"

it_init policyd
T=$IT_T
POLICYD=$IT_BUILD/policy/outpost-policyd
CTL=$IT_BUILD/tools/outpostctl
SENDER=alice@example.com

fatal_setup() {
	it_setup_failed "$*" "$T/policyd.log"
}

it_need postfix smtp-sink swaks "$IT_PY" "$POLICYD" "$CTL"
it_need_root "private Postfix"

SMTP_PORT=$(it_free_port)
SINK_PORT=$(it_free_port)
POL_PORT=$(it_free_port)
SOCK=$T/policy.sock
it_log "smtpd 127.0.0.1:$SMTP_PORT, smtp-sink 127.0.0.1:$SINK_PORT, policyd unix:$SOCK and 127.0.0.1:$POL_PORT"

write_conf() {
	cat >"$T/outpost.conf" <<EOC
store = { backend = "lmdb"; path = "$T/quota.lmdb"; on_error = "tempfail"; };
limits = (
  { name = "sender-hourly"; key = "sender"; count = "recipients";
    kind = "window"; limit = ${1:-20}; period = "1h"; action = "defer"; }
);
policyd = {
  listen = [ "unix:$SOCK", "inet:127.0.0.1:$POL_PORT" ];
  socket_group = "postfix";
  idle_timeout = "${2:-120s}";
  line_max = 1024;
  request_max = 8192;
};
EOC
}
write_conf 20
"$POLICYD" -n -c "$T/outpost.conf" >/dev/null ||
    fatal_setup "outpost-policyd -n rejects the config"
# Under ASan a small quarantine, so that RSS measures the daemon's memory.
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4 \
    it_spawn "$T/policyd.log" "$POLICYD" -f -c "$T/outpost.conf"
PID=$IT_LASTPID
it_wait 10 test -S "$SOCK" || fatal_setup "policyd did not listen on $SOCK"
it_wait 10 it_port_open "$POL_PORT" || fatal_setup "policyd did not listen on TCP"

sink_start "$T/sink" "$SINK_PORT" || fatal_setup "start smtp-sink"
pf_setup "$T/pf" "$SMTP_PORT" "$SINK_PORT" ""
postconf -c "$T/pf/etc" -e \
    "smtpd_recipient_restrictions = check_policy_service { unix:$SOCK, default_action=DEFER_IF_PERMIT }" \
    "smtpd_end_of_data_restrictions = check_policy_service { unix:$SOCK, default_action=DEFER_IF_PERMIT }" ||
    fatal_setup "postconf"
pf_start "$SMTP_PORT" || fatal_setup "start postfix"

# ---- 30 recipients, limit 20 ------------------------------------------------

rcpts=
for i in $(seq 1 30); do
	rcpts="$rcpts${rcpts:+,}rcpt$i@example.net"
done
msg=$(it_new_msg "$T/msgs" thirty "Alice <$SENDER>" "thirty recipients")
printf 'Thirty recipients, twenty allowed.\n' | it_crlf "$msg"
it_send "$T/swaks1.log" "$SENDER" "$rcpts" "$msg" "$SMTP_PORT"
ok=$(grep -c '^ *<-  *250 2.1.5' "$T/swaks1.log")
deferred=$(grep -c '^ *<\*\* *450 4.7.1' "$T/swaks1.log")
it_log "RCPT: $ok accepted, $deferred deferred"
grep '450 4.7.1' "$T/swaks1.log" | head -n 1 | sed 's/^/    /'
it_check "one message to 30 recipients: 20 accepted" [ "$ok" -eq 20 ]
it_check "one message to 30 recipients: 10 x 450 4.7.1" [ "$deferred" -eq 10 ]
it_check "the reply says the quota" grep -Eq \
    "450 4.7.1 .*Quota exceeded for $SENDER: 20/20 recipients per 1h" "$T/swaks1.log"
it_check "the message is accepted for the 20" grep -q '^ *<-  *250 2.0.0 Ok: queued' \
    "$T/swaks1.log"
f=$(sink_wait "$(it_msg_tag "$msg")" 30) || f=
it_check "the message reaches smtp-sink" [ -n "$f" ]

"$CTL" quota show "$SENDER" -c "$T/outpost.conf" >"$T/show1.out" 2>&1
sed 's/^/    /' "$T/show1.out"
it_check "outpostctl quota show says 20" grep -Eq \
    "sender-hourly.*[^0-9/]20([^0-9]|$)" "$T/show1.out"

msg2=$(it_new_msg "$T/msgs" next "Alice <$SENDER>" "over quota")
printf 'One more.\n' | it_crlf "$msg2"
it_send "$T/swaks2.log" "$SENDER" "bob@example.net" "$msg2" "$SMTP_PORT"
it_check "the next message is deferred (450 4.7.1)" grep -q \
    '^ *<\*\* *450 4.7.1' "$T/swaks2.log"

"$CTL" quota reset "$SENDER" -c "$T/outpost.conf" >"$T/reset.out" 2>&1
it_check "outpostctl quota reset" [ $? -eq 0 ]
sed 's/^/    /' "$T/reset.out"
msg3=$(it_new_msg "$T/msgs" afterreset "Alice <$SENDER>" "after reset")
printf 'After the reset.\n' | it_crlf "$msg3"
it_send "$T/swaks3.log" "$SENDER" "bob@example.net" "$msg3" "$SMTP_PORT"
it_check "after the reset the message goes through" grep -q \
    '^ *<-  *250 2.0.0 Ok: queued' "$T/swaks3.log"
f=$(sink_wait "$(it_msg_tag "$msg3")" 30) || f=
it_check "it reaches smtp-sink" [ -n "$f" ]
"$CTL" quota show "$SENDER" -c "$T/outpost.conf" >"$T/show2.out" 2>&1
it_check "outpostctl quota show says 1 after the reset" grep -Eq \
    "sender-hourly.*[^0-9/]1([^0-9]|$)" "$T/show2.out"
it_check "policyd never answered OK" bash -c \
    "! grep -q 'action=OK' '$T/policyd.log'"

# ---- robustness ---------------------------------------------------------------

rss_kb() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}
RSS0=$(rss_kb "$PID")
timeout 300 "$IT_PY" - "$POL_PORT" >"$T/robust.out" 2>&1 <<'EOPY'
import socket, sys, threading, time

port = int(sys.argv[1])
addr = ("127.0.0.1", port)
JUNK = [
    b"\x00\x01\x02\x03binary\xff\xfe\n\n",
    b"request=smtpd_access_policy\nsender=" + b"x" * 5000 + b"\n\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"request=smtpd_access_policy\nprotocol_state=RCPT\n",  # cut short
    b"protocol_state=RCPT\ninstance=1\n\n",                 # no request=
    b"request=smtpd\x00access_policy\n\n",
    b"\n",
    b"request=smtpd_access_policy\r\rprotocol_state=RCPT\n\n",
    b"".join(b"a%d=b\n" % i for i in range(2000)) + b"\n",  # too big
]
N_JUNK = 10000
N_IDLE = 500
errors = []
replies_to_junk = [0]
done_junk = [0]
lock = threading.Lock()

def junk_worker(k, n):
    for i in range(n):
        data = JUNK[(k * n + i) % len(JUNK)]
        try:
            s = socket.create_connection(addr, timeout=10)
            try:
                s.sendall(data)
            except OSError:
                pass
            if data.endswith(b"RCPT\n"):
                s.shutdown(socket.SHUT_WR)   # EOF inside a request
            got = b""
            try:
                while True:
                    r = s.recv(4096)
                    if not r:
                        break
                    got += r
            except OSError:
                pass
            s.close()
            with lock:
                done_junk[0] += 1
                if b"action=" in got:
                    replies_to_junk[0] += 1
        except OSError as e:
            with lock:
                errors.append("junk: %s" % e)

idle = []
for i in range(N_IDLE):
    s = socket.create_connection(addr, timeout=10)
    if i % 2:
        s.sendall(b"request=smtpd_access_policy\nprotocol_state=RC")  # half
    idle.append(s)

good = {"sent": 0, "answered": 0, "bad": 0}
def good_client():
    s = socket.create_connection(addr, timeout=10)
    f = s.makefile("rb")
    t_end = time.time() + 60
    for i in range(2000):
        if time.time() > t_end:
            break
        inst = "good.%d" % (i // 5)
        st = "RCPT" if i % 5 < 4 else "END-OF-MESSAGE"
        req = ("request=smtpd_access_policy\nprotocol_state=%s\n"
               "sender=good%d@example.com\nclient_address=127.0.0.1\n"
               "instance=%s\nrecipient=r@example.net\nrecipient_count=4\n"
               "size=100\n\n" % (st, i % 50, inst)).encode()
        s.sendall(req)
        good["sent"] += 1
        line = f.readline()
        blank = f.readline()
        if line.startswith(b"action=") and blank == b"\n":
            good["answered"] += 1
        else:
            good["bad"] += 1
            break
    s.close()

threads = [threading.Thread(target=junk_worker, args=(k, N_JUNK // 8))
           for k in range(8)]
g = threading.Thread(target=good_client)
t0 = time.time()
for t in threads:
    t.start()
g.start()
for t in threads:
    t.join()
g.join()
# the idle connections are still served: one of them asks now
s = idle[0]
s.sendall(b"request=smtpd_access_policy\nprotocol_state=MAIL\n\n")
idle_answer = s.recv(100)
for s in idle:
    s.close()
print("junk_done=%d junk_replies=%d errors=%d" %
      (done_junk[0], replies_to_junk[0], len(errors)))
print("good_sent=%d good_answered=%d good_bad=%d" %
      (good["sent"], good["answered"], good["bad"]))
print("idle_answer=%r" % idle_answer)
print("seconds=%.1f" % (time.time() - t0))
for e in errors[:5]:
    print(e)
EOPY
RSS1=$(rss_kb "$PID")
sed 's/^/    /' "$T/robust.out"
it_log "RSS before ${RSS0} kB, after ${RSS1} kB"
it_check "10,000 malformed requests handled" grep -q '^junk_done=10000 ' "$T/robust.out"
it_check "no malformed request got a reply" grep -q ' junk_replies=0 errors=0$' "$T/robust.out"
it_check "the well-behaved client got every answer" grep -Eq \
    '^good_sent=([0-9]+) good_answered=\1 good_bad=0$' "$T/robust.out"
it_check "the well-behaved client asked at least 1000 times" grep -Eq \
    '^good_sent=[0-9]{4,} ' "$T/robust.out"
it_check "an idle connection is still answered" grep -q \
    "^idle_answer=b'action=DUNNO" "$T/robust.out"
it_check "the daemon stays up" kill -0 "$PID"
it_check "RSS stays bounded (${RSS0} -> ${RSS1} kB, < +32 MB)" \
    [ "$((RSS1 - RSS0))" -lt 32768 ]
malformed=$(grep -c 'malformed request\|without its empty line' "$T/policyd.log")
it_check "malformed requests are logged ($malformed)" [ "$malformed" -ge 10000 ]

# 3,000 connections at once, each asks once and is answered.
timeout 120 "$IT_PY" - "$POL_PORT" >"$T/many.out" 2>&1 <<'EOPY'
import resource, socket, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
addr = ("127.0.0.1", int(sys.argv[1]))
N = 3000
conns = [socket.create_connection(addr, timeout=30) for i in range(N)]
for i, s in enumerate(conns):
    s.sendall(("request=smtpd_access_policy\nprotocol_state=RCPT\n"
               "sender=many%d@example.com\ninstance=m%d\n\n" % (i, i)).encode())
answered = 0
for s in conns:
    got = b""
    while not got.endswith(b"\n\n"):
        r = s.recv(100)
        if not r:
            break
        got += r
    answered += got == b"action=DUNNO\n\n"
for s in conns:
    s.close()
print("concurrent=%d answered=%d" % (N, answered))
EOPY
sed 's/^/    /' "$T/many.out"
it_check "3,000 concurrent connections are all answered" grep -q \
    '^concurrent=3000 answered=3000$' "$T/many.out"

# A client that shuts down its side after its request still gets the reply.
"$IT_PY" - "$POL_PORT" >"$T/halfclose.out" 2>&1 <<'EOPY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"request=smtpd_access_policy\nprotocol_state=MAIL\n\n" * 3)
s.shutdown(socket.SHUT_WR)
got = b""
while True:
    r = s.recv(4096)
    if not r:
        break
    got += r
print("replies=%d" % got.count(b"action=DUNNO\n\n"))
EOPY
it_check "a half-closed client gets its 3 replies" grep -q '^replies=3$' \
    "$T/halfclose.out"
it_check "the daemon stays up" kill -0 "$PID"

# ---- reload and stop ------------------------------------------------------------

write_conf 1 2s
kill -HUP "$PID"
it_wait 10 grep -q 'reloaded: 1 limits' "$T/policyd.log"
it_check "SIGHUP reloads" [ $? -eq 0 ]

# The reloaded config (limit 1, idle_timeout 2s): a reservation left by a
# connection that goes idle is released when the daemon closes it.
timeout 30 "$IT_PY" - "$POL_PORT" >"$T/idle.out" 2>&1 <<'EOPY'
import socket, sys, time
addr = ("127.0.0.1", int(sys.argv[1]))
req = (b"request=smtpd_access_policy\nprotocol_state=RCPT\n"
       b"sender=idle@example.com\ninstance=%s\nrecipient=r@example.net\n\n")
def ask(s, inst):
    s.sendall(req % inst)
    return s.recv(4096)
a = socket.create_connection(addr, timeout=10)
print("first=%r" % ask(a, b"idle.1"))
b = socket.create_connection(addr, timeout=10)
print("while_reserved=%r" % ask(b, b"idle.2")[:10])
t0 = time.time()
print("closed_by_daemon=%r after=%.0f" % (a.recv(10), time.time() - t0))
c = socket.create_connection(addr, timeout=10)
print("after_idle=%r" % ask(c, b"idle.3"))
EOPY
sed 's/^/    /' "$T/idle.out"
it_check "reloaded limit: a second reservation is deferred" grep -q \
    "^while_reserved=b'action=450'" "$T/idle.out"
it_check "idle timeout closes the connection" grep -q \
    "^closed_by_daemon=b'' after=[1-4]$" "$T/idle.out"
it_check "idle timeout releases its reservation" grep -q \
    "^after_idle=b'action=DUNNO" "$T/idle.out"
echo 'limits = ( { name = broken' >"$T/outpost.conf"
kill -HUP "$PID"
it_wait 10 grep -q 'keeping the old configuration' "$T/policyd.log"
it_check "SIGHUP with a bad file keeps the old configuration" [ $? -eq 0 ]
it_check "the daemon is still up after a bad reload" kill -0 "$PID"
# SIGTERM while a client has replies in flight (it sent many requests and
# has not read yet): it still gets every reply, whole, then EOF.
timeout 60 "$IT_PY" - "$POL_PORT" "$PID" >"$T/term.out" 2>&1 <<'EOPY'
import os, signal, socket, sys, threading, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # replies queue up
s.settimeout(30)
s.connect(("127.0.0.1", int(sys.argv[1])))
req = b"request=smtpd_access_policy\nprotocol_state=MAIL\ninstance=t\n\n"
def send():
    try:
        s.sendall(req * 200000)
    except OSError:
        pass
t = threading.Thread(target=send, daemon=True)
t.start()
time.sleep(1.5)
os.kill(int(sys.argv[2]), signal.SIGTERM)
got = b""
while True:
    try:
        r = s.recv(65536)
    except OSError:
        break
    if not r:
        break
    got += r
n = got.count(b"action=DUNNO\n\n")
print("replies=%d whole=%s" % (n, len(got) == n * len(b"action=DUNNO\n\n")))
EOPY
sed 's/^/    /' "$T/term.out"
it_check "SIGTERM: the replies in flight are sent whole" grep -Eq \
    '^replies=[0-9]{3,} whole=True$' "$T/term.out"
it_wait 15 eval "! kill -0 $PID 2>/dev/null"
it_check "SIGTERM stops the daemon" [ $? -eq 0 ]
wait "$PID"
it_check "exit status 0 after SIGTERM" [ $? -eq 0 ]
it_check "the unix socket is removed" [ ! -e "$SOCK" ]

# ---- listeners that cannot be opened ---------------------------------------------
# start_bad NAME LISTEN-LIST [EXTRA-SETTING] - run the daemon on a config
# whose listeners it cannot all open; its exit status, output in $T/NAME.log
start_bad() {
	cat >"$T/$1.conf" <<EOC
store = { backend = "memory"; };
limits = (
  { name = "sender-hourly"; key = "sender"; count = "recipients";
    kind = "window"; limit = 20; period = "1h"; }
);
policyd = { listen = [ $2 ]; ${3:-} };
EOC
	timeout 20 "$POLICYD" -f -c "$T/$1.conf" >"$T/$1.log" 2>&1
}
: >"$T/afile"
start_bad nodir "\"unix:$T/first.sock\", \"unix:$T/afile/second.sock\""
rc=$?
it_check "a socket path it cannot create: exit status 69 ($rc)" [ "$rc" -eq 69 ]
it_check "  the error names the path" grep -q "$T/afile/second.sock" \
    "$T/nodir.log"
it_check "  the listener opened before it is removed" [ ! -e "$T/first.sock" ]
start_bad noowner "\"unix:$T/owned.sock\"" \
    'socket_owner = "no-such-user-outpost";'
rc=$?
it_check "socket_owner naming no user: exit status 69 ($rc)" [ "$rc" -eq 69 ]
it_check "  the error names the setting" grep -q \
    'policyd.socket_owner: no user "no-such-user-outpost"' "$T/noowner.log"
it_check "  the socket it made is removed" [ ! -e "$T/owned.sock" ]
it_check "  no sanitizer report (leaks included)" bash -c "! grep -E \
    'ERROR: (Address|Leak)Sanitizer|runtime error:' '$T/nodir.log' \
    '$T/noowner.log'"

it_finish
