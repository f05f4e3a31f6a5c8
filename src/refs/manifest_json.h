// The outputs of `lim scan`: a runtime policy (attest/runtime_policy.h) allowing each
// regular file's digest for its path, written in lim's native JSON — with the manifest
// itself under "files", which the native import accepts and does not keep — or as keylime's
// runtime policy JSON (the manifest has no place there).
//
// "files" is an object keyed by path in lim's escaped form (base/escape.h: a backslash
// doubles, control characters and bytes that are not UTF-8 become \xNN), so every name,
// hostile or not, is one distinct JSON string:
//   {"kind": "elf-executable", "size": 1234, "mode": "0755", "uid": 0, "gid": 0,
//    "digest": "sha256:…", "interpreter": "/bin/sh", "interpreter_arg": "-e",
//    "target": "…" (links), "hardlink_of": "…", "owner": {"package": …, "version": …} | null,
//    "error": "…" (a regular file that could not be hashed)}
// with only the members that apply ("owner" only when owners were looked up: null then means
// owned by no package).
//
// A JSON string must be UTF-8, and a policy path must be the exact bytes a measurement list
// names: a path that is not UTF-8 cannot be a policy path. Such paths are listed in the
// manifest (escaped) and returned in *not_utf8 for the caller to report; they are not in
// "paths". Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "attest/runtime_policy.h"
#include "refs/scan.h"

namespace lim::refs {

bool IsUtf8(std::string_view s);

// The policy: every regular file's digest under its path (paths that are not UTF-8 left out
// and listed in *not_utf8).
attest::RuntimePolicy PolicyOfManifest(const Manifest& m, std::vector<std::string>* not_utf8);

// lim's native runtime policy JSON of policy, with m under "files".
std::string NativeManifestJson(const Manifest& m, const attest::RuntimePolicy& policy);

// The same document in two parts that need not be made on one thread: the policy's JSON
// without its closing brace, then the "files" member and the brace. Joined, byte for byte
// NativeManifestJson.
std::string NativeManifestJsonHead(const attest::RuntimePolicy& policy);
std::string NativeManifestJsonFiles(const Manifest& m);

}  // namespace lim::refs
