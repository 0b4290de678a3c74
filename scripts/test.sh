#!/usr/bin/env bash
# The whole test suite from a fresh clone: the Python venv (moto, pyarrow, deltalake, Jupyter), formatting,
# lints, every Rust test (unit, integration, end to end against the embedded Kafka broker and a
# moto server), and the notebooks. Nothing is skipped: a missing tool fails the run.
#
# Environment: CARGO_TARGET_DIR (build cache, default ./target), STOCKLAKE_VENV (default ./.venv).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n== %s (%s)\n' "$1" "$(date +%T)" >&2; }

command -v cargo >/dev/null || { echo "scripts/test.sh: cargo is missing (install Rust with rustup)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "scripts/test.sh: python3 is missing" >&2; exit 1; }

export STOCKLAKE_VENV="${STOCKLAKE_VENV:-$PWD/.venv}"
step "Python venv $STOCKLAKE_VENV"
bash scripts/python-env.sh >/dev/null

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy"
cargo clippy --locked --all-targets -- -D warnings

step "cargo test"
cargo test --locked --no-fail-fast

step "done"
