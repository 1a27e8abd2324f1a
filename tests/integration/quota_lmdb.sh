#!/usr/bin/env bash
# quota_lmdb - the LMDB quota store shared by processes, under kill -9, and
# outpostctl quota (show, list, reset, set) on it.
#
# Concurrency: 2 processes x 32 threads of tests/quotastress admit one unit
# each on one key limited to N=1000 (3000 attempts): exactly N admitted, 5
# runs.  Crash: quotastress -C prints each committed admission's sequence
# number; kill -9 it mid-admissions (plain and with reservations), then the
# file opens (mdb_stat, outpostctl) and holds at least the last number
# printed; a new process counts on from there.
#
# usage: tests/integration/quota_lmdb.sh   (OUTPOST_BUILD: the build dir)
. "$(dirname "$0")/lib.sh"

it_init quota_lmdb
STRESS=$IT_BUILD/tests/quotastress
CTL=$IT_BUILD/tools/outpostctl
N=1000
RUNS=${QUOTA_RUNS:-5}

if [ ! -x "$STRESS" ] || [ ! -x "$CTL" ]; then
	it_fail "built tests/quotastress and tools/outpostctl in $IT_BUILD"
	it_finish
	exit
fi

# quota_conf - write a config with the store at PATH
# usage: quota_conf FILE STORE_PATH
quota_conf() {
	cat >"$1" <<EOF
store = { backend = "lmdb"; path = "$2"; map_size = "64m"; };
limits = (
  { name = "conc"; key = "sasl_username"; count = "messages";
    kind = "window"; limit = $N; period = "1d"; },
  { name = "day"; key = "sasl_username"; count = "recipients";
    kind = "calendar"; limit = 100000; period = "day";
    timezone = "Europe/Berlin"; }
);
EOF
}

# crash_conf - one large limit, for the crash runs
crash_conf() {
	cat >"$1" <<EOF
store = { backend = "lmdb"; path = "$2"; map_size = "64m"; };
limits = (
  { name = "total"; key = "sasl_username"; count = "messages";
    kind = "window"; limit = 1000000000; period = "1d"; }
);
EOF
}

# json_ok - stdin parses as JSON
json_ok() {
	"$IT_PY" -c 'import json,sys; json.load(sys.stdin)'
}

# json_used - the "used" of limit LIMIT in a JSON array on stdin (or -1)
json_used() {
	"$IT_PY" -c '
import json, sys
rows = json.load(sys.stdin)
print(next((r["used"] for r in rows if r["limit"] == sys.argv[1]), -1))' "$1"
}

# both_eq - A = B and C = D
both_eq() {
	[ "$1" = "$2" ] && [ "$3" = "$4" ]
}

# mdb_opens - LMDB's own mdb_stat opens FILE and finds its counters
mdb_opens() {
	timeout 30 mdb_stat -n -s counters "$1" >"$IT_T/mdb_stat.out" 2>&1 &&
	    grep -q "Entries: [1-9]" "$IT_T/mdb_stat.out" ||
	    { cat "$IT_T/mdb_stat.out" >&2; return 1; }
}

# json_len - the length of the JSON array on stdin
json_len() {
	"$IT_PY" -c 'import json,sys; print(len(json.load(sys.stdin)))'
}

CONF=$IT_T/q.conf
DB=$IT_T/quota.lmdb
quota_conf "$CONF" "$DB"

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
it_check "the store file is mode 0600" \
    [ "$(stat -c %a "$DB")" = 600 ]

# ---- outpostctl quota --------------------------------------------------------
out=$("$CTL" quota show run1 -c "$CONF")
echo "$out" | sed 's/^/    /'
it_check "quota show: a table with a conc row for run1 at $N/$N" \
    grep -Eq "^conc +run1 +$N +$N +1d +[0-9]" <<<"$out"
it_check "quota show: header LIMIT KEY USED LIMIT PERIOD RETRY-AFTER" \
    grep -Eq "^LIMIT +KEY +USED +LIMIT +PERIOD +RETRY-AFTER$" <<<"$out"
for args in "show run1" "list" "list --top 3" "list --limit conc" \
    "show nobody"; do
	# shellcheck disable=SC2086
	it_check "quota $args --json parses" \
	    bash -c '"$1" quota $2 -c "$3" --json | "$4" -c "import json,sys; json.load(sys.stdin)"' \
	    _ "$CTL" "$args" "$CONF" "$IT_PY"
done
n=$("$CTL" quota list -c "$CONF" --json | json_len)
it_check "quota list: $((RUNS + 1)) keys x 2 limits (got $n)" \
    [ "$n" = $(((RUNS + 1) * 2)) ]
n=$("$CTL" quota list --limit conc -c "$CONF" --json | json_len)
it_check "quota list --limit conc: $((RUNS + 1)) rows (got $n)" \
    [ "$n" = $((RUNS + 1)) ]
n=$("$CTL" quota list --top 3 -c "$CONF" --json | json_len)
it_check "quota list --top 3: 3 rows (got $n)" [ "$n" = 3 ]
"$CTL" quota set run1 --limit conc 10 -c "$CONF" >/dev/null
used=$("$CTL" quota show run1 -c "$CONF" --json | json_used conc)
it_check "quota set run1 --limit conc 10: show says 10 (got $used)" \
    [ "$used" = 10 ]
"$STRESS" -c "$CONF" -k run1 -n 5 >/dev/null
used=$("$CTL" quota show run1 -c "$CONF" --json | json_used conc)
it_check "admissions count on from a set value: 15 (got $used)" \
    [ "$used" = 15 ]
"$CTL" quota set newkey --limit day 42 -c "$CONF" >/dev/null
used=$("$CTL" quota show newkey -c "$CONF" --json | json_used day)
it_check "quota set of a calendar counter on a new key (got $used)" \
    [ "$used" = 42 ]
"$CTL" quota reset run2 --limit conc -c "$CONF" >/dev/null
used=$("$CTL" quota show run2 -c "$CONF" --json | json_used conc)
dayused=$("$CTL" quota show run2 -c "$CONF" --json | json_used day)
it_check "quota reset run2 --limit conc clears conc only ($used, $dayused)" \
    both_eq "$used" -1 "$dayused" "$N"
out=$("$CTL" quota reset run3 -c "$CONF")
it_check "quota reset run3 says so" grep -q "run3: counters reset" <<<"$out"
it_check "quota reset run3 clears every limit" \
    [ "$("$CTL" quota show run3 -c "$CONF" --json | json_len)" = 0 ]
it_check "quota show of a reset key: no counters in use" \
    grep -q "run3: no counters in use" <<<"$("$CTL" quota show run3 -c "$CONF")"
a=$("$STRESS" -c "$CONF" -k run3 -t 4 -n 1200 | sed -n 's/^admitted \([0-9]*\) .*/\1/p')
it_check "a reset key admits $N again (got $a)" [ "$a" = "$N" ]
"$CTL" quota reset run1 --limit nosuch -c "$CONF" >/dev/null 2>&1
rc=$?
it_check "quota reset --limit nosuch: exit 64 (got $rc)" [ $rc = 64 ]
"$CTL" quota set run1 --limit conc -c "$CONF" >/dev/null 2>&1
rc=$?
it_check "quota set without a value: exit 64 (got $rc)" [ $rc = 64 ]
"$CTL" quota show run1 -c "$IT_T/missing.conf" >/dev/null 2>&1
rc=$?
it_check "quota show with a missing config: exit 78 (got $rc)" [ $rc = 78 ]
it_check "check-config still loads the quota config" \
    bash -c '"$1" check-config -c "$2" | grep -q ": OK"' _ "$CTL" "$CONF"

# ---- crash: kill -9 mid-admissions -------------------------------------------
CCONF=$IT_T/crash.conf
CDB=$IT_T/crash.lmdb
crash_conf "$CCONF" "$CDB"
expect=0
for round in 1 2 3 4; do
	mode=()
	[ $((round % 2)) = 0 ] && mode=(-R)
	out=$IT_T/crash.$round.out
	# (it_spawn: stdout and stderr into one file; only "seq N" lines
	# unless something fails)
	it_spawn "$out" "$STRESS" -C -c "$CCONF" -k crashkey -t 8 -s 120 \
	    "${mode[@]}"
	pid=$IT_LASTPID
	it_wait 60 bash -c "[ \$(grep -c '^seq ' '$out') -ge $((round * 150)) ]"
	kill -9 "$pid"
	wait "$pid" 2>/dev/null
	grep -v '^seq ' "$out" >&2
	last=$(sed -n 's/^seq \([0-9]*\)$/\1/p' "$out" | tail -n 1)
	expect=$((expect + ${last:-0}))
	it_log "crash $round ${mode[*]}: killed after seq $last"
	it_check "crash $round: mdb_stat opens the file and its counters" \
	    mdb_opens "$CDB"
	used=$(timeout 30 "$CTL" quota show crashkey -c "$CCONF" --json |
	    json_used total)
	it_log "crash $round: store holds $used, printed total $expect"
	it_check "crash $round ${mode[*]}: store holds every committed admission ($used >= $expect)" \
	    [ "${used:--1}" -ge "$expect" ]
	# nothing printed was lost, and nothing more than one in-flight
	# admission per thread was committed unprinted
	it_check "crash $round: at most 8 unprinted commits ($used - $expect)" \
	    [ "$((used - expect))" -le 8 ]
	expect=$used
done
# a new process after the crashes (the writer lock of a killed writer is
# recovered, stale reader slots cleared) counts on from there
a=$(timeout 60 "$STRESS" -c "$CCONF" -k crashkey -t 4 -n 100 |
    sed -n 's/^admitted \([0-9]*\) .*/\1/p')
used=$("$CTL" quota show crashkey -c "$CCONF" --json | json_used total)
it_check "after the crashes a new process admits 100 ($a) and the count goes on ($used = $expect + 100)" \
    both_eq "$a" 100 "$used" $((expect + 100))

# ---- counters survive a restart ----------------------------------------------
"$STRESS" -c "$CONF" -k restart -n 7 >/dev/null
"$STRESS" -c "$CONF" -k restart -n 5 >/dev/null
used=$("$CTL" quota show restart -c "$CONF" --json | json_used conc)
it_check "counters survive a restart: 7 + 5 = 12 (got $used)" [ "$used" = 12 ]

it_finish
