#!/usr/bin/env bash
# On demand, not in CI: the API beside Fastify's hello-world (bench/api/run.ts).
#   bash bench/api/run.sh [--schools 250] [--per-school 8] [--seconds 5] [--repeats 3] [--connections 10] [--rate 1000]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/bootstrap.sh"
cd "$KW_ROOT"
exec node bench/api/run.ts "$@"
