// libFuzzer target for the dpkg database parsers (src/debs/dpkg_db.h): the status file
// (deb822 stanzas), diversions and md5sums. Any input must parse or fail with a message that
// names the input; parsed packages must have a name, and md5sums entries an absolute path and
// a 16-byte md5.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "debs/control_file.h"
#include "debs/dpkg_db.h"
#include "debs/generated_files.h"
#include "debs/dpkg_version.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto named = [](const lim::Status& s, std::string_view where) {
    if (s.message().rfind(where, 0) != 0) std::abort();
  };
  auto status = lim::debs::ParseStatus(text, "status");
  if (!status.ok()) {
    named(status.status(), "status");
  } else {
    for (const auto& p : *status) {
      if (p.name.empty() || p.info_name.empty()) std::abort();
      // Versions from the input compare antisymmetrically and reflexively.
      if (lim::debs::CompareVersions(p.version, p.version) != 0) std::abort();
      if (lim::debs::CompareVersions(p.version, p.architecture) != -lim::debs::CompareVersions(p.architecture, p.version)) {
        std::abort();
      }
    }
  }
  auto div = lim::debs::ParseDiversions(text, "diversions");
  if (!div.ok()) {
    named(div.status(), "diversions");
  } else {
    for (const auto& d : *div) {
      if (d.from.empty() || d.from[0] != '/' || d.to.empty() || d.to[0] != '/') std::abort();
    }
  }
  auto sums = lim::debs::ParseMd5sums(text, "md5sums");
  if (!sums.ok()) {
    named(sums.status(), "md5sums");
  } else {
    for (const auto& [path, md5] : *sums) {
      if (path.empty() || path[0] != '/' || md5.size() != 16) std::abort();
      (void)lim::debs::GeneratedReason(path);
    }
  }
  return 0;
}
