#include "daemon/trusted_keys.h"

#include <cstdio>

#include "ima/list_writer.h"

namespace lim::daemon {

Result<size_t> RecordTrustedKeys(const Measurer& measurer, MeasurementList* list, const std::vector<PublicKey>& keys,
                                 const std::string& keyring, const std::function<void(const std::string&)>& log) {
  ima::PolicyAccess pa;
  pa.func = ima::ImaHook::kKeyCheck;
  pa.func_data = keyring;
  pa.has_func_data = true;  // uid 0: limd loads them
  ima::PolicyDecision d = measurer.DecideBuffer(pa);
  const ListConfig& lc = list->config();
  int pcr = d.of(ima::ActionClass::kMeasure).yes && d.pcr >= 0 ? d.pcr : lc.pcr;
  size_t appended = 0;
  for (const auto& k : keys) {
    char id[16];
    std::snprintf(id, sizeof id, "%08x", k.key_id());
    if (k.der().empty()) {
      if (log) log("trusted key " + std::string(id) + " (" + k.origin() + ") is a bare public key: not recorded in the list");
      continue;
    }
    LIM_ASSIGN_OR_RETURN(ima::Record rec, ima::ImaBufRecord(lc.hash, keyring, k.der(), static_cast<uint32_t>(pcr)));
    auto added = list->Append(rec);
    if (!added.ok()) return added.status().WithPrefix("recording trusted key " + std::string(id));
    if (*added) appended++;
    if (log) log("trusted key " + std::string(id) + " " + k.description() + " (" + k.origin() + ") on " + keyring + ": " +
                 (*added ? "recorded" : "already in the list"));
  }
  return appended;
}

}  // namespace lim::daemon
