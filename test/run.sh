#!/usr/bin/env bash
# Builds uvws twice and runs every test under ctest in each build:
#   build/default  RelWithDebInfo, -Wall -Wextra -Werror
#   build/asan     Debug with AddressSanitizer + UndefinedBehaviorSanitizer
# then the threaded parts under ThreadSanitizer (build/tsan: unit.threads,
# chat, Redis, nginx, TLS, conformance and the chat in Chromium, the server on
# several loops; the RSS and timing tests stay out), then runs each libFuzzer target for FUZZ_SECONDS (default 20) in build/fuzz.
# Dependencies come from deps/install.sh --test (the README's test command
# runs both). Any failing test fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=$(nproc 2>/dev/null || echo 2)
status=0
for preset in default asan; do
  echo "==> configure and build: $preset"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  echo "==> ctest: $preset"
  if ! ctest --preset "$preset" -j "$jobs"; then
    status=1
  fi
done
# The threaded parts under ThreadSanitizer (the test preset selects them).
echo "==> configure, build and ctest: tsan"
cmake --preset tsan >/dev/null
cmake --build --preset tsan -j "$jobs"
if ! ctest --preset tsan -j "$jobs"; then
  status=1
fi
# Bounded fuzzing of the engine (clang, libFuzzer, ASan+UBSan).
echo "==> fuzzing (${FUZZ_SECONDS:-20}s per target)"
if ! FUZZ_SECONDS=${FUZZ_SECONDS:-20} ./test/fuzz/run.sh; then
  status=1
fi
if [ "$status" -ne 0 ]; then
  echo "==> FAILED: see the ctest output above"
fi
exit "$status"
