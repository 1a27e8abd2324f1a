#!/usr/bin/env bash
# tests/integration/spf_postfix.sh - SPF in outpost-milter behind a real
# Postfix, with a real DNS server, in a private network namespace
#
# The script creates a network namespace of its own (lo up, test client
# addresses from the documentation ranges on lo, /etc/netns/NAME/resolv.conf
# naming 127.0.0.1) and runs itself again inside it.  There it starts
# dnsmasq on 127.0.0.1:53 with the records of tests/data/spf-zone/
# dnsmasq.conf (tests/integration/netns.bash), a UDP socket that never
# answers (lookups under hang.example go there), smtp-sink, outpost-milter
# with the spf section on (workers: the build's spf/outpost-spf-worker)
# and a private Postfix (mynetworks 127.0.0.0/8; example.net relayed to
# smtp-sink), and checks:
#   - the DNS answers inside the namespace;
#   - inbound, from untrusted client addresses: a pass sender (192.0.2.10,
#     pass.example) and a softfail one (203.0.113.30, softfail.example)
#     arrive with Received-SPF and Authentication-Results naming the
#     result; a fail sender (198.51.100.20, fail.example) gets 550 5.7.23;
#     a domain without SPF gets "none"; the null sender is checked by HELO;
#     an untrusted loopback client (127.0.0.2) is checked like any other;
#   - outbound preflight, trusted (127.0.0.1) or authenticated senders:
#     bad.example, which lacks our address 192.0.2.25, arrives with
#     X-Outpost-SPF-Preflight; good.example (include:) without it; then,
#     with spf.outbound.action = "reject", bad.example gets 550 5.7.23
#     naming the domain and what to publish, good.example still passes;
#   - outbound preflight of domains whose DNS hangs (3 public addresses,
#     action warn): the first message from hang.example is warned
#     (temperror) after one spf.timeout, only the first address checked;
#     the second at once (temperror kept up to 60 s); three concurrent
#     messages from bulk.hang.example make one check, the other two share
#     its result, and an inbound message meanwhile still finds a worker;
#   - fault: a worker killed while its check hangs in DNS: that message
#     tempfails (4xx) before the deadline, the next one passes, the milter
#     stays up and the worker is replaced; a check that overruns
#     spf.timeout tempfails too;
#   - isolation: the workers run as spf.user (nobody, its own group only)
#     with no open key file, no core files and RLIMIT_AS = spf.memory
#     (unlimited under ASan); with exactly a worker's uid, gid and groups
#     (setpriv) the DKIM key files cannot be read; stopping the milter
#     stops the supervisor and the workers; no ASan/UBSan/LSan report.
# Every setup step that fails is a FAIL (never a skip).  The namespace,
# /etc/netns/NAME and every process started are removed on every exit.
#
# Environment: OUTPOST_BUILD (default TOP/build), IT_KEEP=1.

set -u
. "$(dirname "$0")/lib.sh"

SPF_PASS_IP=192.0.2.10
SPF_FAIL_IP=198.51.100.20
SPF_SOFT_IP=203.0.113.30
SPF_OUR_IP=192.0.2.25		# spf.outbound.addresses (not on lo)
SPF_TIMEOUT=10			# spf.timeout, seconds

# ---- outside: the network namespace ------------------------------------------

. "$(dirname "$0")/netns.bash"

if [ -z "${OUTPOST_SPF_NETNS:-}" ]; then
	IT_NAME=spf_postfix
	echo "# network namespace outpost-spf-$$: lo with 127.0.0.1," \
	    "$SPF_PASS_IP $SPF_FAIL_IP $SPF_SOFT_IP" >&2
	ns_run_inside OUTPOST_SPF_NETNS "outpost-spf-$$" $SPF_PASS_IP \
	    $SPF_FAIL_IP $SPF_SOFT_IP -- "$0" "$@"
fi

# ---- inside the namespace --------------------------------------------------------

it_init spf_postfix
T=$IT_T
NS=$OUTPOST_SPF_NETNS
DOMAIN=outpost.test
SOCK=unix:$T/milter/milter.sock
MILTER_LOG=$T/milter/outpost-milter.log
WORKER=$IT_BUILD/spf/outpost-spf-worker
SPF_USER=nobody

# fatal_setup - a setup step failed: report it and stop
fatal_setup() {
	it_setup_failed "$*" "$MILTER_LOG" "$T/dnsmasq.log"
}

[ "$(ip netns identify $$ 2>/dev/null)" = "$NS" ] ||
    fatal_setup "not running inside network namespace $NS"
it_need postfix postconf smtp-sink swaks openssl setpriv ss pgrep \
    /usr/sbin/dnsmasq "$IT_PY"

# ---- DNS: dnsmasq and a server that never answers ----------------------------

ns_dns_start "$T" || fatal_setup "dnsmasq did not answer on 127.0.0.1:53"

# dns_expect - one DNS check: NAME TYPE EXPECTED-OUTPUT [TIMEOUT]
dns_expect() {
	local got
	got=$(ns_dnsq "$1" "$2" "${4:-3}")
	if [ "$got" = "$3" ]; then
		it_pass "dns: $1 $2 -> $3"
	else
		it_fail "dns: $1 $2 -> $3 (got: $got)"
	fi
}
dns_expect pass.example TXT "rcode=0 v=spf1 ip4:$SPF_PASS_IP -all"
dns_expect good.example TXT "rcode=0 v=spf1 include:spf.outpost.test -all"
dns_expect spf.outpost.test TXT "rcode=0 v=spf1 ip4:$SPF_OUR_IP -all"
dns_expect none.example TXT "rcode=3"
dns_expect hang.example TXT timeout 2
# The resolver of every process in here (libc, as the worker uses it).
it_check "dns: /etc/resolv.conf in the namespace names 127.0.0.1" \
    grep -qx 'nameserver 127.0.0.1' /etc/resolv.conf
[ "$IT_FAILED" -eq 0 ] || fatal_setup "the test DNS does not answer as written"

# ---- keys, milter, sink, Postfix -------------------------------------------------

[ -x "$IT_BUILD/milter/outpost-milter" ] ||
    fatal_setup "no $IT_BUILD/milter/outpost-milter (set OUTPOST_BUILD)"
it_need "$WORKER"
it_keygen "$T/keys" "$DOMAIN" s1 rsa || fatal_setup "RSA key"
it_keygen "$T/keys" "$DOMAIN" e1 ed25519 || fatal_setup "ed25519 key"
KEYS=("$T/keys/s1.private" "$T/keys/e1.private")

# spf_conf - the milter config with the spf section; $1 outbound action,
# $2 the spf.outbound.addresses list (default: "SPF_OUR_IP")
spf_conf() {
	local addrs=${2:-\"$SPF_OUR_IP\"}
	cat <<EOF
milter = { socket = "$SOCK"; socket_group = "postfix"; on_error = "tempfail"; };
trusted = { networks = [ "127.0.0.1/32" ]; authenticated = true; };
dkim = {
  keys = (
    { name = "r"; domain = "$DOMAIN"; selector = "s1"; algorithm = "rsa-sha256";
      file = "$T/keys/s1.private"; },
    { name = "e"; domain = "$DOMAIN"; selector = "e1"; algorithm = "ed25519-sha256";
      file = "$T/keys/e1.private"; }
  );
  signing = ( { match = "*@$DOMAIN"; keys = [ "r", "e" ]; } );
};
spf = {
  workers = 2;
  user = "$SPF_USER";
  worker = "$WORKER";
  timeout = $SPF_TIMEOUT;
  inbound = { enabled = true; receiver = "mx.outpost.test"; };
  outbound = {
    enabled = true;
    addresses = [ $addrs ];
    action = "$1";
    publish = "include:spf.outpost.test";
  };
};
EOF
}

mkdir -p "$T/milter"
chmod 755 "$T/milter"
spf_conf warn >"$T/milter/warn.conf"
spf_conf reject >"$T/milter/reject.conf"
spf_conf warn "\"$SPF_OUR_IP\", \"192.0.2.26\", \"2001:db8::25\"" \
    >"$T/milter/hang.conf"

# The milter's log survives restarts: each run appends to it.
milter_start() {
	local conf=$1
	rm -f "${SOCK#unix:}"
	it_spawn_append "$MILTER_LOG" "$IT_BUILD/milter/outpost-milter" -f -c "$conf"
	MILTER_PID=$IT_LASTPID
	milter_wait_socket "$SOCK" "$MILTER_PID"
}

# it_spawn_append - it_spawn, appending to the log file
it_spawn_append() {
	local logf=$1
	shift
	"$@" </dev/null >>"$logf" 2>&1 &
	IT_LASTPID=$!
	IT_PIDS+=("$IT_LASTPID")
}

# spf_supervisor - the pid of the SPF supervisor (the milter's child)
spf_supervisor() {
	pgrep -P "$MILTER_PID" -f outpost-spf-worker | head -n 1
}

# spf_workers - the pids of the SPF workers (the supervisor's children)
spf_workers() {
	local sup
	sup=$(spf_supervisor) || return 1
	[ -n "$sup" ] || return 1
	pgrep -P "$sup"
}

# spf_nworkers - how many SPF workers run now
spf_nworkers() {
	spf_workers 2>/dev/null | wc -l
}

milter_start "$T/milter/warn.conf" || fatal_setup "start outpost-milter (spf on)"
it_wait 10 eval '[ "$(spf_nworkers)" -ge 2 ]' ||
    fatal_setup "outpost-milter did not start 2 SPF workers (supervisor: $(spf_supervisor))"

SMTP_PORT=$(it_free_port)
SINK_PORT=$(it_free_port)
while [ "$SINK_PORT" = "$SMTP_PORT" ]; do
	SINK_PORT=$(it_free_port)
done
sink_start "$T/sink" "$SINK_PORT" || fatal_setup "start smtp-sink"
pf_setup "$T/postfix" "$SMTP_PORT" "$SINK_PORT" "$SOCK"
# The documentation addresses are outsiders; example.net is a domain we
# are MX for (relayed to smtp-sink), so they may send to it.
postconf -c "$IT_PF_DIR/etc" -e "relay_domains = example.net" \
    "smtpd_client_restrictions =" "smtpd_helo_restrictions =" ||
    fatal_setup "postconf"
SASL=0
pf_enable_sasl alice 'alice-secret' && SASL=1
pf_start "$SMTP_PORT" || fatal_setup "start private postfix"
it_log "smtpd 127.0.0.1:$SMTP_PORT, smtp-sink 127.0.0.1:$SINK_PORT, milter $SOCK"

# ---- helpers for the checks ------------------------------------------------------

MSGS=$T/msgs
mkdir -p "$MSGS"
N=0

# send - submit one message; SENT_LOG, SENT_TAG, SENT_RC
# usage: send NAME SRC HELO MAILFROM [USER PASSWORD]
send() {
	local name=$1 src=$2 helo=$3 from=$4 f auth=()
	N=$((N + 1))
	[ $# -ge 6 ] && auth=(--auth PLAIN --auth-user "$5" --auth-password "$6")
	f=$(it_new_msg "$MSGS" "$name" "Sender <${from:-postmaster@$helo}>" "spf test $name")
	printf '\r\nmessage %s from %s, MAIL FROM <%s>, HELO %s\r\n' \
	    "$name" "$src" "$from" "$helo" >>"$f"
	SENT_TAG=$(it_msg_tag "$f")
	SENT_LOG=$T/swaks-$name.log
	swaks --server 127.0.0.1 --port "$SMTP_PORT" --local-interface "$src" \
	    --helo "$helo" --from "${from:-<>}" --to bob@example.net \
	    "${auth[@]}" --data "@$f" --timeout 60 >"$SENT_LOG" 2>&1
	SENT_RC=$?
}

# server_replies - every server reply line in a swaks log
server_replies() {
	grep -E '^ *(<-|<\*\*|<~|<~\*) ' "$1" | sed -E 's/^ *(<-|<\*\*|<~|<~\*) +//'
}

# arrived - wait for SENT_TAG at the sink; GOT = received copy, headers unfolded
arrived() {
	local raw
	GOT=
	raw=$(sink_wait "$1" 30) || return 1
	GOT=$T/got-$2.eml
	sink_message "$raw" "$GOT"
	# unfold the header section for the checks
	awk '/^\r?$/ { body = 1 } body { next }
	    { sub(/\r$/, "") }
	    /^[ \t]/ { sub(/^[ \t]+/, " "); h = h $0; next }
	    { if (h != "") print h; h = $0 }
	    END { if (h != "") print h }' "$GOT" >"$GOT.hdr"
}

# header - print the unfolded values of header NAME in GOT.hdr
header() {
	awk -v n="$1" 'BEGIN { n = tolower(n) ":" }
	    tolower(substr($0, 1, length(n))) == n {
	    v = substr($0, length(n) + 1); sub(/^ +/, "", v); print v }' "$GOT.hdr"
}

# expect_accepted - SENT was accepted and arrived; GOT set
expect_accepted() {
	local what=$1
	if [ $SENT_RC -ne 0 ]; then
		it_fail "$what: accepted (swaks exit $SENT_RC)"
		server_replies "$SENT_LOG" | tail -n 3 | sed 's/^/    /'
		return 1
	fi
	if ! arrived "$SENT_TAG" "$2"; then
		it_fail "$what: accepted and arrived at smtp-sink"
		return 1
	fi
	it_pass "$what: accepted and arrived at smtp-sink"
}

# expect_header - header NAME of GOT matches ERE
expect_header() {
	local what=$1 name=$2 re=$3 v
	v=$(header "$name")
	if printf '%s\n' "$v" | grep -Eq -- "$re"; then
		it_pass "$what: $name: $(printf '%s' "$v" | head -n 1 | cut -c1-90)"
	else
		it_fail "$what: $name matches /$re/ (got: ${v:-nothing})"
	fi
}

# expect_no_header - GOT has no header NAME
expect_no_header() {
	local v
	v=$(header "$2")
	if [ -z "$v" ]; then
		it_pass "$1: no $2"
	else
		it_fail "$1: no $2 (got: $v)"
	fi
}

# expect_reply - some server reply of SENT matches ERE, and it was refused
expect_reply() {
	local what=$1 re=$2 line
	line=$(server_replies "$SENT_LOG" | grep -E -- "$re" | head -n 1)
	if [ $SENT_RC -ne 0 ] && [ -n "$line" ]; then
		it_pass "$what: refused: $line"
	else
		it_fail "$what: refused with /$re/ (swaks exit $SENT_RC)"
		server_replies "$SENT_LOG" | tail -n 4 | sed 's/^/    /'
	fi
}

# ---- inbound -----------------------------------------------------------------------

RCV='mx\.outpost\.test'
send in-pass "$SPF_PASS_IP" client.outpost.test alice@pass.example
if expect_accepted "inbound pass ($SPF_PASS_IP, pass.example)" in-pass; then
	expect_header "inbound pass" Received-SPF \
	    "^pass\b.*client-ip=$SPF_PASS_IP;.*envelope-from=\"?alice@pass\.example\"?;.*identity=mailfrom;.*receiver=$RCV"
	expect_header "inbound pass" Authentication-Results \
	    "^$RCV;.*spf=pass .*smtp\.mailfrom=(alice@)?pass\.example"
	expect_no_header "inbound pass" X-Outpost-SPF-Preflight
fi

send in-fail "$SPF_FAIL_IP" client.outpost.test mallory@fail.example
expect_reply "inbound fail ($SPF_FAIL_IP, fail.example)" '^550[ -]5\.7\.23'

send in-softfail "$SPF_SOFT_IP" client.outpost.test carol@softfail.example
if expect_accepted "inbound softfail ($SPF_SOFT_IP, softfail.example)" in-softfail; then
	expect_header "inbound softfail" Received-SPF \
	    "^softfail\b.*client-ip=$SPF_SOFT_IP;.*identity=mailfrom;.*receiver=$RCV"
	expect_header "inbound softfail" Authentication-Results \
	    "^$RCV;.*spf=softfail .*smtp\.mailfrom=(carol@)?softfail\.example"
fi

send in-none "$SPF_FAIL_IP" client.outpost.test dave@none.example
if expect_accepted "inbound none ($SPF_FAIL_IP, none.example: no SPF record)" in-none; then
	expect_header "inbound none" Received-SPF "^none\b.*identity=mailfrom"
	expect_header "inbound none" Authentication-Results "^$RCV;.*spf=none"
fi

# The null sender: the HELO identity decides.
send in-null "$SPF_PASS_IP" helo-pass.example ''
if expect_accepted "inbound null sender, HELO helo-pass.example" in-null; then
	expect_header "inbound null sender" Received-SPF \
	    "^pass\b.*helo=helo-pass\.example.*identity=helo"
	expect_header "inbound null sender" Authentication-Results \
	    "^$RCV;.*spf=pass .*smtp\.helo=helo-pass\.example"
fi

# No free pass for loopback (spf.inbound.allow_loopback is off): 127.0.0.2
# is not trusted by the milter, and pass.example does not list it.
send in-loopback 127.0.0.2 client.outpost.test alice@pass.example
expect_reply "inbound from loopback 127.0.0.2 (untrusted), pass.example: checked, fails" \
    '^550[ -]5\.7\.23'

# The fail sender must never have reached the sink.
it_check "inbound fail: nothing from fail.example arrived" \
    eval '! grep -lq "mallory@fail.example" "$IT_SINK_DIR"/* 2>/dev/null'

# ---- outbound preflight (warn) ---------------------------------------------------

send out-bad 127.0.0.1 client.outpost.test alice@bad.example
if expect_accepted "outbound warn: trusted sender, bad.example lacks $SPF_OUR_IP" out-bad; then
	expect_header "outbound warn bad.example" X-Outpost-SPF-Preflight \
	    'bad\.example'
	expect_no_header "outbound warn bad.example (trusted: no inbound check)" \
	    Received-SPF
fi
it_check "outbound warn: the milter logged the SPF preflight of bad.example" \
    eval 'grep -i spf "$MILTER_LOG" | grep -q "bad\.example"'

send out-good 127.0.0.1 client.outpost.test alice@good.example
if expect_accepted "outbound: trusted sender, good.example includes $SPF_OUR_IP" out-good; then
	expect_no_header "outbound good.example" X-Outpost-SPF-Preflight
fi

if [ $SASL -eq 1 ]; then
	send out-auth "$SPF_SOFT_IP" client.outpost.test alice@bad.example \
	    alice alice-secret
	if expect_accepted "outbound warn: authenticated sender from $SPF_SOFT_IP, bad.example" out-auth; then
		expect_header "outbound warn authenticated" \
		    X-Outpost-SPF-Preflight 'bad\.example'
		expect_no_header "outbound warn authenticated (no inbound check)" \
		    Received-SPF
	fi
else
	it_fail "setup: SMTP AUTH (saslpasswd2 from sasl2-bin) for the authenticated case"
fi

# ---- isolation: the workers' user and the key files ---------------------------------

WPIDS=$(spf_workers | tr '\n' ' ')
SUP=$(spf_supervisor)
it_log "milter $MILTER_PID, SPF supervisor $SUP, workers $WPIDS"
uid=$(id -u "$SPF_USER")
gid=$(id -g "$SPF_USER")
if [ -z "$WPIDS" ]; then
	it_fail "isolation: SPF workers found"
fi
for w in $WPIDS; do
	st=/proc/$w/status
	it_check "isolation: worker $w runs as $SPF_USER (Uid $uid x4)" \
	    grep -Eq "^Uid:[[:space:]]+$uid[[:space:]]+$uid[[:space:]]+$uid[[:space:]]+$uid\$" "$st"
	it_check "isolation: worker $w group $gid, no other group (Groups: $gid or none)" \
	    eval 'grep -Eq "^Gid:[[:space:]]+$gid[[:space:]]+$gid[[:space:]]+$gid[[:space:]]+$gid\$" "$st" &&
	    grep -Eq "^Groups:[[:space:]]*($gid[[:space:]]*)?\$" "$st"'
	it_check "isolation: worker $w holds no key file open" \
	    eval '! ls -l /proc/$w/fd 2>/dev/null | grep -q "\.private"'
	it_check "isolation: worker $w has no core files (RLIMIT_CORE 0)" \
	    grep -Eq '^Max core file size +0 +0 ' "/proc/$w/limits"
	# RLIMIT_AS = spf.memory (256 MiB), except under ASan (its shadow
	# memory needs terabytes of address space).
	if grep -q __asan_init "$WORKER"; then
		it_check "isolation: worker $w address space unlimited (ASan build)" \
		    grep -Eq '^Max address space +unlimited' "/proc/$w/limits"
	else
		it_check "isolation: worker $w address space limited to spf.memory (256 MiB)" \
		    grep -Eq '^Max address space +268435456 +268435456 ' "/proc/$w/limits"
	fi
done
if [ -n "$SUP" ]; then
	it_check "isolation: the SPF supervisor $SUP holds no key file open" \
	    eval '! ls -l /proc/$SUP/fd 2>/dev/null | grep -q "\.private"'
fi
# Exactly a worker's credentials, read from /proc, for the key file test.
w1=${WPIDS%% *}
wuid=$(awk '/^Uid:/ { print $2 }' "/proc/$w1/status" 2>/dev/null)
wgid=$(awk '/^Gid:/ { print $2 }' "/proc/$w1/status" 2>/dev/null)
wgroups=$(awk '/^Groups:/ { $1 = ""; sub(/^ +/, ""); gsub(/ +$/, ""); gsub(/ +/, ","); print }' \
    "/proc/$w1/status" 2>/dev/null)
if [ -n "$wgroups" ]; then
	wgopt=--groups=$wgroups
else
	wgopt=--clear-groups
fi
it_log "worker $w1 credentials: uid $wuid gid $wgid groups ${wgroups:-none}"
[ -n "$wuid" ] && [ -n "$wgid" ] || {
	wuid=$uid
	wgid=$gid
	it_fail "isolation: read a worker's credentials from /proc"
}
for k in "${KEYS[@]}"; do
	if cat "$k" >/dev/null 2>&1; then
		if setpriv --reuid="$wuid" --regid="$wgid" "$wgopt" \
		    cat "$k" >/dev/null 2>"$T/setpriv.err"; then
			it_fail "isolation: as the worker (uid $wuid gid $wgid) $(basename "$k") cannot be read"
		else
			it_pass "isolation: as the worker (uid $wuid gid $wgid) $(basename "$k") cannot be read: $(head -n 1 "$T/setpriv.err")"
		fi
	else
		it_fail "isolation: key file $k readable by root (test is void)"
	fi
done

# ---- fault: a worker killed mid-check; the deadline --------------------------------

# busy_worker - the worker with a socket to the DNS server right now
busy_worker() {
	local w
	for w in $(spf_workers); do
		if ss -H -anp 2>/dev/null | grep -E ':53[[:space:]]' |
		    grep -q "pid=$w,"; then
			echo "$w"
			return 0
		fi
	done
	return 1
}

before=$(spf_workers | tr '\n' ' ')
t0=$(date +%s)
(
	send fault-kill "$SPF_FAIL_IP" client.outpost.test eve@hang.example
	echo "$SENT_RC" >"$T/fault-kill.rc"
) &
SEND_PID=$!
victim=
for i in $(seq 100); do
	victim=$(busy_worker) && break
	sleep 0.1
done
if [ -z "$victim" ]; then
	it_fail "fault: a worker is waiting on DNS for hang.example"
	ss -anp 2>/dev/null | grep -E ':53[[:space:]]' | sed 's/^/    /'
else
	it_pass "fault: worker $victim is waiting on DNS for hang.example"
	kill -KILL "$victim"
fi
wait $SEND_PID
# send ran in a subshell: its results are in files
SENT_LOG=$T/swaks-fault-kill.log
SENT_RC=$(cat "$T/fault-kill.rc" 2>/dev/null || echo 0)
elapsed=$(($(date +%s) - t0))
expect_reply "fault: the killed worker's message" '^4[0-9][0-9][ -]'
it_check "fault: the tempfail came from the kill, before spf.timeout ($elapsed s < $SPF_TIMEOUT s)" \
    test "$elapsed" -lt "$SPF_TIMEOUT"
it_check "fault: outpost-milter is still running" kill -0 "$MILTER_PID"
send fault-next "$SPF_PASS_IP" client.outpost.test alice@pass.example
if expect_accepted "fault: the next message" fault-next; then
	expect_header "fault: the next message" Received-SPF '^pass\b'
fi
it_wait 10 eval '[ "$(spf_nworkers)" -ge 2 ]'
after=$(spf_workers | tr '\n' ' ')
if [ -n "$victim" ] && [ "$(spf_nworkers)" -ge 2 ] &&
    ! echo " $after " | grep -q " $victim "; then
	it_pass "fault: worker $victim replaced (workers: $before-> $after)"
else
	it_fail "fault: worker $victim replaced (workers: $before-> $after)"
fi

# A check that overruns spf.timeout: tempfail after about SPF_TIMEOUT s.
t0=$(date +%s)
send fault-deadline "$SPF_FAIL_IP" client.outpost.test eve@hang.example
elapsed=$(($(date +%s) - t0))
expect_reply "deadline: a check hanging in DNS" '^4[0-9][0-9][ -]'
it_check "deadline: answered after spf.timeout ($SPF_TIMEOUT s <= $elapsed s <= $((SPF_TIMEOUT + 8)) s)" \
    test "$elapsed" -ge "$SPF_TIMEOUT" -a "$elapsed" -le $((SPF_TIMEOUT + 8))
it_check "deadline: outpost-milter is still running" kill -0 "$MILTER_PID"
send deadline-next "$SPF_PASS_IP" client.outpost.test alice@pass.example
expect_accepted "deadline: the next message" deadline-next
it_check "deadline: the pool is back to 2 workers" \
    it_wait 10 eval '[ "$(spf_nworkers)" -ge 2 ]'

# ---- outbound preflight (reject) -----------------------------------------------------

it_stop_pid "$MILTER_PID"
milter_start "$T/milter/reject.conf" ||
    fatal_setup "restart outpost-milter with spf.outbound.action = reject"
it_wait 10 eval '[ "$(spf_nworkers)" -ge 2 ]' ||
    it_fail "reject config: 2 SPF workers"
send out-bad-reject 127.0.0.1 client.outpost.test alice@bad.example
expect_reply "outbound reject: bad.example" '^550[ -]5\.7\.23 .*bad\.example'
it_check "outbound reject: the reply says to publish include:spf.outpost.test" \
    eval 'server_replies "$SENT_LOG" | grep -q "include:spf\.outpost\.test"'
send out-good-reject 127.0.0.1 client.outpost.test alice@good.example
if expect_accepted "outbound reject: good.example still accepted" out-good-reject; then
	expect_no_header "outbound reject good.example" X-Outpost-SPF-Preflight
fi

# ---- outbound preflight of a domain whose DNS hangs ---------------------------------

# now_ms - the wall clock in milliseconds
now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# preflight_lines - the milter's warn lines for domain $1 (exactly)
preflight_lines() {
	grep -E "spf-preflight=temperror domain=$(echo "$1" | sed 's/\./\\./g') action=warn" \
	    "$MILTER_LOG"
}

# Three public addresses: after the first temperror the other two are not
# checked, so the first message waits out spf.timeout once (not three
# times) on the hanging DNS; the second, answered from the negative cache
# (a temperror is kept up to 60 s), at once.
it_stop_pid "$MILTER_PID"
milter_start "$T/milter/hang.conf" ||
    fatal_setup "restart outpost-milter with 3 spf.outbound.addresses"
it_wait 10 eval '[ "$(spf_nworkers)" -ge 2 ]' ||
    it_fail "hang config: 2 SPF workers"
t0=$(now_ms)
send out-hang-1 127.0.0.1 client.outpost.test alice@hang.example
ms=$(($(now_ms) - t0))
if expect_accepted "outbound hang 1: trusted sender, hang.example (DNS hangs): warned, not refused" out-hang-1; then
	expect_header "outbound hang 1" X-Outpost-SPF-Preflight \
	    '^temperror domain=hang\.example; 192\.0\.2\.25=temperror 192\.0\.2\.26=temperror 2001:db8::25=temperror'
fi
it_check "outbound hang 1: checked 1 of 3 addresses (log: checked=1/3)" \
    eval 'preflight_lines hang.example | grep -q "checked=1/3"'
it_check "outbound hang 1: answered after one spf.timeout ($((SPF_TIMEOUT - 1)) s <= $ms ms <= $((SPF_TIMEOUT + 8)) s)" \
    test "$ms" -ge $(((SPF_TIMEOUT - 1) * 1000)) -a "$ms" -le $(((SPF_TIMEOUT + 8) * 1000))
t0=$(now_ms)
send out-hang-2 127.0.0.1 client.outpost.test bob@hang.example
ms=$(($(now_ms) - t0))
if expect_accepted "outbound hang 2: hang.example again" out-hang-2; then
	expect_header "outbound hang 2" X-Outpost-SPF-Preflight \
	    '^temperror domain=hang\.example;'
fi
it_check "outbound hang 2: answered from the negative cache ($ms ms < 3000 ms, spf.timeout $SPF_TIMEOUT s)" \
    test "$ms" -lt 3000
it_check "outbound hang 2: the milter logged it as cached" \
    eval 'preflight_lines hang.example | grep -q "cached=yes"'
it_wait 10 eval '[ "$(spf_nworkers)" -ge 2 ]' ||
    it_fail "outbound hang: the pool is back to 2 workers"

# Three messages of a bulk sender whose DNS hangs, at once: one check holds
# one of the 2 workers, the other two messages wait for its result; so an
# inbound check of other mail meanwhile finds a free worker (without single
# flight both workers hang and it tempfails after spf.timeout).
t0=$(now_ms)
BULK_PIDS=()
for b in 1 2 3; do
	(
		send out-bulk-$b 127.0.0.1 client.outpost.test "news$b@bulk.hang.example"
		echo "$SENT_RC" >"$T/out-bulk-$b.rc"
	) &
	BULK_PIDS+=($!)
done
sleep 2
t1=$(now_ms)
send in-during-bulk "$SPF_PASS_IP" client.outpost.test alice@pass.example
ms=$(($(now_ms) - t1))
if expect_accepted "outbound bulk: an inbound pass message meanwhile" in-during-bulk; then
	expect_header "outbound bulk: the inbound message meanwhile" Received-SPF '^pass\b'
fi
it_check "outbound bulk: the inbound message was not held up by the hanging checks ($ms ms < 3000 ms)" \
    test "$ms" -lt 3000
wait "${BULK_PIDS[@]}"
ms=$(($(now_ms) - t0))
for b in 1 2 3; do
	SENT_LOG=$T/swaks-out-bulk-$b.log
	SENT_TAG=$(it_msg_tag "$MSGS/out-bulk-$b.eml" 2>/dev/null)
	SENT_RC=$(cat "$T/out-bulk-$b.rc" 2>/dev/null || echo 1)
	if expect_accepted "outbound bulk $b: bulk.hang.example, warned" out-bulk-$b; then
		expect_header "outbound bulk $b" X-Outpost-SPF-Preflight \
		    '^temperror domain=bulk\.hang\.example;'
	fi
done
it_check "outbound bulk: all 3 answered within about one spf.timeout ($ms ms <= $((SPF_TIMEOUT + 8)) s)" \
    test "$ms" -le $(((SPF_TIMEOUT + 8) * 1000))
checks=$(preflight_lines bulk.hang.example | grep -vc -e "shared=yes" -e "cached=yes")
shared=$(preflight_lines bulk.hang.example | grep -c "shared=yes")
it_check "outbound bulk: the milter checked bulk.hang.example once (got $checks), the others shared it (got $shared, want 2)" \
    test "$checks" -eq 1 -a "$shared" -eq 2
it_wait 10 eval '[ "$(spf_nworkers)" -ge 2 ]' ||
    it_fail "outbound bulk: the pool is back to 2 workers"

# ---- end -------------------------------------------------------------------------------

it_check "outpost-milter is still running at the end" kill -0 "$MILTER_PID"
# Stop it now, so that what LeakSanitizer says at exit is in the log too;
# the pool's supervisor and workers go with it.
SUP=$(spf_supervisor)
WPIDS=$(spf_workers | tr '\n' ' ')
it_stop_pid "$MILTER_PID"
gone() {
	local p
	for p in $SUP $WPIDS; do
		kill -0 "$p" 2>/dev/null && return 1
	done
	return 0
}
it_check "stopping outpost-milter stops the SPF supervisor and workers ($SUP $WPIDS)" \
    it_wait 10 gone
if grep -qE 'ERROR: AddressSanitizer|runtime error:|LeakSanitizer' "$MILTER_LOG"; then
	it_fail "milter and worker logs have no ASan/UBSan errors"
else
	it_pass "milter and worker logs have no ASan/UBSan errors"
fi
if [ "$IT_FAILED" -ne 0 ]; then
	pf_log
	echo "---- milter log ----"
	cat "$MILTER_LOG"
	echo "---- dnsmasq log ----"
	cat "$T/dnsmasq.log"
	echo "---- end of logs ----"
fi
it_finish
