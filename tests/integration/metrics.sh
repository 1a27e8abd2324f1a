#!/usr/bin/env bash
# tests/integration/metrics.sh - milter.metrics, policyd.metrics, outpostctl stats
#
# A private Postfix (tests/integration/lib.sh) with outpost-milter
# (smtpd_milters) and outpost-policyd (check_policy_service at RCPT and
# END-OF-DATA), both serving metrics on loopback ports.  A known mix:
#   - 2 messages from a trusted network, From example.com: signed with
#     rsa-sha256 and ed25519-sha256;
#   - 1 from a trusted network, From other.example: skipped, no-signing-rule;
#   - 1 from an untrusted client: skipped, not-trusted;
#   - 1 of SASL user bob to 8 recipients under a limit of 5 recipients an
#     hour: 5 accepted, 3 deferred by outpost-policyd (450 4.7.1), signed.
# Then /metrics of each daemon, fetched with curl, parsed by Debian's
# python3-prometheus-client, must hold exactly those counts (and 17
# policy requests: 12 RCPT, 5 END-OF-DATA); other paths get 404; outpostctl
# stats prints the figures as a table and as JSON, and says so clearly when
# metrics are off or the daemon does not answer; a non-loopback address is
# refused by outpostctl check-config.
# Needs root, postfix, swaks, smtp-sink, saslpasswd2, curl, python3-prometheus-client.
#
# Environment: OUTPOST_BUILD (default TOP/build).

set -u
. "$(dirname "$0")/lib.sh"

it_init metrics
T=$IT_T
CTL=$IT_BUILD/tools/outpostctl
POLICYD=$IT_BUILD/policy/outpost-policyd
SOCK=unix:$T/milter.sock
PSOCK=$T/policy.sock

fatal_setup() {
	it_setup_failed "$*" "$T/milter.log" "$T/policyd.log"
}

it_need postfix smtp-sink swaks saslpasswd2 curl "$IT_PY" "$CTL" "$POLICYD"
it_need_root "private Postfix"
"$IT_PY" -c 'import prometheus_client.parser' 2>/dev/null ||
    fatal_setup "no python3-prometheus-client for $IT_PY"

SMTP_PORT=$(it_free_port)
SINK_PORT=$(it_free_port)
MPORT=$(it_free_port)
PPORT=$(it_free_port)
DEAD_PORT=$(it_free_port)
it_log "smtpd :$SMTP_PORT, sink :$SINK_PORT, metrics milter :$MPORT policyd :$PPORT"

it_keygen "$T/keys" example.com m-rsa rsa || fatal_setup "rsa key"
it_keygen "$T/keys" example.com m-ed ed25519 || fatal_setup "ed25519 key"
CONF=$T/outpost.conf
outpost_conf "$CONF" "$SOCK" "$T/keys" example.com m-rsa m-ed
sed -i "s|^milter = { |milter = { quotas = \"non_smtpd\"; metrics = \"inet:127.0.0.1:$MPORT\"; |" \
    "$CONF"
cat >>"$CONF" <<EOF
store = { backend = "lmdb"; path = "$T/quota.lmdb"; };
limits = (
  { name = "rcpt-hourly"; key = "sasl_username"; count = "recipients";
    kind = "window"; limit = 5; period = "1h"; action = "defer"; }
);
policyd = { listen = [ "unix:$PSOCK" ]; socket_group = "postfix";
  metrics = "inet:127.0.0.1:$PPORT"; };
EOF

outpost_start "$CONF" "$SOCK" "$T/milter.log" || fatal_setup "start outpost-milter"
it_spawn "$T/policyd.log" "$POLICYD" -f -c "$CONF"
it_wait 10 test -S "$PSOCK" || fatal_setup "start outpost-policyd"
it_wait 10 it_port_open "$PPORT" || fatal_setup "policyd metrics listener"
sink_start "$T/sink" "$SINK_PORT" || fatal_setup "start smtp-sink"
pf_setup "$T/pf" "$SMTP_PORT" "$SINK_PORT" "$SOCK"
pf_enable_sasl bob bob-secret || fatal_setup "SASL"
postconf -c "$T/pf/etc" -e \
    "smtpd_recipient_restrictions = check_policy_service unix:$PSOCK" \
    "smtpd_end_of_data_restrictions = check_policy_service unix:$PSOCK" ||
    fatal_setup "postconf"
pf_start "$SMTP_PORT" || fatal_setup "start postfix"

# send NAME FROM RCPTS [USER PASS] - one message from ${SRC}; waits for it
send() {
	local f log
	f=$(it_new_msg "$T/msgs" "$1" "$2" "metrics: $1")
	printf '\r\nbody of %s\r\n' "$1" >>"$f"
	log=$T/swaks-$1.log
	it_send "$log" "$(it_msg_from "$f")" "$3" "$f" "$SMTP_PORT" "$SRC" \
	    "${@:4}" || it_log "swaks $1: $(tail -n 3 "$log")"
	sink_wait "$(it_msg_tag "$f")" 30 >/dev/null
}

SRC=127.0.0.1 send signed1 'Alice <alice@example.com>' bob@example.net
SRC=127.0.0.1 send signed2 'alice@example.com' bob@example.net
SRC=127.0.0.1 send norule 'carol@other.example' bob@example.net
SRC=127.0.0.2 send untrusted 'alice@example.com' bob@example.net
SRC=127.0.0.2 send campaign 'bob@example.com' "$(it_rcpt_list r 8)" \
    bob bob-secret
it_check "campaign: 3 recipients deferred with 450 4.7.1" \
    test "$(grep -c '^ *<\*\* *450 4.7.1' "$T/swaks-campaign.log")" -eq 3
# the SMTP sessions end: the milter's connections close
it_wait 10 eval "curl -sf http://127.0.0.1:$MPORT/metrics |
    grep -qx 'outpost_milter_connections 0'"

curl -sf "http://127.0.0.1:$MPORT/metrics" >"$T/milter.prom" ||
    it_fail "curl milter /metrics"
curl -sf "http://127.0.0.1:$PPORT/metrics" >"$T/policyd.prom" ||
    it_fail "curl policyd /metrics"

# prom FILE NAME{LABELS} WANT... - every sample named has its value, as
# python3-prometheus-client parses the file (labels sorted, "a=x,b=y")
prom() {
	"$IT_PY" - "$@" <<'EOF'
import sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1]).read()
got = {}
for fam in text_string_to_metric_families(text):
    for s in fam.samples:
        labels = ",".join("%s=%s" % kv for kv in sorted(s.labels.items()))
        got[s.name + "{" + labels + "}"] = s.value
ok = True
for arg in sys.argv[2:]:
    key, want = arg.rsplit(" ", 1)
    if got.get(key) != float(want):
        print("    %s: got %s, want %s" % (key, got.get(key), want))
        ok = False
sys.exit(0 if ok else 1)
EOF
}

it_check "milter: counters equal the mail sent (prometheus_client parser)" \
    prom "$T/milter.prom" \
    "outpost_messages_signed_total{} 3" \
    "outpost_signatures_total{algorithm=rsa-sha256} 3" \
    "outpost_signatures_total{algorithm=ed25519-sha256} 3" \
    "outpost_messages_skipped_total{reason=no-signing-rule} 1" \
    "outpost_messages_skipped_total{reason=not-trusted} 1" \
    "outpost_messages_skipped_total{reason=no-from} 0" \
    "outpost_milter_eom_seconds_count{} 5" \
    "outpost_milter_connections{} 0" \
    "outpost_spf_worker_restarts_total{} 0" \
    "outpost_store_errors_total{kind=error,op=admission} 0"
it_check "policyd: 3 deferrals of rcpt-hourly, 17 requests timed" \
    prom "$T/policyd.prom" \
    "outpost_quota_verdicts_total{action=defer,limit=rcpt-hourly} 3" \
    "outpost_policyd_request_seconds_count{} 17" \
    "outpost_store_errors_total{kind=timeout,op=commit} 0"
it_check "policyd: store calls timed" \
    grep -qE '^outpost_store_call_seconds_count\{op="admit"\} [1-9]' \
    "$T/policyd.prom"
it_check "no sender, login or domain in the metrics" \
    eval "! grep -Ei 'example|alice|bob' '$T/milter.prom' '$T/policyd.prom'"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/other")
it_check "another path: 404 (got $code)" test "$code" = 404

"$CTL" stats -c "$CONF" >"$T/stats.out" 2>&1
sed 's/^/    /' "$T/stats.out"
it_check "outpostctl stats: table with both daemons' figures" \
    eval "grep -qE '^  outpost_messages_signed_total +3$' '$T/stats.out' &&
    grep -qE '^  outpost_quota_verdicts_total\{limit=\"rcpt-hourly\",action=\"defer\"\} +3$' '$T/stats.out'"
"$CTL" stats --json -c "$CONF" >"$T/stats.json" 2>&1
it_check "outpostctl stats --json: parses, the same figures" "$IT_PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
def val(daemon, name, **labels):
    return next(s["value"] for s in d[daemon]["samples"]
                if s["name"] == name and s["labels"] == labels)
assert val("milter", "outpost_messages_signed_total") == 3
assert val("milter", "outpost_signatures_total", algorithm="ed25519-sha256") == 3
assert val("policyd", "outpost_quota_verdicts_total", limit="rcpt-hourly",
           action="defer") == 3
' "$T/stats.json"
"$CTL" stats policyd -c "$CONF" >"$T/one.out" 2>&1
it_check "outpostctl stats policyd: that daemon only" \
    eval "grep -q '^outpost-policyd at' '$T/one.out' &&
    ! grep -q outpost-milter '$T/one.out'"

# the error cases: metrics off, nobody listening, not loopback
sed "s|metrics = \"inet:127.0.0.1:$MPORT\"; ||;
    s|metrics = \"inet:127.0.0.1:$PPORT\";|metrics = \"inet:127.0.0.1:$DEAD_PORT\";|" \
    "$CONF" >"$T/off.conf"
"$CTL" stats milter -c "$T/off.conf" >"$T/off.out" 2>&1
rc=$?
sed 's/^/    /' "$T/off.out"
it_check "metrics off: exit 78, says milter.metrics is not set" \
    eval "[ $rc -eq 78 ] && grep -q 'milter.metrics is not set' '$T/off.out'"
"$CTL" stats -c "$T/off.conf" >"$T/dead.out" 2>&1
rc=$?
sed 's/^/    /' "$T/dead.out"
it_check "daemon not answering: exit 69, asks whether it runs" \
    eval "[ $rc -eq 69 ] && grep -q 'is outpost-policyd running' '$T/dead.out'"
sed "s|inet:127.0.0.1:$PPORT|inet:192.0.2.1:$PPORT|" "$CONF" >"$T/wide.conf"
"$CTL" check-config -c "$T/wide.conf" >"$T/wide.out" 2>&1
rc=$?
sed 's/^/    /' "$T/wide.out"
it_check "a non-loopback metrics address is refused" \
    eval "[ $rc -eq 78 ] && grep -q 'not a loopback address' '$T/wide.out'"

it_finish
