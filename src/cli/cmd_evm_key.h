// `lim evm key seal|unseal` (cmd_evm_key.cc), added under the `lim evm` command that
// cmd_appraise.cc creates: registration order between files is not defined, so the parent
// calls this. Single-threaded, at start.
#pragma once

#include <CLI/CLI.hpp>

namespace lim::cli {

void RegisterEvmKey(CLI::App* evm);

}  // namespace lim::cli
