#!/usr/bin/env bash
# The whole test suite: the Release build's tests, then the unit and cycle-level (SystemC) tests
# again under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

echo "== Release build and tests"
bash .ci/setup.sh build -DFAULTLINE_REQUIRE_PYTHON_TESTS=ON
(cd build && ctest --output-on-failure -j"$jobs")

echo "== AddressSanitizer + UndefinedBehaviorSanitizer build, unit and cycle-level tests"
bash .ci/setup.sh build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFAULTLINE_SANITIZE=ON -DFAULTLINE_BENCH=OFF \
  -DFAULTLINE_REQUIRE_PYTHON_TESTS=ON
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest -L 'unit|sim' --output-on-failure -j"$jobs")
