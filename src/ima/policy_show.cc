// The show half of policy.h: a rule as the kernel prints it in its policy file
// (ima_policy_show), field for field. Parsing is in policy.cc.
#include <cstdio>

#include "crypto/hash_algo.h"
#include "ima/policy.h"

namespace lim::ima {
namespace {

std::string FormatUuid(const std::array<uint8_t, 16>& u) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
                u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
  return buf;
}

const char* OpChar(CmpOp op) { return op == CmpOp::kGt ? ">" : op == CmpOp::kLt ? "<" : "="; }

void AppendJoined(std::string* out, const std::vector<std::string>& items) {
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) *out += '|';
    *out += items[i];
  }
}

}  // namespace

// ima_policy_show(), field for field.
std::string ShowRule(const PolicyRule& r) {
  using namespace rule_flag;
  std::string out;
  out.reserve(96);
  // The kernel prints every action bit that is set; a parsed rule has exactly one.
  for (uint32_t a : {action::kMeasure, action::kDontMeasure, action::kAppraise, action::kDontAppraise,
                     action::kAudit, action::kHash, action::kDontHash}) {
    if (r.action & a) out += ActionName(a);
  }
  out += ' ';
  if (r.flags & kFunc) {
    out += "func=";
    out += ImaHookName(r.func);
    out += ' ';
  }
  if (r.flags & (kMask | kInmask)) {
    const char* caret = (r.flags & kMask) ? "" : "^";
    for (const auto& n : may::kNames) {
      if (r.mask & n.bit) out += std::string("mask=") + caret + std::string(n.name);
    }
    out += ' ';
  }
  char buf[64];
  if (r.flags & kFsmagic) {
    std::snprintf(buf, sizeof(buf), "fsmagic=0x%llx ", static_cast<unsigned long long>(r.fsmagic));
    out += buf;
  }
  if (r.flags & kFsname) {
    // The kernel formats through a 64-byte buffer: longer names are cut to 63 bytes.
    out += "fsname=" + r.fsname.substr(0, 63) + " ";
  }
  if (r.flags & kKeyrings) {
    out += "keyrings=";
    AppendJoined(&out, r.keyrings);
    out += ' ';
  }
  if (r.flags & kLabel) {
    out += "label=";
    AppendJoined(&out, r.labels);
    out += ' ';
  }
  if (r.flags & kPcr) out += "pcr=" + std::to_string(r.pcr) + " ";
  if (r.flags & kFsuuid) out += "fsuuid=" + FormatUuid(r.fsuuid) + " ";
  // Ids are printed with %d, so ids above INT_MAX read back negative, as in the kernel.
  auto id = [&](const char* name, CmpOp op, uint32_t v) {
    out += name;
    out += OpChar(op);
    out += std::to_string(static_cast<int32_t>(v));
    out += ' ';
  };
  if (r.flags & kUid) id("uid", r.uid_op, r.uid);
  if (r.flags & kEuid) id("euid", r.uid_op, r.uid);
  if (r.flags & kGid) id("gid", r.gid_op, r.gid);
  if (r.flags & kEgid) id("egid", r.gid_op, r.gid);
  if (r.flags & kFowner) id("fowner", r.fowner_op, r.fowner);
  if (r.flags & kFgroup) id("fgroup", r.fgroup_op, r.fgroup);
  if (r.flags & kValidateAlgos) {
    out += "appraise_algos=";
    bool first = true;
    for (const HashAlgo& a : AllHashAlgos()) {  // in kernel id order
      if (a.kernel_id < 0 || !(r.allowed_algos & (1u << a.kernel_id))) continue;
      if (!first) out += ',';
      out += a.kernel_name;
      first = false;
    }
    out += ' ';
  }
  for (int i = 0; i < kLsmFieldCount; ++i) {
    if (r.lsm[i].empty()) continue;
    out += LsmFieldName(i);
    out += '=';
    out += r.lsm[i];
    out += ' ';
  }
  if (!r.template_name.empty()) out += "template=" + r.template_name + " ";
  if (r.flags & kDigsigRequired) {
    if (r.flags & kVerityRequired) out += "appraise_type=sigv3 ";
    else if (r.flags & kModsigAllowed) out += "appraise_type=imasig|modsig ";
    else out += "appraise_type=imasig ";
  }
  if (r.flags & kVerityRequired) out += "digest_type=verity ";
  if (r.flags & kPermitDirectio) out += "permit_directio ";
  return out;
}

std::string ShowPolicy(const Policy& policy) {
  std::string out;
  for (const PolicyRule& r : policy.rules) {
    out += ShowRule(r);
    out += '\n';
  }
  return out;
}

}  // namespace lim::ima
