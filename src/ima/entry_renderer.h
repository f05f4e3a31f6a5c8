// EntryRenderer: one list entry as a kernel list file of some bank shows it — the ASCII
// line of ascii_runtime_measurements_<bank>, a JSON line, or the binary record of
// binary_runtime_measurements_<bank> — whatever bank the list itself was read in. The one
// place a list is re-rendered into another bank: `lim log --bank` and limd's securityfs view
// both use it. Template digests in another bank are computed per entry (kernel-ima.md
// §4.1); a violation shows zeros in every bank. Single-threaded object.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "base/bytes.h"
#include "base/status.h"
#include "crypto/hash_algo.h"
#include "ima/entry.h"
#include "ima/list_writer.h"
#include "ima/replay.h"

namespace lim::ima {

enum class RenderFormat : uint8_t { kAscii, kJson, kBinary };

class EntryRenderer {
 public:
  // Entries come from a list read in list_bank; they are shown for bank. binary_order: the
  // byte order of binary records (kBinary only).
  static Result<EntryRenderer> Create(RenderFormat format, const HashAlgo& list_bank, const HashAlgo& bank,
                                      ByteOrder binary_order = kNativeOrder);

  const HashAlgo& bank() const { return bank_; }
  // e's template digest in bank(); valid until the next call.
  ByteView BankDigest(const Entry& e);
  // Appends e's rendering (a line with its newline for kAscii/kJson, a record for kBinary).
  Status Append(const Entry& e, std::string* out);

 private:
  EntryRenderer(RenderFormat format, const HashAlgo& bank, ByteOrder order) : format_(format), bank_(bank), order_(order) {}
  RenderFormat format_;
  HashAlgo bank_;
  ByteOrder order_;
  std::optional<BankDigester> digester_;  // kAscii/kJson in a bank other than the list's
  std::optional<ListWriter> writer_;      // kBinary
  Bytes scratch_;
  uint8_t digest_[64];  // the largest digest: sha512, sha3-512, streebog512
};

}  // namespace lim::ima
