// Test helper: a binary list (SHA1 template digests, native order) read into plain rows, for
// assertions on what limd wrote. Test thread only.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ima/digest_field.h"
#include "ima/list_reader.h"

namespace lim::daemon::testing {

struct ListRow {
  uint32_t pcr = 0;
  std::string tmpl, name, algo;
  Bytes digest;  // of the d-ng / d-ngv2 field
  Bytes extra;   // the third field (sig, buf), if any
  bool violation = false;
};

inline std::vector<ListRow> ReadListRows(const std::string& path) {
  std::vector<ListRow> out;
  ima::ListOptions o;
  o.bank = Sha1Algo();
  auto r = ima::ListReader::Open(path, o);
  EXPECT_TRUE(r.ok()) << r.status().message();
  if (!r.ok()) return out;
  ima::Entry e;
  for (;;) {
    auto n = (*r)->Next(&e);
    EXPECT_TRUE(n.ok()) << n.status().message();
    if (!n.ok() || !*n) break;
    auto df = ima::ParseDigestField(e.field(0), e.template_name == "ima-ngv2" || e.template_name == "ima-sigv2");
    ListRow row;
    row.pcr = e.pcr;
    row.tmpl = std::string(e.template_name);
    row.name = std::string(e.name());
    row.algo = df.ok() ? std::string(df->algo_name) : "?";
    if (df.ok()) row.digest.assign(df->digest.begin(), df->digest.end());
    if (e.num_fields > 2) row.extra.assign(e.field(2).begin(), e.field(2).end());
    row.violation = e.violation;
    out.push_back(std::move(row));
  }
  return out;
}

inline std::vector<std::string> ListNames(const std::string& path) {
  std::vector<std::string> out;
  for (const auto& r : ReadListRows(path)) out.push_back(r.name);
  return out;
}

}  // namespace lim::daemon::testing
