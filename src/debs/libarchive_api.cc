#include "debs/libarchive_api.h"

#include <dlfcn.h>

#include <mutex>
#include <string>

namespace lim::debs {

Result<const ArchiveApi*> LoadArchiveApi() {
  static std::once_flag once;
  static ArchiveApi api;
  static std::string error;
  std::call_once(once, [] {
    // The soname of libarchive 3.x (Debian's libarchive13); the unversioned name is the -dev link.
    void* h = dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL);
    if (!h) h = dlopen("libarchive.so", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      const char* e = dlerror();
      error = std::string("libarchive is needed to read .deb files (Debian: libarchive13): ") + (e ? e : "dlopen failed");
      return;
    }
#define LIM_LIBARCHIVE_LOAD(name)                                                    \
  api.name = reinterpret_cast<decltype(api.name)>(dlsym(h, #name));                  \
  if (!api.name && error.empty()) error = "libarchive: no symbol " #name;
    LIM_LIBARCHIVE_FUNCTIONS(LIM_LIBARCHIVE_LOAD)
#undef LIM_LIBARCHIVE_LOAD
    // The handle stays open for the life of the process: the table points into it.
  });
  if (!error.empty()) return Status::Unavailable(error);
  return &api;
}

}  // namespace lim::debs
