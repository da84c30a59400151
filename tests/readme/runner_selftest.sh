#!/usr/bin/env bash
# Shows that run_readme_examples.sh can fail: a README whose examples hold passes, and each kind
# of stale README in fixtures/ (an output that changed, a command that fails, a shell example
# outside a ```console block, lines in another order) fails.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
status=0
expect() {
  local want=$1 fixture=$2 rc
  "$here/run_readme_examples.sh" "$here/fixtures/$fixture" >"${TMPDIR:-/tmp}/readme_selftest.$$" 2>&1
  rc=$?
  if [[ $want == pass && $rc != 0 ]] || [[ $want == fail && $rc == 0 ]]; then
    echo "FAIL: $fixture should $want (exit status $rc):"; sed 's/^/  /' "${TMPDIR:-/tmp}/readme_selftest.$$"
    status=1
  else
    echo "ok: $fixture: it should $want, and it did"
  fi
  rm -f "${TMPDIR:-/tmp}/readme_selftest.$$"
}
expect pass good.md
expect fail stale_output.md
expect fail failing_command.md
expect fail untested_example.md
expect fail wrong_order.md
exit $status
