#include "ima/template.h"

namespace lim::ima {

namespace {

const FieldInfo kFields[] = {
    {FieldId::kD, "d", FieldFormat::kDigest},
    {FieldId::kDNg, "d-ng", FieldFormat::kDigestWithAlgo},
    {FieldId::kDNgV2, "d-ngv2", FieldFormat::kDigestWithTypeAndAlgo},
    {FieldId::kN, "n", FieldFormat::kString},
    {FieldId::kNNg, "n-ng", FieldFormat::kString},
    {FieldId::kSig, "sig", FieldFormat::kHex},
    {FieldId::kBuf, "buf", FieldFormat::kHex},
    {FieldId::kDModsig, "d-modsig", FieldFormat::kDigestWithAlgo},
    {FieldId::kModsig, "modsig", FieldFormat::kHex},
    {FieldId::kEvmsig, "evmsig", FieldFormat::kHex},
    {FieldId::kXattrNames, "xattrnames", FieldFormat::kString},
    {FieldId::kXattrLengths, "xattrlengths", FieldFormat::kHex},
    {FieldId::kXattrValues, "xattrvalues", FieldFormat::kHex},
    {FieldId::kIuid, "iuid", FieldFormat::kUint},
    {FieldId::kIgid, "igid", FieldFormat::kUint},
    {FieldId::kImode, "imode", FieldFormat::kUint},
};

const std::vector<BuiltinTemplate> kBuiltins = {
    {"ima", "d|n"},
    {"ima-ng", "d-ng|n-ng"},
    {"ima-sig", "d-ng|n-ng|sig"},
    {"ima-ngv2", "d-ngv2|n-ng"},
    {"ima-sigv2", "d-ngv2|n-ng|sig"},
    {"ima-buf", "d-ng|n-ng|buf"},
    {"ima-modsig", "d-ng|n-ng|sig|d-modsig|modsig"},
    {"evm-sig", "d-ng|n-ng|evmsig|xattrnames|xattrlengths|xattrvalues|iuid|igid|imode"},
};

}  // namespace

const FieldInfo& GetFieldInfo(FieldId id) { return kFields[static_cast<size_t>(id)]; }

Result<FieldId> FieldByName(std::string_view name) {
  for (const auto& f : kFields) {
    if (name == f.name) return f.id;
  }
  return Status::Unsupported("unknown template field '" + std::string(name) + "'");
}

const std::vector<BuiltinTemplate>& BuiltinTemplates() { return kBuiltins; }

Result<Template> Template::Lookup(std::string_view name) {
  Template t;
  t.name_ = std::string(name);
  for (const auto& b : kBuiltins) {
    if (name == b.name) {
      t.format_ = b.format;
      t.builtin_ = true;
      t.legacy_ima_ = (name == "ima");
      break;
    }
  }
  if (!t.builtin_) t.format_ = t.name_;
  if (t.format_.empty()) return Status::Unsupported("empty template name");
  std::string_view fmt = t.format_;
  while (true) {
    size_t bar = fmt.find('|');
    std::string_view id = fmt.substr(0, bar);
    auto f = FieldByName(id);
    if (!f.ok()) {
      return Status::Unsupported("unknown template '" + t.name_ + "'" +
                                 (t.builtin_ ? "" : " (not a built-in name, and '" + std::string(id) +
                                                        "' is not a template field)"));
    }
    t.fields_.push_back(*f);
    if (bar == std::string_view::npos) break;
    fmt.remove_prefix(bar + 1);
  }
  if (t.fields_.size() > kMaxTemplateFields) {
    return Status::Unsupported("template '" + t.name_ + "' has more than 15 fields");
  }
  return t;
}

}  // namespace lim::ima
