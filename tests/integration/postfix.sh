#!/usr/bin/env bash
# tests/integration/postfix.sh - outpost-milter behind a real, private Postfix
#
# Starts a private Postfix instance (own config, queue and data directories
# in a temporary directory; smtpd on a free 127.0.0.1 port; every message
# relayed to an smtp-sink on another loopback port that keeps each message
# in a file) with outpost-milter in smtpd_milters, sends mail with swaks and
# checks what arrives:
#   - from a trusted client (127.0.0.1) with From: @example.com: signed
#     rsa-sha256 and ed25519-sha256, both verified by python3-dkim and by
#     Perl Mail::DKIM against the test keys' records;
#   - multipart, 8bit and long folded header messages, and a field named
#     with a ';' (left out of h=): the same;
#   - a From domain without a signing rule: unsigned;
#   - from an untrusted client (127.0.0.2): unsigned;
#   - AUTH PLAIN (Cyrus SASL, private sasldb) from 127.0.0.2: signed;
#   - submitted with sendmail(1) (non_smtpd_milters): signed;
#   - milter gone: Postfix tempfails (milter_default_action = tempfail).
# Prints PASS/FAIL per check, exits non-zero on any failure, and stops every
# process it started.  Needs root (Postfix), postfix, swaks, smtp-sink.
#
# Environment: OUTPOST_BUILD (default TOP/build); OUTPOST_IT_MILTER=opendkim
# runs the same checks against Debian's opendkim to prove the harness.

set -u
. "$(dirname "$0")/lib.sh"

it_init postfix
T=$IT_T
DOMAIN=example.com
RSA_SEL=s1
ED_SEL=e1
SOCK=unix:$T/milter/milter.sock
impl=${OUTPOST_IT_MILTER:-outpost}

# fatal_setup - a setup step failed: report it and stop
fatal_setup() {
	it_setup_failed "$*"
}

it_need postfix smtp-sink swaks openssl perl "$IT_PY"
it_need_root "private Postfix"

# Keys and their published records (the verifiers' "DNS").
it_keygen "$T/keys" "$DOMAIN" "$RSA_SEL" rsa || fatal_setup "RSA key"
it_keygen "$T/keys" "$DOMAIN" "$ED_SEL" ed25519 || fatal_setup "ed25519 key"
ZONE=$T/keys/zone
it_mail_dkim_lib >/dev/null || fatal_setup "fetch Mail::DKIM with ed25519"

SMTP_PORT=$(it_free_port)
SINK_PORT=$(it_free_port)
while [ "$SINK_PORT" = "$SMTP_PORT" ]; do
	SINK_PORT=$(it_free_port)
done
it_log "smtpd 127.0.0.1:$SMTP_PORT, smtp-sink 127.0.0.1:$SINK_PORT, milter $SOCK ($impl)"

mkdir -p "$T/milter"
chmod 755 "$T/milter"
case $impl in
opendkim)
	SOCK_ED=unix:$T/milter/milter-ed.sock
	opendkim_start "$T/milter" "$SOCK" "$SOCK_ED" "$T/keys" "$DOMAIN" \
	    "$RSA_SEL" "$ED_SEL" || fatal_setup "start opendkim"
	MILTER_LOG="$T/milter/opendkim-rsa.log $T/milter/opendkim-ed25519.log"
	SMTPD_MILTERS="$SOCK, $SOCK_ED"
	;;
*)
	outpost_conf "$T/milter/outpost.conf" "$SOCK" "$T/keys" "$DOMAIN" \
	    "$RSA_SEL" "$ED_SEL"
	MILTER_LOG=$T/milter/outpost-milter.log
	SMTPD_MILTERS=$SOCK
	outpost_start "$T/milter/outpost.conf" "$SOCK" "$MILTER_LOG" ||
	    fatal_setup "start outpost-milter"
	perm=$(stat -c '%a %G' "${SOCK#unix:}")
	it_check "the socket is mode 660, group postfix, as configured (got $perm)" \
	    [ "$perm" = "660 postfix" ]
	;;
esac
sink_start "$T/sink" "$SINK_PORT" || fatal_setup "start smtp-sink"
pf_setup "$T/postfix" "$SMTP_PORT" "$SINK_PORT" "$SMTPD_MILTERS"
SASL=0
if pf_enable_sasl alice 'alice-secret'; then
	SASL=1
else
	it_log "no saslpasswd2 (sasl2-bin): SMTP AUTH case skipped"
fi
pf_start "$SMTP_PORT" || fatal_setup "start private postfix"

# ---- messages ----------------------------------------------------------------

MSGS=$T/msgs
mkdir -p "$MSGS"
m_plain=$(it_new_msg "$MSGS" plain 'Alice <alice@example.com>' 'plain text from a trusted client')
it_crlf "$m_plain" <<'EOF'

Hello Bob,

this is a plain message.  It should be signed twice.

-- 
Alice
EOF

m_multi=$(it_new_msg "$MSGS" multipart 'alice@example.com' 'multipart/mixed with an attachment')
it_crlf "$m_multi" <<'EOF'
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="=-outpost-boundary"

This is a multi-part message in MIME format.

--=-outpost-boundary
Content-Type: text/plain; charset=us-ascii

The text part.

--=-outpost-boundary
Content-Type: application/octet-stream; name="data.bin"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="data.bin"

AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v
MDEyMzQ1Njc4OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5f
--=-outpost-boundary--
EOF

m_8bit=$(it_new_msg "$MSGS" 8bit 'Ålice <alice@example.com>' '=?UTF-8?Q?=C3=A9t=C3=A9_8bit_body?=')
it_crlf "$m_8bit" <<'EOF'
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Grüße aus Köln — ça marche, 日本語のテキスト.
Trailing spaces here:    
	tab-indented line
EOF

m_folded=$(it_new_msg "$MSGS" folded 'alice@example.com' 'a very long subject line that goes on and on
 and is folded over several lines, because header folding must survive
 canonicalization and relaying
	with a tab continuation too')
{
	printf 'Cc: '
	for i in $(seq 1 40); do
		printf 'recipient%02d@example.org' "$i"
		[ "$i" -lt 40 ] && printf ',\r\n    '
	done
	printf '\r\n'
	printf 'X-Long-Unfolded: %s\r\n' "$(printf 'x%.0s' $(seq 1 900))"
} >>"$m_folded"
# it_new_msg wrote the folded subject with LF only inside it: make it CRLF.
sed -i 's/\([^\r]\)$/\1\r/' "$m_folded"
it_crlf "$m_folded" <<'EOF'

Body of the folded-headers message.
EOF

m_other=$(it_new_msg "$MSGS" otherdomain 'carol@other.example' 'From domain without a signing rule')
it_crlf "$m_other" <<'EOF'

Not for us to sign.
EOF

m_untrusted=$(it_new_msg "$MSGS" untrusted 'alice@example.com' 'from an untrusted client address')
it_crlf "$m_untrusted" <<'EOF'

Sent from 127.0.0.2, which is not in trusted.networks.
EOF

# ---- checks --------------------------------------------------------------------

# deliver - send FILE from SRC, wait for it at the sink; print received copy
# usage: deliver NAME FILE SRC [USER PASSWORD]
# Sets GOT to the received message path.
deliver() {
	local name=$1 file=$2 src=$3 tag raw
	shift 3
	GOT=
	tag=$(it_msg_tag "$file")
	if ! it_send "$T/swaks-$name.log" "$(it_msg_from "$file")" \
	    bob@example.net "$file" "$SMTP_PORT" "$src" "$@"; then
		it_fail "$name: submitted from $src"
		tail -n 5 "$T/swaks-$name.log" | sed 's/^/    /'
		return 1
	fi
	it_pass "$name: submitted from $src"
	raw=$(sink_wait "$tag" 30) || {
		it_fail "$name: arrived at smtp-sink"
		return 1
	}
	it_pass "$name: arrived at smtp-sink"
	GOT=$T/got-$name.eml
	sink_message "$raw" "$GOT"
}

# expect_signed - message NAME from FILE arrives with both signatures valid
# usage: expect_signed NAME FILE [SRC [USER PASSWORD]]
expect_signed() {
	local name=$1 file=$2 src=${3:-127.0.0.1}
	shift 2
	[ $# -gt 0 ] && shift
	deliver "$name" "$file" "$src" "$@" || return
	local c
	c=$(it_sig_count "$GOT")
	if [ "$c" -eq 2 ]; then
		it_pass "$name: two DKIM-Signature fields"
	else
		it_fail "$name: two DKIM-Signature fields (got $c)"
	fi
	it_verify_both "$name" "$GOT" "$ZONE" rsa-sha256 ed25519-sha256
}

# expect_unsigned - message NAME from FILE arrives without a signature
expect_unsigned() {
	local name=$1 c
	deliver "$name" "$2" "${3:-127.0.0.1}" || return
	c=$(it_sig_count "$GOT")
	if [ "$c" -eq 0 ]; then
		it_pass "$name: arrives unsigned"
	else
		it_fail "$name: arrives unsigned (got $c DKIM-Signature fields)"
	fi
}

expect_signed plain "$m_plain"
expect_signed multipart "$m_multi"
expect_signed 8bit "$m_8bit"
expect_signed folded "$m_folded"
if [ "$impl" = outpost ]; then
	# RFC 5322 allows ';' in a field name; h= cannot list it: the field
	# is left out, the message signed (it was 451 on every retry).
	m_semi=$(it_new_msg "$MSGS" semicolon 'alice@example.com' 'a field named X-Odd;Name')
	it_crlf "$m_semi" <<'EOF'
X-Odd;Name: not in h=

Signed all the same.
EOF
	expect_signed semicolon "$m_semi"
fi
expect_unsigned otherdomain "$m_other"
if [ "$impl" = outpost ]; then
	# Postfix has a queue id by the header section: the log line names it.
	it_check "otherdomain: log line names the queue id" \
	    grep -Eq '^outpost-milter: info: [0-9A-F]{6,}: dkim=skipped reason=no-signing-rule' \
	    $MILTER_LOG
fi
expect_unsigned untrusted "$m_untrusted" 127.0.0.2
if [ $SASL -eq 1 ]; then
	# Untrusted address, but authenticated (trusted.authenticated = true).
	m_auth=$(it_new_msg "$MSGS" authenticated 'alice@example.com' 'SMTP AUTH from an untrusted address')
	it_crlf "$m_auth" <<'EOF'

Sent from 127.0.0.2 after AUTH PLAIN as alice: signed.
EOF
	expect_signed authenticated "$m_auth" 127.0.0.2 alice alice-secret
fi

# Local submission with sendmail(1): pickup -> cleanup -> non_smtpd_milters.
# Postfix presents it to the milter as coming from 127.0.0.1: signed.
m_local=$(it_new_msg "$MSGS" localsubmit 'alice@example.com' 'submitted with sendmail(1)')
it_crlf "$m_local" <<'EOF'

Submitted on the host with sendmail(1), not over SMTP.
EOF
if tr -d '\r' <"$m_local" | sendmail -C "$IT_PF_DIR/etc" \
    -f alice@example.com bob@example.net; then
	it_pass "localsubmit: sendmail(1) accepted it"
	if raw=$(sink_wait "$(it_msg_tag "$m_local")" 30); then
		it_pass "localsubmit: arrived at smtp-sink"
		sink_message "$raw" "$T/got-localsubmit.eml"
		it_check "localsubmit: two DKIM-Signature fields" \
		    test "$(it_sig_count "$T/got-localsubmit.eml")" -eq 2
		it_verify_both localsubmit "$T/got-localsubmit.eml" "$ZONE" \
		    rsa-sha256 ed25519-sha256
	else
		it_fail "localsubmit: arrived at smtp-sink"
	fi
else
	it_fail "localsubmit: sendmail(1) accepted it"
fi

# The milter gone: Postfix must tempfail, never pass mail unsigned.
for pid in "${IT_MILTER_PIDS[@]}"; do
	it_stop_pid "$pid"
done
m_down=$(it_new_msg "$MSGS" milterdown 'alice@example.com' 'milter is down')
it_crlf "$m_down" <<'EOF'

Must be refused with a temporary error.
EOF
if it_send "$T/swaks-down.log" alice@example.com bob@example.net "$m_down" \
    "$SMTP_PORT"; then
	it_fail "milter down: message tempfailed (it was accepted)"
elif grep -q '^<\** *4[0-9][0-9]' "$T/swaks-down.log"; then
	it_pass "milter down: message tempfailed"
else
	it_fail "milter down: message tempfailed (no 4xx reply)"
	tail -n 5 "$T/swaks-down.log" | sed 's/^/    /'
fi

# Under --enable-asan the milter reports memory and UB errors in its log.
if grep -qE 'ERROR: AddressSanitizer|runtime error:' $MILTER_LOG; then
	it_fail "milter log has no ASan/UBSan errors"
else
	it_pass "milter log has no ASan/UBSan errors"
fi

if [ "$IT_FAILED" -ne 0 ]; then
	pf_log
	echo "---- milter log ($impl) ----"
	cat $MILTER_LOG
	echo "---- end of milter log ----"
fi
it_finish
