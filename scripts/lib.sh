# scripts/lib.sh - shared steps of scripts/test and scripts/demo
#
# Sourced by bash.  Knows the Debian 12 packages Outpost needs and how to
# build it out of tree; knows nothing about what a step's results mean.
#
#   outpost_install_deps  install the missing Debian packages (root)
#   outpost_autogen       generate ./configure when it is missing
#   outpost_build DIR LOG [CONFIGURE ARGS...]
#                         configure and build in TOP/DIR, output to LOG
#
# OUTPOST_TOP is the repository root.

OUTPOST_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# The Debian 12 packages the build, the tests and the demo need.
OUTPOST_PACKAGES="build-essential autoconf automake libtool pkg-config
libmilter-dev libopendkim-dev libssl-dev libconfig-dev check liblmdb-dev
libhiredis-dev libevent-dev libspf2-dev postfix opendkim opendkim-tools
miltertest python3-dkim libmail-dkim-perl libcryptx-perl swaks sasl2-bin openssl clang
libclang-rt-14-dev redis-server lmdb-utils libyaml-dev dnsmasq-base iproute2
libsystemd-dev debhelper dpkg-dev fakeroot lintian systemd man-db git strace
python3-prometheus-client curl libc-ares-dev libpsl-dev publicsuffix
libopendmarc-dev libbsd-dev"

# outpost_missing_packages - print the packages of the list not installed
outpost_missing_packages() {
	local p
	for p in $OUTPOST_PACKAGES; do
		dpkg-query -W -f '${Status}\n' "$p" 2>/dev/null |
		    grep -q 'install ok installed' || echo "$p"
	done
}

# outpost_install_deps - install what is missing; apt-get update only then
# Postfix is preseeded to "No configuration" and, while apt runs, a
# policy-rc.d keeps the packages' services (postfix, opendkim) from being
# started: the tests run their own private instances.
outpost_install_deps() {
	local missing rc=0 policy=/usr/sbin/policy-rc.d ours=0
	missing=$(outpost_missing_packages)
	if [ -z "$missing" ]; then
		echo "all $(echo $OUTPOST_PACKAGES | wc -w) Debian packages present"
		return 0
	fi
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing packages (run as root to install):" $missing >&2
		return 1
	fi
	echo "installing:" $missing
	export DEBIAN_FRONTEND=noninteractive
	echo "postfix postfix/main_mailer_type select No configuration" |
	    debconf-set-selections
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		ours=1
	fi
	apt-get update -q </dev/null || rc=$?
	if [ $rc -eq 0 ]; then
		# shellcheck disable=SC2086
		apt-get install -y -q --no-install-recommends $missing \
		    </dev/null || rc=$?
	fi
	[ $ours -eq 1 ] && rm -f "$policy"
	return $rc
}

# outpost_autogen - run ./autogen.sh when there is no ./configure
# Afterwards automake's rebuild rules follow configure.ac/Makefile.am edits.
outpost_autogen() {
	if [ ! -x "$OUTPOST_TOP/configure" ]; then
		(cd "$OUTPOST_TOP" && ./autogen.sh)
	fi
}

# outpost_build - configure and build in TOP/DIR; all output into LOG
# usage: outpost_build DIR LOG [CONFIGURE ARGS...]
outpost_build() {
	local dir=$OUTPOST_TOP/$1 log=$2
	shift 2
	mkdir -p "$dir"
	(
		cd "$dir" &&
		    "$OUTPOST_TOP/configure" -q "$@" &&
		    make -j"$(nproc)"
	) >"$log" 2>&1
}
