#!/usr/bin/env bash
# quota_redis - the Redis quota store shared by processes: its own
# redis-server on a free loopback port (no persistence, in the test's
# directory), then the same concurrency and kill -9 runs as quota_lmdb.sh
# and outpostctl quota on it.  If redis-server cannot start, this FAILS.
#
# usage: tests/integration/quota_redis.sh   (OUTPOST_BUILD: the build dir)
. "$(dirname "$0")/lib.sh"

it_init quota_redis
STRESS=$IT_BUILD/tests/quotastress
CTL=$IT_BUILD/tools/outpostctl
N=1000
RUNS=${QUOTA_RUNS:-5}

if [ ! -x "$STRESS" ] || [ ! -x "$CTL" ]; then
	it_fail "built tests/quotastress and tools/outpostctl in $IT_BUILD"
	it_finish
	exit
fi

# redis_up - PING answered on 127.0.0.1:PORT
redis_up() {
	[ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ]
}

PORT=$(it_free_port)
if ! command -v redis-server >/dev/null; then
	it_fail "redis-server is installed"
	it_finish
	exit
fi
it_spawn "$IT_T/redis.log" redis-server --port "$PORT" --bind 127.0.0.1 \
    --save '' --appendonly no --daemonize no --dir "$IT_T"
if ! it_wait 10 redis_up "$PORT"; then
	cat "$IT_T/redis.log" >&2
	it_fail "redis-server starts on 127.0.0.1:$PORT"
	it_finish
	exit
fi
it_pass "redis-server starts on 127.0.0.1:$PORT"

# quota_conf - FILE with the Redis store and LIMITS (the limits list)
quota_conf() {
	cat >"$1" <<EOF
store = { backend = "redis"; url = "redis://127.0.0.1:$PORT/0";
          timeout = "2s"; };
limits = ( $2 );
EOF
}

# json_used - the "used" of limit LIMIT in a JSON array on stdin (or -1)
json_used() {
	"$IT_PY" -c '
import json, sys
rows = json.load(sys.stdin)
print(next((r["used"] for r in rows if r["limit"] == sys.argv[1]), -1))' "$1"
}

CONF=$IT_T/q.conf
quota_conf "$CONF" '
  { name = "conc"; key = "sasl_username"; count = "messages";
    kind = "window"; limit = '"$N"'; period = "1d"; },
  { name = "day"; key = "sasl_username"; count = "recipients";
    kind = "calendar"; limit = 100000; period = "day";
    timezone = "Europe/Berlin"; }'

# ---- concurrency: 2 processes x 32 threads, exactly N ----------------------
# (one more run, "resv", reserves and commits instead of admitting)
all_exact=1
for run in $(seq "$RUNS") resv; do
	mode=()
	[ "$run" = resv ] && mode=(-R)
	rm -f "$IT_T/go"
	it_spawn "$IT_T/p1.$run" timeout 300 "$STRESS" -c "$CONF" -k "run$run" \
	    -t 32 -n 1500 -g "$IT_T/go" "${mode[@]}"
	p1=$IT_LASTPID
	it_spawn "$IT_T/p2.$run" timeout 300 "$STRESS" -c "$CONF" -k "run$run" \
	    -t 32 -n 1500 -g "$IT_T/go" "${mode[@]}"
	p2=$IT_LASTPID
	sleep 0.3
	start=$(date +%s.%N)
	touch "$IT_T/go"
	wait "$p1"
	rc1=$?
	wait "$p2"
	rc2=$?
	secs=$(echo "$(date +%s.%N) - $start" | bc)
	a1=$(sed -n 's/^admitted \([0-9]*\) .*/\1/p' "$IT_T/p1.$run")
	a2=$(sed -n 's/^admitted \([0-9]*\) .*/\1/p' "$IT_T/p2.$run")
	total=$((${a1:-0} + ${a2:-0}))
	it_log "run $run: $a1 + $a2 = $total admitted of 3000 attempts" \
	    "in ${secs}s (exit $rc1 $rc2)"
	if [ "$rc1" -ne 0 ] || [ "$rc2" -ne 0 ] || [ "$total" -ne "$N" ]; then
		all_exact=0
		cat "$IT_T/p1.$run" "$IT_T/p2.$run" >&2
		it_fail "run $run: 2 processes x 32 threads admitted $total, want $N"
	fi
done
[ "$all_exact" = 1 ] &&
	it_pass "2 processes x 32 threads admit exactly $N on one key, $RUNS runs + 1 reserving"
used=$("$CTL" quota show run1 -c "$CONF" --json | json_used conc)
it_check "outpostctl quota show counts $N after the run (got $used)" \
    [ "$used" = "$N" ]
"$CTL" quota set run1 --limit conc 10 -c "$CONF" >/dev/null
used=$("$CTL" quota show run1 -c "$CONF" --json | json_used conc)
it_check "quota set run1 --limit conc 10 (got $used)" [ "$used" = 10 ]
"$CTL" quota reset run1 -c "$CONF" >/dev/null
used=$("$CTL" quota show run1 -c "$CONF" --json | json_used conc)
it_check "quota reset run1 (got $used)" [ "$used" = -1 ]
it_check "quota list --json parses" bash -c \
    '"$1" quota list -c "$2" --json | "$3" -c "import json,sys; json.load(sys.stdin)"' \
    _ "$CTL" "$CONF" "$IT_PY"

# ---- kill -9 a client mid-admissions -----------------------------------------
CCONF=$IT_T/crash.conf
quota_conf "$CCONF" '
  { name = "total"; key = "sasl_username"; count = "messages";
    kind = "window"; limit = 1000000000; period = "1d"; }'
expect=0
for round in 1 2; do
	mode=()
	[ "$round" = 2 ] && mode=(-R)
	out=$IT_T/crash.$round.out
	it_spawn "$out" "$STRESS" -C -c "$CCONF" -k crashkey -t 8 -s 120 \
	    "${mode[@]}"
	pid=$IT_LASTPID
	it_wait 60 bash -c "[ \$(grep -c '^seq ' '$out') -ge 300 ]"
	kill -9 "$pid"
	wait "$pid" 2>/dev/null
	grep -v '^seq ' "$out" >&2
	last=$(sed -n 's/^seq \([0-9]*\)$/\1/p' "$out" | tail -n 1)
	expect=$((expect + ${last:-0}))
	used=$(timeout 30 "$CTL" quota show crashkey -c "$CCONF" --json |
	    json_used total)
	it_log "crash $round ${mode[*]}: killed after seq $last; store" \
	    "holds $used, printed total $expect"
	it_check "crash $round ${mode[*]}: store holds every committed admission ($used >= $expect)" \
	    [ "${used:--1}" -ge "$expect" ]
	expect=$used
done

it_finish
