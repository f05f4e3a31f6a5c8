#include "refs/file_kind.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>

namespace lim::refs {

namespace {

constexpr uint16_t kEtRel = 1, kEtExec = 2, kEtDyn = 3;
constexpr uint32_t kPtInterp = 3;
constexpr size_t kBinprmBufSize = 256;  // the kernel reads no more of a script's first line

// Reads n bytes at offset from head, or from fd when head is too short. False when neither has them.
bool ReadAt(ByteView head, int fd, uint64_t offset, size_t n, Bytes* out) {
  out->resize(n);
  if (offset <= head.size() && n <= head.size() - offset) {
    std::copy_n(head.begin() + static_cast<ptrdiff_t>(offset), n, out->begin());
    return true;
  }
  if (fd < 0 || offset > static_cast<uint64_t>(INT64_MAX)) return false;
  size_t got = 0;
  while (got < n) {
    ssize_t r = pread(fd, out->data() + got, n - got, static_cast<off_t>(offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

FileKind ClassifyElf(ByteView head, int fd) {
  if (head.size() < 20) return FileKind::kElfOther;
  const uint8_t cls = head[4], data = head[5];
  if ((cls != 1 && cls != 2) || (data != 1 && data != 2)) return FileKind::kElfOther;
  const bool is64 = cls == 2;
  const ByteOrder order = data == 1 ? ByteOrder::kLittle : ByteOrder::kBig;
  ByteReader r(head);
  uint16_t type = 0;
  if (!r.Skip(16) || !r.ReadU16(&type, order)) return FileKind::kElfOther;
  if (type == kEtRel) return FileKind::kElfRelocatable;
  if (type == kEtExec) return FileKind::kElfExecutable;
  if (type != kEtDyn) return FileKind::kElfOther;
  // ET_DYN: a program (PIE) has an interpreter; a library has none.
  uint64_t phoff = 0;
  uint16_t phentsize = 0, phnum = 0;
  ByteReader h(head);
  if (is64) {
    if (!h.Skip(32) || !h.ReadU64(&phoff, order) || !h.Skip(14) || !h.ReadU16(&phentsize, order) ||
        !h.ReadU16(&phnum, order)) {
      return FileKind::kElfOther;
    }
  } else {
    uint32_t off32 = 0;
    if (!h.Skip(28) || !h.ReadU32(&off32, order) || !h.Skip(10) || !h.ReadU16(&phentsize, order) ||
        !h.ReadU16(&phnum, order)) {
      return FileKind::kElfOther;
    }
    phoff = off32;
  }
  if (phentsize < 4 || phnum == 0xffff) return FileKind::kElfOther;  // PN_XNUM: count elsewhere, never in practice
  Bytes table;
  if (!ReadAt(head, fd, phoff, size_t{phentsize} * phnum, &table)) return FileKind::kElfOther;
  for (size_t i = 0; i < phnum; ++i) {
    if (LoadU32(table.data() + i * phentsize, order) == kPtInterp) return FileKind::kElfExecutable;
  }
  return FileKind::kElfShared;
}

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

Classified ClassifyScript(ByteView head) {
  Classified c;
  c.kind = FileKind::kScript;
  std::string_view line = AsChars(head.subspan(0, std::min(head.size(), kBinprmBufSize))).substr(2);
  if (size_t nl = line.find('\n'); nl != std::string_view::npos) line = line.substr(0, nl);
  size_t i = 0;
  while (i < line.size() && IsBlank(line[i])) ++i;
  size_t start = i;
  while (i < line.size() && !IsBlank(line[i])) ++i;
  c.interpreter = std::string(line.substr(start, i - start));
  while (i < line.size() && IsBlank(line[i])) ++i;
  std::string_view arg = line.substr(i);
  while (!arg.empty() && IsBlank(arg.back())) arg.remove_suffix(1);
  c.interpreter_arg = std::string(arg);
  return c;
}

}  // namespace

std::string_view FileKindName(FileKind k) {
  switch (k) {
    case FileKind::kRegular: return "regular";
    case FileKind::kElfExecutable: return "elf-executable";
    case FileKind::kElfShared: return "elf-shared";
    case FileKind::kElfRelocatable: return "elf-relocatable";
    case FileKind::kElfOther: return "elf-other";
    case FileKind::kScript: return "script";
    case FileKind::kSymlink: return "symlink";
    case FileKind::kOther: return "other";
  }
  return "other";
}

Classified Classify(ByteView head, int fd) {
  if (head.size() >= 4 && head[0] == 0x7f && head[1] == 'E' && head[2] == 'L' && head[3] == 'F') {
    Classified c;
    c.kind = ClassifyElf(head, fd);
    return c;
  }
  if (head.size() >= 2 && head[0] == '#' && head[1] == '!') return ClassifyScript(head);
  return Classified{};
}

}  // namespace lim::refs
