#include "ima/list_writer.h"

#include <algorithm>
#include <cstring>

#include "crypto/digest.h"
#include "ima/digest_field.h"
#include "ima/ima_signature.h"

namespace lim::ima {

Bytes StringField(std::string_view s) {
  Bytes out(s.begin(), s.end());
  for (auto& c : out) {
    if (c == ' ') c = '_';
  }
  out.push_back(0);
  return out;
}

Bytes U32Field(uint32_t v, ByteOrder order) {
  Bytes out;
  ByteWriter(&out).U32(v, order);
  return out;
}

Bytes U16Field(uint16_t v, ByteOrder order) {
  Bytes out;
  ByteWriter(&out).U16(v, order);
  return out;
}

Record ImaNgRecord(const HashAlgo& file_algo, ByteView file_digest, std::string_view path, uint32_t pcr) {
  return Record{pcr, "ima-ng", {BuildDigestNg(file_algo.kernel_name, file_digest), StringField(path)}, false};
}

Record ImaSigRecord(const HashAlgo& file_algo, ByteView file_digest, std::string_view path, ByteView sig,
                    uint32_t pcr) {
  return Record{pcr, "ima-sig",
                {BuildDigestNg(file_algo.kernel_name, file_digest), StringField(path), Bytes(sig.begin(), sig.end())},
                false};
}

bool FileRecordTemplate(const std::string& t) {
  return t == "ima-ng" || t == "ima-sig" || t == "ima-ngv2" || t == "ima-sigv2";
}

Result<Record> FileRecord(const std::string& t, const HashAlgo& file_algo, ByteView file_digest, std::string_view path,
                          ByteView ima_xattr, uint32_t pcr) {
  if (!FileRecordTemplate(t)) return Status::Unsupported("limd cannot record template " + t);
  bool v2 = t == "ima-ngv2" || t == "ima-sigv2";
  bool sig = t == "ima-sig" || t == "ima-sigv2";
  Record r;
  r.pcr = pcr;
  r.template_name = t;
  r.fields.push_back(v2 ? BuildDigestNgV2("ima", file_algo.kernel_name, file_digest)
                        : BuildDigestNg(file_algo.kernel_name, file_digest));
  r.fields.push_back(StringField(path));
  if (sig) {
    bool is_signature = !ima_xattr.empty() && (ima_xattr[0] == kXattrDigsig || ima_xattr[0] == kXattrVeritySig);
    r.fields.push_back(is_signature ? Bytes(ima_xattr.begin(), ima_xattr.end()) : Bytes());
  }
  return r;
}

Result<Record> ImaBufRecord(const HashAlgo& algo, std::string_view name, ByteView buf, uint32_t pcr) {
  LIM_ASSIGN_OR_RETURN(Bytes d, Digest(algo, buf));
  return Record{pcr, "ima-buf", {BuildDigestNg(algo.kernel_name, d), StringField(name), Bytes(buf.begin(), buf.end())},
                false};
}

Record ViolationRecord(const HashAlgo& algo, std::string_view path, const std::string& template_name) {
  Record r;
  r.template_name = template_name;
  r.violation = true;
  auto t = Template::Lookup(template_name);
  Bytes zeros(algo.size, 0);
  if (t.ok()) {
    for (FieldId f : t->fields()) {
      switch (f) {
        case FieldId::kD: r.fields.push_back(Bytes(20, 0)); break;
        case FieldId::kDNg: r.fields.push_back(BuildDigestNg(algo.kernel_name, zeros)); break;
        case FieldId::kDNgV2: r.fields.push_back(BuildDigestNgV2("ima", algo.kernel_name, zeros)); break;
        case FieldId::kN: {
          Bytes n = StringField(path.substr(0, 255));
          if (t->is_legacy_ima()) n.resize(n.size() - 1);  // 'ima' records store the name without NUL
          r.fields.push_back(std::move(n));
          break;
        }
        case FieldId::kNNg: r.fields.push_back(StringField(path)); break;
        default: r.fields.push_back({}); break;
      }
    }
  }
  return r;
}

Result<Bytes> TemplateDigestInputOf(const Record& r, ByteOrder order) {
  LIM_ASSIGN_OR_RETURN(Template t, Template::Lookup(r.template_name));
  if (r.fields.size() != t.fields().size()) {
    return Status::InvalidArgument("template " + r.template_name + " needs " + std::to_string(t.fields().size()) +
                                   " fields, got " + std::to_string(r.fields.size()));
  }
  Bytes out;
  if (t.is_legacy_ima()) {
    if (r.fields[0].size() != 20 || r.fields[1].size() > 255) return Status::InvalidArgument("bad 'ima' record fields");
    out.assign(276, 0);
    std::memcpy(out.data(), r.fields[0].data(), 20);
    if (!r.fields[1].empty()) std::memcpy(out.data() + 20, r.fields[1].data(), r.fields[1].size());
    return out;
  }
  ByteWriter w(&out);
  for (const auto& f : r.fields) {
    w.U32(static_cast<uint32_t>(f.size()), order);
    w.Append(f);
  }
  return out;
}

Result<Bytes> TemplateDigestOf(const Record& r, const HashAlgo& bank, ByteOrder order) {
  if (r.violation) return Bytes(bank.size, 0);
  LIM_ASSIGN_OR_RETURN(Bytes in, TemplateDigestInputOf(r, order));
  return Digest(bank, in);
}

Record RecordFromEntry(const Entry& e, ByteOrder out_order) {
  Record r;
  r.pcr = e.pcr;
  r.template_name = std::string(e.template_name);
  r.violation = e.violation;
  for (size_t i = 0; i < e.num_fields; ++i) {
    Bytes f(e.fields[i].begin(), e.fields[i].end());
    FieldId id = e.tmpl->fields()[i];
    if (out_order != e.order) {
      // Integer payloads follow the list's byte order (ima_canonical_fmt).
      auto swap_each = [&f](size_t width) {
        if (width < 2 || f.size() % width != 0) return;
        for (size_t k = 0; k < f.size(); k += width) std::reverse(f.begin() + static_cast<long>(k), f.begin() + static_cast<long>(k + width));
      };
      if (id == FieldId::kIuid || id == FieldId::kIgid || id == FieldId::kImode) swap_each(f.size());
      if (id == FieldId::kXattrLengths) swap_each(4);
    }
    r.fields.push_back(std::move(f));
  }
  return r;
}

Status ListWriter::Append(const Record& r, Bytes* out) {
  LIM_ASSIGN_OR_RETURN(Template t, Template::Lookup(r.template_name));
  LIM_ASSIGN_OR_RETURN(Bytes digest, TemplateDigestOf(r, bank_, order_));
  ByteWriter w(out);
  w.U32(r.pcr, order_);
  w.Append(digest);
  w.U32(static_cast<uint32_t>(r.template_name.size()), order_);
  w.Append(r.template_name);
  if (t.is_legacy_ima()) {
    w.Append(r.fields[0]);
    w.U32(static_cast<uint32_t>(r.fields[1].size()), order_);
    w.Append(r.fields[1]);
    return Status::Ok();
  }
  uint32_t len = 0;
  for (const auto& f : r.fields) len += static_cast<uint32_t>(4 + f.size());
  w.U32(len, order_);
  for (const auto& f : r.fields) {
    w.U32(static_cast<uint32_t>(f.size()), order_);
    w.Append(f);
  }
  return Status::Ok();
}

}  // namespace lim::ima
