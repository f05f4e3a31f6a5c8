// IMA templates: the field catalogue (kernel-ima.md §3.3) and template descriptors — the
// built-in templates by name and custom descriptors given as a format string
// ("d-ng|n-ng|sig"). Immutable data after construction; thread-safe to share.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace lim::ima {

enum class FieldId : uint8_t {
  kD,             // 'd'  20-byte SHA1/MD5 digest, no prefix
  kDNg,           // 'd-ng'  "<algo>:" NUL digest
  kDNgV2,         // 'd-ngv2' "<type>:<algo>:" NUL digest
  kN,             // 'n'  name ≤ 255 + NUL
  kNNg,           // 'n-ng' name + NUL
  kSig,           // 'sig' security.ima signature
  kBuf,           // 'buf'
  kDModsig,       // 'd-modsig'
  kModsig,        // 'modsig'
  kEvmsig,        // 'evmsig'
  kXattrNames,    // 'xattrnames'
  kXattrLengths,  // 'xattrlengths'
  kXattrValues,   // 'xattrvalues'
  kIuid,          // 'iuid'
  kIgid,          // 'igid'
  kImode,         // 'imode'
};

// How a field is shown in the ASCII list (the kernel's data_formats).
enum class FieldFormat : uint8_t { kDigest, kDigestWithAlgo, kDigestWithTypeAndAlgo, kString, kHex, kUint };

struct FieldInfo {
  FieldId id;
  const char* name;
  FieldFormat format;
};

const FieldInfo& GetFieldInfo(FieldId id);
Result<FieldId> FieldByName(std::string_view name);

constexpr size_t kMaxTemplateFields = 15;  // IMA_TEMPLATE_NUM_FIELDS_MAX

class Template {
 public:
  // A built-in template name ("ima-ng") or a custom format string ("d-ng|n-ng|iuid").
  static Result<Template> Lookup(std::string_view name);

  // Name as written in list records: built-in name, or the format string for a custom one.
  const std::string& name() const { return name_; }
  const std::string& format() const { return format_; }
  const std::vector<FieldId>& fields() const { return fields_; }
  // The legacy "ima" template: fixed record layout, no data-length word, special digest.
  bool is_legacy_ima() const { return legacy_ima_; }
  bool builtin() const { return builtin_; }

 private:
  std::string name_, format_;
  std::vector<FieldId> fields_;
  bool legacy_ima_ = false;
  bool builtin_ = false;
};

struct BuiltinTemplate {
  const char* name;
  const char* format;
};
const std::vector<BuiltinTemplate>& BuiltinTemplates();

}  // namespace lim::ima
