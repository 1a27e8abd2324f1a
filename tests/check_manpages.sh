#!/bin/sh
# check_manpages - every setting the config loader knows is documented in
# outpost.conf(5), and every option of outpost-milter in its man page.
srcdir=${top_srcdir:-.}
fail=0
# Setting names: the known[] arrays of each load_<section>() in conf.c.
names=$(awk '
	/^[a-z_]+\(/ { sec = "" }
	/^load_[a-z]+\(/ { sec = $0; sub(/^load_/, "", sec); sub(/\(.*/, "", sec) }
	/known\[\] = \{/ && sec != "" { grab = 1 }
	grab { line = $0; while (match(line, /"[a-z_]+"/)) {
		n = substr(line, RSTART + 1, RLENGTH - 2)
		print (sec == "keys" || sec == "rules") ? n : sec "." n
		line = substr(line, RSTART + RLENGTH) } }
	grab && /NULL/ { grab = 0 }
' "$srcdir"/conf/conf*.c | sort -u)
for n in $names; do
	if ! grep -q -- "$n" "$srcdir/doc/outpost.conf.5"; then
		echo "FAIL: setting $n is not in doc/outpost.conf.5"
		fail=1
	fi
	if ! grep -q -- "$(echo "$n" | sed 's/.*\.//') =" "$srcdir/conf/outpost.conf"; then
		echo "FAIL: setting $n is not in conf/outpost.conf"
		fail=1
	fi
done
count=$(echo "$names" | wc -l)
[ "$count" -ge 20 ] || { echo "FAIL: found only $count settings"; fail=1; }
for opt in c f n v V; do
	grep -q "^.B.* \\\\-$opt\\b\|^.BI \\\\-$opt\|^.B \\\\-$opt" "$srcdir/doc/outpost-milter.8" ||
		{ echo "FAIL: option -$opt not in outpost-milter.8"; fail=1; }
done
# The default configuration each program reads is the one its man page
# names (a build with another --sysconfdir has wrong man pages: say so).
for prog in milter/outpost-milter policy/outpost-policyd; do
	page=$srcdir/doc/$(basename "$prog").8
	want=$(sed -n 's/.*(default \\fI\([^\\]*\)\\fR).*/\1/p' "$page" | head -n 1)
	got=$(./$prog -h 2>&1 | sed -n 's/.*(default \(.*\))$/\1/p')
	if [ -z "$want" ] || [ "$got" != "$want" ]; then
		echo "FAIL: $prog reads ${got:-?} by default, $page says ${want:-nothing}"
		fail=1
	fi
done
[ $fail = 0 ] && echo "PASS: $count settings documented"
exit $fail
