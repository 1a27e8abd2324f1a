#!/usr/bin/env bash
# tests/integration/check_domain.sh - outpostctl check-domain against a
# real DNS server (dnsmasq) and the real SPF workers, in a private
# network namespace (tests/integration/netns.bash)
#
# Zone: tests/data/deliver-zone/dnsmasq.conf, plus the DKIM records of
# the keys made here (a second dnsmasq conf-file in the test directory).
# Checks:
#   - good.test (SPF with our address, its key published, DMARC
#     p=reject, MX; our address 192.0.2.25 with FCrDNS): exit 0, every
#     line PASS, and the --json (parsed by /usr/bin/python3) says the same;
#   - one fault per domain, each a FAIL line of its check with the record
#     to publish, and exit 1: no SPF (nospf.test), our address not
#     authorized (notours.test), key not published (nokey.test), another
#     key published (badkey.test), no DMARC (nodmarc.test), signed with a
#     d= that is not aligned and SPF failing (unaligned.test), no MX
#     (nomx.test); a null MX passes (nullmx.test);
#   - with outbound addresses without PTR (192.0.2.26) or whose PTR name
#     does not resolve back (192.0.2.27): FAIL ptr for each;
#   - a domain whose DNS never answers (x.hang.test): TEMPERROR lines,
#     exit 75, each lookup ended by the -t deadline.
# Every setup step that fails is a FAIL.  The namespace and every process
# started are removed on exit.
#
# Environment: OUTPOST_BUILD (default TOP/build), IT_KEEP=1.

set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns.bash"

OUR_IP=192.0.2.25

if [ -z "${OUTPOST_CD_NETNS:-}" ]; then
	IT_NAME=check_domain
	NS=outpost-cd-$$
	ns_fail() {
		it_fail "setup: $*"
		it_finish
		exit 1
	}
	trap 'rc=$?; trap - EXIT; ns_destroy "$NS"; exit $rc' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	[ "$(id -u)" -eq 0 ] || ns_fail "must run as root (netns)"
	for prog in ip /usr/sbin/dnsmasq; do
		command -v "$prog" >/dev/null || ns_fail "missing $prog"
	done
	ns_create "$NS" || ns_fail "network namespace $NS"
	ip netns exec "$NS" env OUTPOST_CD_NETNS="$NS" bash "$0" "$@"
	exit $?
fi

it_init check_domain
T=$IT_T
CTL=$IT_BUILD/tools/outpostctl

fatal_setup() {
	it_setup_failed "$*" "$T/dnsmasq.log"
}

[ "$(ip netns identify $$ 2>/dev/null)" = "$OUTPOST_CD_NETNS" ] ||
    fatal_setup "not running inside network namespace $OUTPOST_CD_NETNS"
it_need openssl /usr/sbin/dnsmasq "$IT_PY" "$CTL" \
    "$IT_BUILD/spf/outpost-spf-worker"

# ---- keys and their records -----------------------------------------------

it_keygen "$T/keys" good.test s1 rsa || fatal_setup "key s1"
it_keygen "$T/keys" outpost.test o1 ed25519 || fatal_setup "key o1"
it_keygen "$T/keys" other.test x1 rsa || fatal_setup "key x1"

# key_text - the TXT text of DIR/SEL.txt (its strings joined)
key_text() {
	sed -e 's/^[^"]*"//' -e 's/" *)$//' -e 's/" "//g' "$T/keys/$1.txt"
}

# dnsmasq_txt - a txt-record line, strings of at most 200 bytes
dnsmasq_txt() {
	local name=$1 rec=$2 out=
	while [ -n "$rec" ]; do
		out+=${out:+,}\"${rec:0:200}\"
		rec=${rec:200}
	done
	printf 'txt-record=%s,%s\n' "$name" "$out"
}

{
	printf 'conf-file=%s\n' "$IT_TOP/tests/data/deliver-zone/dnsmasq.conf"
	for d in good nospf notours nodmarc unaligned nomx nullmx; do
		dnsmasq_txt "s1._domainkey.$d.test" "$(key_text s1)"
	done
	dnsmasq_txt s1._domainkey.badkey.test "$(key_text x1)"
	dnsmasq_txt o1._domainkey.outpost.test "$(key_text o1)"
} >"$T/zone.conf"
NS_ZONE=$T/zone.conf
ns_dns_start "$T" || fatal_setup "dnsmasq did not answer on 127.0.0.1:53"

# ---- configuration ----------------------------------------------------------

# cd_conf - the config, with the outbound addresses $1
cd_conf() {
	cat <<EOF
milter = { socket = "unix:$T/milter.sock"; };
dkim = {
  keys = (
    { name = "r"; domain = "%"; selector = "s1"; algorithm = "rsa-sha256";
      file = "$T/keys/s1.private"; },
    { name = "o"; domain = "outpost.test"; selector = "o1";
      algorithm = "ed25519-sha256"; file = "$T/keys/o1.private"; }
  );
  signing = ( { match = "*@unaligned.test"; keys = [ "o" ]; },
              { match = "*"; keys = [ "r" ]; } );
};
spf = {
  user = "nobody";
  worker = "$IT_BUILD/spf/outpost-spf-worker";
  timeout = 2;
  outbound = { enabled = true; addresses = [ $1 ];
    publish = "include:spf.outpost.test"; };
};
EOF
}
cd_conf "\"$OUR_IP\"" >"$T/good.conf"
cd_conf '"192.0.2.26", "192.0.2.27"' >"$T/ptr.conf"
chmod 644 "$T"/*.conf

# check - run check-domain: OUT, RC
check() {
	OUT=$("$CTL" check-domain -t 2 "$@" 2>"$T/stderr")
	RC=$?
}

# expect_line - OUT has a line matching the extended regexp
expect_line() {
	local what=$1 re=$2
	if grep -Eq -- "$re" <<<"$OUT"; then
		it_pass "$what"
	else
		it_fail "$what (want /$re/; got:"$'\n'"$OUT)"
	fi
}

# expect_rc - RC is $2
expect_rc() {
	if [ "$RC" -eq "$2" ]; then
		it_pass "$1: exit $2"
	else
		it_fail "$1: exit $RC, want $2; output:"$'\n'"$OUT"$'\n'"$(cat "$T/stderr")"
	fi
}

# ---- a well-configured domain ---------------------------------------------

check -c "$T/good.conf" good.test
expect_rc "good.test" 0
expect_line "good.test: spf record" '^PASS +spf +record: v=spf1 include:spf.outpost.test -all$'
expect_line "good.test: our address passes" "^PASS +spf +$OUR_IP passes"
expect_line "good.test: dkim" '^PASS +dkim +s1._domainkey.good.test matches'
expect_line "good.test: dmarc" '^PASS +dmarc +_dmarc.good.test: p=reject .*rua=mailto:dmarc@good.test'
expect_line "good.test: aligned" '^PASS +aligned +DKIM d=good.test'
expect_line "good.test: ptr" "^PASS +ptr +$OUR_IP: PTR mail.outpost.test resolves back"
expect_line "good.test: mx" '^PASS +mx +10 mx.good.test$'
it_check "good.test: no FAIL, TEMPERROR or SKIP line" \
    bash -c '! grep -Eq "^(FAIL|TEMPERROR|SKIP)" <<<"$1"' _ "$OUT"

check -c "$T/good.conf" --json good.test
expect_rc "good.test --json" 0
it_check "good.test --json: parsed, result pass, 7 checks all pass" \
    "$IT_PY" -c 'import json, sys
d = json.loads(sys.argv[1])
assert d["domain"] == "good.test" and d["result"] == "pass", d
assert [c["check"] for c in d["checks"]] == ["spf", "spf", "dkim",
    "dmarc", "aligned", "ptr", "mx"], d
assert all(c["status"] == "pass" and c["publish"] is None
    for c in d["checks"]), d' "$OUT"

# ---- one fault each ------------------------------------------------------------

check -c "$T/good.conf" nospf.test
expect_rc "nospf.test" 1
expect_line "nospf.test: no SPF" '^FAIL +spf +no SPF record at nospf.test$'
expect_line "nospf.test: SPF to publish" \
    '^ +publish: nospf.test. IN TXT "v=spf1 include:spf.outpost.test -all"$'

check -c "$T/good.conf" notours.test
expect_rc "notours.test" 1
expect_line "notours.test: our address fails" "^FAIL +spf +$OUR_IP: fail for postmaster@notours.test"
expect_line "notours.test: SPF to publish" \
    '^ +publish: notours.test. IN TXT "v=spf1 include:spf.outpost.test ip4:198.51.100.99 -all"$'

check -c "$T/good.conf" nokey.test
expect_rc "nokey.test" 1
expect_line "nokey.test: key not published" \
    '^FAIL +dkim +s1._domainkey.nokey.test TXT: no such name'
expect_line "nokey.test: key to publish" \
    '^ +publish: s1._domainkey.nokey.test. IN TXT \( "v=DKIM1; k=rsa; p='

check -c "$T/good.conf" --json badkey.test
expect_rc "badkey.test" 1
it_check "badkey.test --json: dkim fails with the right record to publish" \
    "$IT_PY" -c 'import json, re, sys
d = json.loads(sys.argv[1])
assert d["result"] == "fail", d
k = [c for c in d["checks"] if c["check"] == "dkim"]
assert len(k) == 1 and k[0]["status"] == "fail", k
assert "s1._domainkey.badkey.test" in k[0]["text"], k
p = re.sub(r"\"\s+\"", "", k[0]["publish"])
assert p.startswith("s1._domainkey.badkey.test. IN TXT"), p
assert sys.argv[2] in p, (p, sys.argv[2])
others = [c for c in d["checks"] if c["check"] != "dkim"]
assert all(c["status"] == "pass" for c in others), others' \
    "$OUT" "$(key_text s1 | sed 's/.*p=//')"

check -c "$T/good.conf" nodmarc.test
expect_rc "nodmarc.test" 1
expect_line "nodmarc.test: no DMARC" '^FAIL +dmarc +no DMARC record at _dmarc.nodmarc.test'
expect_line "nodmarc.test: DMARC to publish" \
    '^ +publish: _dmarc.nodmarc.test. IN TXT "v=DMARC1; p=none; rua=mailto:'

check -c "$T/good.conf" unaligned.test
expect_rc "unaligned.test" 1
expect_line "unaligned.test: d=outpost.test key itself passes" \
    '^PASS +dkim +o1._domainkey.outpost.test matches'
expect_line "unaligned.test: not aligned" '^FAIL +aligned +no DKIM key with d= aligned to unaligned.test \(adkim=s\)'

check -c "$T/good.conf" nomx.test
expect_rc "nomx.test" 1
expect_line "nomx.test: no MX" '^FAIL +mx +nomx.test has no MX record'
expect_line "nomx.test: MX to publish" '^ +publish: nomx.test. IN MX 10 mail.nomx.test.$'

check -c "$T/good.conf" nullmx.test
expect_rc "nullmx.test" 0
expect_line "nullmx.test: null MX passes" '^PASS +mx +0 \. \(null MX'

check -c "$T/ptr.conf" good.test
expect_rc "addresses without FCrDNS" 1
expect_line "192.0.2.26: no PTR" '^FAIL +ptr +192.0.2.26 has no PTR record'
expect_line "192.0.2.26: PTR to publish" '^ +publish: 26.2.0.192.in-addr.arpa. IN PTR '
expect_line "192.0.2.27: PTR does not resolve back" \
    '^FAIL +ptr +192.0.2.27: PTR other.outpost.test does not resolve back'
expect_line "192.0.2.27: A to publish" '^ +publish: other.outpost.test. IN A 192.0.2.27$'

# ---- a DNS server that never answers ------------------------------------------

start=$(date +%s%N)
check -c "$T/good.conf" --json x.hang.test
ms=$((($(date +%s%N) - start) / 1000000))
expect_rc "x.hang.test" 75
it_check "x.hang.test --json: temperror for spf, dmarc, mx; no fail" \
    "$IT_PY" -c 'import json, sys
d = json.loads(sys.argv[1])
assert d["result"] == "temperror", d
st = {}
for c in d["checks"]:
    st.setdefault(c["check"], set()).add(c["status"])
for k in ("spf", "dmarc", "mx"):
    assert st[k] == {"temperror"}, (k, st)
assert st["aligned"] == {"temperror"}, st
assert "fail" not in set().union(*st.values()), st' "$OUT"
# Six lookups at most wait out the 2 s deadline (SPF record, SPF
# worker, DKIM key, DMARC, MX; one cached): well under 30 s.
if [ "$ms" -lt 20000 ]; then
	it_pass "x.hang.test: ended in $ms ms"
else
	it_fail "x.hang.test: took $ms ms"
fi

it_finish
