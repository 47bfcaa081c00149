#!/usr/bin/env bash
# Runs every interop/NN-*.sh in order; stops at the first failure.
set -euo pipefail
cd "$(dirname "$0")"
for s in [0-9][0-9]-*.sh; do
  echo "=== interop: $s"
  if ! bash "$s"; then
    echo "=== interop: $s FAILED"
    exit 1
  fi
done
echo "=== interop: all passed"
