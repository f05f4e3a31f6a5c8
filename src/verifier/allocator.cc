#include "verifier/allocator.h"

#include <cstdint>
#include <cstdlib>

#ifdef LIM_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

namespace lim::verifier {

std::string AllocatorDescription() {
#ifdef LIM_JEMALLOC
  const char* version = nullptr;
  size_t len = sizeof(version);
  if (mallctl("version", &version, &len, nullptr, 0) != 0 || version == nullptr) return "jemalloc (no version)";
  // Whether jemalloc serves malloc: its per-thread byte count grows by a 1 MiB malloc.
  // Unknown (no count) leaves the version alone.
  std::string suffix;
  uint64_t before = 0, after = 0;
  len = sizeof(before);
  if (mallctl("thread.allocated", &before, &len, nullptr, 0) == 0) {
    // volatile: the compiler may not elide a malloc/free pair whose result is unused.
    void* volatile p = std::malloc(1 << 20);
    std::free(p);
    len = sizeof(after);
    if (mallctl("thread.allocated", &after, &len, nullptr, 0) == 0) {
      suffix = after - before >= (1u << 20) ? " (serves malloc)" : " (linked, but malloc is not its)";
    }
  }
  return std::string("jemalloc ") + version + suffix;
#else
  return "glibc malloc";
#endif
}

}  // namespace lim::verifier
