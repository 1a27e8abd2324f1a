#!/usr/bin/env bash
# tests/integration/milter_spf.sh - SPF in outpost-milter through the milter
# protocol (tests/miltc), with both engines, the real worker pool
# (tests/outpost-spf-worker-test: the worker with its test hooks, run as
# nobody) and its test zone (OUTPOST_SPF_ZONE: DNS data loaded into
# libspf2's zone layer, no network):
#   - inbound, untrusted clients: pass, softfail, none, permerror accepted
#     with Received-SPF (identity=, receiver=) and Authentication-Results;
#     fail refused with 550 5.7.23 naming the domain; the null sender
#     checked by HELO; a DNS timeout tempfails with 451 4.7.24; an
#     IPv4-mapped client address is checked as IPv4; loopback is checked
#     (no free pass); spf.inbound.softfail = "reject" (reload) refuses;
#   - trusted and authenticated senders: no inbound check; outbound
#     preflight: a domain lacking our address gets X-Outpost-SPF-Preflight
#     and a log line, cached per domain; a domain that includes us gets
#     nothing; spf.outbound.action = "reject": 550 5.7.23 with what to
#     publish;
#   - fault: a worker that crashes mid-check gives that message 451 4.7.24,
#     the next one passes, the milter stays up; a check that hangs past
#     spf.timeout tempfails at the deadline.
# (tests/integration/spf_postfix.sh does the same behind Postfix with a
# real DNS server.)
set -u
. "$(dirname "$0")/lib.sh"
it_init milter-spf
T=$IT_T

MILTER=$IT_BUILD/milter/outpost-milter
MILTC=$IT_BUILD/tests/miltc
WORKER=$IT_BUILD/tests/outpost-spf-worker-test
for b in "$MILTER" "$MILTC" "$WORKER"; do
	[ -x "$b" ] || {
		it_fail "setup: no $b (set OUTPOST_BUILD)"
		it_finish
		exit 1
	}
done
[ "$(id -u)" -eq 0 ] || {
	it_fail "setup: must run as root (workers switch to nobody)"
	it_finish
	exit 1
}

cat >"$T/zone" <<'EOF'
# The test DNS of milter_spf.sh (spf/testhooks.h).
pass.example TXT v=spf1 ip4:192.0.2.10 -all
fail.example TXT v=spf1 ip4:192.0.2.99 -all
softfail.example TXT v=spf1 ip4:192.0.2.99 ~all
perm.example TXT v=spf1 ip4:192.0.2.99 foo:bar -all
helo-pass.example TXT v=spf1 ip4:192.0.2.10 -all
tempfail.example TXT @timeout
good.example TXT v=spf1 include:spf.outpost.test -all
spf.outpost.test TXT v=spf1 ip4:192.0.2.25 -all
bad.example TXT v=spf1 ip4:198.51.100.1 -all
crash.example TEST crash
slow.example TEST sleep 60000
EOF
chmod 644 "$T/zone"
export OUTPOST_SPF_ZONE=$T/zone

MSG=$T/m.eml
printf 'From: alice@example.com\r\nTo: bob@example.net\r\nSubject: spf\r\n\r\nhello\r\n' >"$MSG"

# write_conf FILE SOCKET ENGINE SOFTFAIL_ACTION OUTBOUND_ACTION
write_conf() {
	cat >"$1" <<EOF
milter = { socket = "$2"; engine = "$3"; };
trusted = { networks = [ "127.0.0.1/32" ]; authenticated = true; };
spf = {
  workers = 2;
  worker = "$WORKER";
  timeout = 3;
  inbound = { enabled = true; receiver = "mx.outpost.test"; softfail = "$4"; };
  outbound = { enabled = true; addresses = [ "192.0.2.25" ]; action = "$5";
    publish = "include:spf.outpost.test"; cache_ttl = 600; };
};
EOF
}

# field FILE NAME - the unfolded value of header field NAME
field() {
	awk -v n="$2" 'BEGIN { n = tolower(n) }
	    /^\r?$/ { exit }
	    /^[ \t]/ { if (on) { sub(/\r$/, ""); sub(/^[ \t]+/, " "); v = v $0 }; next }
	    { if (on) exit; sub(/\r$/, "");
	      if (tolower(substr($0, 1, length(n) + 1)) == n ":") {
		on = 1; v = substr($0, length(n) + 2); sub(/^ +/, "", v) } }
	    END { if (on) print v }' "$1"
}

suite() {
	local eng=$1 d=$T/$1 conf sock log pid res out w
	mkdir -p "$d"
	conf=$d/outpost.conf
	sock=unix:$d/milter.sock
	log=$d/milter.log
	res=$d/res
	out=$d/out.eml
	write_conf "$conf" "$sock" "$eng" accept warn
	outpost_start "$conf" "$sock" "$log" || {
		it_fail "$eng: outpost-milter starts with spf on"
		return
	}
	pid=$IT_LASTPID
	it_pass "$eng: outpost-milter starts with spf on"
	it_wait 10 eval '[ "$(pgrep -P "$(pgrep -P '"$pid"' -f outpost-spf-worker | head -n 1)" | wc -l)" -ge 2 ]' &&
	    it_pass "$eng: supervisor and 2 workers started" ||
	    it_fail "$eng: supervisor and 2 workers started"
	w=$(pgrep -P "$(pgrep -P "$pid" -f outpost-spf-worker | head -n 1)" | head -n 1)
	it_check "$eng: a worker runs as nobody" \
	    test "$(ps -o user= -p "$w" 2>/dev/null | tr -d ' ')" = nobody
	it_check "$eng: the milter does not load libspf2" \
	    eval '! grep -q libspf2 /proc/'"$pid"'/maps'

	# m CLIENT SENDER [miltc options...] - one message; verdict in $res
	m() {
		local client=$1 sender=$2
		shift 2
		rm -f "$out"
		"$MILTC" -s "$sock" -c "$client" -f "$sender" -o "$out" "$@" \
		    "$MSG" >"$res" 2>&1
	}

	m 192.0.2.10 '<alice@pass.example>'
	it_check "$eng: inbound pass: accepted" grep -q '^result: continue' "$res"
	it_check "$eng: inbound pass: Received-SPF" \
	    eval 'field '"$out"' Received-SPF | grep -Eq "^pass .*client-ip=192\.0\.2\.10; envelope-from=\"alice@pass\.example\"; helo=client\.example; identity=mailfrom; receiver=mx\.outpost\.test;"'
	it_check "$eng: inbound pass: Authentication-Results" \
	    eval 'field '"$out"' Authentication-Results | grep -Eq "^mx\.outpost\.test; spf=pass .*smtp\.mailfrom=alice@pass\.example"'
	it_check "$eng: inbound pass: no preflight field" \
	    test -z "$(field "$out" X-Outpost-SPF-Preflight)"

	m 192.0.2.10 '<mallory@fail.example>'
	it_check "$eng: inbound fail: 550 5.7.23 naming the domain" \
	    grep -q '^result: reject 550 5.7.23 SPF fail: fail.example does not authorize 192.0.2.10' "$res"
	it_check "$eng: inbound fail: logged" \
	    grep -q 'spf=fail identity=mailfrom domain=fail.example client=192.0.2.10 action=reject' "$log"

	m 192.0.2.10 '<carol@softfail.example>'
	it_check "$eng: inbound softfail: accepted with the fields" \
	    eval 'grep -q "^result: continue" '"$res"' &&
	    field '"$out"' Received-SPF | grep -q "^softfail .*identity=mailfrom" &&
	    field '"$out"' Authentication-Results | grep -q "spf=softfail"'

	m 192.0.2.10 '<dave@none.example>'
	it_check "$eng: inbound none: accepted, spf=none" \
	    eval 'field '"$out"' Authentication-Results | grep -q "spf=none"'

	m 192.0.2.10 '<erin@perm.example>'
	it_check "$eng: inbound permerror: accepted, spf=permerror" \
	    eval 'grep -q "^result: continue" '"$res"' &&
	    field '"$out"' Authentication-Results | grep -q "spf=permerror"'

	m 192.0.2.10 '<>' -H helo-pass.example
	it_check "$eng: null sender: checked by HELO" \
	    eval 'field '"$out"' Received-SPF | grep -Eq "^pass .*helo=helo-pass\.example; identity=helo;" &&
	    field '"$out"' Authentication-Results | grep -q "spf=pass .*smtp\.helo=helo-pass\.example"'

	m 192.0.2.10 '<frank@tempfail.example>'
	it_check "$eng: DNS timeout: 451 4.7.24" \
	    grep -q '^result: tempfail 451 4.7.24' "$res"

	m ::ffff:192.0.2.10 '<alice@pass.example>'
	it_check "$eng: IPv4-mapped client checked as IPv4: pass" \
	    eval 'field '"$out"' Authentication-Results | grep -q "spf=pass"'

	m 127.0.0.2 '<alice@pass.example>'
	it_check "$eng: untrusted loopback client is checked (fail)" \
	    grep -q '^result: reject 550 5.7.23' "$res"

	# trusted and authenticated: no inbound check, the preflight
	m 127.0.0.1 '<alice@bad.example>'
	it_check "$eng: trusted, bad.example: preflight field" \
	    eval 'field '"$out"' X-Outpost-SPF-Preflight | grep -q "domain=bad\.example"'
	it_check "$eng: trusted: no inbound fields" \
	    test -z "$(field "$out" Received-SPF)"
	it_check "$eng: preflight logged" \
	    grep -q 'spf-preflight=fail domain=bad.example action=warn' "$log"
	m 192.0.2.10 '<alice@bad.example>' -a alice
	it_check "$eng: authenticated: preflight field, no inbound check" \
	    eval 'field '"$out"' X-Outpost-SPF-Preflight | grep -q "bad\.example" &&
	    test -z "$(field '"$out"' Received-SPF)"'
	it_check "$eng: preflight cached per domain" \
	    grep -q 'spf-preflight=fail domain=bad.example action=warn cached=yes' "$log"
	m 127.0.0.1 '<alice@good.example>'
	it_check "$eng: trusted, good.example includes us: no field" \
	    eval 'grep -q "^result: continue" '"$res"' &&
	    test -z "$(field '"$out"' X-Outpost-SPF-Preflight)"'

	# fault: a crashing worker costs one tempfail
	m 192.0.2.10 '<x@crash.example>'
	it_check "$eng: worker crash: 451 4.7.24" \
	    grep -q '^result: tempfail 451 4.7.24' "$res"
	m 192.0.2.10 '<alice@pass.example>'
	it_check "$eng: after the crash: the next message passes" \
	    eval 'field '"$out"' Authentication-Results | grep -q "spf=pass"'
	local t0 t1
	t0=$(date +%s)
	m 192.0.2.10 '<x@slow.example>'
	t1=$(date +%s)
	it_check "$eng: a check past spf.timeout (3 s) tempfails in $((t1 - t0)) s" \
	    eval 'grep -q "^result: tempfail 451 4.7.24" '"$res"' &&
	    [ $((t1 - t0)) -ge 2 ] && [ $((t1 - t0)) -le 8 ]'
	it_check "$eng: milter still running" kill -0 "$pid"

	# reload: softfail rejected, outbound reject
	write_conf "$conf" "$sock" "$eng" reject reject
	kill -USR1 "$pid"
	it_wait 10 grep -q 'configuration reloaded' "$log"
	m 192.0.2.10 '<carol@softfail.example>'
	it_check "$eng: softfail = reject: 550 5.7.23" \
	    grep -q '^result: reject 550 5.7.23 SPF softfail: softfail.example' "$res"
	m 127.0.0.1 '<alice@bad.example>'
	it_check "$eng: outbound reject: 550 5.7.23 naming the domain" \
	    eval 'grep "^result: reject 550 5.7.23" '"$res"' | grep -q "bad\.example"'
	it_check "$eng: outbound reject: says what to publish" \
	    eval 'grep "^result: reject" '"$res"' | grep -q "include:spf\.outpost\.test"'
	m 127.0.0.1 '<alice@good.example>'
	it_check "$eng: outbound reject: good.example passes" \
	    grep -q '^result: continue' "$res"

	it_stop_pid "$pid"
	sleep 0.5
	it_check "$eng: no worker left after stop" \
	    eval '! pgrep -f "outpost-spf-worker-test --supervisor" | xargs -r ps -o ppid= -p | grep -qw '"$pid"
	if grep -qE 'ERROR: AddressSanitizer|runtime error:' "$log"; then
		it_fail "$eng: milter log has no ASan/UBSan errors"
	else
		it_pass "$eng: milter log has no ASan/UBSan errors"
	fi
	if [ "$IT_FAILED" -ne 0 ]; then
		echo "---- $eng milter log ----"
		cat "$log"
	fi
}

OUTPOST_ENGINE=native suite native
OUTPOST_ENGINE=libmilter suite libmilter
it_finish
