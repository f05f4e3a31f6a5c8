#include "debs/control_file.h"

namespace lim::debs {
namespace {

bool EqualsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string_view Stanza::Get(std::string_view name) const {
  for (const auto& [k, v] : fields) {
    if (EqualsNoCase(k, name)) return v;
  }
  return {};
}

bool Stanza::Has(std::string_view name) const {
  for (const auto& f : fields) {
    if (EqualsNoCase(f.first, name)) return true;
  }
  return false;
}

Result<std::vector<Stanza>> ParseControl(std::string_view text, std::string_view where) {
  std::vector<Stanza> out;
  Stanza cur;
  size_t line_no = 0;
  auto place = [&] { return std::string(where) + ":" + std::to_string(line_no) + ": "; };
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (Trim(line).empty()) {
      if (!cur.fields.empty()) out.push_back(std::move(cur));
      cur = Stanza();
      continue;
    }
    if (line.front() == '#' && cur.fields.empty()) continue;  // deb822 comments (not in dpkg's own files)
    if (line.front() == ' ' || line.front() == '\t') {
      if (cur.fields.empty()) return Status::Corrupt(place() + "continuation line before any field");
      cur.fields.back().second += '\n';
      cur.fields.back().second += Trim(line);
      continue;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return Status::Corrupt(place() + "expected \"Field: value\"");
    }
    std::string_view name = line.substr(0, colon);
    for (char c : name) {
      if (static_cast<unsigned char>(c) <= ' ' || static_cast<unsigned char>(c) >= 0x7f) {
        return Status::Corrupt(place() + "field name with a space or control byte");
      }
    }
    if (cur.fields.empty()) cur.line = line_no;
    cur.fields.emplace_back(std::string(name), std::string(Trim(line.substr(colon + 1))));
  }
  if (!cur.fields.empty()) out.push_back(std::move(cur));
  return out;
}

}  // namespace lim::debs
