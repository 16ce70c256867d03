#!/usr/bin/env bash
# Under attack, measured (on demand, not in CI): the simulated area polled by
# `klaiwatch run` while its traffic receivers are attacked; a phase without
# the attack first, in the same run. See bench/attack/run.ts for the options.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/bootstrap.sh"
cd "$KW_ROOT"
exec node bench/attack/run.ts "$@"
