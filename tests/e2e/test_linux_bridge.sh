#!/usr/bin/env bash
# shellcheck disable=SC2119 # e2e_init and start_pair take options, not the script's arguments
# e2e: the same steady state and power-loss failover on plain Linux bridges
# (carplab up --bridge linux) instead of Open vSwitch.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init linux
lab up --bridge linux >/dev/null
start_pair
scenario_basic
failover_kill_fw1 203.0.113.254
restore_fw1 203.0.113.254
