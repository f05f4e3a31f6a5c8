// libFuzzer target for the .deb reader (src/debs/deb_archive.h): any bytes as a .deb through
// libarchive (ar, then control.tar/data.tar with every decompressor) with small limits, so
// that huge and bomb-like members end in their named error quickly. A package that reads must
// have a name and version, and every file an absolute path without "..", digests of the
// right sizes and a size within the limits.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "debs/deb_archive.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lim::debs::DebLimits limits;
  limits.max_member_bytes = 1 << 20;
  limits.max_total_bytes = 4 << 20;
  limits.max_files = 10000;
  auto p = lim::debs::ReadDebMemory(lim::ByteView(data, size), lim::Sha1Algo(), limits, "fuzz.deb");
  if (!p.ok()) {
    if (p.status().message().rfind("fuzz.deb", 0) != 0) std::abort();
    return 0;
  }
  if (p->name.empty() || p->version.empty()) std::abort();
  for (const auto& f : p->files) {
    if (f.path.empty() || f.path[0] != '/' || f.path.find("/../") != std::string::npos) std::abort();
    if (f.md5.size() != 16 || f.sha256.size() != 32 || f.digest.size() != 20) std::abort();
    if (f.size > limits.max_member_bytes) std::abort();
  }
  return 0;
}
