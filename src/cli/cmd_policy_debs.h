// `lim policy from-debs|from-dpkg|update|owner`: runtime policies from Debian packages
// (src/debs). Registered under `lim policy` by cmd_policy.cc.
#pragma once

#include <CLI/CLI.hpp>

namespace lim::cli {

void RegisterPolicyDebs(CLI::App* policy);

}  // namespace lim::cli
