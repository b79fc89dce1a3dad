#!/usr/bin/env bash
# Runs every libFuzzer target for a bounded time (FUZZ_SECONDS each, default
# 30) in a clang ASan+UBSan build, starting from the seed corpus. New inputs
# go to a scratch copy of the corpus, not into the repository. Exits non-zero
# on the first finding (the crashing input is left in build/fuzz/artifacts).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-30}
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc 2>/dev/null || echo 2)" --target fuzz_ws fuzz_utf8 fuzz_close fuzz_path fuzz_http fuzz_inflate
mkdir -p build/fuzz/artifacts
for t in ws utf8 close path http inflate; do
  work=build/fuzz/corpus-$t
  rm -rf "$work" && mkdir -p "$work"
  echo "==> fuzz_$t for ${seconds}s"
  build/fuzz/test/fuzz/fuzz_$t -max_total_time="$seconds" -max_len=131072 -timeout=10 \
    -artifact_prefix=build/fuzz/artifacts/$t- -print_final_stats=1 "$work" test/fuzz/corpus/$t 2>&1 |
    grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY|Done)" || true
  if ls build/fuzz/artifacts/$t-* >/dev/null 2>&1; then
    echo "==> fuzz_$t found a failing input:"; ls build/fuzz/artifacts/$t-*; exit 1
  fi
done
echo "fuzzing: 6 targets ran ${seconds}s each without a finding"
