// Flags shared by the measurement-list commands (log, replay, verify): where the list is
// and how to read it. Single-threaded CLI code.
#pragma once

#include <string>

#include "cli/command.h"
#include "ima/list_reader.h"

namespace lim::cli {

struct ListArgs {
  std::string path;
  std::string list_bank;   // --list-bank
  std::string byte_order;  // --byte-order le|be|native (default: detect)

  void AddTo(CLI::App* cmd, bool path_required);
  // The list path: the given one, else the running limd's, else the kernel's.
  std::string ResolvedPath() const;
  Result<ima::ListOptions> Options() const;
};

}  // namespace lim::cli
