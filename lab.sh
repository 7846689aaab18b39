#!/bin/sh
# The xlns lab in one command: sudo ./lab.sh [--help]. See deploy/lab/lab.sh.
exec "$(dirname "$0")/deploy/lab/lab.sh" "$@"
