// Which allocator serves malloc in this process, checked, not assumed: lim-verifier is
// linked with jemalloc (Debian's libjemalloc) because a round's allocations — a HTTP
// request and response, the evidence JSON, a state of maps and the SQLite row — cost glibc
// malloc a fifth of the verifier's CPU under fleet load (docs/performance.md). A build
// without it (LIM_JEMALLOC=OFF, the sanitizer builds) says "glibc malloc".
// Thread-safe.
#pragma once

#include <string>

namespace lim::verifier {

// "jemalloc 5.3.0-… (serves malloc)", "jemalloc … (linked, but malloc is not its)" or
// "glibc malloc". The check allocates and frees 1 MiB and reads jemalloc's per-thread
// allocation counter around it.
std::string AllocatorDescription();

}  // namespace lim::verifier
