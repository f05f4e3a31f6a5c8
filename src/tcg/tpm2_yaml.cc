#include "tcg/tpm2_yaml.h"

#include <cctype>

namespace lim::tcg {

std::map<std::string, std::map<int, std::string>> ParseTpm2EventlogPcrs(std::string_view yaml) {
  std::map<std::string, std::map<int, std::string>> out;
  std::string bank;
  bool in_pcrs = false;
  size_t pos = 0;
  while (pos < yaml.size()) {
    size_t nl = yaml.find('\n', pos);
    std::string_view line = yaml.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? yaml.size() : nl + 1;
    if (line == "pcrs:") {
      in_pcrs = true;
      continue;
    }
    if (!in_pcrs) continue;
    if (line.size() > 3 && line.starts_with("  ") && line[2] != ' ' && line.back() == ':') {
      bank = std::string(line.substr(2, line.size() - 3));
      continue;
    }
    // "    12 : 0xabcd…"
    size_t colon = line.find(" : 0x");
    if (!line.starts_with("    ") || colon == std::string_view::npos || bank.empty()) continue;
    std::string_view idx = line.substr(4, colon - 4);
    while (!idx.empty() && idx.back() == ' ') idx.remove_suffix(1);
    if (idx.empty() || idx.size() > 2 || !std::isdigit(static_cast<unsigned char>(idx[0]))) continue;
    int n = 0;
    for (char c : idx) {
      if (!std::isdigit(static_cast<unsigned char>(c))) {
        n = -1;
        break;
      }
      n = n * 10 + (c - '0');
    }
    if (n < 0) continue;
    out[bank][n] = std::string(line.substr(colon + 5));
  }
  return out;
}

}  // namespace lim::tcg
