#!/usr/bin/env bash
# tests/integration/verifiers.sh - prove the two independent DKIM verifiers
#
# The other integration tests trust tests/verify/dkimverify.py (python3-dkim)
# and tests/verify/dkimverify.pl (Perl Mail::DKIM, trixie's for ed25519).
# This shows they deserve it: both verify the RFC 8463 A.3 example (both
# signatures) against the A.2 records, both verify rsa-sha256 and
# ed25519-sha256 signatures made here by python3-dkim with fresh openssl
# keys, and both fail an altered body, a wrong key and a missing record.

set -u
. "$(dirname "$0")/lib.sh"

it_init verifiers
T=$IT_T
RFC=$IT_TOP/tests/data/rfc8463

# expect_fail - both verifiers must reject MESSAGE against ZONE
expect_fail() {
	local what=$1 msg=$2 zone=$3
	if it_verify_py "$msg" "$zone" >"$T/out" 2>&1; then
		it_fail "$what: python3-dkim rejects it"
	elif grep -q 'FAIL' "$T/out"; then
		it_pass "$what: python3-dkim rejects it"
	else
		it_fail "$what: python3-dkim rejects it (no FAIL line)"
	fi
	sed 's/^/    python3-dkim: /' "$T/out"
	if it_verify_pl "$msg" "$zone" >"$T/out" 2>&1; then
		it_fail "$what: Mail::DKIM rejects it"
	elif grep -q 'FAIL' "$T/out"; then
		it_pass "$what: Mail::DKIM rejects it"
	else
		it_fail "$what: Mail::DKIM rejects it (no FAIL line)"
	fi
	sed 's/^/    Mail::DKIM:   /' "$T/out"
}

if it_mail_dkim_lib >/dev/null; then
	it_pass "fetch trixie Mail::DKIM ($(cat "$IT_CACHE/mail-dkim/root/.fetched"))"
else
	it_fail "fetch trixie Mail::DKIM"
fi

# RFC 8463 A.3: one ed25519-sha256 and one rsa-sha256 signature.
if [ -f "$RFC/A3-signed-message.eml" ]; then
	it_verify_both "RFC 8463 A.3" "$RFC/A3-signed-message.eml" \
	    "$RFC/A2-dns-records.zone" ed25519-sha256 rsa-sha256
	sed 's/hungry/thirsty/' "$RFC/A3-signed-message.eml" >"$T/a3-altered.eml"
	expect_fail "RFC 8463 A.3 altered body" "$T/a3-altered.eml" \
	    "$RFC/A2-dns-records.zone"
else
	it_fail "RFC 8463 corpus present ($RFC)"
fi

# Our own keys, signed by python3-dkim (not by the code under test).
it_keygen "$T/keys" example.org r1 rsa || it_fail "RSA key generation"
it_keygen "$T/keys" example.org e1 ed25519 || it_fail "ed25519 key generation"
it_keygen "$T/other" example.org r1 rsa || it_fail "second RSA key"
it_keygen "$T/other" example.org e1 ed25519 || it_fail "second ed25519 key"
printf 'From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: verifier self-test\r\nDate: Sat, 01 Jun 2024 10:00:00 +0000\r\nMessage-ID: <vt@example.org>\r\n\r\nHello,\r\n  spaced   body\t\r\n\r\n' >"$T/msg.eml"
"$IT_PY" - "$T/msg.eml" "$T/keys" >"$T/signed.eml" 2>"$T/sign.err" <<'PY'
import base64, subprocess, sys, dkim
msg = open(sys.argv[1], 'rb').read()
keys = sys.argv[2]
rsa = open(keys + '/r1.private', 'rb').read()
der = subprocess.run(['openssl', 'pkey', '-in', keys + '/e1.private',
    '-outform', 'DER'], check=True, capture_output=True).stdout
seed = base64.b64encode(der[-32:])
hdrs = [b'from', b'to', b'subject', b'date', b'message-id']
s_ed = dkim.sign(msg, b'e1', b'example.org', seed, include_headers=hdrs,
    signature_algorithm=b'ed25519-sha256')
s_rsa = dkim.sign(msg, b'r1', b'example.org', rsa, include_headers=hdrs,
    signature_algorithm=b'rsa-sha256')
sys.stdout.buffer.write(s_rsa + s_ed + msg)
PY
if [ -s "$T/signed.eml" ]; then
	it_pass "python3-dkim signs with openssl RSA-2048 and ed25519 keys"
	it_verify_both "own keys" "$T/signed.eml" "$T/keys/zone" \
	    rsa-sha256 ed25519-sha256
	sed 's/spaced/changed/' "$T/signed.eml" >"$T/altered.eml"
	expect_fail "own keys altered body" "$T/altered.eml" "$T/keys/zone"
	expect_fail "own keys wrong published keys" "$T/signed.eml" \
	    "$T/other/zone"
	: >"$T/empty.zone"
	expect_fail "own keys no published record" "$T/signed.eml" \
	    "$T/empty.zone"
else
	it_fail "python3-dkim signs with openssl RSA-2048 and ed25519 keys"
	cat "$T/sign.err"
fi

it_finish
