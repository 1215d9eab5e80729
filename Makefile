# A thin front for CMake. `make run` and `make test` install what they need
# first (scripts/bootstrap is idempotent and takes seconds once done).
BUILD ?= build
BUILD_ASAN ?= build-asan
BUILD_TSAN ?= build-tsan
GENERATOR := $(shell command -v ninja >/dev/null 2>&1 && echo Ninja || echo "Unix Makefiles")

.PHONY: all deps build build-asan tsan run test bench format format-check clean

all: build

deps:
	@scripts/bootstrap

build: deps
	@cmake -S . -B $(BUILD) -G "$(GENERATOR)" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD)

build-asan: deps
	@cmake -S . -B $(BUILD_ASAN) -G "$(GENERATOR)" -DCMAKE_BUILD_TYPE=Debug -DAN_SANITIZE=ON >/dev/null
	@cmake --build $(BUILD_ASAN)

# ThreadSanitizer build (data races between the task runtime's, the HTTP
# server's and ingest's threads). Run its tests with TSAN_OPTIONS as
# docs/threads-tasks.md says.
tsan: deps
	@cmake -S . -B $(BUILD_TSAN) -G "$(GENERATOR)" -DCMAKE_BUILD_TYPE=Debug -DAN_TSAN=ON >/dev/null
	@cmake --build $(BUILD_TSAN)

# The main job: the HTTP server on the embedded DuckDB store (or PostgreSQL /
# TimescaleDB when POSTGRES_SERVER is set).
run: build
	$(BUILD)/autonama serve

# Everything: format check, release build + ASan/UBSan build, test servers,
# ctest on both builds, servers stopped at the end (also on failure).
test:
	@scripts/run-tests

bench: build
	@scripts/run-bench

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	@clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_TSAN)
