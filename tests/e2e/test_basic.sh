#!/usr/bin/env bash
# shellcheck disable=SC2119 # e2e_init and start_pair take options, not the script's arguments
# e2e: the runbook's steady state (§10.1) on Open vSwitch: fw1 (advskew 0) MASTER and
# fw2 (advskew 100) BACKUP for vhid 1 (LAN) and 2 (WAN); the VIPs only on fw1, with
# the virtual MACs 00:00:5e:00:01:0X; the client reaches the WAN host through them.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
. "$(dirname "$0")/lib.sh"
e2e_init
lab up >/dev/null
start_pair
scenario_basic
