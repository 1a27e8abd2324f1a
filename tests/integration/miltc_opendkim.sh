#!/usr/bin/env bash
# tests/integration/miltc_opendkim.sh - prove the milter-protocol client
#
# tests/miltc (tests/milterproto.c) is what the milter tests and the
# benchmark trust to speak for Postfix.  This shows it deserves it: against
# Debian's opendkim (private instances, unix and TCP sockets, rsa-sha256
# and ed25519-sha256), the message miltc prints — the milter's
# DKIM-Signature inserted at the top, CRLF line ends — verifies with
# python3-dkim, for LF and CRLF input, folded and 8bit headers, a body of
# several 64 KiB chunks, an empty body, with and without
# SMFIP_HDR_LEADSPC, and through two milters in turn.  Mail from an
# untrusted client comes back unsigned, and a dead socket gives exit 3.
#
# Environment: OUTPOST_BUILD (build directory with tests/miltc), MILTC
# (the binary itself, overrides).  Prints PASS:/FAIL: lines, exits non-zero
# on any failure.

set -u
. "$(dirname "$0")/lib.sh"

MILTC=${MILTC:-$IT_BUILD/tests/miltc}
it_init miltc
T=$IT_T

if [ ! -x "$MILTC" ]; then
	it_fail "miltc binary at $MILTC (set OUTPOST_BUILD or MILTC)"
	it_finish
	exit 1
fi
if ! command -v opendkim >/dev/null; then
	it_fail "opendkim installed (apt-get install opendkim)"
	it_finish
	exit 1
fi

# ---- keys, milters ---------------------------------------------------------

it_keygen "$T/keys" example.com s1 rsa || it_fail "make RSA key"
it_keygen "$T/keys" example.com e1 ed25519 || it_fail "make ed25519 key"
ZONE=$T/keys/zone

if opendkim_start "$T/od" "unix:$T/od-rsa.sock" "unix:$T/od-ed.sock" \
    "$T/keys" example.com s1 e1; then
	it_pass "start opendkim (rsa-sha256 and ed25519-sha256, unix sockets)"
else
	it_fail "start opendkim"
	it_finish
	exit 1
fi

# A third instance on a loopback TCP port.
PORT=$(it_free_port)
cat >"$T/od/opendkim-tcp.conf" <<EOF
Syslog no
Mode s
Socket inet:$PORT@127.0.0.1
Canonicalization relaxed/relaxed
Domain example.com
Selector s1
KeyFile $T/keys/s1.private
RequireSafeKeys false
InternalHosts 127.0.0.1/32
PidFile $T/od/opendkim-tcp.pid
EOF
it_spawn "$T/od/opendkim-tcp.log" opendkim -f -x "$T/od/opendkim-tcp.conf"
if milter_wait_socket "inet:$PORT@127.0.0.1" "$IT_LASTPID"; then
	it_pass "start opendkim on inet:$PORT@127.0.0.1"
else
	cat "$T/od/opendkim-tcp.log" >&2
	it_fail "start opendkim on TCP"
fi

# ---- messages ----------------------------------------------------------------

mkdir -p "$T/msg"
cat >"$T/msg/plain-lf.eml" <<'EOF'
From: Alice <alice@example.com>
To: Bob <bob@example.net>
Subject: plain LF message
Date: Fri, 28 Nov 2025 10:00:00 +0000
Message-ID: <plain-lf@example.com>

Hello Bob.
  A line with leading and trailing spaces   

Bye.
EOF
sed 's/$/\r/' "$T/msg/plain-lf.eml" >"$T/msg/plain-crlf.eml"
{
	printf 'From: "Alice Example" <alice@example.com>\n'
	printf 'To: Bob <bob@example.net>,\n\tCarol <carol@example.net>,\n'
	printf '  Dave <dave@example.net>\n'
	printf 'Subject: =?UTF-8?B?w6lsw6h2ZSDDoCBsYSBjYW1wYWduZQ==?=\n'
	printf ' =?UTF-8?Q?suite_du_sujet?=\n'
	printf 'X-Long: %s\n' "$(printf 'word%.0s ' $(seq 1 60))"
	printf 'X-8bit: caf\xc3\xa9 cr\xc3\xa8me br\xc3\xbbl\xc3\xa9e\n'
	printf 'Date: Fri, 28 Nov 2025 10:00:00 +0000\n'
	printf 'Message-ID: <folded@example.com>\n'
	printf 'MIME-Version: 1.0\n'
	printf 'Content-Type: text/plain; charset=utf-8\n'
	printf 'Content-Transfer-Encoding: 8bit\n\n'
	printf 'D\xc3\xa9j\xc3\xa0 vu.\n'
} >"$T/msg/folded-8bit.eml"
{
	printf 'From: alice@example.com\nTo: bob@example.net\n'
	printf 'Subject: big body\nMessage-ID: <big@example.com>\n\n'
	# 200000 bytes: four body chunks, the last one partial.
	for i in $(seq 1 2500); do
		printf 'line %05d the quick brown fox jumps over the lazy dog %s\n' \
		    "$i" "0123456789"
	done
} >"$T/msg/big.eml"
printf 'From: alice@example.com\nTo: bob@example.net\nSubject: empty\n\n' \
    >"$T/msg/empty-body.eml"

# ---- checks ----------------------------------------------------------------

# sign_and_verify - run miltc, expect accept, verify the output
# usage: sign_and_verify WHAT SOCKET IN OUT ALGS [miltc options...]
sign_and_verify() {
	local what=$1 sock=$2 in=$3 out=$4 algs=$5 rc
	shift 5
	"$MILTC" -s "$sock" -a alice -f '<alice@example.com>' \
	    -r '<bob@example.net>' -o "$out" "$@" "$in" >"$out.res" 2>&1
	rc=$?
	if [ $rc -ne 0 ] || ! grep -qx 'result: accept\|result: continue' \
	    "$out.res"; then
		sed 's/^/    /' "$out.res"
		it_fail "$what: miltc exit 0 with accept (got $rc)"
		return
	fi
	if grep -q -v $'\r$' "$out"; then
		it_fail "$what: every output line ends in CRLF"
	fi
	if it_verify_py "$out" "$ZONE" >"$out.ver" 2>&1 &&
	    it_verify_algs "$out.ver" $algs; then
		it_pass "$what: python3-dkim verifies $algs"
	else
		sed 's/^/    /' "$out.ver"
		it_fail "$what: python3-dkim verifies $algs"
	fi
}

RSA=unix:$T/od-rsa.sock
ED=unix:$T/od-ed.sock
for m in plain-lf plain-crlf folded-8bit big empty-body; do
	sign_and_verify "$m rsa unix" "$RSA" "$T/msg/$m.eml" \
	    "$T/$m.rsa.out" rsa-sha256
	sign_and_verify "$m rsa unix no-leadspc" "$RSA" "$T/msg/$m.eml" \
	    "$T/$m.rsa-nl.out" rsa-sha256 --no-leadspc
	sign_and_verify "$m ed25519 unix" "$ED" "$T/msg/$m.eml" \
	    "$T/$m.ed.out" ed25519-sha256
done
sign_and_verify "folded-8bit rsa tcp" "inet:$PORT@127.0.0.1" \
    "$T/msg/folded-8bit.eml" "$T/tcp.out" rsa-sha256
sign_and_verify "big rsa tcp (Postfix inet:host:port form)" \
    "inet:127.0.0.1:$PORT" "$T/msg/big.eml" "$T/tcp-big.out" rsa-sha256

# IPv6 loopback, libmilter's inet6:PORT@HOST form.
if [ -r /proc/net/if_inet6 ] && grep -q '^0\{31\}1 ' /proc/net/if_inet6; then
	PORT6=$(it_free_port)
	sed -e "s|^Socket .*|Socket inet6:$PORT6@::1|" \
	    -e "s|opendkim-tcp.pid|opendkim-tcp6.pid|" \
	    "$T/od/opendkim-tcp.conf" >"$T/od/opendkim-tcp6.conf"
	it_spawn "$T/od/opendkim-tcp6.log" opendkim -f \
	    -x "$T/od/opendkim-tcp6.conf"
	if it_wait 20 eval "(exec 3<>/dev/tcp/::1/$PORT6) 2>/dev/null"; then
		sign_and_verify "plain-lf rsa tcp6" "inet6:$PORT6@::1" \
		    "$T/msg/plain-lf.eml" "$T/tcp6.out" rsa-sha256
	else
		cat "$T/od/opendkim-tcp6.log" >&2
		it_fail "start opendkim on inet6:$PORT6@::1"
	fi
else
	it_log "no ::1 on this machine: the inet6 check is not run"
fi

# Two milters in turn: the RSA-signed output through the ed25519 milter.
sign_and_verify "rsa then ed25519" "$ED" "$T/folded-8bit.rsa.out" \
    "$T/both.out" "rsa-sha256 ed25519-sha256"

# The signature goes on top (SMFIR_INSHEADER index 0), before From.
if [ -f "$T/plain-lf.rsa.out" ] &&
    head -n 1 "$T/plain-lf.rsa.out" | grep -q '^DKIM-Signature:'; then
	it_pass "DKIM-Signature inserted as the first header"
else
	it_fail "DKIM-Signature inserted as the first header"
fi

# The message body went out in CRLF form, unchanged otherwise.
if sed -n '/^\r$/,$p' "$T/plain-lf.rsa.out" | tail -n +2 |
    cmp -s - <(sed -n '/^$/,$p' "$T/msg/plain-lf.eml" | tail -n +2 |
    sed 's/$/\r/'); then
	it_pass "body written back in CRLF form, unchanged"
else
	it_fail "body written back in CRLF form, unchanged"
fi

# Untrusted client, not authenticated: opendkim leaves it unsigned.
"$MILTC" -s "$RSA" -c 192.0.2.7 -n unknown -f '<alice@example.com>' \
    -o "$T/unsigned.out" "$T/msg/plain-lf.eml" >"$T/unsigned.res" 2>&1
rc=$?
if [ $rc -eq 0 ] && [ -s "$T/unsigned.out" ] &&
    ! grep -qi '^DKIM-Signature:' "$T/unsigned.out"; then
	it_pass "untrusted client: accepted, not signed"
else
	sed 's/^/    /' "$T/unsigned.res"
	it_fail "untrusted client: accepted, not signed (exit $rc)"
fi

# The result line goes to stderr when the message goes to stdout.
"$MILTC" -s "$RSA" -a alice "$T/msg/plain-lf.eml" >"$T/stdout.out" \
    2>"$T/stdout.res"
if grep -q '^result: ' "$T/stdout.res" && ! grep -q '^result: ' \
    "$T/stdout.out" && it_verify_py "$T/stdout.out" "$ZONE" >/dev/null; then
	it_pass "message on stdout, result on stderr"
else
	it_fail "message on stdout, result on stderr"
fi

# A dead socket: exit 3 and a reason.
"$MILTC" -s "unix:$T/nothing.sock" "$T/msg/plain-lf.eml" >/dev/null \
    2>"$T/dead.err"
rc=$?
if [ $rc -eq 3 ] && grep -q 'nothing.sock' "$T/dead.err"; then
	it_pass "dead socket: exit 3 with the reason on stderr"
else
	it_fail "dead socket: exit 3 (got $rc: $(cat "$T/dead.err"))"
fi

it_finish
