#!/usr/bin/env bash
# tests/integration/milter_bigmsg_rss.sh - outpost-milter streams the body:
# signing one message of 50 MiB through a real Postfix grows its memory by
# no more than 4 MiB (issue 14, "Memory").
#
# A private Postfix (tests/integration/lib.sh; message_size_limit raised to
# 60 MiB) with outpost-milter (RSA-2048 and ed25519) relays to smtp-sink.
# A small message first (the milter's first connection and signature:
# thread, key use), then smtp-source sends one message with 50 MiB of body.
# Checks: it is delivered whole; both its signatures verify with
# python3-dkim; the milter's peak RSS afterwards (VmHWM, /proc) is at most
# 4 MiB above its RSS before it (VmRSS): a milter that kept the body, or
# a growing part of it, would be 50 MiB above.  Under ASan the quarantine
# is turned off, so that freed buffers are not counted.
#
# Environment: OUTPOST_BUILD (default TOP/build), BIGMSG_MIB (default 50),
# BIGMSG_MAX_KIB (default 4096).
set -u
. "$(dirname "$0")/lib.sh"
it_init milter-bigmsg
T=$IT_T
MIB=${BIGMSG_MIB:-50}
MAX_KIB=${BIGMSG_MAX_KIB:-4096}

fatal_setup() {
	it_setup_failed "$*" "$T/milter.log"
}

it_need postfix smtp-sink smtp-source "$IT_PY" "$IT_BUILD/milter/outpost-milter"
it_need_root "private Postfix"

SMTP_PORT=$(it_free_port)
SINK_PORT=$(it_free_port)
while [ "$SINK_PORT" = "$SMTP_PORT" ]; do
	SINK_PORT=$(it_free_port)
done
SOCK=unix:$T/milter.sock

it_keygen "$T/keys" example.com s1 rsa || fatal_setup "RSA key"
it_keygen "$T/keys" example.com e1 ed25519 || fatal_setup "ed25519 key"
outpost_conf "$T/outpost.conf" "$SOCK" "$T/keys" example.com s1 e1
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0
outpost_start "$T/outpost.conf" "$SOCK" "$T/milter.log" ||
    fatal_setup "start outpost-milter"
MPID=$IT_LASTPID
sink_start "$T/sink" "$SINK_PORT" || fatal_setup "start smtp-sink"
pf_setup "$T/pf" "$SMTP_PORT" "$SINK_PORT" "$SOCK"
postconf -c "$T/pf/etc" -e "message_size_limit = $(((MIB + 10) * 1048576))" ||
    fatal_setup "postconf"
pf_start "$SMTP_PORT" || fatal_setup "start postfix"

# send_msg NAME BODY_BYTES - a message from alice@example.com through
# Postfix with smtp-source; waits until Postfix has delivered it; prints
# smtp-sink's file.  The body is base64, an attachment (it_attach_msg).
send_msg() {
	local f=$T/$1.txt tag=bigmsg-$$-$1
	it_attach_msg "$f" "$tag" "$2"
	smtp-source -4 -m 1 -F "$f" -f alice@example.com -t bob@example.net \
	    -M client.outpost.test "127.0.0.1:$SMTP_PORT" >"$T/$1.log" 2>&1 ||
	    { cat "$T/$1.log"; return 1; }
	# delivered: smtp-sink has the whole message
	it_wait 120 delivered "$tag" || return 1
	grep -lF "$tag" "$IT_SINK_DIR"/* | head -n 1
}

# delivered TAG - Postfix logged status=sent for the message TAG
delivered() {
	local qid
	qid=$(sed -n "s/.* \([0-9A-F]*\): message-id=<$1@example.com>.*/\1/p" \
	    "$IT_PF_DIR/maillog" | head -n 1)
	[ -n "$qid" ] && grep -q " $qid: .*status=sent" "$IT_PF_DIR/maillog"
}

small=$(send_msg small 2000) || fatal_setup "the small message is not delivered"
sink_message "$small" "$T/small.eml"
it_verify_py "$T/small.eml" "$T/keys/zone" >"$T/small.ver" 2>&1
it_check "small message: signed, python3-dkim verifies rsa and ed25519" \
    it_verify_algs "$T/small.ver" rsa-sha256 ed25519-sha256

RSS0=$(it_vm_kib "$MPID" VmRSS)
HWM0=$(it_vm_kib "$MPID" VmHWM)
t0=$(date +%s)
big=$(send_msg big $((MIB * 1048576))) || big=
it_log "the $MIB MiB message took $(($(date +%s) - t0)) s"
it_check "$MIB MiB message: delivered" [ -n "$big" ]
RSS1=$(it_vm_kib "$MPID" VmRSS)
HWM1=$(it_vm_kib "$MPID" VmHWM)
it_log "milter VmRSS before $RSS0 KiB (VmHWM $HWM0), after: VmRSS $RSS1 KiB, VmHWM $HWM1 KiB"
it_check "$MIB MiB message: the milter's peak RSS grew by $((HWM1 - RSS0)) KiB (at most $MAX_KIB)" \
    [ $((HWM1 - RSS0)) -le "$MAX_KIB" ]
if [ -n "$big" ]; then
	sink_message "$big" "$T/big.eml"
	it_check "$MIB MiB message: arrived whole" \
	    [ "$(stat -c %s "$T/big.eml")" -gt $((MIB * 1048576)) ]
	it_verify_py "$T/big.eml" "$T/keys/zone" >"$T/big.ver" 2>&1
	sed 's/^/    python3-dkim: /' "$T/big.ver"
	it_check "$MIB MiB message: python3-dkim verifies rsa and ed25519" \
	    it_verify_algs "$T/big.ver" rsa-sha256 ed25519-sha256
fi
it_check "milter still running" kill -0 "$MPID"
if grep -qE 'ERROR: AddressSanitizer|runtime error:' "$T/milter.log"; then
	it_fail "milter log has no ASan/UBSan errors"
else
	it_pass "milter log has no ASan/UBSan errors"
fi
[ "$IT_FAILED" -ne 0 ] && { pf_log | tail -n 30; tail -n 20 "$T/milter.log"; }
it_finish
