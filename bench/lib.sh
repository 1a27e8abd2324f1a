# bench/lib.sh - shell helpers shared by the bench/ scripts
#
# Sourced by bash scripts (bench/run, bench/policy-run, bench/postfix-run,
# bench/memory-run); not a benchmark itself.  It sources
# tests/integration/lib.sh for what the benchmarks share with the tests
# (a private Postfix instance, smtp-sink, DKIM keys, processes, ports) and
# adds what only the benchmarks need: starting a daemon and waiting for its
# socket, CPU time of a process tree and of the machine, Debian's postfwd
# and policyd-rate-limit unpacked from their packages, the machine facts,
# and one section of bench/RESULTS.md replaced in place.
#
# The caller owns a temporary directory T and the array PIDS: start_milter
# appends every process it starts to PIDS, and cleanup (the caller's EXIT
# trap) stops them and removes T.  Nothing here installs a package or touches a
# system service.

BENCH_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$BENCH_LIB_DIR/../tests/integration/lib.sh"

# log - a progress line on stderr
log() {
	echo "bench: $*" >&2
}

# die - a setup failure: the message, exit 2
die() {
	log "$*"
	exit 2
}

# stop_pid - TERM a process we started, KILL it after 5 s
stop_pid() {
	it_stop_pid "$1"
}

# free_port - a TCP port free on 127.0.0.1 right now
free_port() {
	it_free_port
}

# wait_port - true once something listens on 127.0.0.1:PORT (10 s at most)
wait_port() {
	it_wait 10 it_port_open "$1"
}

# sock_ready - true when a unix:PATH or inet:PORT@HOST socket accepts
sock_ready() {
	case $1 in
	unix:*) [ -S "${1#unix:}" ] ;;
	inet:*)
		local p=${1#inet:}
		it_port_open "${p%@*}"
		;;
	esac
}

# start_milter - start CMD... in the background; wait for SOCKET
# usage: start_milter NAME SOCKET LOG CMD...; sets MPID; 1 if it failed
# (any daemon with a socket: milters, outpost-policyd, opendkim)
start_milter() {
	local name=$1 sock=$2 logf=$3 i
	shift 3
	# A socket file left by an earlier daemon would look ready at once.
	case $sock in unix:*) rm -f "${sock#unix:}" ;; esac
	"$@" </dev/null >"$logf" 2>&1 &
	MPID=$!
	PIDS+=("$MPID")
	for i in $(seq 100); do
		if ! kill -0 "$MPID" 2>/dev/null; then
			log "$name exited at start:"
			sed 's/^/    /' "$logf" >&2
			return 1
		fi
		sock_ready "$sock" && return 0
		sleep 0.1
	done
	log "$name did not open $sock within 10 s:"
	sed 's/^/    /' "$logf" >&2
	stop_pid "$MPID"
	return 1
}

# cleanup - the bench scripts' EXIT trap: runs the script's cleanup_more
# if it has one, stops every process in PIDS, removes the temporary
# directory T (unless BENCH_KEEP=1); exits with the script's status
cleanup() {
	local rc=$? pid
	trap - EXIT INT TERM
	declare -F cleanup_more >/dev/null && cleanup_more
	for pid in "${PIDS[@]}"; do
		stop_pid "$pid"
	done
	if [ -n "${T:-}" ] && [ -d "$T" ]; then
		if [ "${BENCH_KEEP:-0}" = 1 ]; then
			log "kept $T"
		else
			rm -rf "$T"
		fi
	fi
	exit $rc
}

# machine_cpu - "TOTAL BUSY" jiffies of the whole machine (/proc/stat)
machine_cpu() {
	awk '/^cpu /{t = 0; for (i = 2; i <= NF; i++) t += $i;
	    print t, t - $5 - $6}' /proc/stat
}

# tree_cpu - jiffies used so far by the processes PID... and all their
# descendants, living or reaped (utime+stime+cutime+cstime of each: a
# child that exited and was waited for is in its parent's cutime/cstime)
tree_cpu() {
	ps -e -o pid=,ppid= | awk -v roots="$*" '
	    BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) in_[r[i]] = 1 }
	    { par[$1] = $2 }
	    END {
		do {
			more = 0
			for (p in par)
				if (!(p in in_) && (par[p] in in_)) {
					in_[p] = 1
					more = 1
				}
		} while (more)
		for (p in in_)
			print p
	    }' | while read -r p; do
		# comm (field 2) has no spaces in the processes we measure
		awk '{ print $14 + $15 + $16 + $17 }' "/proc/$p/stat" 2>/dev/null
	done | awk '{ s += $1 } END { print s + 0 }'
}

# bench_debs ROOT - Debian 12's postfwd and policyd-rate-limit (with the
# Perl modules postfwd needs), fetched once with apt-get download into
# BENCH_DEBS (default /var/tmp/outpost-cache/debs) and unpacked with
# dpkg-deb -x under ROOT; nothing is installed.  1 when a package is
# missing.
bench_debs() {
	local root=$1 debs=${BENCH_DEBS:-/var/tmp/outpost-cache/debs} p f
	mkdir -p "$debs" "$root"
	for p in postfwd policyd-rate-limit libnet-server-perl \
	    libio-multiplex-perl; do
		ls "$debs/${p}"_*.deb >/dev/null 2>&1 ||
		    (cd "$debs" && apt-get download "$p" >/dev/null 2>&1)
		ls "$debs/${p}"_*.deb >/dev/null 2>&1 || {
			log "cannot fetch $p with apt-get download"
			return 1
		}
	done
	for f in "$debs"/*.deb; do
		dpkg-deb -x "$f" "$root" || return 1
	done
}

# postfwd_start ROOT RULES PORT PIDFILE LOG - postfwd 1.35 from ROOT
# (bench_debs) on 127.0.0.1:PORT, daemonized as nobody; 1 if it does not
# listen within 10 s.  Stop it with the pid in PIDFILE.
postfwd_start() {
	local root=$1
	perl -T -I "$root/usr/share/perl5" "$root/usr/sbin/postfwd1" -d \
	    -f "$2" -i 127.0.0.1 -p "$3" -n -c 0 --norulelog \
	    --pidfile "$4" -u nobody -g nogroup >"$5" 2>&1
	wait_port "$3"
}

# prl_conf DIR PORT - a policyd-rate-limit config DIR/prl.yaml: limit by
# sender, sqlite in DIR, 127.0.0.1:PORT, a limit nothing reaches
prl_conf() {
	local dir=$1
	mkdir -p "$dir"
	chown nobody:nogroup "$dir"
	cat >"$dir/prl.yaml" <<EOC
debug: False
user: "nobody"
group: "nogroup"
pidfile: "$dir/prl.pid"
sqlite_config:
    database: "$dir/db.sqlite3"
backend: 0
SOCKET: ["127.0.0.1", $2]
limits:
    - [1000000000, 3600]
limits_by_id: {}
limit_by_sasl: False
limit_by_sender: True
limit_by_ip: False
limited_networks: []
success_action: "dunno"
fail_action: "defer_if_permit Rate limit reach, retry later"
db_error_action: "dunno"
report: False
delay_to_close: 300
EOC
}

# prl_cmd ROOT DIR - the command line of policyd-rate-limit from ROOT on
# DIR/prl.yaml, in the foreground (prefix it with env PYTHONPATH=...)
prl_cmd() {
	echo env "PYTHONPATH=$1/usr/lib/python3/dist-packages" /usr/bin/python3 \
	    "$1/usr/bin/policyd-rate-limit" -f "$2/prl.yaml"
}

# bench_machine - one line of machine facts: CPUs, kernel, OS, OpenSSL
bench_machine() {
	echo "$(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' \
	    /proc/cpuinfo | head -n 1)), $(uname -sr), $(. /etc/os-release &&
	    echo "$PRETTY_NAME"), $(openssl version | cut -d' ' -f1-2)"
}

# bench_commit - the short commit of the tree, "(with uncommitted
# changes)" when files other than bench/RESULTS.md differ
bench_commit() {
	local top=$BENCH_LIB_DIR/.. c
	c=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
	git -C "$top" status --porcelain -uno -- . ':!bench/RESULTS.md' \
	    2>/dev/null | grep -q . && c="$c (with uncommitted changes)"
	echo "$c"
}

# bench_section FILE SECTION NEW - put the file NEW into FILE as the
# section that starts with the line "SECTION" (e.g. "## Memory"): it
# replaces that section where it is (up to the next "## " line), or goes
# at the end
bench_section() {
	/usr/bin/python3 - "$1" "$2" "$3" <<'EOF'
import os, sys
out, mark = sys.argv[1], sys.argv[2] + '\n'
new = open(sys.argv[3]).read().rstrip('\n') + '\n'
text = open(out).read() if os.path.exists(out) else ''
i = 0 if text.startswith(mark) else text.find('\n' + mark)
if i >= 0:
    start = i if i == 0 else i + 1
    j = text.find('\n## ', start + len(mark) - 1)
    text = text[:start] + new + ('\n' + text[j + 1:] if j >= 0 else '')
else:
    text = (text.rstrip('\n') + '\n\n' if text.strip() else '') + new
open(out, 'w').write(text)
EOF
}
