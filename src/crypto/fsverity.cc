#include "crypto/fsverity.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "crypto/digest.h"

namespace lim {

namespace {

constexpr size_t kBlock = 4096;
constexpr uint8_t kLogBlock = 12;

// Hashes data in zero-padded blocks, appending each block's hash to out.
void HashBlocks(Hasher& h, ByteView data, Bytes* out) {
  Bytes block(kBlock);
  for (size_t off = 0; off < data.size(); off += kBlock) {
    size_t n = std::min(kBlock, data.size() - off);
    std::memcpy(block.data(), data.data() + off, n);
    std::memset(block.data() + n, 0, kBlock - n);
    h.Update(block);
    Bytes d = h.Final();
    out->insert(out->end(), d.begin(), d.end());
  }
}

}  // namespace

Result<Bytes> FsVerityDigest(const HashAlgo& algo, int fd, const std::string& what) {
  uint8_t verity_algo = 0;
  if (std::string_view(algo.kernel_name) == "sha256") verity_algo = 1;
  if (std::string_view(algo.kernel_name) == "sha512") verity_algo = 2;
  if (verity_algo == 0) return Status::Unsupported(std::string("fs-verity has no ") + algo.kernel_name + " (sha256 or sha512)");
  LIM_ASSIGN_OR_RETURN(Hasher h, Hasher::Create(algo));
  // Level 0: one hash per data block, read in 1 MiB chunks (a multiple of the block size).
  Bytes level;
  Bytes buf(1 << 20);
  uint64_t size = 0;
  size_t fill = 0;
  for (;;) {
    ssize_t n = read(fd, buf.data() + fill, buf.size() - fill);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::IoError(what + ": read: " + std::strerror(errno));
    fill += static_cast<size_t>(n);
    size += static_cast<uint64_t>(n);
    if (n == 0 || fill == buf.size()) {
      HashBlocks(h, ByteView(buf.data(), fill), &level);
      fill = 0;
    }
    if (n == 0) break;
  }
  // Upper levels until one hash remains: the root. An empty file's root is all zeros.
  Bytes root(algo.size, 0);
  if (size > 0) {
    while (level.size() > algo.size) {
      Bytes up;
      HashBlocks(h, level, &up);
      level = std::move(up);
    }
    root = level;
  }
  // struct fsverity_descriptor: version, hash_algorithm, log_blocksize, salt_size,
  // __le32 reserved, __le64 data_size, root_hash[64], salt[32], reserved[144].
  uint8_t desc[256] = {};
  desc[0] = 1;
  desc[1] = verity_algo;
  desc[2] = kLogBlock;
  for (int i = 0; i < 8; ++i) desc[8 + i] = static_cast<uint8_t>(size >> (8 * i));
  std::memcpy(desc + 16, root.data(), root.size());
  return Digest(algo, ByteView(desc, sizeof desc));
}

}  // namespace lim
