#!/bin/sh
# run.sh -- plants every bug of tests/mutation/mutations.txt in a copy of
# this tree, one at a time, runs the suite for each and prints a table of
# caught and missed. Not part of `make test` (about half an hour).
# Arguments go to run.py: --only ID, --list, --dir DIR.
exec python3 "$(dirname "$0")/run.py" "$@"
