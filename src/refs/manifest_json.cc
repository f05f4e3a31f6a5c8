#include "refs/manifest_json.h"

#include <cstdio>

#include "base/escape.h"

namespace lim::refs {

bool IsUtf8(std::string_view s) {
  ByteView b = AsBytes(s);
  for (size_t i = 0; i < b.size();) {
    if (b[i] < 0x80) {
      ++i;
      continue;
    }
    size_t n = Utf8SequenceLength(b.subspan(i));
    if (n == 0) return false;
    i += n;
  }
  return true;
}

attest::RuntimePolicy PolicyOfManifest(const Manifest& m, std::vector<std::string>* not_utf8) {
  attest::RuntimePolicy p;
  for (const ManifestEntry& e : m.entries) {
    if (e.digest.empty()) continue;
    if (!IsUtf8(e.path)) {
      if (not_utf8) not_utf8->push_back(e.path);
      continue;
    }
    p.AllowPath(e.path, e.digest);
  }
  return p;
}

namespace {

// A JSON string of s, which must be UTF-8 (every string here went through Escaped()).
void AppendJsonString(std::string_view s, std::string* out) {
  out->push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", static_cast<unsigned>(c));
      out->append(b);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

void AppendMember(const char* key, std::string_view escaped_value, std::string* out) {
  out->append(",\"");
  out->append(key);
  out->append("\":");
  AppendJsonString(escaped_value, out);
}

void AppendNumber(const char* key, uint64_t v, std::string* out) {
  out->append(",\"");
  out->append(key);
  out->append("\":");
  out->append(std::to_string(v));
}

// One manifest entry as a one-line JSON object. Written by hand, not through a json
// document: a scan of /usr has 150,000 of them.
void AppendEntry(const Manifest& m, const ManifestEntry& e, std::string* out) {
  out->append("{\"kind\":\"");
  out->append(FileKindName(e.kind));
  out->push_back('"');
  AppendNumber("size", e.size, out);
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(e.mode));
  AppendMember("mode", mode, out);
  AppendNumber("uid", e.uid, out);
  AppendNumber("gid", e.gid, out);
  if (!e.digest.empty()) AppendMember("digest", std::string(m.algo.kernel_name) + ":" + ToHex(e.digest), out);
  if (e.kind == FileKind::kScript) {
    AppendMember("interpreter", Escaped(e.interpreter), out);
    if (!e.interpreter_arg.empty()) AppendMember("interpreter_arg", Escaped(e.interpreter_arg), out);
  }
  if (e.kind == FileKind::kSymlink) AppendMember("target", Escaped(e.link_target), out);
  if (!e.hardlink_of.empty()) AppendMember("hardlink_of", Escaped(e.hardlink_of), out);
  if (m.owners_looked_up) {
    if (e.owner) {
      out->append(",\"owner\":{\"package\":");
      AppendJsonString(Escaped(e.owner->package), out);
      out->append(",\"version\":");
      AppendJsonString(Escaped(e.owner->version), out);
      out->push_back('}');
    } else {
      out->append(",\"owner\":null");
    }
  }
  if (!e.error.empty()) AppendMember("error", Escaped(e.error), out);
  out->push_back('}');
}

}  // namespace

std::string NativeManifestJson(const Manifest& m, const attest::RuntimePolicy& policy) {
  // The policy's own JSON ends with "\n}": "files" goes in before the brace.
  std::string out = policy.ToNativeJson();
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  if (out.empty() || out.back() != '}') return out;  // cannot happen: ToNativeJson writes an object
  out.pop_back();
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  out.append(",\n \"files\": {");
  bool first = true;
  for (const ManifestEntry& e : m.entries) {
    out.append(first ? "\n  " : ",\n  ");
    first = false;
    AppendJsonString(Escaped(e.path), &out);
    out.append(": ");
    AppendEntry(m, e, &out);
  }
  out.append(first ? "}\n}" : "\n }\n}");
  return out;
}

}  // namespace lim::refs
