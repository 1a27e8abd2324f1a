#!/usr/bin/env bash
# milter.sh - outpost-milter through the real milter protocol (tests/miltc,
# which speaks to it as Postfix does), every signature checked by
# python3-dkim and Mail::DKIM; start-up refusals of bad keys; malformed
# messages; reload; TCP socket; protocol junk.
set -u
. "$(dirname "$0")/lib.sh"
it_init "milter-${OUTPOST_ENGINE:-native}"

MILTER=$IT_BUILD/milter/outpost-milter
MILTC=$IT_BUILD/tests/miltc
DATA=$IT_TOP/tests/data
K=$IT_T/keys
[ -x "$MILTER" ] && [ -x "$MILTC" ] || {
	it_fail "built outpost-milter and tests/miltc in $IT_BUILD"
	it_finish
	exit 1
}
it_keygen "$K" example.com s1 rsa || it_fail "make RSA-2048 test key"
it_keygen "$K" example.com e1 ed25519 || it_fail "make ed25519 test key"

SOCK=unix:$IT_T/milter.sock
CONF=$IT_T/outpost.conf
outpost_conf "$CONF" "$SOCK" "$K" example.com s1 e1
outpost_start "$CONF" "$SOCK" "$IT_T/milter.log" ||
	{ it_fail "outpost-milter starts"; it_finish; exit 1; }
MPID=$IT_LASTPID
it_pass "outpost-milter starts on a unix socket"
# the socket listens before the start-up line is logged
it_check "engine ${OUTPOST_ENGINE:-native} in use" \
    it_wait 5 grep -q "(engine ${OUTPOST_ENGINE:-native})" "$IT_T/milter.log"

# send - miltc with the given options; result line in $IT_T/res
send() {
	local out=$1
	shift
	"$MILTC" -s "${SOCKET:-$SOCK}" -o "$out" "$@" >"$IT_T/res" 2>&1
}

# 1. every test message from a trusted client: two signatures, both verify
for f in "$DATA"/*.eml; do
	n=$(basename "$f" .eml)
	case $n in no-from | two-from) continue ;; esac
	out=$IT_T/out-$n.eml
	if ! send "$out" -c 127.0.0.1 -i "Q$n" "$f"; then
		it_fail "$n: milter accepts ($(cat "$IT_T/res"))"
		continue
	fi
	it_check "$n: two DKIM-Signature fields" \
	    test "$(it_sig_count "$out")" -eq 2
	it_verify_both "$n" "$out" "$K/zone" rsa-sha256 ed25519-sha256
done

# 2. a big message (8 MiB) is streamed and verifies
big=$IT_T/big.eml
{
	printf 'From: alice@example.com\r\nTo: bob@example.net\r\n'
	printf 'Subject: big\r\n\r\n'
	yes 'The quick brown fox jumps over the lazy dog 0123456789 abcdefghij' |
	    head -c 8388608 | sed 's/$/\r/'
} >"$big"
send "$IT_T/out-big.eml" -c 127.0.0.1 -i Qbig "$big"
it_verify_both "8 MiB message" "$IT_T/out-big.eml" "$K/zone" \
    rsa-sha256 ed25519-sha256

# 3. who is signed
msg=$DATA/multipart.eml
send "$IT_T/o.eml" -c 203.0.113.5 -i Qstranger "$msg"
# Negotiated without a reply to MAIL, the milter lets the message through
# at end of message, untouched; an MTA without SMFIP_NR_MAIL gets accept.
it_check "untrusted client: passes" grep -Eq '^result: (accept|continue)' \
    "$IT_T/res"
it_check "untrusted client: not signed" test "$(it_sig_count "$IT_T/o.eml")" -eq 0
it_check "untrusted client: log says why" \
    grep -q 'Qstranger: dkim=skipped reason=not-trusted client=203.0.113.5' \
    "$IT_T/milter.log"
send "$IT_T/o.eml" -c 203.0.113.5 -a alice -i Qauth "$msg"
it_check "authenticated client elsewhere: signed" \
    test "$(it_sig_count "$IT_T/o.eml")" -eq 2
it_check "authenticated client: log line" \
    grep -q 'Qauth: dkim=signed .*trust=authenticated' "$IT_T/milter.log"
printf 'From: someone@elsewhere.org\r\nTo: bob@example.net\r\nSubject: x\r\n\r\nhi\r\n' >"$IT_T/foreign.eml"
send "$IT_T/o.eml" -c 127.0.0.1 -i Qforeign "$IT_T/foreign.eml"
it_check "foreign From domain: passes unsigned" \
    test "$(it_sig_count "$IT_T/o.eml")" -eq 0
it_check "foreign From domain: log says no-signing-rule" \
    grep -q 'Qforeign: dkim=skipped reason=no-signing-rule' "$IT_T/milter.log"

# 4. malformed messages pass unsigned (default) and are logged
for n in no-from two-from; do
	send "$IT_T/o.eml" -c 127.0.0.1 -i "Q$n" "$DATA/$n.eml"
	it_check "$n: passes (on_malformed=accept)" \
	    grep -q '^result: continue' "$IT_T/res"
	it_check "$n: not signed" test "$(it_sig_count "$IT_T/o.eml")" -eq 0
done
it_check "no-from: logged" grep -q 'Qno-from: dkim=skipped reason=no-from' \
    "$IT_T/milter.log"
it_check "two-from: logged" \
    grep -q 'Qtwo-from: dkim=skipped reason=several-from-fields' \
    "$IT_T/milter.log"

# 5. protocol junk and abrupt disconnects do not hurt it
"$IT_PY" - "$IT_T/milter.sock" <<'PY'
import os, socket, sys, struct
for i in range(200):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    if i % 3 == 0:
        s.send(os.urandom(i * 7))
    elif i % 3 == 1:
        s.send(struct.pack('>I', 0xfffffff0) + b'O')
    s.close()
PY
sleep 0.5
it_check "junk on the socket: milter still running" kill -0 "$MPID"
send "$IT_T/o.eml" -c 127.0.0.1 -i Qafter "$msg"
it_check "junk on the socket: next message signed" \
    test "$(it_sig_count "$IT_T/o.eml")" -eq 2

# 6. reload on SIGUSR1: a new selector is used; a broken file keeps the old
it_keygen "$K" example.com s2 rsa || it_fail "make second RSA key"
sed -i 's/selector = "s1"/selector = "s2"/; s/s1.private/s2.private/' "$CONF"
kill -USR1 "$MPID"
it_wait 10 grep -q 'configuration reloaded' "$IT_T/milter.log"
send "$IT_T/o.eml" -c 127.0.0.1 -i Qreload "$msg"
it_check "SIGUSR1: new key s2 in use" grep -q 's=s2;' "$IT_T/o.eml"
it_verify_both "after reload" "$IT_T/o.eml" "$K/zone" rsa-sha256 ed25519-sha256
echo 'dkim = { broken' >>"$CONF"
kill -USR1 "$MPID"
it_wait 10 grep -q 'reload failed, keeping' "$IT_T/milter.log"
it_check "broken reload: error names file and line" \
    grep -q "reload failed, keeping the running configuration: $CONF:[0-9]*:" \
    "$IT_T/milter.log"
send "$IT_T/o.eml" -c 127.0.0.1 -i Qkept "$msg"
it_check "broken reload: still signs with s2" grep -q 's=s2;' "$IT_T/o.eml"
it_check "milter alive after reloads" kill -0 "$MPID"

# 7. on_malformed = reject, on a TCP socket
PORT=$(it_free_port)
TSOCK=inet:$PORT@127.0.0.1
CONF2=$IT_T/outpost-tcp.conf
outpost_conf "$CONF2" "$TSOCK" "$K" example.com s1 e1
sed -i 's/^dkim = {/dkim = { on_malformed = "reject";/' "$CONF2"
outpost_start "$CONF2" "$TSOCK" "$IT_T/milter-tcp.log" ||
	it_fail "outpost-milter starts on a TCP socket"
SOCKET=$TSOCK send "$IT_T/o.eml" -c 127.0.0.1 -i Qtcp "$msg"
it_check "TCP socket: signed" test "$(it_sig_count "$IT_T/o.eml")" -eq 2
it_verify_both "TCP socket" "$IT_T/o.eml" "$K/zone" rsa-sha256 ed25519-sha256
SOCKET=$TSOCK send "$IT_T/o.eml" -c 127.0.0.1 -i Qrej "$DATA/two-from.eml"
it_check "on_malformed=reject: 550 5.7.1" grep -q '^result: reject 550 5.7.1' \
    "$IT_T/res"

# 8. RFC 8463 example keys sign the example message; both verifiers agree
R=$IT_TOP/tests/data/rfc8463
if [ -d "$R" ]; then
	RK=$IT_T/rfc8463
	mkdir -p "$RK"
	install -m 600 "$R/A1-rsa-private.pem" "$RK/test.private"
	install -m 600 "$R/A1-ed25519-private-seed.b64" "$RK/brisbane.private"
	RSOCK=unix:$IT_T/rfc.sock
	cat >"$IT_T/rfc.conf" <<EOF
milter = { socket = "$RSOCK"; engine = "${OUTPOST_ENGINE:-native}"; };
trusted = { networks = [ "127.0.0.1/32" ]; };
dkim = { keys = (
  { name = "r"; domain = "football.example.com"; selector = "test";
    file = "$RK/test.private"; },
  { name = "e"; domain = "football.example.com"; selector = "brisbane";
    algorithm = "ed25519-sha256"; file = "$RK/brisbane.private"; } );
  signing = ( { match = "football.example.com"; keys = [ "e", "r" ]; } ); };
EOF
	outpost_start "$IT_T/rfc.conf" "$RSOCK" "$IT_T/milter-rfc.log" ||
		it_fail "outpost-milter starts with the RFC 8463 keys"
	SOCKET=$RSOCK send "$IT_T/rfc-out.eml" -c 127.0.0.1 -i Qrfc \
	    "$R/A3-unsigned-message.eml"
	it_verify_both "RFC 8463 keys and records" "$IT_T/rfc-out.eml" \
	    "$R/A2-dns-records.zone" ed25519-sha256 rsa-sha256
else
	it_fail "RFC 8463 corpus at $R"
fi

# 9. bad keys are refused at start, naming the file
bad() {
	local what=$1 file=$2 alg=${3:-rsa-sha256} out=$IT_T/bad.out
	cat >"$IT_T/bad.conf" <<EOF
milter = { socket = "unix:$IT_T/bad.sock"; engine = "${OUTPOST_ENGINE:-native}"; };
dkim = { keys = ( { name = "k"; domain = "example.com"; selector = "b";
  algorithm = "$alg"; file = "$file"; } ); };
EOF
	timeout 10 "$MILTER" -f -c "$IT_T/bad.conf" >"$out" 2>&1
	local rc=$?
	it_check "refuses $what: exit 78" test "$rc" -eq 78
	it_check "refuses $what: error names the file" grep -qF "$file" "$out"
}
cp "$K/s1.private" "$IT_T/readable.private"
chmod 644 "$IT_T/readable.private"
bad "a world-readable key" "$IT_T/readable.private"
cp "$K/s1.private" "$IT_T/group.private"
chmod 640 "$IT_T/group.private"
bad "a group-readable key" "$IT_T/group.private"
echo "not a key" >"$IT_T/garbage.private"
chmod 600 "$IT_T/garbage.private"
bad "a malformed key" "$IT_T/garbage.private"
bad "a missing key" "$IT_T/missing.private"
install -m 600 "$DATA/keys/rsa768.private" "$IT_T/rsa768.private"
bad "RSA under 1024 bits" "$IT_T/rsa768.private"
bad "an RSA key declared ed25519" "$K/s1.private" ed25519-sha256
bad "an ed25519 key declared RSA" "$K/e1.private" rsa-sha256
"$MILTER" -n -c "$CONF2" >"$IT_T/n.out" 2>&1
it_check "-n on a good file: exit 0" test $? -eq 0
"$MILTER" -n -c "$IT_T/bad.conf" >"$IT_T/n.out" 2>&1
it_check "-n on a bad key: exit 78" test $? -eq 78
# inet:PORT without an address would listen on every interface: refused
sed 's/^milter = { socket = "[^"]*"/milter = { socket = "inet:8891"/' \
    "$CONF2" >"$IT_T/anyaddr.conf"
"$MILTER" -n -c "$IT_T/anyaddr.conf" >"$IT_T/n.out" 2>&1
it_check "-n on socket inet:PORT without an address: exit 78" test $? -eq 78
it_check "  the error names the file, the line and inet:8891@127.0.0.1" \
    grep -q "anyaddr.conf:1: .*\"inet:8891\" names no address: write \"inet:8891@127.0.0.1\"" \
    "$IT_T/n.out"
# What would stop the daemon at start is said by -n and check-config:
# an unknown log.facility, a milter.user that does not exist, a key that
# milter.user cannot read.
CTL=$IT_BUILD/tools/outpostctl
{ cat "$CONF2"; echo 'log = { facility = "mial"; };'; } >"$IT_T/fac.conf"
"$MILTER" -n -c "$IT_T/fac.conf" >"$IT_T/n.out" 2>&1
it_check "-n on log.facility \"mial\": exit 78" test $? -eq 78
it_check "  the error names the file and the line" \
    grep -q 'fac.conf:[0-9]*: .*"facility" "mial" is unknown' "$IT_T/n.out"
"$CTL" check-config -c "$IT_T/fac.conf" >"$IT_T/n.out" 2>&1
it_check "check-config on log.facility \"mial\": exit 78" test $? -eq 78
sed 's/^milter = { /milter = { user = "no-such-outpost-user"; /' "$CONF2" \
    >"$IT_T/nouser.conf"
"$MILTER" -n -c "$IT_T/nouser.conf" >"$IT_T/n.out" 2>&1
it_check "-n on a milter.user that does not exist: exit 78" test $? -eq 78
it_check "  the error names milter.user" \
    grep -q 'milter.user: no user "no-such-outpost-user"' "$IT_T/n.out"
"$CTL" check-config -c "$IT_T/nouser.conf" >"$IT_T/n.out" 2>&1
it_check "check-config on a milter.user that does not exist: exit 78" \
    test $? -eq 78
sed 's/^milter = { /milter = { user = "nobody"; /' "$CONF2" \
    >"$IT_T/nobody.conf"
"$MILTER" -n -c "$IT_T/nobody.conf" >"$IT_T/n.out" 2>&1
it_check "-n when milter.user cannot read the keys (root's, 0600): exit 78" \
    test $? -eq 78
it_check "  the error says which key and how to give it to the user" \
    grep -q 'milter.user "nobody" cannot read .*: chown nobody ' "$IT_T/n.out"
"$CTL" check-config -c "$IT_T/nobody.conf" >"$IT_T/n.out" 2>&1
it_check "check-config when milter.user cannot read the keys: exit 78" \
    test $? -eq 78
"$CTL" keygen -d example.com -s hint -a ed25519 -o "$IT_T/hint" \
    >"$IT_T/n.out" 2>&1
it_check "keygen as root says how to give the key to the milter's user" \
    grep -q "chown outpost $IT_T/hint/hint.private" "$IT_T/n.out"

it_check "milter survived everything" kill -0 "$MPID"
if grep -q 'ERROR: AddressSanitizer\|runtime error:' "$IT_T"/milter*.log; then
	it_fail "sanitizer reports in the milter logs"
	grep -h -A20 'ERROR: AddressSanitizer\|runtime error:' "$IT_T"/milter*.log | head -40
fi
it_finish
