# kotsu: `make demo` and `make test` install what they need (scripts/setup), build, and run.
BUILD ?= build
JOBS ?= 2
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release

.PHONY: all setup build demo test bench bench-transfer bench-transfer-vision bench-hpo-sst2 bench-vs-anchors clean

all: build

setup:
	@scripts/setup

$(BUILD)/build.ninja:
	@cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS) > $(BUILD).cmake.log 2>&1 || (cat $(BUILD).cmake.log; exit 1)

build: setup $(BUILD)/build.ninja
	@ninja -C $(BUILD) -j$(JOBS)

demo: build
	@scripts/demo $(BUILD)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j1

bench: build
	@scripts/bench $(BUILD)

# about an hour on 2 cores; results cached per run in bench/results/transfer_text.json (delete it to rerun)
bench-transfer: build
	@/usr/bin/python3 bench/transfer_text.py $(BUILD)

# several hours on 2 cores; results cached per run in bench/results/transfer_vision.json (delete it to rerun)
bench-transfer-vision: build
	@/usr/bin/python3 bench/transfer_vision.py $(BUILD)

# grid + 10 TPE seeds: over an hour on a 2-core AVX-512 host; results cached per search in bench/results/hpo_sst2.json (delete it to rerun)
bench-hpo-sst2: build
	@/usr/bin/python3 bench/hpo_sst2.py $(BUILD)

# kotsu against HF Trainer, SetFit and FastFit on the real MiniLM (bench/vs_anchors.py says what runs); many
# hours on 2 cores; results cached per run in bench/results/vs_anchors.json (delete a key to rerun it)
bench-vs-anchors: build
	@scripts/setup-bench
	@/usr/bin/python3 bench/vs_anchors.py $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD).cmake.log demo-out
