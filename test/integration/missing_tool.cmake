# Run by ctest in place of a test whose interpreter was not found at configure time:
#   cmake -DTOOL=node -P missing_tool.cmake
# It fails (never skips) with a message saying what to install.
message(FATAL_ERROR "integration test cannot run: '${TOOL}' was not found when CMake configured "
  "the build. Install the test dependencies (deps/install.sh --test) and re-run cmake.")
