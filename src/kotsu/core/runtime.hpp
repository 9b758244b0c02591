// kotsu/core/runtime: process-wide settings every entry point applies first.
// ensures: torch uses `threads` intra-op threads (0 = all cores; Debian's libtorch defaults to 1 here),
//          and reports whether jemalloc is the active allocator (see shared/PLATFORM.md for why it matters).
#pragma once
#include <string>

namespace kotsu {

void runtime_init(int threads = 0);
int runtime_threads();
bool jemalloc_active();
// Gives the pages of freed memory back to the system now (jemalloc keeps them, as kotsu configures it for
// speed): after a rare large allocation, such as a server decoding a huge picture.
void release_free_memory();
// A --device value: "cpu" or "cuda[:N]", usable by this build on this machine; otherwise kotsu::Error
// naming --device and why (malformed, a CPU-only libtorch, no GPU visible, N out of range).
void check_device(const std::string& spec);
std::string blas_library();  // path of the BLAS the process loaded (for reports and benches)

}  // namespace kotsu
