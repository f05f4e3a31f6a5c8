#include "cli/list_args.h"

#include <unistd.h>

namespace lim::cli {

void ListArgs::AddTo(CLI::App* cmd, bool path_required) {
  auto* opt = cmd->add_option("LIST", path, "binary measurement list ('-' for stdin)");
  if (path_required) opt->required();
  cmd->add_option("--list-bank", list_bank, "bank of the list's template digests (else detected by size)");
  cmd->add_option("--byte-order", byte_order, "integer order of the list: le, be, native (else detected)")
      ->check(CLI::IsMember({"le", "be", "native"}));
}

std::string ListArgs::ResolvedPath() const {
  if (!path.empty()) return path;
  const char* env = std::getenv("LIM_STATE");
  std::string limd = std::string(env ? env : "/var/lib/lim") + "/binary_runtime_measurements";
  if (::access(limd.c_str(), R_OK) == 0) return limd;
  return "/sys/kernel/security/ima/binary_runtime_measurements";
}

Result<ima::ListOptions> ListArgs::Options() const {
  ima::ListOptions o;
  if (!list_bank.empty()) {
    auto a = HashAlgoByName(list_bank);
    if (!a.ok()) return Status::InvalidArgument("--list-bank: " + a.status().message());
    o.bank = *a;
  }
  if (byte_order == "le") o.byte_order = ByteOrder::kLittle;
  if (byte_order == "be") o.byte_order = ByteOrder::kBig;
  if (byte_order == "native") o.byte_order = kNativeOrder;
  return o;
}

}  // namespace lim::cli
