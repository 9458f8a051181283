#!/usr/bin/env bash
# Installs what is missing, then runs the lints and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/install-browser-deps.sh
bash scripts/install-s3.sh
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
# The cdylib is what gst-launch-1.0 loads in the crash test.
cargo build --lib
# One test at a time: some tests measure wall-clock timings (idle and
# resume timeouts) that other tests' disk and CPU load would disturb.
cargo test --all-targets -- --test-threads=1
