# tests/integration/netns.bash - a private network namespace with its own DNS
#
# Sourced (after lib.sh) by the namespace tests (spf_postfix.sh, ...) and
# scripts/demo; not a test itself (scripts/test runs only *.sh here).
#
# Outside the namespace:
#   ns_create NAME ADDR...  create namespace NAME: lo up with 127.0.0.1 and
#                           each ADDR/32, and /etc/netns/NAME/resolv.conf
#                           naming 127.0.0.1 (what `ip netns exec` shows
#                           its processes as /etc/resolv.conf)
#   ns_destroy NAME         stop the processes left in NAME (only ours can
#                           be there), delete it and /etc/netns/NAME
#   ns_run_inside VAR NAME [ADDR...] -- SCRIPT [ARG...]
#                           as root: ns_create NAME ADDR..., run SCRIPT
#                           again inside with VAR=NAME in its environment,
#                           ns_destroy NAME however it ends; exits with the
#                           script's status (a setup step that fails is a
#                           FAIL line of IT_NAME)
# Inside (a script run with `ip netns exec NAME`):
#   ns_dns_start DIR        dnsmasq on 127.0.0.1:53 with the records of
#                           NS_ZONE (default tests/data/spf-zone/
#                           dnsmasq.conf; up once NS_PROBE, default
#                           pass.example, has a TXT record), and the UDP
#                           socket on 127.0.0.1:5399 that never answers
#                           (hang.example); both through it_spawn, so
#                           it_cleanup stops them.  Logs in DIR.
#   ns_dnsq NAME TYPE [S]   one query (A or TXT) to 127.0.0.1:53: prints
#                           "rcode=N DATA..." or "timeout" (no dig here)

NS_ZONE=${NS_ZONE:-$IT_TOP/tests/data/spf-zone/dnsmasq.conf}
NS_PROBE=${NS_PROBE:-pass.example}
NS_DNSQ=

# ns_create - the namespace, its addresses and its resolv.conf
ns_create() {
	local ns=$1 a
	shift
	ip netns add "$ns" || return 1
	ip -n "$ns" link set lo up || return 1
	for a in "$@"; do
		ip -n "$ns" addr add "$a/32" dev lo || return 1
	done
	mkdir -p "/etc/netns/$ns" || return 1
	# Long resolver timeouts: a hung lookup stays hung (the fault test);
	# every other name is answered at once by dnsmasq.
	printf 'nameserver 127.0.0.1\noptions timeout:30 attempts:2\n' \
	    >"/etc/netns/$ns/resolv.conf" || return 1
	chmod 644 "/etc/netns/$ns/resolv.conf"
}

# ns_destroy - stop what is left in the namespace, remove it
ns_destroy() {
	local ns=$1 pid n
	if ip netns list 2>/dev/null | grep -q "^$ns\b"; then
		# Only processes inside our own namespace: ours.
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			kill -TERM "$pid" 2>/dev/null
		done
		for n in $(seq 50); do
			[ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && break
			sleep 0.1
		done
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null
		done
		ip netns delete "$ns" 2>/dev/null ||
		    echo "# could not delete namespace $ns" >&2
	fi
	rm -rf "/etc/netns/$ns"
	rmdir /etc/netns 2>/dev/null
	return 0
}

# ns_setup_fail - a step before the script could run inside failed
ns_setup_fail() {
	it_fail "setup: $*"
	it_finish
	exit 1
}

# ns_run_inside - the namespace, the script inside it, the cleanup
ns_run_inside() {
	local var=$1 prog addrs=()
	NS_RUN=$2
	shift 2
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		addrs+=("$1")
		shift
	done
	shift
	trap 'rc=$?; trap - EXIT; ns_destroy "$NS_RUN"; exit $rc' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	[ "$(id -u)" -eq 0 ] || ns_setup_fail "must run as root (netns)"
	for prog in ip /usr/sbin/dnsmasq; do
		command -v "$prog" >/dev/null || ns_setup_fail "missing $prog"
	done
	ns_create "$NS_RUN" "${addrs[@]}" ||
	    ns_setup_fail "network namespace $NS_RUN ${addrs[*]}"
	ip netns exec "$NS_RUN" env "$var=$NS_RUN" bash "$@"
	exit $?
}

# ns_dnsq - one DNS query to 127.0.0.1:53
ns_dnsq() {
	"$IT_PY" "$NS_DNSQ" "$@" 2>&1
}

# ns_dns_up - true once dnsmasq answers
ns_dns_up() {
	case $(ns_dnsq "$NS_PROBE" TXT 1) in rcode=0*) return 0 ;; esac
	return 1
}

# ns_dns_start - dnsmasq and the silent server; DNSMASQ_PID
ns_dns_start() {
	local dir=$1
	[ -f "$NS_ZONE" ] || {
		it_log "no $NS_ZONE"
		return 1
	}
	NS_DNSQ=$dir/dnsq.py
	cat >"$NS_DNSQ" <<'EOF'
import random, socket, struct, sys
name, qtype = sys.argv[1], sys.argv[2]
timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0
tid = random.randrange(65536)
pkt = struct.pack('>HHHHHH', tid, 0x0100, 1, 0, 0, 0)
for label in name.rstrip('.').split('.'):
    pkt += bytes([len(label)]) + label.encode()
pkt += b'\0' + struct.pack('>HH', {'A': 1, 'TXT': 16}[qtype], 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(timeout)
s.sendto(pkt, ('127.0.0.1', 53))
try:
    data = s.recv(4096)
except socket.timeout:
    print('timeout')
    sys.exit(0)
an = struct.unpack('>H', data[6:8])[0]
i = 12
while data[i]:
    i += data[i] + 1
i += 5
out = []
for _ in range(an):
    if data[i] & 0xc0 == 0xc0:
        i += 2
    else:
        while data[i]:
            i += data[i] + 1
        i += 1
    t, _c, _ttl, rl = struct.unpack('>HHIH', data[i:i + 10])
    i += 10
    rd = data[i:i + rl]
    i += rl
    if t == 16:
        j, txt = 0, b''
        while j < len(rd):
            txt += rd[j + 1:j + 1 + rd[j]]
            j += 1 + rd[j]
        out.append(txt.decode())
    elif t == 1:
        out.append(socket.inet_ntoa(rd))
print('rcode=%d' % (data[3] & 15), *out)
EOF
	# The black hole: a UDP socket that reads nothing, for at most
	# 15 minutes.
	it_spawn "$dir/blackhole.log" "$IT_PY" -c 'import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 5399))
time.sleep(900)'
	it_spawn "$dir/dnsmasq.log" /usr/sbin/dnsmasq --no-daemon \
	    --conf-file="$NS_ZONE" --pid-file= --log-queries --log-facility=-
	DNSMASQ_PID=$IT_LASTPID
	it_wait 10 ns_dns_up || {
		it_log "dnsmasq did not answer on 127.0.0.1:53"
		cat "$dir/dnsmasq.log" >&2
		return 1
	}
}
