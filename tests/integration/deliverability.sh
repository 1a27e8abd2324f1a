#!/usr/bin/env bash
# tests/integration/deliverability.sh - outpost-milter's deliverability
# checks (deliverability.*) behind a real Postfix, with a real DNS server in
# a private network namespace
#
# Like spf_postfix.sh, the script creates a network namespace (lo up,
# /etc/netns/NAME/resolv.conf naming 127.0.0.1) and runs itself again
# inside it, where dnsmasq serves tests/data/deliverability-zone/dnsmasq.conf
# (netns.bash) and lookups under hang.test go to a UDP socket that never
# answers.  outpost-milter holds keys for aligned.test and norecord.test
# and runs the SPF preflight (our address 192.0.2.25); trusted senders
# submit from 127.0.0.1.  Checked, with every check on "reject":
#   - an aligned domain with p=reject passes (From mail.aligned.test, d=
#     aligned.test, adkim=r: the organizational domain's record);
#   - foreign.test (no key here, SPF without our address, p=reject) is
#     refused with 550 5.7.26 naming the key and the SPF include to add;
#   - spfonly.test (no key, SPF with our address, envelope sender in the
#     domain) passes: aligned by SPF;
#   - lax.test (p=none) passes, only noted in the log;
#   - a bulk message without List-Unsubscribe-Post is refused with 550
#     5.7.1 naming the field; with both fields it passes, and python3-dkim
#     verifies the delivered signature, whose h= covers both fields;
#   - a sender domain past deliverability.bulk_recipients (3 recipients a
#     day, read from the quota store): its plain mail is bulk, refused;
#   - a From domain whose DNS never answers (hang.test): accepted within
#     deliverability.dns_timeout plus a margin, logged as temperror;
# and with every check on "warn": foreign.test and the bulk message
# without one-click arrive marked with X-Outpost-Deliverability, as does
# a bulk message from norecord.test (no DMARC record).
# Every setup step that fails is a FAIL.  The namespace and every process
# started are removed on every exit.
#
# Environment: OUTPOST_BUILD (default TOP/build), OUTPOST_ENGINE (milter.engine,
# default native), IT_KEEP=1.

set -u
. "$(dirname "$0")/lib.sh"

NS_ZONE=$IT_TOP/tests/data/deliverability-zone/dnsmasq.conf
NS_PROBE=probe.test
. "$(dirname "$0")/netns.bash"

OUR_IP=192.0.2.25	# spf.outbound.addresses (not on lo)
DNS_TIMEOUT=2		# deliverability.dns_timeout, seconds

if [ -z "${OUTPOST_DL_NETNS:-}" ]; then
	IT_NAME=deliverability
	NS=outpost-dl-$$
	trap 'rc=$?; trap - EXIT; ns_destroy "$NS"; exit $rc' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null ||
	    [ ! -x /usr/sbin/dnsmasq ]; then
		it_fail "setup: root, ip and /usr/sbin/dnsmasq are needed"
		it_finish
		exit 1
	fi
	if ! ns_create "$NS"; then
		it_fail "setup: network namespace $NS"
		it_finish
		exit 1
	fi
	ip netns exec "$NS" env OUTPOST_DL_NETNS="$NS" bash "$0" "$@"
	exit $?
fi

# ---- inside the namespace ----------------------------------------------------

it_init deliverability
T=$IT_T
SOCK=unix:$T/milter/milter.sock
MSGS=$T/msgs

# dl_setup_failed - a setup step failed: report it and stop
dl_setup_failed() {
	it_setup_failed "$*" "$T/milter/reject.log" "$T/milter/warn.log" \
	    "$T/dnsmasq.log"
}

it_need postfix postconf smtp-sink swaks openssl curl /usr/sbin/dnsmasq "$IT_PY"
ns_dns_start "$T" || dl_setup_failed "dnsmasq did not answer on 127.0.0.1:53"
case $(ns_dnsq _dmarc.foreign.test TXT 3) in
"rcode=0 v=DMARC1; p=reject"*) it_pass "dns: _dmarc.foreign.test answers" ;;
*) dl_setup_failed "dns: _dmarc.foreign.test does not answer as written" ;;
esac
[ -x "$IT_BUILD/milter/outpost-milter" ] ||
    dl_setup_failed "no $IT_BUILD/milter/outpost-milter (set OUTPOST_BUILD)"
it_keygen "$T/keys" aligned.test s1 rsa || dl_setup_failed "key aligned.test"
it_keygen "$T/keys" norecord.test n1 rsa || dl_setup_failed "key norecord.test"

MPORT=$(it_free_port) || dl_setup_failed "no free port for milter.metrics"

# dl_conf - the milter config, every deliverability check on action $1
dl_conf() {
	cat <<EOF
milter = { socket = "$SOCK"; socket_group = "postfix"; on_error = "tempfail";
  engine = "${OUTPOST_ENGINE:-native}"; metrics = "inet:127.0.0.1:$MPORT"; };
trusted = { networks = [ "127.0.0.1/32" ]; authenticated = true; };
dkim = {
  keys = (
    { name = "a"; domain = "aligned.test"; selector = "s1"; file = "$T/keys/s1.private"; },
    { name = "n"; domain = "norecord.test"; selector = "n1"; file = "$T/keys/n1.private"; }
  );
  signing = ( { match = "*@*aligned.test"; keys = [ "a" ]; },
              { match = "*@norecord.test"; keys = [ "n" ]; } );
};
spf = {
  workers = 2; user = "nobody"; worker = "$IT_BUILD/spf/outpost-spf-worker";
  timeout = 10;
  outbound = { enabled = true; addresses = [ "$OUR_IP" ]; action = "warn";
    publish = "include:spf.outpost.test"; };
};
store = { path = "$T/quota.lmdb"; };
limits = ( { name = "daily"; key = "sender_domain"; count = "recipients";
  kind = "calendar"; period = "day"; limit = 100000; action = "warn"; } );
deliverability = { dmarc = "$1"; bulk = "$1"; dns_timeout = "${DNS_TIMEOUT}s";
  bulk_recipients = 3; bulk_limit = "daily"; };
EOF
}

mkdir -p "$T/milter" "$MSGS"
chmod 755 "$T/milter"
dl_conf reject >"$T/milter/reject.conf"
dl_conf warn >"$T/milter/warn.conf"
outpost_start "$T/milter/reject.conf" "$SOCK" "$T/milter/reject.log" ||
    dl_setup_failed "start outpost-milter (reject)"
MILTER_LOG=$T/milter/reject.log

SMTP_PORT=$(it_free_port)
SINK_PORT=$(it_free_port)
while [ "$SINK_PORT" = "$SMTP_PORT" ]; do
	SINK_PORT=$(it_free_port)
done
sink_start "$T/sink" "$SINK_PORT" || dl_setup_failed "start smtp-sink"
pf_setup "$T/postfix" "$SMTP_PORT" "$SINK_PORT" "$SOCK"
pf_start "$SMTP_PORT" || dl_setup_failed "start private postfix"

# ---- helpers -------------------------------------------------------------------

# dl_msg NAME FROM - a message file: the usual fields, the extra header
# lines read from stdin, a body; prints its path
dl_msg() {
	local f
	f=$(it_new_msg "$MSGS" "$1" "$2" "deliverability $1") || return 1
	{
		cat
		printf '\nThe body of %s.\n' "$1"
	} | it_crlf "$f"
	echo "$f"
}

# dl_submit NAME MAILFROM FILE - submit from 127.0.0.1 (trusted) to DL_TO
# (default bob@example.net); sets DL_RC, DL_LOG, DL_TAG and DL_MS (how
# long the SMTP session took)
dl_submit() {
	local t0
	t0=$(date +%s%N)
	DL_LOG=$T/swaks-$1.log
	DL_TAG=$(it_msg_tag "$3")
	it_send "$DL_LOG" "$2" "${DL_TO:-bob@example.net}" "$3" "$SMTP_PORT"
	DL_RC=$?
	DL_MS=$((($(date +%s%N) - t0) / 1000000))
}

# dl_refused WHAT ERE - the last submission was refused with a reply
# matching ERE
dl_refused() {
	local line
	line=$(grep -E '^ *<\*\* ' "$DL_LOG" | sed -E 's/^ *<\*\* +//' |
	    grep -E -- "$2" | head -n 1)
	if [ "$DL_RC" -ne 0 ] && [ -n "$line" ]; then
		it_pass "$1: refused: $line"
	else
		it_fail "$1: refused with /$2/ (swaks exit $DL_RC)"
		tail -n 4 "$DL_LOG" | sed 's/^/    /'
	fi
}

# dl_delivered WHAT - the last submission was accepted and arrived; its
# copy is DL_GOT
dl_delivered() {
	local raw
	DL_GOT=
	if [ "$DL_RC" -eq 0 ] && raw=$(sink_wait "$DL_TAG" 30); then
		DL_GOT=$T/got-$DL_TAG.eml
		sink_message "$raw" "$DL_GOT"
		it_pass "$1: accepted and delivered"
		return 0
	fi
	it_fail "$1: accepted and delivered (swaks exit $DL_RC)"
	tail -n 4 "$DL_LOG" | sed 's/^/    /'
	return 1
}

# dl_field NAME - the values of header field NAME of DL_GOT, unfolded
dl_field() {
	"$IT_PY" -c 'import email, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"))
for v in m.get_all(sys.argv[2]) or []:
    print(" ".join(str(v).split()))' "$DL_GOT" "$1"
}

# dl_logged WHAT ERE - the milter logged a line matching ERE for DL_TAG's
# message (the log names the queue id; the test matches the check's line)
dl_logged() {
	it_check "$1: log /$2/" grep -Eq -- "$2" "$MILTER_LOG"
}

# dl_no_mark WHAT - DL_GOT has no X-Outpost-Deliverability
dl_no_mark() {
	local v
	v=$(dl_field X-Outpost-Deliverability)
	if [ -z "$v" ]; then
		it_pass "$1: no X-Outpost-Deliverability"
	else
		it_fail "$1: no X-Outpost-Deliverability (got: $v)"
	fi
}

# dl_mark WHAT ERE - DL_GOT has X-Outpost-Deliverability matching ERE
dl_mark() {
	local v
	v=$(dl_field X-Outpost-Deliverability)
	if printf '%s\n' "$v" | grep -Eq -- "$2"; then
		it_pass "$1: X-Outpost-Deliverability: $v"
	else
		it_fail "$1: X-Outpost-Deliverability matches /$2/ (got: ${v:-nothing})"
	fi
}

UNSUB='List-Unsubscribe: <mailto:unsub@aligned.test>, <https://mail.aligned.test/u?id=7>'
ONECLICK='List-Unsubscribe-Post: List-Unsubscribe=One-Click'

# ---- every check on "reject" -----------------------------------------------------

f=$(dl_msg aligned 'News <news@mail.aligned.test>' </dev/null)
dl_submit aligned news@mail.aligned.test "$f"
if dl_delivered "reject: aligned.test (p=reject, adkim=r, d=aligned.test)"; then
	dl_no_mark "reject: aligned.test"
	it_check "reject: aligned.test: signed with d=aligned.test" \
	    eval 'dl_field DKIM-Signature | grep -q "d=aligned.test;"'
fi
dl_logged "reject: aligned.test" \
    'deliverability=dmarc result=pass domain=mail\.aligned\.test .*p=reject.* aligned=dkim'

f=$(dl_msg foreign 'Alice <alice@foreign.test>' </dev/null)
dl_submit foreign alice@foreign.test "$f"
dl_refused "reject: foreign.test (no key, SPF without us, p=reject)" \
    '^550[ -]5\.7\.26 .*foreign\.test'
it_check "reject: foreign.test: the reply names the key to add" \
    eval 'grep -E "^ *<\*\* " "$DL_LOG" | grep -q "dkim.keys"'
it_check "reject: foreign.test: the reply names the SPF include to publish" \
    eval 'grep -E "^ *<\*\* " "$DL_LOG" | grep -q "include:spf.outpost.test"'
dl_logged "reject: foreign.test" \
    'deliverability=dmarc result=fail domain=foreign\.test .*p=reject.*action=reject'

f=$(dl_msg spfonly 'Bob <bob@spfonly.test>' </dev/null)
dl_submit spfonly bob@spfonly.test "$f"
if dl_delivered "reject: spfonly.test (no key, SPF passes for us, p=quarantine)"; then
	dl_no_mark "reject: spfonly.test"
fi
dl_logged "reject: spfonly.test" \
    'deliverability=dmarc result=pass domain=spfonly\.test .*aligned=spf'

f=$(dl_msg lax 'Carol <carol@lax.test>' </dev/null)
dl_submit lax carol@lax.test "$f"
if dl_delivered "reject: lax.test (not aligned, p=none)"; then
	dl_no_mark "reject: lax.test"
fi
dl_logged "reject: lax.test: only noted" \
    'deliverability=dmarc result=noted domain=lax\.test .*p=none'

f=$(printf '%s\n' "$UNSUB" | dl_msg bulk-noclick 'News <news@mail.aligned.test>')
dl_submit bulk-noclick news@mail.aligned.test "$f"
dl_refused "reject: bulk without List-Unsubscribe-Post" \
    '^550[ -]5\.7\.1 .*List-Unsubscribe-Post: List-Unsubscribe=One-Click'
dl_logged "reject: bulk without one-click" \
    'deliverability=bulk result=fail why=list-unsubscribe .*missing=one-click action=reject'

f=$(printf '%s\n%s\n' "$UNSUB" "$ONECLICK" |
    dl_msg bulk-ok 'News <news@mail.aligned.test>')
dl_submit bulk-ok news@mail.aligned.test "$f"
if dl_delivered "reject: bulk with one-click unsubscribe"; then
	dl_no_mark "reject: bulk with one-click"
	h=$(dl_field DKIM-Signature | tr -d ' ' | sed -n 's/.*;h=\([^;]*\);.*/\1/p')
	it_check "bulk with one-click: h= ($h) covers List-Unsubscribe and List-Unsubscribe-Post" \
	    eval 'echo ":$h:" | grep -qi ":List-Unsubscribe:" &&
	        echo ":$h:" | grep -qi ":List-Unsubscribe-Post:"'
	it_verify_py "$DL_GOT" "$T/keys/zone" >"$T/verify.out" 2>&1
	sed 's/^/    python3-dkim: /' "$T/verify.out"
	it_check "bulk with one-click: python3-dkim verifies the signature" \
	    it_verify_algs "$T/verify.out" rsa-sha256
fi
dl_logged "reject: bulk with one-click" \
    'deliverability=bulk result=pass why=list-unsubscribe'

# A sender domain over deliverability.bulk_recipients (3 a day, from the
# quota store): its plain mail counts as bulk.
f=$(dl_msg crowd-1 'News <news@crowd.aligned.test>' </dev/null)
DL_TO=$(it_rcpt_list crowd 2) dl_submit crowd-1 news@crowd.aligned.test "$f"
if dl_delivered "reject: crowd.aligned.test, 2 recipients today (<= 3)"; then
	dl_no_mark "reject: crowd.aligned.test, 2 recipients"
fi
f=$(dl_msg crowd-2 'News <news@crowd.aligned.test>' </dev/null)
DL_TO=$(it_rcpt_list crowd 2) dl_submit crowd-2 news@crowd.aligned.test "$f"
dl_refused "reject: crowd.aligned.test, 4 recipients today (> 3): bulk, no unsubscribe" \
    '^550[ -]5\.7\.1 .*List-Unsubscribe'
dl_logged "reject: crowd.aligned.test over bulk_recipients" \
    'deliverability=bulk result=fail why=recipients domain=crowd\.aligned\.test'

# A From domain whose DNS never answers: not held past the deadline, never
# refused.
f=$(dl_msg hang 'Dave <dave@hang.test>' </dev/null)
dl_submit hang dave@spfonly.test "$f"
if dl_delivered "reject: hang.test (DNS never answers)"; then
	dl_no_mark "reject: hang.test"
fi
it_check "reject: hang.test: answered within dns_timeout + 3 s ($DL_MS ms <= $(((DNS_TIMEOUT + 3) * 1000)) ms)" \
    test "$DL_MS" -le $(((DNS_TIMEOUT + 3) * 1000))
dl_logged "reject: hang.test" 'deliverability=dmarc result=temperror domain=hang\.test'

# ---- every check on "warn" -------------------------------------------------------

it_stop_pid "${IT_MILTER_PIDS[0]}"
rm -f "${SOCK#unix:}"
outpost_start "$T/milter/warn.conf" "$SOCK" "$T/milter/warn.log" ||
    dl_setup_failed "start outpost-milter (warn)"
MILTER_LOG=$T/milter/warn.log

f=$(dl_msg foreign-warn 'Alice <alice@foreign.test>' </dev/null)
dl_submit foreign-warn alice@foreign.test "$f"
if dl_delivered "warn: foreign.test"; then
	dl_mark "warn: foreign.test" 'dmarc=fail .*foreign\.test.*p=reject'
fi

f=$(printf '%s\n' "$UNSUB" | dl_msg bulk-noclick-warn 'News <news@mail.aligned.test>')
dl_submit bulk-noclick-warn news@mail.aligned.test "$f"
if dl_delivered "warn: bulk without one-click"; then
	dl_mark "warn: bulk without one-click" 'bulk=fail .*missing=one-click'
fi

f=$(printf 'List-Id: <letters.norecord.test>\n%s\n%s\n' \
    'List-Unsubscribe: <https://norecord.test/u>' "$ONECLICK" |
    dl_msg bulk-norecord 'Eve <eve@norecord.test>')
dl_submit bulk-norecord eve@norecord.test "$f"
if dl_delivered "warn: bulk from norecord.test (no DMARC record)"; then
	dl_mark "warn: bulk from norecord.test" 'bulk=fail .*missing=dmarc-record'
fi

# ---- end ---------------------------------------------------------------------------

# the counters of the "warn" milter equal its log lines, check by result
if curl -sf "http://127.0.0.1:$MPORT/metrics" >"$T/warn.prom"; then
	it_check "metrics: outpost_deliverability_checks_total equals the log lines" \
	    "$IT_PY" - "$T/warn.prom" "$MILTER_LOG" <<'EOF'
import re, sys
from prometheus_client.parser import text_string_to_metric_families
got = {}
for fam in text_string_to_metric_families(open(sys.argv[1]).read()):
    for s in fam.samples:
        if s.name == "outpost_deliverability_checks_total" and s.value:
            got[(s.labels["check"], s.labels["result"])] = int(s.value)
want = {}
for line in open(sys.argv[2]):
    m = re.search(r"deliverability=(\w+) result=(\w+)", line)
    if m:
        want[m.groups()] = want.get(m.groups(), 0) + 1
print("metrics", sorted(got.items()), "log", sorted(want.items()))
sys.exit(0 if want and got == want and ("dmarc", "fail") in got else 1)
EOF
else
	it_fail "metrics: curl the milter's /metrics"
fi

it_check "outpost-milter is still running" kill -0 "${IT_MILTER_PIDS[0]}"
it_stop_pid "${IT_MILTER_PIDS[0]}"
if grep -qE 'ERROR: AddressSanitizer|runtime error:|LeakSanitizer' \
    "$T/milter/reject.log" "$T/milter/warn.log"; then
	it_fail "milter logs have no ASan/UBSan errors"
else
	it_pass "milter logs have no ASan/UBSan errors"
fi
if [ "$IT_FAILED" -ne 0 ]; then
	pf_log
	for l in "$T/milter/reject.log" "$T/milter/warn.log" "$T/dnsmasq.log"; do
		echo "---- $l"
		cat "$l"
	done
fi
it_finish
