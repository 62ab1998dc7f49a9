#!/usr/bin/env bash
# Memory and per-check cost of the in-memory rate limiter at one million
# distinct keys (issue 18.2), against the unbounded fixed-window map it
# replaced. Each case runs in its own process; the RSS growth is read from
# /proc/self/status (Linux). A script to run by hand, not a test.
#
#   bash bench/ratelimit-memory.sh            # release build
#   PROFILE=dev bash bench/ratelimit-memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${PROFILE:-release}
echo "# bench/ratelimit-memory.sh, $(date -u +%Y-%m-%d), $(nproc) cores, profile $profile"
echo "# commit $(git rev-parse --short HEAD)"
cargo run -q --profile "$profile" -p kluis-broker --example ratelimit_memory
