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
  p.ReservePaths(m.entries.size());
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

// The JSON string of Escaped(s). A plain string (base/escape.h) is copied without the two
// intermediate strings (a scan writes 150,000 names).
void AppendEscapedString(std::string_view s, std::string* out) {
  if (PlainForJson(s)) {
    out->push_back('"');
    out->append(s);
    out->push_back('"');
  } else {
    AppendJsonString(Escaped(s), out);
  }
}

// ,"key":"value" with value escaped (Escaped) on the way.
void AppendMember(const char* key, std::string_view value, std::string* out) {
  out->append(",\"");
  out->append(key);
  out->append("\":");
  AppendEscapedString(value, out);
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
  if (!e.digest.empty()) {
    out->append(",\"digest\":\"");
    out->append(m.algo.kernel_name);  // a name from crypto/hash_algo: plain ASCII
    out->push_back(':');
    AppendHex(e.digest, out);
    out->push_back('"');
  }
  if (e.kind == FileKind::kScript) {
    AppendMember("interpreter", e.interpreter, out);
    if (!e.interpreter_arg.empty()) AppendMember("interpreter_arg", e.interpreter_arg, out);
  }
  if (e.kind == FileKind::kSymlink) AppendMember("target", e.link_target, out);
  if (!e.hardlink_of.empty()) AppendMember("hardlink_of", e.hardlink_of, out);
  if (m.owners_looked_up) {
    if (e.owner) {
      out->append(",\"owner\":{\"package\":");
      AppendEscapedString(e.owner->package, out);
      out->append(",\"version\":");
      AppendEscapedString(e.owner->version, out);
      out->push_back('}');
    } else {
      out->append(",\"owner\":null");
    }
  }
  if (!e.error.empty()) AppendMember("error", e.error, out);
  out->push_back('}');
}

}  // namespace

std::string NativeManifestJsonHead(const attest::RuntimePolicy& policy) {
  // The policy's own JSON ends with "\n}": "files" goes in before the brace.
  std::string out = policy.ToNativeJson();
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  if (out.empty() || out.back() != '}') return out;  // cannot happen: ToNativeJson writes an object
  out.pop_back();
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

std::string NativeManifestJsonFiles(const Manifest& m) {
  std::string out;
  size_t bytes = 64;
  for (const ManifestEntry& e : m.entries) bytes += 2 * e.path.size() + e.digest.size() * 2 + 160;
  out.reserve(bytes);
  out.append(",\n \"files\": {");
  bool first = true;
  for (const ManifestEntry& e : m.entries) {
    out.append(first ? "\n  " : ",\n  ");
    first = false;
    AppendEscapedString(e.path, &out);
    out.append(": ");
    AppendEntry(m, e, &out);
  }
  out.append(first ? "}\n}" : "\n }\n}");
  return out;
}

std::string NativeManifestJson(const Manifest& m, const attest::RuntimePolicy& policy) {
  return NativeManifestJsonHead(policy) + NativeManifestJsonFiles(m);
}

}  // namespace lim::refs
