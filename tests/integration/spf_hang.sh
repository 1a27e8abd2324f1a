#!/usr/bin/env bash
# tests/integration/spf_hang.sh - one domain whose DNS never answers must
# not hold every SPF worker
# test: serial (measures how long probes wait)
#
# In a private network namespace (tests/integration/netns.bash: dnsmasq
# on 127.0.0.1:53 with tests/data/spf-zone/dnsmasq.conf, lookups under
# hang.example sent to a UDP socket that never answers), outpost-milter
# runs with the inbound SPF check on, spf.workers = 2, spf.timeout = 2 s
# and the defaults of spf.max_workers and spf.inbound.max_per_client /
# max_per_domain.  Through the milter protocol (tests/miltc):
#   - 20 sessions from 4 client addresses send from hang.example over and
#     over (each session at most 30 messages and 20 s);
#   - meanwhile, 10 probes from 192.0.2.10 send from pass.example (which
#     dnsmasq answers at once): each gets spf=pass in less than 1 s;
#   - the hanging sessions get 451 4.7.24 (temperror); the milter logs the
#     in-flight limit and the timed-out domain kept as temperror; the pool
#     stays within spf.max_workers; the milter is still running.
# Before the fix the 20 sessions held both workers and the probes waited
# for one (up to spf.timeout, then 451 4.7.24).
#
# Environment: OUTPOST_BUILD (default TOP/build), IT_KEEP=1.

set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns.bash"

# ---- outside: the network namespace ------------------------------------------

if [ -z "${OUTPOST_SPF_NETNS:-}" ]; then
	IT_NAME=spf_hang
	ns_run_inside OUTPOST_SPF_NETNS "outpost-spfh-$$" -- "$0" "$@"
fi

# ---- inside the namespace ---------------------------------------------------

it_init spf_hang
T=$IT_T
MILTER_LOG=$T/milter.log
SOCK=unix:$T/milter.sock
MILTC=$IT_BUILD/tests/miltc
WORKER=$IT_BUILD/spf/outpost-spf-worker
HAMMERS=20
PROBES=10

[ "$(ip netns identify $$ 2>/dev/null)" = "$OUTPOST_SPF_NETNS" ] ||
    it_setup_failed "not inside network namespace $OUTPOST_SPF_NETNS"
it_need "$MILTC" "$WORKER" "$IT_PY"
ns_dns_start "$T" || it_setup_failed "dnsmasq did not answer" "$T/dnsmasq.log"
case $(ns_dnsq pass.example TXT 2) in
rcode=0*) ;;
*) it_setup_failed "dns: pass.example TXT" "$T/dnsmasq.log" ;;
esac
[ "$(ns_dnsq hang.example TXT 1)" = timeout ] ||
    it_setup_failed "dns: hang.example TXT does not hang"

cat >"$T/outpost.conf" <<EOF
milter = { socket = "$SOCK"; };
spf = {
  workers = 2;
  worker = "$WORKER";
  timeout = 2;
  inbound = { enabled = true; receiver = "mx.outpost.test"; };
};
EOF
printf 'From: a@example.com\r\nTo: b@example.net\r\nSubject: spf\r\n\r\n' \
    >"$T/m.eml"
printf 'hi\r\n' >>"$T/m.eml"
outpost_start "$T/outpost.conf" "$SOCK" "$MILTER_LOG" ||
    it_setup_failed "start outpost-milter" "$MILTER_LOG"
MILTER_PID=$IT_LASTPID

# hammer N - one session sending from hang.example until $T/stop exists;
# at a lower priority, so that the load it makes (each message a new
# client process) does not slow the probes: what is measured is the
# milter, which the hanging DNS does not keep busy (it waits)
hammer() {
	local n=$1 i end=$((SECONDS + 20))
	for i in $(seq 30); do
		[ -e "$T/stop" ] || [ "$SECONDS" -ge "$end" ] && break
		nice -n 10 "$MILTC" -s "$SOCK" -c "198.51.100.$((n % 4 + 1))" \
		    -t 10 -f "<u$n@hang.example>" -o /dev/null "$T/m.eml" 2>&1
		sleep 0.5
	done
}

# probe N - one message from pass.example; PROBE_MS (from connecting to
# the milter to its verdict: miltc -T), result in probe-N
probe() {
	"$MILTC" -s "$SOCK" -c 192.0.2.10 -t 10 -f '<alice@pass.example>' -T \
	    -o "$T/probe-$1.eml" "$T/m.eml" >"$T/probe-$1" 2>&1
	PROBE_MS=$(sed -n 's/^elapsed: \([0-9]*\) ms$/\1/p' "$T/probe-$1")
	PROBE_MS=${PROBE_MS:-99999}
}

HAMMER_PIDS=()
for n in $(seq "$HAMMERS"); do
	it_spawn "$T/hammer-$n" hammer "$n"
	HAMMER_PIDS+=("$IT_LASTPID")
done
sleep 0.5		# the first hanging checks are in flight

for n in $(seq "$PROBES"); do
	probe "$n"
	if grep -q '^result: continue' "$T/probe-$n" &&
	    grep -q 'spf=pass' "$T/probe-$n.eml" &&
	    [ "$PROBE_MS" -lt 1000 ]; then
		it_pass "probe $n during the hang: spf=pass in $PROBE_MS ms"
	else
		it_fail "probe $n during the hang: spf=pass in < 1000 ms" \
		    "(got $(head -n 1 "$T/probe-$n") in $PROBE_MS ms)"
	fi
	sleep 0.3
done
alive=0
for pid in "${HAMMER_PIDS[@]}"; do
	kill -0 "$pid" 2>/dev/null && alive=$((alive + 1))
done
it_check "the hanging sessions still ran after the last probe ($alive)" \
    test "$alive" -gt 0
workers=$(pgrep -P "$(pgrep -P "$MILTER_PID" -f outpost-spf-worker |
    head -n 1)" | wc -l)
touch "$T/stop"
for pid in "${HAMMER_PIDS[@]}"; do
	it_wait 15 eval '! kill -0 '"$pid"' 2>/dev/null' ||
	    it_fail "hammer $pid did not stop"
done

it_check "the pool stayed within spf.max_workers (16): $workers workers" \
    test "$workers" -ge 1 -a "$workers" -le 16
TEMPFAIL='^result: tempfail 451 4.7.24'
it_check "hanging sessions got 451 4.7.24" \
    eval 'cat "$T"/hammer-* | grep -q "$TEMPFAIL"'
it_check "no hanging session got anything but a tempfail" \
    eval '! cat "$T"/hammer-* | grep -v "$TEMPFAIL" | grep -q .'
it_check "logged: in-flight limit reached" grep -Eq \
    'spf: client .*, domain hang.example: .* in flight already: temperror' \
    "$MILTER_LOG"
it_check "logged: hang.example kept as temperror" \
    grep -q 'spf: domain hang.example timed out: temperror for 60 s' \
    "$MILTER_LOG"
it_check "outpost-milter still running" kill -0 "$MILTER_PID"
if grep -qE 'ERROR: AddressSanitizer|runtime error:' "$MILTER_LOG"; then
	it_fail "milter log has no ASan/UBSan errors"
else
	it_pass "milter log has no ASan/UBSan errors"
fi
[ "$IT_FAILED" -eq 0 ] || tail -n 40 "$MILTER_LOG"
it_finish
