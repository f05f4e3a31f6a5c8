#include "cli/tpm_pcrs.h"

#include "tpm/tpm.h"

namespace lim::cli {

Result<PcrSet> ReadTpmPcrs(const std::string& tcti) {
  LIM_ASSIGN_OR_RETURN(auto tpm, tpm::OpenTpm(tcti.empty() ? tpm::DefaultTcti() : tcti));
  std::set<int> all;
  for (int i = 0; i < 24; ++i) all.insert(i);
  LIM_ASSIGN_OR_RETURN(tpm::PcrSelection sel, tpm::FullSelection(*tpm, all));
  LIM_ASSIGN_OR_RETURN(tpm::PcrValues values, tpm->ReadPcrs(sel));
  return tpm::ToPcrSet(values);
}

}  // namespace lim::cli
