#!/usr/bin/env bash
# tests/integration/milter_quit_nc.sh - a reload reaches a milter
# connection that the MTA reuses (SMFIC_QUIT_NC), at the protocol level.
#
# A client speaks the milter protocol as Sendmail does when it keeps a
# connection: one SMTP session with a signed message, QUIT_NC, then a new
# CONNECT on the same socket.  Between the two sessions the RSA key is
# rotated (new selector) and the milter reloaded (SIGUSR1).  The second
# message must be signed with the new selector; python3-dkim verifies
# both.  Both engines.  sendmail.sh checks the same behind a real Sendmail
# (two transactions of one SMTP session).
set -u
. "$(dirname "$0")/lib.sh"
it_init milter_quit_nc
T=$IT_T

fatal_setup() {
	it_setup_failed "$*" "$T/native/milter.log" "$T/libmilter/milter.log"
}

it_need "$IT_BUILD/milter/outpost-milter" "$IT_PY" openssl
DOMAIN=example.com
it_keygen "$T/keys" "$DOMAIN" old rsa || fatal_setup "RSA key old"
it_keygen "$T/keys" "$DOMAIN" new rsa || fatal_setup "RSA key new"
it_keygen "$T/keys" "$DOMAIN" ed ed25519 || fatal_setup "ed25519 key"

# The client: session 1, QUIT_NC, wait for argv[3] to exist (the test
# reloads meanwhile), session 2 on the same socket; each signed message
# (the milter's DKIM-Signature fields on top of the message) to
# argv[2].1.eml and argv[2].2.eml.
cat >"$T/client.py" <<'PY'
import os, socket, struct, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
def send(cmd, data=b""):
    s.sendall(struct.pack(">I", len(data) + 1) + cmd + data)
def packet():
    n = struct.unpack(">I", s.recv(4, socket.MSG_WAITALL))[0]
    p = s.recv(n, socket.MSG_WAITALL)
    return p[:1], p[1:]
def reply():
    return packet()[0]
hdrs = [(b"From", b"alice@example.com"), (b"To", b"bob@example.net"),
        (b"Subject", b"reused connection")]
body = b"Signed on a reused milter connection.\r\n"
send(b"O", struct.pack(">III", 6, 0x1ff, 0))
reply()
for n in (1, 2):
    if n == 2:
        send(b"K")				# QUIT_NC: a new session follows
        for _ in range(300):
            if os.path.exists(sys.argv[3]):
                break
            time.sleep(0.1)
    send(b"C", b"client.outpost.test\0" + b"4" + struct.pack(">H", 4711) +
         b"127.0.0.1\0")
    reply()
    send(b"H", b"client.outpost.test\0")
    reply()
    send(b"D", b"Mi\0Q%d\0" % n)
    send(b"M", b"<alice@example.com>\0")
    reply()
    send(b"R", b"<bob@example.net>\0")
    reply()
    for k, v in hdrs:
        send(b"L", k + b"\0" + v + b"\0")
        reply()
    send(b"N")
    reply()
    send(b"B", body)
    reply()
    send(b"E")
    sigs = []
    while True:
        cmd, data = packet()
        if cmd == b"i":			# INSHEADER: index, name, value
            name, value = data[4:].split(b"\0")[:2]
            sigs.append(name + b": " + value.replace(b"\n", b"\r\n"))
            continue
        break
    print("session %d: %s, %d signatures" % (n, cmd.decode(), len(sigs)))
    with open("%s.%d.eml" % (sys.argv[2], n), "wb") as f:
        for h in sigs:
            f.write(h + b"\r\n")
        for k, v in hdrs:
            f.write(k + b": " + v + b"\r\n")
        f.write(b"\r\n" + body)
send(b"Q")
PY

# suite ENGINE - the two sessions against a milter with ENGINE
suite() {
	local eng=$1 d=$T/$1 conf sock mpid
	mkdir -p "$d"
	conf=$d/outpost.conf
	sock=unix:$d/milter.sock
	OUTPOST_ENGINE=$eng outpost_conf "$conf" "$sock" "$T/keys" "$DOMAIN" \
	    old ed
	outpost_start "$conf" "$sock" "$d/milter.log" ||
	    fatal_setup "$eng: start outpost-milter"
	mpid=$IT_LASTPID
	"$IT_PY" "$T/client.py" "$d/milter.sock" "$d/msg" "$d/reloaded" \
	    >"$d/client.out" 2>&1 &
	local client=$!
	IT_PIDS+=("$client")
	it_wait 10 test -s "$d/msg.1.eml" || fatal_setup "$eng: session 1"
	sed -i 's/"old"/"new"/; s|/old.private|/new.private|' "$conf"
	kill -USR1 "$mpid"
	it_wait 10 grep -q 'configuration reloaded' "$d/milter.log" ||
	    fatal_setup "$eng: no reload"
	: >"$d/reloaded"
	wait "$client"
	sed 's/^/    /' "$d/client.out"
	it_verify_py "$d/msg.1.eml" "$T/keys/zone" >"$d/v1.out" 2>&1
	it_verify_py "$d/msg.2.eml" "$T/keys/zone" >"$d/v2.out" 2>&1
	sed 's/^/    session 1: /' "$d/v1.out"
	sed 's/^/    session 2: /' "$d/v2.out"
	it_check "$eng: session 1 signed with s=old" \
	    grep -q "^sig [0-9]*: d=$DOMAIN s=old a=rsa-sha256 ok" "$d/v1.out"
	it_check "$eng: after QUIT_NC and a reload: signed with s=new" \
	    grep -q "^sig [0-9]*: d=$DOMAIN s=new a=rsa-sha256 ok" "$d/v2.out"
	it_check "$eng:   not with the retired s=old" \
	    test "$(grep -c ' s=old ' "$d/v2.out")" -eq 0
	it_stop_pid "$mpid"
}
suite native
suite libmilter
it_finish
