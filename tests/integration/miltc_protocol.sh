#!/usr/bin/env bash
# tests/integration/miltc_protocol.sh - the milter protocol, MTA side
#
# tests/miltc against tests/integration/fakemilter.py, a scripted milter
# that logs what it receives: what miltc offers (Postfix 3.7's OPTNEG),
# that it honours the milter's no-reply and skip flags and macro lists,
# sends headers as Postfix does (folded lines joined by "\n", one leading
# space removed unless SMFIP_HDR_LEADSPC), body chunks of at most 65535
# bytes, applies inserted, added, changed and deleted headers at the right
# places and a replaced body, and that every verdict and every protocol
# violation (oversized packet, unknown reply, malformed reply code,
# modification not negotiated or outside end of message, milter gone)
# ends in the documented exit code.
#
# Environment: OUTPOST_BUILD or MILTC as for miltc_opendkim.sh.

set -u
. "$(dirname "$0")/lib.sh"

MILTC=${MILTC:-$IT_BUILD/tests/miltc}
FAKE=$IT_TOP/tests/integration/fakemilter.py
it_init miltcproto
T=$IT_T

if [ ! -x "$MILTC" ]; then
	it_fail "miltc binary at $MILTC (set OUTPOST_BUILD or MILTC)"
	it_finish
	exit 1
fi

printf '%s\n' 'From: alice@example.com' 'To: bob@example.net' \
    'Subject: original' 'X-Drop: remove me' 'X-Folded: first' \
    $'\tsecond' ' third' '' 'body line 1' >"$T/msg.eml"
{
	printf 'From: alice@example.com\nSubject: big\n\n'
	for i in $(seq 1 3000); do
		printf 'line %05d of a body that spans several milter chunks\n' "$i"
	done
} >"$T/big.eml"

# run_fake - start the fake milter with SCENARIO, run miltc on it
# usage: run_fake SCENARIO MESSAGE [miltc options...]; sets RC, OUT, RES, LOG
run_fake() {
	local sc=$1 msg=$2 pid
	shift 2
	OUT=$T/$sc.out RES=$T/$sc.res LOG=$T/$sc.json
	rm -f "$T/$sc.sock" "$LOG"
	"$IT_PY" "$FAKE" "$T/$sc.sock" "$sc" "$LOG" >"$T/$sc.fake.log" 2>&1 &
	pid=$!
	IT_PIDS+=("$pid")
	it_wait 10 test -S "$T/$sc.sock" || it_log "fake milter $sc did not start"
	"$MILTC" -s "unix:$T/$sc.sock" -t 5 -a alice -i QID42 \
	    -f '<alice@example.com>' -o "$OUT" "$@" "$msg" >"$RES" 2>&1
	RC=$?
	it_wait 10 eval '! kill -0 '"$pid"' 2>/dev/null' || it_stop_pid "$pid"
	wait "$pid" 2>/dev/null
	if [ ! -f "$LOG" ]; then
		echo '{}' >"$LOG"
	fi
}

# jcheck - evaluate a Python expression over the fake milter's log "j"
jcheck() {
	"$IT_PY" -c 'import json, sys
j = json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)' "$LOG" "$1"
}

# expect - a check; on failure show miltc's output and the fake's log
expect() {
	local what=$1
	shift
	if "$@"; then
		it_pass "$what"
	else
		it_fail "$what"
		sed 's/^/    miltc: /' "$RES"
		sed 's/^/    fake: /' "$LOG" | head -n 60
	fi
}

# ---- modifications, no-reply flags, macro lists -----------------------------

run_fake mods "$T/msg.eml" -r '<bob@example.net>' -r '<carol@example.net>'
expect "mods: exit 0, result accept" \
    eval '[ $RC -eq 0 ] && grep -qx "result: accept" "$RES"'
expect "mods: quarantine reported" grep -qx 'quarantine: held' "$RES"
expect "offers Postfix 3.7's version 6, actions 0x1ff, protocol 0x1fffff" \
    jcheck 'j["offered"] == {"version": 6, "actions": 0x1ff, "protocol": 0x1fffff}'
expect "no HELO under SMFIP_NOHELO, helo macros still sent" \
    jcheck '"H" not in j["events"] and j["macros"].get("H") == {}'
expect "events in Postfix order, ABORT after the transaction, QUIT" \
    jcheck 'j["events"] == list("CMRRT") + ["L"] * 5 + list("NBEAQ")'
expect "milter's MAIL macro list replaces Postfix's" \
    jcheck 'j["macros"]["M"] == {"{auth_authen}": "alice", "{mail_addr}": "alice@example.com"}'
expect "milter's EOM macro list, {i} found for i" \
    jcheck 'j["macros"]["E"] == {"{i}": "QID42"}'
expect "Postfix's connect macros" \
    jcheck 'sorted(j["macros"]["C"]) == sorted(["j", "{daemon_name}", "{daemon_addr}", "v", "_"])'
expect "{rcpt_addr} of the last recipient" \
    jcheck 'j["macros"]["R"]["{rcpt_addr}"] == "carol@example.net"'
expect "headers: one leading space removed, folds joined by LF" \
    jcheck 'j["headers"] == [["From", "alice@example.com"], ["To", "bob@example.net"], ["Subject", "original"], ["X-Drop", "remove me"], ["X-Folded", "first\n\tsecond\n third"]]'
expect "body sent in CRLF form" jcheck 'j["body"] == "body line 1\r\n"'
printf '%s\r\n' 'X-Top: top' 'From: alice@example.com' 'X-Mid: mid' \
    'To: bob@example.net' 'Subject: changed' 'X-Folded: first' \
    $'\tsecond' ' third' 'X-End: end' '' 'replaced body' 'line 2' \
    >"$T/mods.want"
expect "header edits at the right places, body replaced, CRLF" \
    cmp -s "$OUT" "$T/mods.want"
[ -f "$OUT" ] && ! cmp -s "$OUT" "$T/mods.want" &&
    diff <(cat -A "$T/mods.want") <(cat -A "$OUT") | sed 's/^/    /'

# ---- HDR_LEADSPC ---------------------------------------------------------------

run_fake leadspc "$T/msg.eml"
expect "leadspc: header values keep their leading space" \
    jcheck 'j["headers"][0] == ["From", " alice@example.com"] and j["headers"][4][1] == " first\n\tsecond\n third"'
expect "leadspc: inserted value used as sent (its own space)" \
    eval '[ "$(head -n 1 "$OUT")" = $'"'"'X-Top: top\r'"'"' ]'
run_fake leadspc "$T/msg.eml" --no-leadspc
expect "--no-leadspc: a milter asking for it anyway is refused (exit 3)" \
    eval '[ $RC -eq 3 ] && grep -q "protocol flags" "$RES"'

# ---- recipients, skip, verdicts ------------------------------------------------

run_fake rcpt "$T/msg.eml" -r '<nobody@example.net>' -r '<bob@example.net>'
expect "rcpt: refused recipient reported, message goes on" \
    eval '[ $RC -eq 0 ] && grep -qx "rcpt: <nobody@example.net> reject 550 5.1.1 no such user" "$RES"'
expect "rcpt: DATA and EOM still sent" jcheck '"T" in j["events"] and "E" in j["events"]'

run_fake skip "$T/big.eml"
expect "skip: first chunk 65535 bytes, nothing after SMFIR_SKIP but EOM" \
    jcheck 'j["chunks"] == [65535] and j["events"][-3:] == ["E", "A", "Q"]'
expect "skip: exit 0" eval '[ $RC -eq 0 ]'
run_fake mods "$T/big.eml"
expect "body chunks of 65535 bytes, all of it" \
    jcheck 'all(n == 65535 for n in j["chunks"][:-1]) and len(j["chunks"]) == 3 and len(j["body"]) == sum(j["chunks"])'

run_fake reject "$T/msg.eml"
expect "reject at MAIL: exit 1, Postfix-style reply, no message" \
    eval '[ $RC -eq 1 ] && grep -qx "result: reject 550 5.7.1 go away" "$RES" && [ ! -s "$OUT" ]'
expect "reject at MAIL: ABORT then QUIT, no DATA" \
    jcheck 'j["events"] == ["C", "H", "M", "A", "Q"]'
run_fake tempfail "$T/msg.eml"
expect "tempfail at EOM: exit 2" \
    eval '[ $RC -eq 2 ] && grep -q "^result: tempfail 451 4.7.1" "$RES"'
run_fake discard "$T/msg.eml"
expect "discard at EOM: exit 4" \
    eval '[ $RC -eq 4 ] && grep -qx "result: discard" "$RES"'

# ---- protocol violations: exit 3, a reason, never a crash ----------------------

for case in "oversize:exceeds the" "garbage:unknown reply" \
    "badcode:malformed SMFIR_REPLYCODE" "unnegotiated:without negotiating" \
    "close:closed the connection" "modearly:only allowed at end of message"; do
	sc=${case%%:*}
	run_fake "$sc" "$T/msg.eml"
	expect "$sc: exit 3 with \"${case#*:}\"" \
	    eval '[ $RC -eq 3 ] && grep -q "${case#*:}" "$RES"'
done

it_finish
