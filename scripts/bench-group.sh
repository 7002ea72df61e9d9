#!/usr/bin/env bash
# A group dispute of N members (default 1000) end to end against the court simulator: CSV import,
# agreements from one template, every signature over the API, confirmations delivered.
# Prints the seconds of each step (tests/cases.rs: group_dispute_of_many_members).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test >/dev/null
JIEFEN_GROUP_MEMBERS="${1:-1000}" cargo test --release -q -p jiefen --test cases group_dispute_of_many_members -- --nocapture 2>&1 | grep -E "group of|test result"
