#!/usr/bin/env bash
# Time-boxed fuzzing smoke run for CI: one build of every target, then each target for
# FUZZ_SECONDS (default 35: with the ~4-7 min ASan build of all 9 targets on 2 cores
# that keeps the whole job near 10 minutes) from its committed corpus and regression inputs. Fails if any
# target crashes, leaks past the RSS limit or times out on an input; prints a table of
# executions per second and coverage.
#
#   fuzz/smoke.sh                          # all targets, 45 s each
#   FUZZ_SECONDS=600 fuzz/smoke.sh ike_responder esp_decapsulate
#   FUZZ_SANITIZER=none fuzz/smoke.sh      # no ASan (faster; plain stable without bootstrap)
#   FUZZ_GROW_CORPUS=1 fuzz/smoke.sh       # write new inputs into fuzz/corpus/<target>
#
# Works on stable Rust: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass -Zsanitizer=address. It
# must be set here, in the shell that runs cargo, not in a nested cargo invocation.
set -euo pipefail

cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-35}
SANITIZER=${FUZZ_SANITIZER:-address}
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo-fuzz" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    else
        cargo install cargo-fuzz --locked
    fi
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

# -a: debug assertions and overflow checks, so arithmetic overflow is a crash too.
# peer_config and tun_coalescer need the `peer-config` feature (it pulls in the examples
# crate).
features=(--features peer-config)
build_flags=(-a -s "$SANITIZER" "${features[@]}")
start=$(date +%s)
if ! cargo fuzz build "${build_flags[@]}"; then
    if [ "$SANITIZER" = address ]; then
        echo "smoke: ASan build failed; falling back to --sanitizer none" >&2
        SANITIZER=none
        build_flags=(-a -s none "${features[@]}")
    fi
    if ! cargo fuzz build "${build_flags[@]}"; then
        echo "smoke: build with peer-config failed; building without peer_config, tun_coalescer" >&2
        build_flags=(-a -s "$SANITIZER")
        cargo fuzz build "${build_flags[@]}"
        mapfile -t targets < <(printf '%s\n' "${targets[@]}" | grep -vx -e peer_config -e tun_coalescer)
        failed_build="peer_config tun_coalescer"
    fi
fi
echo "smoke: build took $(($(date +%s) - start)) s (sanitizer: $SANITIZER)"

logs=fuzz/target/smoke-logs
mkdir -p "$logs"
failed=()
if [ -n "${failed_build:-}" ]; then failed+=("$failed_build (build)"); fi
rows=()
for t in "${targets[@]}"; do
    if [ "${FUZZ_GROW_CORPUS:-0}" = 1 ]; then
        work=fuzz/corpus/$t
    else
        # New inputs go to a scratch directory; the committed seeds are read only.
        work=fuzz/target/smoke-corpus/$t
    fi
    mkdir -p "$work" "fuzz/corpus/$t" "fuzz/regressions/$t"
    log=$logs/$t.log
    echo "smoke: $t for ${FUZZ_SECONDS} s"
    status=ok
    if ! cargo fuzz run "${build_flags[@]}" "$t" "$work" "fuzz/corpus/$t" "fuzz/regressions/$t" -- \
        -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -max_len=4096 -timeout=10 \
        -print_final_stats=1 >"$log" 2>&1; then
        status=CRASH
        failed+=("$t")
        tail -n 40 "$log" >&2
    fi
    # Final libFuzzer lines: "#N DONE cov: X ft: Y corp: ... exec/s: Z" and "stat::...".
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
    last_line=$(grep -E '^#[0-9]+[[:space:]]' "$log" | tail -n 1 || true)
    line=${done_line:-$last_line}
    runs=$(grep -oE 'stat::number_of_executed_units:[[:space:]]+[0-9]+' "$log" | awk '{print $2}' | tail -n 1 || true)
    eps=$(grep -oE 'stat::average_exec_per_sec:[[:space:]]+[0-9]+' "$log" | awk '{print $2}' | tail -n 1 || true)
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$line")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$line")
    corp=$(sed -nE 's/.* corp: ([0-9]+).*/\1/p' <<<"$line")
    rows+=("$(printf '%-18s %-6s %10s %8s %7s %7s %6s' "$t" "$status" "${runs:--}" "${eps:--}" "${cov:--}" "${ft:--}" "${corp:--}")")
done

echo
printf '%-18s %-6s %10s %8s %7s %7s %6s\n' target status runs exec/s cov ft corpus
for r in "${rows[@]}"; do echo "$r"; done
echo "smoke: total $(($(date +%s) - start)) s, sanitizer $SANITIZER, logs in $logs"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "smoke: FAILED: ${failed[*]} (inputs in fuzz/artifacts/<target>/; minimise with" \
        "'cargo fuzz tmin <target> <input>' and commit to fuzz/regressions/<target>/)" >&2
    exit 1
fi
