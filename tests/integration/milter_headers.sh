#!/usr/bin/env bash
# milter_headers.sh - header sections the signer cannot keep or name, sent to
# outpost-milter through the milter protocol (tests/miltc, as Postfix sends):
#   - 500,000 empty fields ("X:") from a trusted client: the milter's peak
#     RSS (VmHWM) grows by less than 16 MiB, and the message is refused with
#     552 5.3.4 (dkim.on_oversized = "reject", the default); the next
#     message is signed;
#   - 20 fields of 60,000 bytes (over 1 MiB): refused the same way;
#   - dkim.on_oversized = "accept": both pass unsigned;
#   - fields named "X-Odd;Name" and "List;Id" (RFC 5322 allows ';' in a
#     name, h= cannot carry it): signed by both signing engines, left out
#     of h=, and both verifiers accept the signatures.
set -u
. "$(dirname "$0")/lib.sh"
it_init milter-headers
T=$IT_T

MILTC=$IT_BUILD/tests/miltc
[ -x "$IT_BUILD/milter/outpost-milter" ] && [ -x "$MILTC" ] ||
	it_setup_failed "built outpost-milter and tests/miltc in $IT_BUILD"
it_keygen "$T/keys" example.com s1 rsa || it_setup_failed "RSA key"
it_keygen "$T/keys" example.com e1 ed25519 || it_setup_failed "ed25519 key"
ZONE=$T/keys/zone

# Two milters: the defaults (native signer), and later on_oversized =
# "accept" with the libopendkim signer.
SOCK=unix:$T/milter.sock
outpost_conf "$T/default.conf" "$SOCK" "$T/keys" example.com s1 e1
outpost_start "$T/default.conf" "$SOCK" "$T/milter.log" ||
	it_setup_failed "start outpost-milter" "$T/milter.log"
MPID=$IT_LASTPID

# send - miltc from a trusted client; the verdict in $T/res
# usage: send SOCKET QUEUEID MESSAGE OUT
send() {
	"$MILTC" -s "$1" -c 127.0.0.1 -i "$2" -f '<alice@example.com>' \
	    -r '<bob@example.net>' -t 30 -o "$4" "$3" >"$T/res" 2>&1
}

# hwm_kib - the peak resident set of process PID, in KiB
hwm_kib() {
	awk '$1 == "VmHWM:" { print $2 }' "/proc/$1/status"
}

printf 'From: alice@example.com\nTo: bob@example.net\nSubject: small\n\nhi\n' \
    >"$T/small.eml"
{
	printf 'From: alice@example.com\nTo: bob@example.net\nSubject: many\n'
	yes 'X:' | head -n 500000
	printf '\nbody\n'
} >"$T/many.eml"
{
	printf 'From: alice@example.com\nTo: bob@example.net\nSubject: big\n'
	v=$(head -c 60000 /dev/zero | tr '\0' 'x')
	for i in $(seq 1 20); do
		printf 'X-Big: %s\n' "$v"
	done
	printf '\nbody\n'
} >"$T/big.eml"

# ---- many fields, one huge field: bounded memory, 552 5.3.4 -------------------

send "$SOCK" Qwarm "$T/small.eml" "$T/warm.eml"
it_check "warm-up message signed" test "$(it_sig_count "$T/warm.eml")" -eq 2
before=$(hwm_kib "$MPID")
send "$SOCK" Qmany "$T/many.eml" "$T/many.out"
after=$(hwm_kib "$MPID")
it_log "milter VmHWM ${before} KiB before 500,000 fields, ${after} KiB after"
it_check "500,000 fields: refused with 552 5.3.4" \
    grep -q '^result: reject 552 5.3.4' "$T/res"
it_check "500,000 fields: peak RSS grew by less than 16 MiB (got $((after - before)) KiB)" \
    test $((after - before)) -lt 16384
it_check "500,000 fields: logged with the count" \
    grep -q 'Qmany: dkim=rejected reason=header-section-too-large fields=500003' \
    "$T/milter.log"
send "$SOCK" Qbig "$T/big.eml" "$T/big.out"
it_check "20 fields of 60,000 bytes: refused with 552 5.3.4" \
    grep -q '^result: reject 552 5.3.4' "$T/res"
send "$SOCK" Qnext "$T/small.eml" "$T/next.eml"
it_check "next message signed" test "$(it_sig_count "$T/next.eml")" -eq 2

SOCK2=unix:$T/milter2.sock
outpost_conf "$T/accept.conf" "$SOCK2" "$T/keys" example.com s1 e1
sed -i 's/^dkim = {/dkim = { on_oversized = "accept"; engine = "libopendkim";/' \
    "$T/accept.conf"
outpost_start "$T/accept.conf" "$SOCK2" "$T/milter2.log" ||
	it_setup_failed "start outpost-milter (on_oversized = accept)" \
	    "$T/milter2.log"
for m in many big; do
	send "$SOCK2" "Qa$m" "$T/$m.eml" "$T/a$m.out"
	it_check "on_oversized=accept, $m: passes" \
	    grep -q '^result: continue' "$T/res"
	it_check "on_oversized=accept, $m: unsigned" \
	    test "$(it_sig_count "$T/a$m.out")" -eq 0
done
it_check "on_oversized=accept: logged" \
    grep -q 'Qamany: dkim=skipped reason=header-section-too-large' \
    "$T/milter2.log"

# ---- ';' in a field name: signed, not listed in h= ------------------------------

for s in "$SOCK:native" "$SOCK2:libopendkim"; do
	eng=${s##*:}
	out=$T/semi-$eng.out
	send "${s%:*}" "Qsemi$eng" "$IT_TOP/tests/data/semicolon-name.eml" \
	    "$out"
	it_check "';' in a name, $eng signer: passes" \
	    grep -q '^result: continue' "$T/res"
	it_check "';' in a name, $eng signer: two signatures, no h= entry" \
	    eval '[ "$(it_sig_count "$out")" -eq 2 ] &&
	    ! it_sig_headers "$out" | tr -d " \t\r\n" |
	    grep -o ";h=[^;]*" | grep -qi "odd\\|list"'
	it_verify_both "';' in a name, $eng signer" "$out" "$ZONE" \
	    rsa-sha256 ed25519-sha256
done

it_check "milters survived" kill -0 "$MPID"
if grep -q 'ERROR: AddressSanitizer\|runtime error:' "$T"/milter*.log; then
	it_fail "sanitizer reports in the milter logs"
	grep -h -A20 'ERROR: AddressSanitizer\|runtime error:' "$T"/milter*.log |
	    head -n 40
fi
it_finish
