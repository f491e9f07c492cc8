#!/usr/bin/env bash
# Run pytest with every test's body starting LEAD seconds before TARGET (UTC, ISO 8601), e.g.
#   scripts/pytest-clockshift.sh 2027-01-01T00:00:00 1 tests/oversight/test_report.py -q
# See scripts/clockshift.py. Needs libfaketime (Debian: apt-get install faketime).
set -u
if [ "$#" -lt 3 ]; then
  echo "usage: $0 TARGET LEAD pytest-args... (e.g. 2027-01-01T00:00:00 1 tests/x.py)" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")/.." && pwd)
lib=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -n 1)
if [ -z "$lib" ]; then
  echo "libfaketime not found: install it (Debian: apt-get install faketime)" >&2
  exit 2
fi
target=$1 lead=$2
shift 2
CLOCKSHIFT_TARGET="$target" CLOCKSHIFT_LEAD="$lead" PYTHONPATH="$here/scripts${PYTHONPATH:+:$PYTHONPATH}" \
  LD_PRELOAD="$lib" FAKETIME="+0" FAKETIME_NO_CACHE=1 FAKETIME_DONT_FAKE_MONOTONIC=1 \
  "$here/scripts/pytest.sh" -p clockshift -p no:randomly -p no:cacheprovider "$@"
