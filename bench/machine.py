"""What the benchmark ran on, for the reports: the CPU's model name, its core count and its widest vector and
bf16 instructions (the development VMs move between hosts: AVX2-only and AVX-512 + AVX512-BF16 EPYCs have both
been seen, with step times a factor 2-3 apart)."""
import os

JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
# kotsu's own jemalloc setting (src/kotsu/core/runtime.cpp): freed pages are kept, never handed back
JEMALLOC_ENV = {"LD_PRELOAD": JEMALLOC, "MALLOC_CONF": "dirty_decay_ms:-1,muzzy_decay_ms:-1"}


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def cpu_line():
    name = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    flags = cpu_flags()
    vec = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    bf16 = ", AVX512-BF16" if "avx512_bf16" in flags else ", AMX-BF16" if "amx_bf16" in flags else ", no native bf16"
    return f"Machine: {name}, {os.cpu_count()} cores, {vec}{bf16}."
