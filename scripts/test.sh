#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need (NVRTC 13.0 and the CUDA
# headers from PyPI wheels, into .ci/cache), then format, lint, the API docs (no broken or
# private links) and every test of the workspace.
# GPU tests skip themselves where no GPU is present.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

eval "$(.ci/nvrtc.sh)"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
cargo test --workspace
