#!/usr/bin/env bash
# Installs what is missing, builds the plugin and records a synthetic live
# stream into recordings/, printing each liverecordsink-* message as JSON.
# Usage: bash scripts/demo.sh [SECONDS] [RECORD_INTERVAL]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --release --lib --example demo
echo "== plugin built: GST_PLUGIN_PATH=$PWD/target/release gst-inspect-1.0 liverecordsink"
cargo run --release --example demo -- "$@"
echo "== files:"
find recordings -type f | sort
