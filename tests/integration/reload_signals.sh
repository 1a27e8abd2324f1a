#!/usr/bin/env bash
# tests/integration/reload_signals.sh - SIGHUP and SIGUSR1 both reload,
# under both milter engines and in outpost-policyd, and the daemon runs on
#
# outpost-milter (native, then libmilter): signs with selector e1; the
# file is changed to e2, SIGHUP, the next message (tests/miltc) is signed
# with e2; changed to e3, SIGUSR1, signed with e3; the milter still runs
# and SIGTERM then stops it with status 0.  Before, libmilter's own signal
# thread stopped the milter on SIGHUP.
# outpost-policyd: the limit goes 1 -> 2 on SIGHUP and 2 -> 3 on SIGUSR1;
# each time a new sender gets exactly limit recipients admitted (DUNNO)
# and the next one deferred (450); the daemon still runs.  Before, SIGUSR1
# ended it.  No MTA needed.
#
# Environment: OUTPOST_BUILD (default TOP/build).

set -u
. "$(dirname "$0")/lib.sh"

it_init reload_signals
T=$IT_T
MILTER=$IT_BUILD/milter/outpost-milter
MILTC=$IT_BUILD/tests/miltc
POLICYD=$IT_BUILD/policy/outpost-policyd

fatal_setup() {
	it_setup_failed "$*" "$T/milter.log" "$T/policyd.log"
}

it_need "$MILTER" "$MILTC" "$POLICYD" "$IT_PY"
for sel in e1 e2 e3; do
	it_keygen "$T/keys" example.com "$sel" ed25519 ||
	    fatal_setup "make test key $sel"
done
printf 'From: alice@example.com\r\nTo: bob@example.net\r\nSubject: hi\r\n\r\nhello\r\n' \
    >"$T/msg.eml"

# reloaded LOG N - true once LOG reports N successful reloads
reloaded() {
	[ "$(grep -c "$2" "$1")" -ge "$3" ]
}

# ---- outpost-milter -------------------------------------------------------------

# milter_conf SELECTOR ENGINE
milter_conf() {
	cat >"$T/milter.conf" <<EOC
milter = { socket = "unix:$T/milter.sock"; engine = "$2"; };
trusted = { networks = [ "127.0.0.1/32" ]; };
dkim = {
  keys = ( { name = "e"; domain = "example.com"; selector = "$1";
    algorithm = "ed25519-sha256"; file = "$T/keys/$1.private"; } );
  signing = ( { match = "*@example.com"; keys = [ "e" ]; } );
};
EOC
}

# signs_with WHAT SELECTOR - a message through miltc carries s=SELECTOR
signs_with() {
	rm -f "$T/out.eml"
	"$MILTC" -s "unix:$T/milter.sock" -o "$T/out.eml" -c 127.0.0.1 \
	    -i Q1 "$T/msg.eml" >"$T/miltc.res" 2>&1
	it_check "$1: signed with s=$2" grep -q "s=$2;" "$T/out.eml"
}

for engine in native libmilter; do
	milter_conf e1 "$engine"
	: >"$T/milter.log"
	it_spawn "$T/milter.log" "$MILTER" -f -c "$T/milter.conf"
	MPID=$IT_LASTPID
	it_wait 10 grep -q "(engine $engine)" "$T/milter.log" ||
	    fatal_setup "outpost-milter ($engine) did not start"
	signs_with "$engine, at start" e1
	n=0
	for sig in HUP USR1; do
		n=$((n + 1))
		sel=e$((n + 1))
		milter_conf "$sel" "$engine"
		kill -"$sig" "$MPID"
		it_wait 10 reloaded "$T/milter.log" 'configuration reloaded' "$n"
		it_check "$engine: SIG$sig reloads" [ $? -eq 0 ]
		it_check "$engine: running after SIG$sig" kill -0 "$MPID"
		signs_with "$engine, after SIG$sig" "$sel"
	done
	kill -TERM "$MPID"
	it_wait 20 eval "! kill -0 $MPID 2>/dev/null"
	wait "$MPID"
	rc=$?
	it_check "$engine: SIGTERM stops it with status 0 ($rc)" [ $rc -eq 0 ]
	# what a sanitizer or the milter said, to tell why it did not
	[ $rc -eq 0 ] || tail -n 60 "$T/milter.log" | sed 's/^/    /'
done

# ---- outpost-policyd ------------------------------------------------------------

PORT=$(it_free_port)
policyd_conf() {
	cat >"$T/policyd.conf" <<EOC
store = { backend = "memory"; };
limits = (
  { name = "r"; key = "sender"; count = "recipients"; kind = "window";
    limit = $1; period = "1h"; action = "defer"; }
);
policyd = { listen = [ "inet:127.0.0.1:$PORT" ]; };
EOC
}

# admits WHAT SENDER LIMIT - LIMIT recipients of SENDER get DUNNO, the
# next 450 (a connection per recipient, each held open with its
# reservation)
admits() {
	timeout 20 "$IT_PY" - "$PORT" "$2" "$3" >"$T/ask.out" 2>&1 <<'EOPY'
import socket, sys
got, conns = [], []
for i in range(int(sys.argv[3]) + 1):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
    conns.append(s)  # held open: its reservation stays
    s.sendall(b"request=smtpd_access_policy\nprotocol_state=RCPT\n"
              b"sender=%s\ninstance=%s.%d\nrecipient=r%d@example.net\n\n"
              % (sys.argv[2].encode(), sys.argv[2].encode(), i, i))
    r = b""
    while not r.endswith(b"\n\n"):
        r += s.recv(4096)
    got.append(r.split(b"\n")[0].split(b" ")[0].decode())
print(" ".join(got))
EOPY
	want=$(printf 'action=DUNNO %.0s' $(seq "$3"))action=450
	it_check "$1: $3 admitted, then deferred (got: $(cat "$T/ask.out"))" \
	    [ "$(cat "$T/ask.out")" = "$want" ]
}

policyd_conf 1
it_spawn "$T/policyd.log" "$POLICYD" -f -c "$T/policyd.conf"
PPID_=$IT_LASTPID
it_wait 10 it_port_open "$PORT" || fatal_setup "policyd did not listen"
admits "policyd, at start" start@example.com 1
n=0
for sig in HUP USR1; do
	n=$((n + 1))
	policyd_conf $((n + 1))
	kill -"$sig" "$PPID_"
	it_wait 10 reloaded "$T/policyd.log" 'reloaded: 1 limits' "$n"
	it_check "policyd: SIG$sig reloads" [ $? -eq 0 ]
	it_check "policyd: running after SIG$sig" kill -0 "$PPID_"
	admits "policyd, after SIG$sig" "$sig@example.com" $((n + 1))
done

it_finish
