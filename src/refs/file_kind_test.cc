#include "refs/file_kind.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>

#include "base/bytes.h"
#include "refs/refs_test_util.h"

namespace lim::refs {
namespace {

// An ELF header (and program header table at phoff) of the given class, byte order and
// type, with a PT_INTERP among its program headers when interp.
Bytes Elf(bool is64, ByteOrder order, uint16_t type, bool interp, uint64_t phoff = 0) {
  Bytes b;
  ByteWriter w(&b);
  w.Append(std::string_view("\x7f" "ELF", 4));
  w.U8(is64 ? 2 : 1);
  w.U8(order == ByteOrder::kLittle ? 1 : 2);
  w.U8(1);
  b.resize(16, 0);
  w.U16(type, order);
  w.U16(62, order);  // e_machine
  w.U32(1, order);   // e_version
  const uint16_t phentsize = is64 ? 56 : 32, phnum = 3;
  if (phoff == 0) phoff = is64 ? 64 : 52;
  if (is64) {
    w.U64(0, order);      // e_entry
    w.U64(phoff, order);  // e_phoff
    w.U64(0, order);      // e_shoff
    w.U32(0, order);      // e_flags
    w.U16(64, order);     // e_ehsize
  } else {
    w.U32(0, order);
    w.U32(static_cast<uint32_t>(phoff), order);
    w.U32(0, order);
    w.U32(0, order);
    w.U16(52, order);
  }
  w.U16(phentsize, order);
  w.U16(phnum, order);
  w.U16(0, order);  // e_shentsize
  w.U16(0, order);  // e_shnum
  w.U16(0, order);  // e_shstrndx
  b.resize(phoff, 0);
  for (uint16_t i = 0; i < phnum; ++i) {
    size_t at = b.size();
    w.U32(i == 1 && interp ? 3 : 1, order);  // PT_INTERP or PT_LOAD
    b.resize(at + phentsize, 0);
  }
  return b;
}

TEST(FileKindTest, ElfTypesFromTheHeader) {
  for (bool is64 : {true, false}) {
    for (ByteOrder order : {ByteOrder::kLittle, ByteOrder::kBig}) {
      SCOPED_TRACE(std::to_string(is64) + "/" + std::to_string(order == ByteOrder::kLittle));
      EXPECT_EQ(Classify(Elf(is64, order, 1, false)).kind, FileKind::kElfRelocatable);
      EXPECT_EQ(Classify(Elf(is64, order, 2, false)).kind, FileKind::kElfExecutable);
      EXPECT_EQ(Classify(Elf(is64, order, 3, true)).kind, FileKind::kElfExecutable);  // PIE
      EXPECT_EQ(Classify(Elf(is64, order, 3, false)).kind, FileKind::kElfShared);
      EXPECT_EQ(Classify(Elf(is64, order, 4, false)).kind, FileKind::kElfOther);  // core
    }
  }
}

TEST(FileKindTest, TruncatedOrOddElfIsElfOther) {
  Bytes pie = Elf(true, ByteOrder::kLittle, 3, true);
  EXPECT_EQ(Classify(ByteView(pie).subspan(0, 10)).kind, FileKind::kElfOther);
  EXPECT_EQ(Classify(ByteView(pie).subspan(0, 80)).kind, FileKind::kElfOther);  // table cut, no fd
  Bytes bad_class = pie;
  bad_class[4] = 7;
  EXPECT_EQ(Classify(bad_class).kind, FileKind::kElfOther);
  Bytes huge_phoff = pie;
  huge_phoff[32 + 5] = 1;  // e_phoff = 2^40 + 64: beyond any file
  EXPECT_EQ(Classify(huge_phoff).kind, FileKind::kElfOther);
}

TEST(FileKindTest, ProgramHeadersBeyondTheFirstChunkAreReadFromTheFile) {
  Bytes pie = Elf(true, ByteOrder::kLittle, 3, true, 8192);
  std::string path = testing::OpenTempDir() + "/pie";
  testing::WriteFile(path, std::string(AsChars(pie)));
  int fd = open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(Classify(ByteView(pie).subspan(0, 4096), fd).kind, FileKind::kElfExecutable);
  EXPECT_EQ(Classify(ByteView(pie).subspan(0, 4096)).kind, FileKind::kElfOther);
  close(fd);
}

TEST(FileKindTest, ScriptInterpreterAndArgumentAsTheKernelSplitsThem) {
  Classified c = Classify(AsBytes("#! /usr/bin/env  python3 -u \t\nprint()\n"));
  EXPECT_EQ(c.kind, FileKind::kScript);
  EXPECT_EQ(c.interpreter, "/usr/bin/env");
  EXPECT_EQ(c.interpreter_arg, "python3 -u");
  c = Classify(AsBytes("#!/bin/sh"));
  EXPECT_EQ(c.interpreter, "/bin/sh");
  EXPECT_EQ(c.interpreter_arg, "");
  // Only the first 256 bytes count (BINPRM_BUF_SIZE), as in binfmt_script.
  std::string long_line = "#!/bin/" + std::string(300, 'x') + "\n";
  c = Classify(AsBytes(long_line));
  EXPECT_EQ(c.interpreter.size(), 256u - 2);
  EXPECT_EQ(Classify(AsBytes("#")).kind, FileKind::kRegular);
  EXPECT_EQ(Classify(AsBytes("plain text")).kind, FileKind::kRegular);
  EXPECT_EQ(Classify(ByteView()).kind, FileKind::kRegular);
}

TEST(FileKindTest, RealProgramsOnThisHost) {
  // /proc/self/exe is this test program: a PIE or a static ET_EXEC, an executable either way.
  std::FILE* f = std::fopen("/proc/self/exe", "rb");
  ASSERT_NE(f, nullptr);
  Bytes head(4096);
  head.resize(std::fread(head.data(), 1, head.size(), f));
  EXPECT_EQ(Classify(head, fileno(f)).kind, FileKind::kElfExecutable);
  std::fclose(f);
  EXPECT_EQ(FileKindName(FileKind::kElfShared), "elf-shared");
}

}  // namespace
}  // namespace lim::refs
