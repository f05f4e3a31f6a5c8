// FileKind: what a file in a reference manifest is, told from its first bytes (which the
// scan reads anyway while hashing): an ELF object by its header (executable, shared object,
// relocatable, other), a script by the kernel's "#!" rule (binfmt_script: the interpreter
// and its one optional argument from the first line, at most 256 bytes), else a plain
// regular file; links and special files from their mode. Pure functions; thread-safe.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "base/bytes.h"

namespace lim::refs {

enum class FileKind {
  kRegular,
  kElfExecutable,   // ET_EXEC, or ET_DYN with a PT_INTERP (PIE programs; also libc.so.6,
                    // which runs as a program)
  kElfShared,       // ET_DYN without PT_INTERP
  kElfRelocatable,  // ET_REL (.o, kernel modules)
  kElfOther,        // core files, other types, headers that do not parse
  kScript,          // "#!"
  kSymlink,
  kOther,           // fifo, socket, device
};

// "regular", "elf-executable", "elf-shared", "elf-relocatable", "elf-other", "script",
// "symlink", "other".
std::string_view FileKindName(FileKind k);

struct Classified {
  FileKind kind = FileKind::kRegular;
  std::string interpreter;      // scripts: the path after "#!"
  std::string interpreter_arg;  // scripts: the rest of the line, trimmed ("" when none)
};

// head: the file's first bytes (what is there, up to the whole read chunk). fd, when ≥ 0, is
// read with pread for ELF program headers that lie beyond head.
Classified Classify(ByteView head, int fd = -1);

}  // namespace lim::refs
