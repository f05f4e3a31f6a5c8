#include "ima/entry.h"

#include <cstring>

namespace lim::ima {

ByteView Entry::FieldById(FieldId id) const {
  if (!tmpl) return {};
  for (size_t i = 0; i < num_fields && i < tmpl->fields().size(); ++i) {
    if (tmpl->fields()[i] == id) return fields[i];
  }
  return {};
}

bool Entry::HasField(FieldId id) const {
  if (!tmpl) return false;
  for (FieldId f : tmpl->fields()) {
    if (f == id) return true;
  }
  return false;
}

std::string_view Entry::name() const {
  ByteView n = HasField(FieldId::kNNg) ? FieldById(FieldId::kNNg) : FieldById(FieldId::kN);
  std::string_view s = AsChars(n);
  size_t nul = s.find('\0');
  return nul == std::string_view::npos ? s : s.substr(0, nul);
}

ByteView TemplateDigestInput(const Entry& e, Bytes* scratch) {
  if (!e.tmpl || !e.tmpl->is_legacy_ima()) return e.template_data;
  // kernel: ima_calc_field_array_hash_tfm for "ima": d (20) then name in a zeroed
  // IMA_EVENT_NAME_LEN_MAX + 1 = 256 byte buffer. No lengths.
  scratch->assign(20 + 256, 0);
  ByteView d = e.fields[0];
  std::memcpy(scratch->data(), d.data(), std::min<size_t>(d.size(), 20));
  ByteView n = e.fields[1];
  std::memcpy(scratch->data() + 20, n.data(), std::min<size_t>(n.size(), 255));
  return *scratch;
}

}  // namespace lim::ima
