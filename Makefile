# A thin front for CMake. `make run` and `make test` install what they need
# first (scripts/bootstrap is idempotent and takes seconds once done).
BUILD ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
BUILD_TSAN ?= build-tsan
GENERATOR := $(shell command -v ninja >/dev/null 2>&1 && echo Ninja || echo "Unix Makefiles")

.PHONY: all deps build build-asan build-fuzz fuzz tsan run test check-all bench format format-check clean

all: build

deps:
	@scripts/bootstrap

build: deps
	@cmake -S . -B $(BUILD) -G "$(GENERATOR)" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD)

build-asan: deps
	@cmake -S . -B $(BUILD_ASAN) -G "$(GENERATOR)" -DCMAKE_BUILD_TYPE=Debug -DAN_SANITIZE=ON >/dev/null
	@cmake --build $(BUILD_ASAN)

# libFuzzer targets (clang, ASan+UBSan): tests/fuzz
build-fuzz: deps
	@CC=clang cmake -S . -B $(BUILD_FUZZ) -G "$(GENERATOR)" -DCMAKE_BUILD_TYPE=Debug -DAN_SANITIZE=ON -DAN_FUZZ=ON >/dev/null
	@cmake --build $(BUILD_FUZZ)

# every fuzz target for AN_FUZZ_SECONDS (60) each; a crash fails the run
fuzz: build-fuzz
	@scripts/run-fuzz

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

# What does not fit in `make test`'s time: the whole suite with the long forms
# of its tests (AN_CHECK_ALL=1: see scripts/run-tests), the store and ingest
# tests under valgrind memcheck, and every fuzz target for a minute.
check-all:
	@AN_CHECK_ALL=1 scripts/run-tests
	@$(MAKE) -s build
	@scripts/run-valgrind
	@$(MAKE) -s fuzz

bench: build
	@scripts/run-bench

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	@clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ) $(BUILD_TSAN)
