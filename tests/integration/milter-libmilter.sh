#!/usr/bin/env bash
# milter-libmilter.sh - the milter tests again with libmilter as the
# protocol engine: our own engine must behave as the reference does.
OUTPOST_ENGINE=libmilter exec bash "$(dirname "$0")/milter.sh"
