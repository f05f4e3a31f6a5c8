// lim verifier: the operator's side of lim-verifier's REST API (docs/attestation.md
// "lim-verifier"), over mutual TLS 1.3 with the operator's certificate: enroll (add) and
// remove agents, list and show them with their findings, add / show / assign runtime
// policies, acknowledge a failure. --json prints the verifier's document as is, for scripts.
// Exit: 0 done (show: the agent is attested), 1 the verifier refused or the agent is not
// attested, 2 bad usage or no answer.
#include <cctype>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "base/escape.h"
#include "base/file.h"
#include "cli/command.h"
#include "tcg/describe.h"
#include "net/https_client.h"
#include "net/tls.h"

namespace lim::cli {
namespace {

using nlohmann::json;

struct VerifierArgs {
  std::string verifier = "127.0.0.1:8892";
  std::string cert, key, ca;
  bool json = false;
  std::string id, address, policy, file;
  bool tofu = false;
  bool entries = false;
};

// Percent-encodes a query value (agent ids and policy names are the operator's text).
std::string QueryValue(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// One request to the verifier: the JSON answer, or the exit code (error printed).
struct Answer {
  int exit = kExitOk;
  json body;
};

Answer Call(const VerifierArgs& a, const std::string& method, const std::string& target, const json& body = nullptr) {
  Answer out;
  size_t colon = a.verifier.rfind(':');
  int port = colon == std::string::npos ? 0 : std::atoi(a.verifier.c_str() + colon + 1);
  if (colon == std::string::npos || colon == 0 || port < 1 || port > 65535) {
    out.exit = ReportError(Status::InvalidArgument("--verifier: expected HOST:PORT, got " + a.verifier));
    return out;
  }
  auto tls = net::MakeClientTls({a.cert, a.key, a.ca});
  if (!tls.ok()) {
    out.exit = ReportError(Status::InvalidArgument(tls.status().message()));
    return out;
  }
  net::ClientOptions o;
  o.host = a.verifier.substr(0, colon);
  o.port = static_cast<uint16_t>(port);
  o.request_timeout = std::chrono::milliseconds(60000);  // an enrollment waits for the agent's TPM
  auto client = net::HttpsClient::Create(*tls, o);
  if (!client.ok()) {
    out.exit = ReportError(Status::InvalidArgument(client.status().message()));
    return out;
  }
  auto r = (*client)->Request(method, target, body.is_null() ? std::string() : body.dump());
  if (!r.ok()) {
    out.exit = ReportError(Status::Unavailable("verifier " + a.verifier + ": " + r.status().message()));
    return out;
  }
  out.body = json::parse(r->body, nullptr, false);
  if (r->status != 200) {
    std::string msg = out.body.is_object() && out.body.contains("error") && out.body["error"].is_string()
                          ? out.body["error"].get<std::string>()
                          : r->body.substr(0, 300);
    out.exit = ReportError(Status::Mismatch("verifier: " + msg));
    return out;
  }
  if (out.body.is_discarded()) out.exit = ReportError(Status::Corrupt("verifier " + a.verifier + ": answer is not JSON"));
  return out;
}

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return "-";
  if (it->is_string()) return it->get<std::string>().empty() ? "-" : Escaped(it->get<std::string>());
  return it->dump();
}

void PrintAgentLine(const json& a) {
  std::printf("%s %s address=%s policy=%s rounds=%s next_index=%s%s\n", Str(a, "id").c_str(), Str(a, "status").c_str(),
              Str(a, "address").c_str(), Str(a, "policy").c_str(), Str(a, "rounds").c_str(),
              Str(a, "next_index").c_str(), a.value("tofu", false) ? " tofu" : "");
}

int Print(const VerifierArgs& a, const Answer& r, void (*text)(const json&)) {
  if (r.exit != kExitOk) return r.exit;
  if (a.json) {
    std::printf("%s\n", r.body.dump().c_str());
  } else {
    text(r.body);
  }
  return kExitOk;
}

int RunAdd(const VerifierArgs& a) {
  json body{{"id", a.id}, {"address", a.address}, {"tofu", a.tofu}};
  if (!a.policy.empty()) body["policy"] = a.policy;
  return Print(a, Call(a, "POST", "/v1/agents", body), PrintAgentLine);
}

// The integrated table as `lim log --format table --boot-log` prints it, the verdict first.
void PrintEntries(const json& j) {
  std::printf("%-20s %s\n", "Verdict", tcg::TableHeader().c_str());
  for (const auto& e : j["entries"]) {
    tcg::TableRow row{e.value("index", size_t{0}), e.value("pcr", 0u), e.value("type", 0u),
                      e.value("digest", std::string()), e.value("event", std::string())};
    std::printf("%-20s %s\n", Escaped(e.value("verdict", std::string())).c_str(), tcg::FormatTableRow(row).c_str());
  }
}

int RunShow(const VerifierArgs& a) {
  Answer r = Call(a, "GET", "/v1/agent?id=" + QueryValue(a.id) + (a.entries ? "&entries=1" : ""));
  int rc = Print(a, r, [](const json& j) {
    PrintAgentLine(j);
    if (j.contains("findings")) {
      for (const auto& f : j["findings"]) std::printf("%s\n", f.value("line", std::string()).c_str());
    }
    if (j.contains("entries")) PrintEntries(j);
  });
  if (rc != kExitOk) return rc;
  return r.body.value("status", std::string()) == "attested" ? kExitOk : kExitCheckFailed;
}

int RunList(const VerifierArgs& a) {
  return Print(a, Call(a, "GET", "/v1/agents"), [](const json& j) {
    for (const auto& ag : j["agents"]) PrintAgentLine(ag);
  });
}

int RunPolicyAdd(const VerifierArgs& a) {
  auto text = ReadFileTextBounded(a.file, 256u << 20, "runtime policy");
  if (!text.ok()) return ReportError(text.status());
  json policy = json::parse(*text, nullptr, false);
  if (!policy.is_object()) return ReportError(Status::Corrupt(a.file + ": not a JSON object"));
  return Print(a, Call(a, "POST", "/v1/policies", {{"name", a.policy}, {"policy", policy}}), [](const json& j) {
    std::printf("policy %s: %s paths, %s digests allowed anywhere\n", Str(j, "name").c_str(), Str(j, "paths").c_str(),
                Str(j, "anywhere").c_str());
  });
}

void Register(CLI::App& app) {
  auto va = std::make_shared<VerifierArgs>();
  auto* v = app.add_subcommand("verifier", "operate a lim-verifier: enroll agents, policies, findings");
  v->require_subcommand(1);
  v->footer(
      "Talks to lim-verifier's REST API over mutual TLS 1.3 (--cert/--key: the operator's certificate).\n"
      "Exit: 0 done (show: attested), 1 refused or not attested, 2 bad usage or no answer.\n"
      "More: docs/attestation.md.");
  auto common = [va](CLI::App* c, bool with_json) {
    c->add_option("--verifier", va->verifier, "lim-verifier's REST address HOST:PORT")->capture_default_str();
    c->add_option("--cert", va->cert, "the operator's certificate (PEM)")->required();
    c->add_option("--key", va->key, "its private key (PEM)")->required();
    c->add_option("--ca", va->ca, "CA the verifier's certificate must chain to (PEM)")->required();
    if (with_json) c->add_flag("--json", va->json, "print the verifier's JSON document");
  };
  auto* add = v->add_subcommand("add", "enroll a pulled agent (identity, EK/AK checks, credential activation)");
  add->add_option("id", va->id, "the agent's id (its --agent-id)")->required();
  add->add_option("address", va->address, "where lim-agent listens, HOST:PORT")->required();
  add->add_flag("--tofu", va->tofu, "accept an agent without an EK certificate (trust on first use)");
  add->add_option("--policy", va->policy, "runtime policy to attest it against");
  common(add, true);
  add->callback([va] { ExitCode() = RunAdd(*va); });

  auto* rm = v->add_subcommand("remove", "forget an agent and its history");
  rm->add_option("id", va->id, "agent id")->required();
  common(rm, false);
  rm->callback([va] {
    Answer r = Call(*va, "DELETE", "/v1/agent?id=" + QueryValue(va->id));
    ExitCode() = r.exit;
  });

  auto* ls = v->add_subcommand("list", "every agent: status, address, policy, rounds");
  common(ls, true);
  ls->callback([va] { ExitCode() = RunList(*va); });

  auto* show = v->add_subcommand("show", "one agent and its latest findings (exit 1 when not attested)");
  show->add_option("id", va->id, "agent id")->required();
  show->add_flag("--entries", va->entries,
                 "also the integrated table (firmware, boot loader, then the last 1000 IMA rows, one running index), "
                 "each row's verdict");
  common(show, true);
  show->callback([va] { ExitCode() = RunShow(*va); });

  auto* ack = v->add_subcommand("ack", "acknowledge an agent's failure (the next round decides again)");
  ack->add_option("id", va->id, "agent id")->required();
  common(ack, false);
  ack->callback([va] { ExitCode() = Call(*va, "POST", "/v1/ack", {{"agent", va->id}}).exit; });

  auto* pol = v->add_subcommand("policy", "runtime policies at the verifier");
  pol->require_subcommand(1);
  auto* padd = pol->add_subcommand("add", "store a runtime policy (native or keylime JSON) under a name");
  padd->add_option("name", va->policy, "policy name")->required();
  padd->add_option("file", va->file, "policy file (JSON)")->required();
  common(padd, true);
  padd->callback([va] { ExitCode() = RunPolicyAdd(*va); });
  auto* pshow = pol->add_subcommand("show", "print a stored policy (native JSON)");
  pshow->add_option("name", va->policy, "policy name")->required();
  common(pshow, false);
  pshow->callback([va] {
    Answer r = Call(*va, "GET", "/v1/policy?name=" + QueryValue(va->policy));
    if (r.exit == kExitOk) std::printf("%s\n", r.body.dump(2).c_str());
    ExitCode() = r.exit;
  });
  auto* passign = pol->add_subcommand("assign", "attest an agent against a stored policy from its next round");
  passign->add_option("agent", va->id, "agent id")->required();
  passign->add_option("name", va->policy, "policy name")->required();
  common(passign, false);
  passign->callback([va] { ExitCode() = Call(*va, "POST", "/v1/assign", {{"agent", va->id}, {"policy", va->policy}}).exit; });
  auto* plist = pol->add_subcommand("list", "names of the stored policies");
  common(plist, true);
  plist->callback([va] {
    ExitCode() = Print(*va, Call(*va, "GET", "/v1/policies"), [](const json& j) {
      for (const auto& n : j["policies"]) std::printf("%s\n", Escaped(n.get<std::string>()).c_str());
    });
  });
}

}  // namespace

LIM_REGISTER_COMMAND(Register);

}  // namespace lim::cli
