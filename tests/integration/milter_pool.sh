#!/usr/bin/env bash
# milter_pool.sh - the native engine keeps its connection threads
#
# Postfix opens one milter connection per SMTP session; the native engine
# serves each with a worker thread that, once the connection ends, waits
# for the next one instead of ending (engine.c, ENGINE_IDLE_MAX 32).
# bench/miltload opens connections of one message each (-M 1):
#   - after 4 at a time, workers are left idle (the thread count stays
#     above what it was before any connection), and the next 200
#     connections are served by them: those threads are still there;
#   - after 48 at a time, at most 32 workers stay idle;
#   - every message is signed (miltload checks the signatures);
#   - SIGTERM with idle workers: the milter exits 0 within 5 s (idle
#     workers end at once, no grace period for them).
# Environment: OUTPOST_BUILD; MILTLOAD (default OUTPOST_BUILD's).
set -u
. "$(dirname "$0")/lib.sh"
it_init milter_pool
T=$IT_T

LOAD=${MILTLOAD:-$IT_BUILD/bench/miltload}
it_need "$IT_BUILD/milter/outpost-milter" "$LOAD"
it_keygen "$T/keys" example.com s1 rsa || it_setup_failed "RSA key"
it_keygen "$T/keys" example.com e1 ed25519 || it_setup_failed "ed25519 key"
SOCK=unix:$T/milter.sock
OUTPOST_ENGINE=native outpost_conf "$T/outpost.conf" "$SOCK" "$T/keys" \
    example.com s1 e1
# the test runs as root and connects itself: no socket group needed
sed -i 's/ socket_group = "postfix";//' "$T/outpost.conf"
outpost_start "$T/outpost.conf" "$SOCK" "$T/milter.log" ||
	it_setup_failed "start outpost-milter" "$T/milter.log"
MPID=$IT_LASTPID

tids() {
	ls "/proc/$MPID/task" | sort -n
}
# load CONNS COUNT - one message per connection; 0 when all were signed
load() {
	"$LOAD" -q -s "$SOCK" -c "$1" -n "$2" -t 60 -M 1 -e 2 -T 10000 \
	    >"$T/load.out" 2>&1 && grep -q ' errors=0 ' "$T/load.out"
}

sleep 0.5
base=$(tids | wc -l)
it_check "4 at a time, 100 connections: every message signed" load 4 100
sleep 0.3
after=$(tids)
idle=$(($(echo "$after" | wc -l) - base))
it_log "threads before any connection $base, idle workers after $idle"
it_check "workers stay after their connections end (idle: $idle)" \
    [ "$idle" -ge 1 ]
it_check "200 more connections: every message signed" load 4 200
sleep 0.3
kept=$(comm -12 <(echo "$after") <(tids) | wc -l)
it_check "the same threads served them (kept $kept of $((base + idle)))" \
    [ "$kept" -eq $((base + idle)) ]
it_check "48 at a time, 480 connections: every message signed" load 48 480
sleep 0.5
idle=$(($(tids | wc -l) - base))
it_check "at most 32 workers stay idle (idle: $idle)" \
    eval '[ "$idle" -ge 1 ] && [ "$idle" -le 32 ]'
t0=$(date +%s%N)
kill -TERM "$MPID"
it_wait 5 eval '! kill -0 '"$MPID"' 2>/dev/null'
wait "$MPID"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
it_check "SIGTERM with idle workers: exit 0 (got $rc) within 5 s (${ms} ms)" \
    eval '[ "$rc" -eq 0 ] && [ "$ms" -lt 5000 ]'
it_check "no AddressSanitizer report" \
    eval '! grep -q AddressSanitizer "$T/milter.log"'
# a failure at the stop shows why (the sanitizer's report, or the last lines)
if [ "$rc" -ne 0 ] || grep -q AddressSanitizer "$T/milter.log"; then
	sed -n '/=ERROR:/,$p' "$T/milter.log" | head -n 80 | sed 's/^/    /'
	grep -q '=ERROR:' "$T/milter.log" ||
		tail -n 40 "$T/milter.log" | sed 's/^/    /'
fi
it_finish
