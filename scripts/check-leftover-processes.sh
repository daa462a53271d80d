#!/usr/bin/env bash
# After a test run: no process the tests started may still be running. .ci/run starts
# `cargo test` with AGENTGATE_TEST_RUN=<id> in its environment, which every process the tests
# start inherits (servers, daemons, their children, even those that left the process group);
# any process still carrying it is listed, killed, and fails the run.
# Usage: scripts/check-leftover-processes.sh ID
set -euo pipefail
id="${1:?usage: $0 ID}"
left=()
for env in /proc/[0-9]*/environ; do
  pid="${env#/proc/}"
  pid="${pid%/environ}"
  if { tr "\0" "\n" <"$env"; } 2>/dev/null | grep -qxF "AGENTGATE_TEST_RUN=$id"; then
    left+=("$pid")
  fi
done
if ((${#left[@]})); then
  echo "check-leftover-processes: ${#left[@]} process(es) the tests started outlived them:" >&2
  ps -o pid,ppid,pgid,etime,args -p "$(IFS=,; echo "${left[*]}")" >&2 || true
  kill -KILL "${left[@]}" 2>/dev/null || true
  exit 1
fi
echo "check-leftover-processes: no process outlived the tests"
