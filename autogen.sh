#!/bin/sh
# autogen.sh - generate configure from configure.ac (run once after checkout)
set -e
cd "$(dirname "$0")"
mkdir -p m4
autoreconf -fi
