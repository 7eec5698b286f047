#!/usr/bin/env bash
# One-time setup on a fresh Debian/Ubuntu machine (Linux x86-64): system libraries for MLX, Bun, dependencies.
# Safe to run again. On macOS only `npm i -g bun && bun install` is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(uname)" = "Linux" ]; then
  need=()
  # chromium: the dashboard test drives it with playwright-core (test/integration/dashboard.test.ts).
  for pkg in liblapack3 libopenblas0-pthread chromium; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  if [ ${#need[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi
command -v bun >/dev/null 2>&1 || npm install -g bun@1.4.5 >/dev/null
bun install --frozen-lockfile
