#!/usr/bin/env bash
# tests/integration/listen_backlog.sh - the configured listen backlog holds
# test: serial (a burst of connects while the daemon is busy)
#
# outpost-policyd (policyd.backlog) and outpost-milter under both engines
# (milter.backlog), each with backlog = 1000 on a TCP socket on 127.0.0.1
# and on a unix socket: ss(8) must show a queue length (Send-Q of a
# listening socket) of 1000 for each, not the 128 of a second listen()
# by the event loop.  No MTA needed: the daemons only listen.
#
# Environment: OUTPOST_BUILD (default TOP/build).

set -u
. "$(dirname "$0")/lib.sh"

it_init backlog
T=$IT_T
POLICYD=$IT_BUILD/policy/outpost-policyd
MILTER=$IT_BUILD/milter/outpost-milter

fatal_setup() {
	it_setup_failed "$*" "$T/policyd.log" "$T/milter.log"
}

it_need ss "$POLICYD" "$MILTER"
it_keygen "$T/keys" example.com e1 ed25519 || fatal_setup "make a test key"

# tcp_queue PORT - the Send-Q (backlog) of the socket listening on PORT
tcp_queue() {
	ss -Hltn "sport = :$1" | awk '{ print $3; exit }'
}

# unix_queue PATH - the Send-Q (backlog) of the unix socket at PATH
unix_queue() {
	ss -Hxl | awk -v p="$1" '$5 == p { print $4; exit }'
}

# listed CMD ARG - true once CMD ARG prints something
listed() {
	[ -n "$("$1" "$2")" ]
}

# expect_queue WHAT GOT - PASS when GOT is 1000
expect_queue() {
	if [ "$2" = 1000 ]; then
		it_pass "$1: backlog 1000"
	else
		it_fail "$1: backlog 1000 (ss shows \"$2\")"
	fi
}

# stop - TERM the last daemon started, wait for it
stop() {
	it_stop_pid "$IT_LASTPID"
}

# ---- outpost-policyd ---------------------------------------------------------

PORT=$(it_free_port)
cat >"$T/policyd.conf" <<EOC
store = { backend = "memory"; };
limits = (
  { name = "h"; key = "sender"; count = "recipients"; kind = "window";
    limit = 10; period = "1h"; action = "defer"; }
);
policyd = {
  listen = [ "unix:$T/policy.sock", "inet:127.0.0.1:$PORT" ];
  backlog = 1000;
};
EOC
it_spawn "$T/policyd.log" "$POLICYD" -f -c "$T/policyd.conf"
it_wait 10 it_port_open "$PORT" || fatal_setup "policyd did not listen"
it_wait 10 test -S "$T/policy.sock" || fatal_setup "no policyd socket"
expect_queue "policyd inet:127.0.0.1" "$(tcp_queue "$PORT")"
expect_queue "policyd unix" "$(unix_queue "$T/policy.sock")"
stop

# ---- outpost-milter, both engines ----------------------------------------------

for engine in native libmilter; do
	for sock in "unix:$T/milter.sock" "inet:$(it_free_port)@127.0.0.1"; do
		cat >"$T/milter.conf" <<EOC
milter = { socket = "$sock"; engine = "$engine"; backlog = 1000; };
dkim = {
  keys = ( { name = "e"; domain = "example.com"; selector = "e1";
    algorithm = "ed25519-sha256"; file = "$T/keys/e1.private"; } );
  signing = ( { match = "*@example.com"; keys = [ "e" ]; } );
};
EOC
		rm -f "$T/milter.sock"	# the last run's: not this one's
		it_spawn "$T/milter.log" "$MILTER" -f -c "$T/milter.conf"
		case $sock in
		unix:*)
			it_wait 10 listed unix_queue "${sock#unix:}" ||
			    fatal_setup "outpost-milter ($engine) on $sock"
			got=$(unix_queue "${sock#unix:}")
			;;
		*)
			port=${sock#inet:}
			port=${port%@*}
			it_wait 10 listed tcp_queue "$port" ||
			    fatal_setup "outpost-milter ($engine) on $sock"
			got=$(tcp_queue "$port")
			;;
		esac
		expect_queue "milter $engine ${sock%%:*}" "$got"
		stop
	done
done

it_finish
