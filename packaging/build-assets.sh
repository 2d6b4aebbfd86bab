#!/usr/bin/env bash
# Regenerates packaging/generated/ (man pages and shell completions) from the clap
# definitions of the two binaries, with their hidden --generate-assets flag. The files are
# committed so that `cargo deb` alone builds the package; tests/package.rs fails when they
# document other flags than the binaries have (run this script then). CI runs it before
# `cargo deb`, so the package it builds is exact even when a value list changed.
set -euo pipefail
cd "$(dirname "$0")/.."
out=packaging/generated
rm -rf "$out"
cargo run --quiet --bin dnstap_receiver -- --generate-assets "$out" >/dev/null
cargo run --quiet -p loadgen -- --generate-assets "$out"
echo "packaging/build-assets.sh: wrote $(find "$out" -type f | wc -l) files under $out"
