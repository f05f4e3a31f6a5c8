// libarchive, loaded when the first .deb is read (dlopen of libarchive.so.13) rather than
// linked into every program that links lim_debs: Debian's libarchive pulls in libxml2 and
// with it ICU's 30 MiB data file, and the lim CLI must stay within a 64 MiB address space for
// its hostile-input guarantees (src/cli/hostile_input_test.cc) in commands that never read a
// .deb. The functions are libarchive's own, called through this table. Loading happens once
// (std::call_once); the table is immutable afterwards: thread-safe.
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include "base/status.h"

namespace lim::debs {

#define LIM_LIBARCHIVE_FUNCTIONS(X)                                                               \
  X(archive_read_new) X(archive_read_free) X(archive_error_string) X(archive_set_error)           \
  X(archive_read_next_header) X(archive_read_data) X(archive_read_open) X(archive_read_open_filename) \
  X(archive_read_open_memory) X(archive_read_support_format_ar) X(archive_read_support_format_tar) \
  X(archive_read_support_filter_gzip) X(archive_read_support_filter_xz)                          \
  X(archive_read_support_filter_lzma) X(archive_read_support_filter_zstd)                        \
  X(archive_read_support_filter_bzip2) X(archive_read_support_filter_none)                       \
  X(archive_entry_pathname) X(archive_entry_hardlink) X(archive_entry_filetype) X(archive_entry_size) \
  X(archive_entry_perm)

struct ArchiveApi {
#define LIM_LIBARCHIVE_MEMBER(name) decltype(&::name) name = nullptr;
  LIM_LIBARCHIVE_FUNCTIONS(LIM_LIBARCHIVE_MEMBER)
#undef LIM_LIBARCHIVE_MEMBER
};

// The loaded table, or why libarchive could not be loaded (not installed, a symbol missing).
Result<const ArchiveApi*> LoadArchiveApi();

}  // namespace lim::debs
