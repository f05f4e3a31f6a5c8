#include "verifier/web_pages.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <tuple>

namespace lim::verifier::web {

namespace {

using Params = std::vector<std::pair<std::string, std::string>>;

constexpr size_t kFleetPer = 100, kFleetMaxPer = 1000;
constexpr size_t kRowsPer = 200, kRowsMaxPer = 2000;
constexpr size_t kHistoryPer = 100, kHistoryMaxPer = 1000;
constexpr size_t kPathsPer = 200, kPathsMaxPer = 2000;

int StatusRank(attest::AgentStatus s) {
  switch (s) {
    case attest::AgentStatus::kFailed: return 0;
    case attest::AgentStatus::kUnreachable: return 1;
    case attest::AgentStatus::kEnrolling: return 2;
    case attest::AgentStatus::kAttested: return 3;
  }
  return 4;
}

std::string Get(const Query& q, const char* key) {
  auto it = q.find(key);
  return it == q.end() ? std::string() : it->second;
}

std::string HostLink(const std::string& id) {
  return "<a href=\"" + Html(Url("/host", {{"id", id}})) + "\">" + Html(id) + "</a>";
}

std::string PolicyLink(const std::string& name) {
  if (name.empty()) return "<span class=\"note\">none</span>";
  return "<a href=\"" + Html(Url("/policy", {{"name", name}})) + "\">" + Html(name) + "</a>";
}

std::string StateCell(attest::AgentStatus s) {
  std::string name = attest::AgentStatusName(s);
  return "<span class=\"state state-" + name + "\">" + name + "</span>";
}

// The finding's fields as one explanation: what was found, against what, and why.
std::string Explain(const attest::Finding& f) {
  std::string out;
  auto add = [&out](const char* label, const std::string& v) {
    if (v.empty()) return;
    if (!out.empty()) out += "<br>";
    out += std::string("<b>") + label + "</b> " + Html(v);
  };
  add("path", f.path);
  add("found", f.digest);
  add("reference", f.reference);
  add("detail", f.detail);
  return out;
}

std::string FindingRow(const attest::VerdictRecord& v, bool with_verdict) {
  const attest::Finding& f = v.finding;
  std::string cls = f.failure() ? " class=\"fail\"" : "";
  std::string out = "<tr" + cls + "><td>" + Html(UtcTime(v.time)) + "</td>";
  if (with_verdict) out += std::string("<td>") + (v.attested ? "attested" : "failed") + "</td>";
  out += "<td class=\"" + std::string(f.failure() ? "v-fail" : "note") + "\">" + Html(attest::ReasonName(f.reason)) +
         "</td><td>" + (f.entry ? std::to_string(*f.entry) : "") + "</td><td>" + (f.pcr ? std::to_string(*f.pcr) : "") +
         "</td><td class=\"mono\">" + Explain(f) + "</td></tr>\n";
  return out;
}

// Reasons whose finding's entry is a firmware event index (the verifier's rule, NoteRows).
bool IsFirmwareReason(attest::Reason r) {
  if (r == attest::Reason::kBootComponent || r == attest::Reason::kSecureBoot) return true;
  return std::string_view(attest::ReasonName(r)).rfind("firmware-", 0) == 0;
}

std::string TypeCell(const EntryRow& r) {
  if (r.source == "ima") return "IMA";
  char b[16];
  std::snprintf(b, sizeof b, "0x%x", r.type);
  return b;
}

}  // namespace

void SortFleet(std::vector<FleetRow>* rows) {
  std::sort(rows->begin(), rows->end(), [](const FleetRow& a, const FleetRow& b) {
    return std::forward_as_tuple(StatusRank(a.status), a.id) < std::forward_as_tuple(StatusRank(b.status), b.id);
  });
}

std::string FleetBody(const std::vector<FleetRow>& sorted, const Query& query,
                      const std::function<std::string(const std::string&)>& last_failure) {
  std::string q = Get(query, "q"), state = Get(query, "state");
  std::map<std::string, size_t> counts;
  for (const auto& r : sorted) ++counts[attest::AgentStatusName(r.status)];
  std::string out = "<p>" + Thousands(sorted.size()) + " hosts:";
  for (auto s : {attest::AgentStatus::kFailed, attest::AgentStatus::kUnreachable, attest::AgentStatus::kEnrolling,
                 attest::AgentStatus::kAttested}) {
    std::string name = attest::AgentStatusName(s);
    out += " <a class=\"state state-" + name + "\" href=\"" + Html(Url("/", {{"state", name}})) + "\">" +
           Thousands(counts[name]) + " " + name + "</a>";
  }
  out += "</p>\n<form class=\"search\" method=\"get\" action=\"/\"><input type=\"search\" name=\"q\" value=\"" + Html(q) +
         "\" placeholder=\"host or policy contains\"> <select name=\"state\"><option value=\"\">any state</option>";
  for (const char* s : {"failed", "unreachable", "enrolling", "attested"}) {
    out += std::string("<option") + (state == s ? " selected" : "") + ">" + s + "</option>";
  }
  out += "</select> <button type=\"submit\">search</button></form>\n";
  // The filter keeps the order: failed hosts stay first.
  std::vector<const FleetRow*> shown;
  shown.reserve(q.empty() && state.empty() ? sorted.size() : 0);
  for (const auto& r : sorted) {
    if (!state.empty() && state != attest::AgentStatusName(r.status)) continue;
    if (!q.empty() && r.id.find(q) == std::string::npos && r.policy.find(q) == std::string::npos) continue;
    shown.push_back(&r);
  }
  Page p = Paginate(query, shown.size(), kFleetPer, kFleetMaxPer);
  Params keep{{"q", q}, {"state", state}};
  out += PageNav(p, "/", keep, "hosts");
  out += "<table id=\"fleet\"><thead><tr><th>host</th><th>state</th><th>last attestation</th><th>rounds</th>"
         "<th>entries verified</th><th>policy</th><th>address</th><th>latest failure</th></tr></thead><tbody>\n";
  for (size_t i = p.first; i < p.last; ++i) {
    const FleetRow& r = *shown[i];
    std::string name = attest::AgentStatusName(r.status);
    out += "<tr class=\"" + name + "\"><td>" + HostLink(r.id) + "</td><td>" + StateCell(r.status) + "</td><td>" +
           Html(UtcTime(r.updated)) + "</td><td>" + Thousands(r.rounds) + "</td><td>" + Thousands(r.next_index) +
           "</td><td>" + PolicyLink(r.policy) + "</td><td class=\"mono\">" + (r.address.empty() ? "push" : Html(r.address)) +
           "</td><td class=\"mono\">" + (r.status == attest::AgentStatus::kFailed ? Html(last_failure(r.id)) : "") +
           "</td></tr>\n";
  }
  out += "</tbody></table>\n";
  if (p.total > p.last - p.first) out += PageNav(p, "/", keep, "hosts");
  return out;
}

bool IsFailingVerdict(const std::string& verdict) {
  return verdict != "ok" && verdict != "pending" && verdict != "unverified";
}

bool FindingSearch::Grow(size_t n) {
  if (complete_ || n <= have_.size()) return !complete_;
  n = std::min(n, max_);
  ++fetches_;
  auto got = fetch_(n);
  if (!got.ok()) {
    complete_ = true;
    return false;
  }
  complete_ = got->size() < n || n >= max_;
  have_ = std::move(*got);
  return true;
}

const std::vector<attest::VerdictRecord>& FindingSearch::Newest(size_t n) {
  Grow(n);
  return have_;
}

const attest::Finding* FindingSearch::Find(const std::function<bool(const attest::Finding&)>& pred) {
  size_t from = 0;
  for (size_t want = 50;; want *= 20) {
    Grow(want);
    for (; from < have_.size(); ++from) {
      if (pred(have_[from].finding)) return &have_[from].finding;
    }
    if (complete_) return nullptr;
  }
}

std::string LastFailure(const std::string& id, FindingSearch& findings) {
  const attest::Finding* f = findings.Find(
      [](const attest::Finding& x) { return x.failure() && x.reason != attest::Reason::kUnreachable; });
  if (!f) return {};
  std::string line = attest::FormatFinding(id, *f);
  const std::string prefix = "lim-verifier: ";
  return line.rfind(prefix, 0) == 0 ? line.substr(prefix.size()) : line;
}

std::string HostBody(const attest::AgentRecord& agent, const std::vector<EntryRow>& rows, FindingSearch& findings,
                     const Query& query) {
  std::string out = "<dl class=\"kv\"><dt>state</dt><dd>" + StateCell(agent.status) + "</dd><dt>last attestation</dt><dd>" +
                    Html(UtcTime(agent.updated)) + "</dd><dt>policy</dt><dd>" + PolicyLink(agent.policy) +
                    "</dd><dt>address</dt><dd class=\"mono\">" + (agent.address.empty() ? "push" : Html(agent.address)) +
                    "</dd><dt>rounds</dt><dd>" + Thousands(agent.state.rounds) + "</dd><dt>reboots</dt><dd>" +
                    Thousands(agent.state.reboots) + "</dd><dt>entries verified</dt><dd>" +
                    Thousands(agent.state.next_index) + "</dd><dt>enrolled</dt><dd>" +
                    (agent.tofu ? "trust on first use (no EK certificate)" : "EK certificate checked") + "</dd></dl>\n";
  out += "<p><a id=\"history-link\" href=\"" + Html(Url("/history", {{"id", agent.id}})) +
         "\">history of verdicts</a></p>\n";
  size_t boot_rows = 0;
  while (boot_rows < rows.size() && rows[boot_rows].source == "firmware") ++boot_rows;
  const auto& newest = findings.Newest(10);
  const std::vector<attest::VerdictRecord> recent(newest.begin(), newest.begin() + static_cast<long>(std::min<size_t>(10, newest.size())));

  out += "<h2>Latest findings</h2>\n";
  if (recent.empty()) {
    out += "<p class=\"note\">none</p>\n";
  } else {
    out += "<table id=\"findings\"><thead><tr><th>time</th><th>reason</th><th>entry</th><th>PCR</th><th>explanation</th>"
           "</tr></thead><tbody>\n";
    for (const auto& v : recent) out += FindingRow(v, false);
    out += "</tbody></table>\n";
  }

  // Failing rows first (ascending index), then the others in index order: the k-th row of
  // that order is found without building it (one pass for the failing indices).
  std::vector<size_t> failing;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (IsFailingVerdict(rows[i].verdict)) failing.push_back(i);
  }
  out += "<h2>Integrated table</h2>\n<p>" + Thousands(rows.size()) + " rows (firmware, boot loader and IMA, one index), " +
         Thousands(failing.size()) + " failing, shown first.</p>\n";
  Page p = Paginate(query, rows.size(), kRowsPer, kRowsMaxPer);
  Params keep{{"id", agent.id}};
  out += PageNav(p, "/host", keep, "rows");
  out += "<table id=\"entries\"><thead><tr><th>#</th><th>PCR</th><th>type</th><th>digest</th><th>event data</th>"
         "<th>verdict</th><th>explanation</th></tr></thead><tbody>\n";
  size_t other = 0, skip = 0;  // the non-failing row shown last, failing rows passed
  bool started = false;
  for (size_t pos = p.first; pos < p.last; ++pos) {
    size_t i;
    if (pos < failing.size()) {
      i = failing[pos];
    } else {
      // The (pos - failing)-th non-failing row: count up past the failing rows at or below.
      other = started ? other + 1 : pos - failing.size();
      started = true;
      while (skip < failing.size() && failing[skip] <= other) {
        ++skip;
        ++other;
      }
      i = other;
    }
    const EntryRow& r = rows[i];
    bool fail = IsFailingVerdict(r.verdict);
    std::string explanation;
    if (fail) {
      bool firmware = r.source == "firmware";
      uint64_t entry = firmware ? r.index : r.index - boot_rows;
      const attest::Finding* why = findings.Find([&](const attest::Finding& f) {
        return f.entry == entry && IsFirmwareReason(f.reason) == firmware && r.verdict == attest::ReasonName(f.reason);
      });
      explanation = why ? Explain(*why) : "<span class=\"note\">not in the history any more</span>";
    }
    out += std::string("<tr") + (fail ? " class=\"fail\"" : "") + "><td>" + std::to_string(r.index) + "</td><td>" +
           std::to_string(r.pcr) + "</td><td>" + TypeCell(r) +
           "</td><td class=\"mono\">" + Html(r.digest) + "</td><td class=\"mono\">" + Html(r.event) + "</td><td class=\"" +
           (fail ? "v-fail" : r.verdict == "ok" ? "v-ok" : "note") + "\">" + Html(r.verdict) + "</td><td class=\"mono\">" +
           explanation + "</td></tr>\n";
  }
  out += "</tbody></table>\n";
  if (p.last > p.first) out += PageNav(p, "/host", keep, "rows");
  if (rows.empty()) out += "<p class=\"note\">No rows yet: the verifier keeps them from the rounds it ran since it started.</p>\n";
  return out;
}

size_t HistoryFetchLimit(const Query& query, size_t max) {
  Page p = Paginate(query, SIZE_MAX / 2, kHistoryPer, kHistoryMaxPer);
  return std::min(max, p.last + 1);
}

std::string HistoryBody(const std::string& id, const std::vector<attest::VerdictRecord>& newest, const Query& query) {
  Page asked = Paginate(query, SIZE_MAX / 2, kHistoryPer, kHistoryMaxPer);
  bool older = newest.size() > asked.last;
  Page p = Paginate(query, std::min(newest.size(), asked.last), kHistoryPer, kHistoryMaxPer);
  if (newest.size() <= asked.first && asked.page > 1) p = asked;  // past the end: an empty page
  std::string out = "<p>Host " + HostLink(id) + ". Every finding of every round, newest first (notices included).</p>\n";
  auto nav = [&] {
    std::string n = "<nav class=\"pages\">";
    Params keep{{"id", id}, {"per", std::to_string(p.per_page)}};
    if (p.page > 1) {
      auto k = keep;
      k.emplace_back("page", std::to_string(p.page - 1));
      n += "<a href=\"" + Html(Url("/history", k)) + "\">&lsaquo; newer</a> ";
    }
    n += "<span>page " + Thousands(p.page) + "</span> ";
    if (older) {
      auto k = keep;
      k.emplace_back("page", std::to_string(p.page + 1));
      n += "<a href=\"" + Html(Url("/history", k)) + "\">older &rsaquo;</a>";
    }
    return n + "</nav>\n";
  };
  out += nav();
  out += "<table id=\"history\"><thead><tr><th>time</th><th>round verdict</th><th>reason</th><th>entry</th><th>PCR</th>"
         "<th>explanation</th></tr></thead><tbody>\n";
  for (size_t i = asked.first; i < newest.size() && i < asked.last; ++i) out += FindingRow(newest[i], true);
  out += "</tbody></table>\n";
  if (newest.size() <= asked.first) out += "<p class=\"note\">No findings here.</p>\n";
  out += nav();
  return out;
}

std::string PolicyBody(const std::string& name, const std::string& native_json, const std::vector<FleetRow>& fleet,
                       const Query& query) {
  using nlohmann::json;
  json j = json::parse(native_json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return "<p class=\"error\">The stored policy is not a JSON object.</p>\n";
  auto dump = [](const json& v) {
    std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
    if (s.size() > 2000) s = s.substr(0, 2000) + " …";
    return s;
  };
  std::string out = "<dl class=\"kv\">";
  for (const auto& [key, value] : j.items()) {
    if (key == "paths") continue;
    out += "<dt>" + Html(key) + "</dt><dd class=\"mono\">";
    if ((value.is_object() || value.is_array()) && value.size() > 20) {
      out += Thousands(value.size()) + " items";
    } else {
      out += Html(dump(value));
    }
    out += "</dd>";
  }
  out += "</dl>\n";
  std::vector<const FleetRow*> users;
  for (const auto& r : fleet) {
    if (r.policy == name) users.push_back(&r);
  }
  out += "<h2>Hosts</h2>\n<p>" + Thousands(users.size()) + " hosts use this policy";
  if (!users.empty()) out += ":";
  for (size_t i = 0; i < users.size() && i < 100; ++i) out += " " + HostLink(users[i]->id);
  if (users.size() > 100) out += " …";
  out += "</p>\n";

  std::string q = Get(query, "q");
  std::vector<std::pair<const std::string*, const json*>> paths;
  if (auto it = j.find("paths"); it != j.end() && it->is_object()) {
    for (const auto& [path, digests] : it->items()) {
      if (q.empty() || path.find(q) != std::string::npos) paths.emplace_back(&path, &digests);
    }
  }
  out += "<h2>Paths</h2>\n<form class=\"search\" method=\"get\" action=\"/policy\"><input type=\"hidden\" name=\"name\" "
         "value=\"" + Html(name) + "\"><input type=\"search\" name=\"q\" value=\"" + Html(q) +
         "\" placeholder=\"path contains\"> <button type=\"submit\">search</button></form>\n";
  Page p = Paginate(query, paths.size(), kPathsPer, kPathsMaxPer);
  Params keep{{"name", name}, {"q", q}};
  out += PageNav(p, "/policy", keep, "paths");
  out += "<table id=\"paths\"><thead><tr><th>path</th><th>allowed digests</th></tr></thead><tbody>\n";
  for (size_t i = p.first; i < p.last; ++i) {
    out += "<tr><td class=\"mono\">" + Html(*paths[i].first) + "</td><td class=\"mono\">";
    if (paths[i].second->is_array()) {
      bool first = true;
      for (const auto& d : *paths[i].second) {
        if (!first) out += "<br>";
        first = false;
        out += Html(d.is_string() ? d.get<std::string>() : dump(d));
      }
    } else {
      out += Html(dump(*paths[i].second));
    }
    out += "</td></tr>\n";
  }
  out += "</tbody></table>\n";
  return out;
}

std::string PoliciesBody(const std::vector<std::string>& names, const std::vector<FleetRow>& fleet) {
  std::map<std::string, size_t> users;
  for (const auto& r : fleet) ++users[r.policy];
  std::string out = "<table id=\"policies\"><thead><tr><th>policy</th><th>hosts</th></tr></thead><tbody>\n";
  for (const auto& n : names) out += "<tr><td>" + PolicyLink(n) + "</td><td>" + Thousands(users[n]) + "</td></tr>\n";
  out += "</tbody></table>\n";
  if (names.empty()) out += "<p class=\"note\">No policies yet (`lim verifier policy add`).</p>\n";
  return out;
}

}  // namespace lim::verifier::web
