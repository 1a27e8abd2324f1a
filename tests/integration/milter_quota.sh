#!/usr/bin/env bash
# tests/integration/milter_quota.sh - quotas in outpost-milter, with no
# policy daemon (milter.quotas, outpost-milter(8) QUOTAS).
#
# 1. Through the milter protocol (tests/miltc), with both engines (native
#    and libmilter), an LMDB store and limits keyed on the sender:
#    - one message to 30 recipients under 20 recipients/hour: 20 continue,
#      10 get 450 4.7.1 with the quota text; outpostctl quota show: 20;
#    - MAIL, 3 RCPT, ABORT: refunded (quota show: nothing);
#    - a message over the bytes limit (action reject): 550 5.7.1 at end of
#      message, its recipients refunded;
#    - non-SMTP mail (client port 0, as cleanup(8) sends for sendmail(1)):
#      never refused at RCPT, counted at end of message, held over quota;
#    - the store down (Redis on a closed port): 451 4.3.0 (on_error =
#      tempfail), accepted with on_error = accept;
#    - reload to milter.quotas = "non_smtpd": SMTP mail uncounted, RCPT
#      not even negotiated with a reply; "off": nothing counted.
# 2. A real private Postfix (smtpd_milters and non_smtpd_milters = the
#    milter, no policy daemon) relaying to smtp-sink:
#    - swaks, one message to 30 recipients: 20 accepted and delivered, 10
#      deferred with 450 4.7.1; quota show: 20;
#    - QUIT after RCPT: refunded; a message rejected at end of data (bytes
#      limit): its recipients refunded;
#    - sendmail(1) with 25 recipients: no RCPT refusal, the message is
#      held (Postfix's hold queue), nothing bounced or lost; with 5: sent
#      and counted;
#    - milter.quotas = "non_smtpd": SMTP mail is left to outpost-policyd
#      (uncounted here).
set -u
. "$(dirname "$0")/lib.sh"
it_init milter-quota
T=$IT_T

MILTER=$IT_BUILD/milter/outpost-milter
MILTC=$IT_BUILD/tests/miltc
CTL=$IT_BUILD/tools/outpostctl

fatal_setup() {
	it_setup_failed "$*"
}

for b in "$MILTER" "$MILTC" "$CTL"; do
	[ -x "$b" ] || fatal_setup "no $b (set OUTPOST_BUILD)"
done

# write_conf FILE SOCKET ENGINE QUOTAS STORE_LINE
write_conf() {
	cat >"$1" <<EOF
milter = { socket = "$2"; socket_group = "postfix"; engine = "$3"; quotas = "$4"; };
trusted = { networks = [ "127.0.0.1/32" ]; authenticated = true; };
$5
limits = (
  { name = "rcpt20"; key = "sender"; count = "recipients"; kind = "window";
    limit = 20; period = "1h"; },
  { name = "bytes"; key = "sender"; count = "bytes"; kind = "window";
    limit = 200000; period = "1h"; action = "reject"; }
);
EOF
}

# used CONF KEY LIMIT - the counter of KEY under LIMIT (it_quota_used)
used() {
	it_quota_used "$@"
}

# used_becomes CONF KEY LIMIT N - used reads N within 5 s
used_becomes() {
	local i
	for i in $(seq 50); do
		[ "$(used "$1" "$2" "$3")" -eq "$4" ] && return 0
		sleep 0.1
	done
	return 1
}

# rcpts PREFIX N - N "-r <PREFIXi@example.net>" options
rcpts() {
	local i
	for i in $(seq 1 "$2"); do
		printf -- '-r\n<%s%d@example.net>\n' "$1" "$i"
	done
}

MSG=$T/m.eml
printf 'From: alice@example.com\r\nTo: bob@example.net\r\nSubject: q\r\n\r\nhello\r\n' >"$MSG"
BIG=$T/big.eml
{
	printf 'From: alice@example.com\r\nTo: bob@example.net\r\nSubject: big\r\n\r\n'
	yes 'The quick brown fox jumps over the lazy dog 0123456789 abcdefghij' |
	    head -c 300000 | sed 's/$/\r/'
} >"$BIG"

# ---- 1. through the milter protocol ------------------------------------------

miltc_suite() {
	local eng=$1 d=$T/$1 conf sock log pid res
	mkdir -p "$d"
	conf=$d/outpost.conf
	sock=unix:$d/milter.sock
	log=$d/milter.log
	res=$d/res
	write_conf "$conf" "$sock" "$eng" all \
	    "store = { backend = \"lmdb\"; path = \"$d/quota.lmdb\"; };"
	outpost_start "$conf" "$sock" "$log" || {
		it_fail "$eng: outpost-milter starts with limits"
		return
	}
	pid=$IT_LASTPID
	it_pass "$eng: outpost-milter starts with limits"

	mapfile -t R < <(rcpts a 30)
	"$MILTC" -s "$sock" -f '<alice@example.com>' "${R[@]}" -i Qthirty \
	    -o "$d/out.eml" "$MSG" >"$res" 2>&1
	it_check "$eng: 30 recipients: 10 get 450 4.7.1" \
	    test "$(grep -c '^rcpt: .* tempfail 450 4.7.1 Quota exceeded for alice@example.com: 20/20 recipients per 1h' "$res")" -eq 10
	it_check "$eng: 30 recipients: the first 20 pass" \
	    eval '! grep -Eq "^rcpt: <a([1-9]|1[0-9]|20)@" '"$res"
	it_check "$eng: 30 recipients: message continues" \
	    grep -q '^result: continue' "$res"
	it_check "$eng: quota show: 20 recipients charged" \
	    test "$(used "$conf" alice@example.com rcpt20)" -eq 20
	it_check "$eng: refusals logged with the limit" \
	    grep -q 'Qthirty: quota=defer stage=RCPT limit=rcpt20 key=alice@example.com used=20 limit_value=20' "$log"

	mapfile -t R < <(rcpts b 3)
	"$MILTC" -s "$sock" -f '<bob@example.com>' "${R[@]}" --abort \
	    "$MSG" >"$res" 2>&1
	it_check "$eng: MAIL, 3 RCPT, ABORT: aborted" \
	    grep -q '^result: aborted' "$res"
	# ABORT has no reply: the milter may still be releasing when the
	# client is done, so give it a moment
	it_check "$eng: aborted transaction refunded" \
	    used_becomes "$conf" bob@example.com rcpt20 0

	mapfile -t R < <(rcpts c 3)
	"$MILTC" -s "$sock" -f '<carol@example.com>' "${R[@]}" -i Qbig \
	    -o "$d/out.eml" "$BIG" >"$res" 2>&1
	it_check "$eng: over the bytes limit: 550 5.7.1 at end of message" \
	    grep -q '^result: reject 550 5.7.1 Quota exceeded for carol@example.com' "$res"
	it_check "$eng: rejected message: recipients refunded" \
	    test "$(used "$conf" carol@example.com rcpt20)" -eq 0
	"$MILTC" -s "$sock" -f '<carol@example.com>' "${R[@]}" \
	    -o "$d/out.eml" "$MSG" >"$res" 2>&1
	it_check "$eng: a small message after it: counted (3 recipients)" \
	    test "$(used "$conf" carol@example.com rcpt20)" -eq 3

	# Non-SMTP (port 0): recipients at end of message, never refused.
	mapfile -t R < <(rcpts d 10)
	"$MILTC" -s "$sock" -p 0 -n localhost -f '<dave@example.com>' \
	    "${R[@]}" -o "$d/out.eml" "$MSG" >"$res" 2>&1
	it_check "$eng: non-SMTP, 10 recipients: passes, counted at EOM" \
	    eval 'grep -q "^result: continue" '"$res"' &&
	    test "$(used '"$conf"' dave@example.com rcpt20)" -eq 10'
	mapfile -t R < <(rcpts e 15)
	"$MILTC" -s "$sock" -p 0 -n localhost -f '<dave@example.com>' \
	    "${R[@]}" -o "$d/out.eml" "$MSG" >"$res" 2>&1
	it_check "$eng: non-SMTP over quota: no RCPT refused" \
	    eval '! grep -q "^rcpt: " '"$res"
	it_check "$eng: non-SMTP over quota: held (quarantine), accepted" \
	    eval 'grep -q "^quarantine: Quota exceeded for dave@example.com" '"$res"' &&
	    grep -q "^result: continue" '"$res"
	it_check "$eng: non-SMTP held message: not charged" \
	    test "$(used "$conf" dave@example.com rcpt20)" -eq 10

	# milter.quotas = non_smtpd (reload): SMTP mail is not counted.
	write_conf "$conf" "$sock" "$eng" non_smtpd \
	    "store = { backend = \"lmdb\"; path = \"$d/quota.lmdb\"; };"
	kill -USR1 "$pid"
	it_wait 10 grep -q 'configuration reloaded' "$log"
	mapfile -t R < <(rcpts f 30)
	"$MILTC" -s "$sock" -f '<frank@example.com>' "${R[@]}" -v \
	    -o "$d/out.eml" "$MSG" >"$res" 2>&1
	it_check "$eng: non_smtpd: SMTP mail, 30 recipients all pass" \
	    eval '! grep -q "^rcpt: " '"$res"' &&
	    grep -q "^result: continue" '"$res"
	it_check "$eng: non_smtpd: SMTP mail uncounted" \
	    test "$(used "$conf" frank@example.com rcpt20)" -eq 0
	mapfile -t R < <(rcpts g 4)
	"$MILTC" -s "$sock" -p 0 -f '<frank@example.com>' "${R[@]}" \
	    -o "$d/out.eml" "$MSG" >"$res" 2>&1
	it_check "$eng: non_smtpd: non-SMTP mail counted" \
	    test "$(used "$conf" frank@example.com rcpt20)" -eq 4

	# off: nothing counted at all
	write_conf "$conf" "$sock" "$eng" off \
	    "store = { backend = \"lmdb\"; path = \"$d/quota.lmdb\"; };"
	kill -USR1 "$pid"
	sleep 0.5
	"$MILTC" -s "$sock" -p 0 -f '<frank@example.com>' "${R[@]}" \
	    -o "$d/out.eml" "$MSG" >"$res" 2>&1
	it_check "$eng: off: nothing counted" \
	    test "$(used "$conf" frank@example.com rcpt20)" -eq 4
	it_check "$eng: milter still running" kill -0 "$pid"
	it_stop_pid "$pid"

	# The store down: Redis on a port nobody listens on.
	local dead
	dead=$(it_free_port)
	sock=unix:$d/milter-redis.sock
	write_conf "$conf" "$sock" "$eng" all \
	    "store = { backend = \"redis\"; url = \"redis://127.0.0.1:$dead/0\"; timeout = 300; on_error = \"tempfail\"; };"
	outpost_start "$conf" "$sock" "$log.redis" || {
		it_fail "$eng: starts with the store down"
		return
	}
	pid=$IT_LASTPID
	"$MILTC" -s "$sock" -f '<alice@example.com>' -r '<x@example.net>' \
	    -o "$d/out.eml" "$MSG" >"$res" 2>&1
	it_check "$eng: store down, on_error=tempfail: 451 4.3.0 at RCPT" \
	    grep -q '^rcpt: <x@example.net> tempfail 451 4.3.0' "$res"
	it_check "$eng: store down: logged" \
	    grep -q 'quota=error stage=RCPT .*action=tempfail' "$log.redis"
	it_stop_pid "$pid"
	sock=unix:$d/milter-redis2.sock
	write_conf "$conf" "$sock" "$eng" all \
	    "store = { backend = \"redis\"; url = \"redis://127.0.0.1:$dead/0\"; timeout = 300; on_error = \"accept\"; };"
	outpost_start "$conf" "$sock" "$log.redis2" || {
		it_fail "$eng: starts with the store down (accept)"
		return
	}
	pid=$IT_LASTPID
	"$MILTC" -s "$sock" -f '<alice@example.com>' -r '<x@example.net>' \
	    -o "$d/out.eml" "$MSG" >"$res" 2>&1
	it_check "$eng: store down, on_error=accept: accepted" \
	    eval '! grep -q "^rcpt: " '"$res"' &&
	    grep -q "^result: continue" '"$res"
	it_stop_pid "$pid"
	if grep -qE 'ERROR: AddressSanitizer|runtime error:' "$d"/milter.log*; then
		it_fail "$eng: milter log has no ASan/UBSan errors"
	else
		it_pass "$eng: milter log has no ASan/UBSan errors"
	fi
}

OUTPOST_ENGINE=native miltc_suite native
OUTPOST_ENGINE=libmilter miltc_suite libmilter

# ---- 2. behind a real Postfix, no policy daemon -----------------------------

it_need postfix smtp-sink swaks sendmail postqueue
it_need_root "private Postfix"

D=$T/pfm
mkdir -p "$D"
chmod 755 "$D"
CONF=$D/outpost.conf
SOCK=unix:$D/milter.sock
LOG=$D/milter.log
write_conf "$CONF" "$SOCK" native all \
    "store = { backend = \"lmdb\"; path = \"$D/quota.lmdb\"; };"
outpost_start "$CONF" "$SOCK" "$LOG" || fatal_setup "start outpost-milter"
MPID=$IT_LASTPID
SMTP_PORT=$(it_free_port)
SINK_PORT=$(it_free_port)
while [ "$SINK_PORT" = "$SMTP_PORT" ]; do
	SINK_PORT=$(it_free_port)
done
sink_start "$T/sink" "$SINK_PORT" || fatal_setup "start smtp-sink"
pf_setup "$T/postfix" "$SMTP_PORT" "$SINK_PORT" "$SOCK"
pf_start "$SMTP_PORT" || fatal_setup "start private postfix"

m30=$(it_new_msg "$T/msgs" thirty 'alice@example.com' 'thirty recipients')
printf '\r\nOne message, thirty recipients, twenty allowed.\r\n' >>"$m30"
swaks --server 127.0.0.1 --port "$SMTP_PORT" --helo client.outpost.test \
    --from alice@example.com --to "$(it_rcpt_list p 30)" --data "@$m30" \
    --timeout 30 >"$D/swaks30.log" 2>&1
it_check "postfix: 30 recipients: 10 deferred with 450 4.7.1" \
    test "$(grep -c '^<\*\* *450 4.7.1 .*Quota exceeded for alice@example.com: 20/20 recipients' "$D/swaks30.log")" -eq 10
it_check "postfix: 30 recipients: 20 accepted" \
    test "$(grep -c '^ *<- *250 2.1.5' "$D/swaks30.log")" -eq 20
it_check "postfix: the message is queued" \
    grep -q '250 2.0.0 Ok: queued' "$D/swaks30.log"
if raw=$(sink_wait "$(it_msg_tag "$m30")" 30); then
	it_pass "postfix: the message arrives at smtp-sink"
	it_wait 10 eval 'test "$(grep -c "to=<p[0-9]*@example.net>.*status=sent" "$IT_PF_DIR/maillog")" -ge 20' || true
	it_check "postfix: 20 recipients delivered" \
	    test "$(grep -c 'to=<p[0-9]*@example.net>.*status=sent' "$IT_PF_DIR/maillog")" -eq 20
else
	it_fail "postfix: the message arrives at smtp-sink"
fi
it_check "postfix: quota show: 20 recipients charged" \
    test "$(used "$CONF" alice@example.com rcpt20)" -eq 20

# QUIT after RCPT: Postfix aborts the milter transaction; refunded.
swaks --server 127.0.0.1 --port "$SMTP_PORT" --helo client.outpost.test \
    --from bob@example.com --to "$(it_rcpt_list q 5)" --quit-after RCPT \
    --timeout 30 >"$D/swaks-quit.log" 2>&1
it_check "postfix: QUIT after 5 RCPT: accepted at RCPT" \
    test "$(grep -c '^ *<- *250 2.1.5' "$D/swaks-quit.log")" -eq 5
it_wait 5 eval 'test "$(used "$CONF" bob@example.com rcpt20)" -eq 0' || true
it_check "postfix: QUIT after RCPT: refunded (quota show 0)" \
    test "$(used "$CONF" bob@example.com rcpt20)" -eq 0

# Rejected at end of data (bytes limit): its recipients are refunded.
mbig=$(it_new_msg "$T/msgs" big 'carol@example.com' 'too big')
tail -n +5 "$BIG" >>"$mbig"
swaks --server 127.0.0.1 --port "$SMTP_PORT" --helo client.outpost.test \
    --from carol@example.com --to "$(it_rcpt_list r 3)" --data "@$mbig" \
    --timeout 30 >"$D/swaks-big.log" 2>&1
it_check "postfix: over the bytes limit: 550 5.7.1 after DATA" \
    grep -q '^<\*\* *550 5.7.1 .*Quota exceeded for carol@example.com' "$D/swaks-big.log"
it_check "postfix: rejected message: recipients refunded" \
    test "$(used "$CONF" carol@example.com rcpt20)" -eq 0

# sendmail(1): non_smtpd_milters.  5 recipients: sent, counted.
mloc=$(it_new_msg "$T/msgs" local5 'dave@example.com' 'sendmail five')
printf '\r\nfive\r\n' >>"$mloc"
if tr -d '\r' <"$mloc" | sendmail -C "$IT_PF_DIR/etc" -f dave@example.com \
    $(it_rcpt_list s 5 | tr , ' '); then
	if sink_wait "$(it_msg_tag "$mloc")" 30 >/dev/null; then
		it_pass "sendmail(1), 5 recipients: delivered"
	else
		it_fail "sendmail(1), 5 recipients: delivered"
	fi
else
	it_fail "sendmail(1) accepts the 5-recipient message"
fi
it_check "sendmail(1): 5 recipients counted" \
    test "$(used "$CONF" dave@example.com rcpt20)" -eq 5

# 25 more: over quota.  No RCPT refusal (Postfix would call that a
# configuration error); the whole message goes to the hold queue.
mhold=$(it_new_msg "$T/msgs" local25 'dave@example.com' 'sendmail twentyfive')
printf '\r\ntwenty-five\r\n' >>"$mhold"
tr -d '\r' <"$mhold" | sendmail -C "$IT_PF_DIR/etc" -f dave@example.com \
    $(it_rcpt_list t 25 | tr , ' ')
it_wait 30 grep -q 'milter triggers HOLD action' "$IT_PF_DIR/maillog" || true
it_check "sendmail(1) over quota: held by Postfix (milter HOLD)" \
    grep -q 'milter triggers HOLD action' "$IT_PF_DIR/maillog"
it_check "sendmail(1) over quota: in the hold queue" \
    eval 'postqueue -c "$IT_PF_DIR/etc" -p | grep -Eq "^[0-9A-F]+!"'
it_check "sendmail(1) over quota: seen as non-SMTP by the milter" \
    grep -q 'quota=hold stage=EOM limit=rcpt20 key=dave@example.com .*non_smtp=yes' "$LOG"
it_check "sendmail(1): no RCPT refused (no configuration error)" \
    eval '! grep -qi "configuration error" "$IT_PF_DIR/maillog" &&
    ! grep -q "milter-reject: RCPT.*from=<dave@example.com>" "$IT_PF_DIR/maillog"'
it_check "sendmail(1) held: not charged" \
    test "$(used "$CONF" dave@example.com rcpt20)" -eq 5

# milter.quotas = non_smtpd: SMTP mail is outpost-policyd's.
write_conf "$CONF" "$SOCK" native non_smtpd \
    "store = { backend = \"lmdb\"; path = \"$D/quota.lmdb\"; };"
kill -USR1 "$MPID"
it_wait 10 grep -q 'configuration reloaded' "$LOG"
m30b=$(it_new_msg "$T/msgs" thirtyb 'erin@example.com' 'thirty, non_smtpd')
printf '\r\nnon_smtpd\r\n' >>"$m30b"
swaks --server 127.0.0.1 --port "$SMTP_PORT" --helo client.outpost.test \
    --from erin@example.com --to "$(it_rcpt_list u 30)" --data "@$m30b" \
    --timeout 30 >"$D/swaks30b.log" 2>&1
it_check "postfix, non_smtpd: 30 recipients all accepted" \
    test "$(grep -c '^ *<- *250 2.1.5' "$D/swaks30b.log")" -eq 30
it_check "postfix, non_smtpd: SMTP mail uncounted" \
    test "$(used "$CONF" erin@example.com rcpt20)" -eq 0
it_check "postfix: milter still running" kill -0 "$MPID"

if grep -qE 'ERROR: AddressSanitizer|runtime error:' "$LOG"; then
	it_fail "milter log has no ASan/UBSan errors"
else
	it_pass "milter log has no ASan/UBSan errors"
fi
if [ "$IT_FAILED" -ne 0 ]; then
	pf_log
	echo "---- milter log ----"
	cat "$LOG"
fi
it_finish
