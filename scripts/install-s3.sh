#!/usr/bin/env bash
# Installs s3s-fs 0.14.1, the S3-compatible server of the upload tests
# (tests/uploads.rs): it checks SigV4 signatures and keeps objects as plain
# files. Only when missing; about 90 s on 2 cores. Safe to run again.
set -euo pipefail
if command -v s3s-fs >/dev/null 2>&1 && s3s-fs --version 2>/dev/null | grep -q '^s3s-fs 0\.14\.1$'; then
  exit 0
fi
cargo install --locked s3s-fs@0.14.1 --features binary
