// kotsu/core/runtime: process-wide settings every entry point applies first.
// ensures: torch uses `threads` intra-op threads (0 = all cores; Debian's libtorch defaults to 1 here),
//          and reports whether jemalloc is the active allocator (see shared/PLATFORM.md for why it matters).
#pragma once
#include <string>

namespace kotsu {

void runtime_init(int threads = 0);
int runtime_threads();
bool jemalloc_active();
std::string blas_library();  // path of the BLAS the process loaded (for reports and benches)

}  // namespace kotsu
