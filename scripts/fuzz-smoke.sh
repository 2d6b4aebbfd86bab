#!/usr/bin/env bash
# Short fuzz smoke pass for CI: writes the seed corpora from the lab captures, builds every
# cargo-fuzz target (with debug assertions, so integer overflow on wire lengths is a crash)
# and runs each for a bounded time. Exits non-zero if a target crashes, times out, runs out
# of memory or does not build. See docs/fuzzing.md.
#
# Environment:
#   FUZZ_SECONDS   seconds per target (default 20)
#   FUZZ_TARGETS   space-separated targets (default: every target `cargo fuzz list` shows)
#   (the seeds come from the repository's lab captures, lab/captures/)
#
# cargo-fuzz needs nightly-only compiler flags (-Zsanitizer, sanitizer coverage). The
# machine has only a stable toolchain, so RUSTC_BOOTSTRAP=1 lets that stable compiler accept
# them. It is set for the fuzz build only, never for the main build.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

seconds="${FUZZ_SECONDS:-20}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: cargo-fuzz is not installed (cargo install cargo-fuzz)" >&2
    exit 2
fi

echo "fuzz-smoke: writing seed corpora"
cargo run --quiet --manifest-path fuzz/Cargo.toml -p fuzz-seed -- "$root/fuzz/corpus"

if [[ -n "${FUZZ_TARGETS:-}" ]]; then
    read -r -a targets <<<"$FUZZ_TARGETS"
else
    mapfile -t targets < <(cargo fuzz list)
fi
if [[ ${#targets[@]} -eq 0 ]]; then
    echo "fuzz-smoke: no fuzz targets" >&2
    exit 2
fi

echo "fuzz-smoke: building ${targets[*]}"
cargo fuzz build --debug-assertions

failed=()
for target in "${targets[@]}"; do
    corpus="fuzz/corpus/$target"
    mkdir -p "$corpus" "fuzz/artifacts/$target"
    echo "fuzz-smoke: $target for ${seconds}s on $(find "$corpus" -type f | wc -l) inputs"
    log="$(mktemp)"
    # A target may have a libFuzzer dictionary beside it (fuzz/<target>.dict).
    dict=()
    if [[ -f "fuzz/$target.dict" ]]; then
        dict=(-dict="fuzz/$target.dict")
    fi
    if cargo fuzz run --debug-assertions "$target" "$corpus" -- \
        -max_total_time="$seconds" -max_len=8192 -timeout=10 -print_final_stats=1 \
        "${dict[@]}" >"$log" 2>&1; then
        grep -E '^stat::number_of_executed_units|^Done ' "$log" || true
    else
        echo "fuzz-smoke: $target FAILED; the end of its log:" >&2
        tail -n 60 "$log" >&2
        failed+=("$target")
    fi
    rm -f "$log"
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz-smoke: crashes in ${failed[*]} (inputs under fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz-smoke: ${#targets[@]} targets ran ${seconds}s each without a crash"
