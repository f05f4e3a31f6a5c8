// Writes a synthetic measurement list and its PCR values for the benchmarks:
//   lim_make_list OUT_DIR ENTRIES
// OUT_DIR/list (sha1 list bank), OUT_DIR/pcrs.json, and evmctl's OUT_DIR/pcrs-sha1.txt,
// OUT_DIR/pcrs-sha256.txt. Mix: ima-ng, unsigned ima-sig (every 5th), ima-buf (every 11th),
// violations (every 97th): nothing that makes evmctl read local files.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "base/file.h"
#include "ima/synthetic_list.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s OUT_DIR ENTRIES\n", argv[0]);
    return 2;
  }
  std::string dir = argv[1];
  lim::ima::SyntheticListSpec spec;
  spec.entries = std::strtoull(argv[2], nullptr, 10);
  spec.violation_every = 97;
  spec.buf_every = 11;
  spec.sig_every = 5;
  auto l = lim::ima::MakeSyntheticList(spec);
  if (!l.ok()) {
    std::fprintf(stderr, "%s\n", l.status().message().c_str());
    return 1;
  }
  std::string json = l->pcrs.ToJson(), t1 = l->pcrs.ToEvmctlText("sha1"),
              t256 = l->pcrs.ToEvmctlText("sha256");
  if (!lim::WriteFileBytes(dir + "/list", l->list).ok() ||
      !lim::WriteFileBytes(dir + "/pcrs.json", lim::AsBytes(json)).ok() ||
      !lim::WriteFileBytes(dir + "/pcrs-sha1.txt", lim::AsBytes(t1)).ok() ||
      !lim::WriteFileBytes(dir + "/pcrs-sha256.txt", lim::AsBytes(t256)).ok()) {
    std::fprintf(stderr, "cannot write to %s\n", dir.c_str());
    return 1;
  }
  return 0;
}
