// The fs-verity file digest computed in user space (Documentation/filesystems/fsverity.rst,
// "File digest computation"): a Merkle tree over 4096-byte blocks with no salt, its root
// hash in a 256-byte fsverity_descriptor, and the digest of that descriptor — what
// `fsverity digest` prints and what IMA's sigv3 (type 0x06) signatures sign through
// ima_file_id. Lets lim check such signatures on kernels without CONFIG_FS_VERITY.
// Stateless, thread-safe.
#pragma once

#include <string>

#include "base/hex.h"
#include "base/status.h"
#include "crypto/hash_algo.h"

namespace lim {

// algo: sha256 or sha512 (the algorithms fs-verity defines). Reads fd from its current
// offset to the end.
Result<Bytes> FsVerityDigest(const HashAlgo& algo, int fd, const std::string& what);

}  // namespace lim
