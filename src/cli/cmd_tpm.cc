// `lim tpm …`: PCR read/extend, AK creation, quotes and quote checks, and the embedded swtpm.
// Thin over src/tpm; every command that talks to a TPM takes --tpm TCTI (default $LIM_TCTI,
// then device:/dev/tpmrm0) and never falls back to another TPM.
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "base/escape.h"
#include "base/file.h"
#include "cli/command.h"
#include "crypto/digest.h"
#include "crypto/hash_algo.h"
#include "crypto/pcr_set.h"
#include "tpm/credential.h"
#include "tpm/key.h"
#include "tpm/quote.h"
#include "tpm/swtpm.h"
#include "tpm/tpm.h"

namespace lim::cli {
namespace {

using namespace lim::tpm;

struct TpmFlags {
  std::string tcti;
};

void AddTpmFlag(CLI::App* cmd, TpmFlags* f) {
  cmd->add_option("--tpm", f->tcti, "TCTI: device:/dev/tpmrm0, swtpm:path=SOCK, swtpm:host=H,port=P, mssim:…, tabrmd (default $LIM_TCTI, then device:/dev/tpmrm0)");
}

Result<std::unique_ptr<Tpm>> Open(const TpmFlags& f) {
  std::string tcti = f.tcti.empty() ? DefaultTcti() : f.tcti;
  LIM_ASSIGN_OR_RETURN(std::unique_ptr<Tpm> tpm, OpenTpm(tcti));
  if (tpm->kind() == TpmKind::kSwtpm || tpm->kind() == TpmKind::kSimulator) {
    std::fprintf(stderr, "lim: using %s\n", Escaped(tpm->Describe()).c_str());
  }
  return tpm;
}

int Fail(const Status& s) { return ExitCode() = ReportError(s); }

// One argument struct per subcommand (as cmd_policy.cc): a subcommand's options are its
// struct's fields, and nothing is shared between subcommands.
struct PcrReadArgs {
  TpmFlags tpm;
  std::string pcrs = "0-23";
  std::vector<std::string> banks;
};

struct ExtendArgs {
  TpmFlags tpm;
  int pcr = -1;
  std::string data_file;
  std::vector<std::string> digests;
};

struct AkCreateArgs {
  TpmFlags tpm;
  std::string out;
  std::string ek = "ecc";
  std::string alg = "ecc";
};

struct QuoteArgs {
  TpmFlags tpm;
  std::string nonce;
  std::string pcrs = "0-23";
  std::vector<std::string> banks;
  std::string out;
  std::string ak_dir;  // default: out
};

struct CheckQuoteArgs {
  std::string ak, msg, sig, pcrs, nonce;
};

struct EkArgs {
  TpmFlags tpm;
  std::string type = "ecc";
  std::string out;
};

struct MakeCredentialArgs {
  std::string ek, name, secret, out;
};

struct ActivateCredentialArgs {
  TpmFlags tpm;
  std::string ak_dir;
  std::string credential;
};

// `extend --data FILE` is hashed whole; 64 MiB covers kernels and initrds (hash anything
// larger yourself and give --digest).
constexpr size_t kMaxExtendDataSize = 64 << 20;

// --pcrs LIST and --bank ALG… → a selection (banks default to every allocated bank).
Result<PcrSelection> BuildSelection(Tpm& tpm, const std::string& pcrs, const std::vector<std::string>& banks) {
  LIM_ASSIGN_OR_RETURN(std::set<int> idx, ParsePcrList(pcrs));
  if (banks.empty()) return FullSelection(tpm, idx);
  PcrSelection sel;
  for (const auto& b : banks) {
    LIM_ASSIGN_OR_RETURN(uint16_t alg, ParseBankName(b));
    sel.push_back({alg, idx});
  }
  return sel;
}

Status PcrRead(const PcrReadArgs& a) {
  LIM_ASSIGN_OR_RETURN(auto tpm, Open(a.tpm));
  LIM_ASSIGN_OR_RETURN(PcrSelection sel, BuildSelection(*tpm, a.pcrs, a.banks));
  LIM_ASSIGN_OR_RETURN(PcrValues values, tpm->ReadPcrs(sel));
  std::printf("%s\n", PcrValuesToJson(values).c_str());
  return Status::Ok();
}

Status Extend(const ExtendArgs& a) {
  if (a.data_file.empty() == a.digests.empty()) {
    return Status::InvalidArgument("give exactly one of --data FILE or --digest ALG:HEX…");
  }
  LIM_ASSIGN_OR_RETURN(auto tpm, Open(a.tpm));
  if (!a.data_file.empty()) {
    LIM_ASSIGN_OR_RETURN(Bytes data,
                         ReadFileBounded(a.data_file, kMaxExtendDataSize, "--data (hash larger files and give --digest)"));
    return ExtendWithData(*tpm, a.pcr, data);
  }
  std::map<uint16_t, Bytes> by_bank;
  for (const auto& d : a.digests) {
    size_t colon = d.find(':');
    if (colon == std::string::npos) return Status::InvalidArgument("--digest '" + d + "': expected ALG:HEX");
    LIM_ASSIGN_OR_RETURN(uint16_t alg, ParseBankName(d.substr(0, colon)));
    auto hex = FromHex(d.substr(colon + 1));
    if (!hex.ok()) return hex.status().WithPrefix("--digest " + d.substr(0, colon));
    if (by_bank.count(alg)) return Status::InvalidArgument("--digest: bank " + TpmBankName(alg) + " given twice");
    by_bank[alg] = std::move(*hex);
  }
  return tpm->Extend(a.pcr, by_bank);
}

Status AkCreate(const AkCreateArgs& a) {
  LIM_ASSIGN_OR_RETURN(EkType ek, ParseEkType(a.ek));
  AkAlg alg;
  if (a.alg == "ecc") alg = AkAlg::kEccP256;
  else if (a.alg == "rsa") alg = AkAlg::kRsa2048;
  else return Status::InvalidArgument("--alg '" + a.alg + "': ecc or rsa");
  const std::string& out = a.out;
  LIM_ASSIGN_OR_RETURN(auto tpm, Open(a.tpm));
  LIM_ASSIGN_OR_RETURN(AkKey ak, tpm->CreateAk(ek, alg));
  LIM_RETURN_IF_ERROR(SaveAk(ak, out));
  LIM_ASSIGN_OR_RETURN(Bytes name, PublicName(ak.pub));
  std::printf("ak: %s under the %s EK of %s\nname: %s\nwrote: %s/ak.pub.pem %s/ak.pub %s/ak.name %s/ak.priv %s/ak.json\n",
              DescribePublic(ak.pub).c_str(), EkTypeName(ek), tpm->Describe().c_str(), ToHex(name).c_str(), out.c_str(),
              out.c_str(), out.c_str(), out.c_str(), out.c_str());
  return Status::Ok();
}

Status AkCheck(const std::string& path) {
  LIM_ASSIGN_OR_RETURN(Bytes data, ReadFileBounded(path, kMaxTpmFileSize, "a TPM public area"));
  auto pub = ParsePublic(data);
  if (!pub.ok()) return pub.status().WithPrefix(path);
  LIM_ASSIGN_OR_RETURN(Bytes name, PublicName(*pub));
  Status st = CheckAkAttributes(*pub);
  if (!st.ok()) return st.WithPrefix(path);
  std::printf("ak: %s restricted sign-only fixedTPM fixedParent: ok\nname: %s\n", DescribePublic(*pub).c_str(), ToHex(name).c_str());
  return Status::Ok();
}

Status QuoteCmd(const QuoteArgs& a) {
  auto parsed_nonce = FromHex(a.nonce);
  if (!parsed_nonce.ok()) return parsed_nonce.status().WithPrefix("--nonce");
  Bytes nonce = std::move(parsed_nonce).value();
  const std::string& out = a.out;
  auto ak = LoadAk(a.ak_dir.empty() ? out : a.ak_dir);
  if (!ak.ok()) return ak.status().WithPrefix("no AK (create one with `lim tpm ak create --out DIR`, pass --ak DIR)");
  LIM_ASSIGN_OR_RETURN(auto tpm, Open(a.tpm));
  LIM_ASSIGN_OR_RETURN(PcrSelection sel, BuildSelection(*tpm, a.pcrs, a.banks));
  LIM_ASSIGN_OR_RETURN(Quote q, tpm->MakeQuote(*ak, sel, nonce));
  ::mkdir(out.c_str(), 0755);
  LIM_RETURN_IF_ERROR(WriteFileBytes(out + "/quote.msg", q.msg));
  LIM_RETURN_IF_ERROR(WriteFileBytes(out + "/quote.sig", q.sig));
  LIM_RETURN_IF_ERROR(WriteFileBytes(out + "/quote.pcrs", WritePcrsFile(q.selection, q.values)));
  LIM_RETURN_IF_ERROR(WriteFileBytes(out + "/quote.pcrs.json", AsBytes(PcrValuesToJson(q.values) + "\n")));
  LIM_ASSIGN_OR_RETURN(QuoteInfo info, ParseAttest(q.msg));
  std::printf("quote: %s nonce %s by %s\nwrote: %s/quote.msg %s/quote.sig %s/quote.pcrs %s/quote.pcrs.json\n",
              SelectionToString(q.selection).c_str(), ToHex(nonce).c_str(), tpm->Describe().c_str(), out.c_str(), out.c_str(),
              out.c_str(), out.c_str());
  std::printf("clock: %llu resetCount: %u restartCount: %u\n", static_cast<unsigned long long>(info.clock.clock),
              info.clock.reset_count, info.clock.restart_count);
  return Status::Ok();
}

Status CheckQuoteCmd(const CheckQuoteArgs& a) {
  const std::string& pcrs_path = a.pcrs;
  LIM_ASSIGN_OR_RETURN(PublicKey ak, PublicKey::FromFile(a.ak));
  LIM_ASSIGN_OR_RETURN(Bytes msg, ReadFileBounded(a.msg, kMaxTpmFileSize, "a quote (--msg)"));
  LIM_ASSIGN_OR_RETURN(Bytes sig, ReadFileBounded(a.sig, kMaxTpmFileSize, "a quote signature (--sig)"));
  LIM_ASSIGN_OR_RETURN(Bytes pcr_data, ReadFileBounded(pcrs_path, kMaxPcrFileSize, "a PCR file (--pcrs)"));
  auto nonce = FromHex(a.nonce);
  if (!nonce.ok()) return nonce.status().WithPrefix("--nonce");
  PcrSelection sel;
  PcrValues values;
  std::string_view text = AsChars(pcr_data);
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && text[first] == '{') {
    // A PCR-set JSON has no bank order: take the quote's order when it covers the same PCRs.
    auto v = PcrValuesFromJson(text);
    if (!v.ok()) return v.status().WithPrefix(pcrs_path);
    values = std::move(*v);
    auto q = ParseAttest(msg);
    if (q.ok()) {
      PcrSelection quoted = q->selection;
      std::sort(quoted.begin(), quoted.end(), [](const auto& x, const auto& y) { return x.alg < y.alg; });
      sel = quoted == SelectionOf(values) ? q->selection : SelectionOf(values);
    } else {
      sel = SelectionOf(values);
    }
  } else {
    auto file = ReadPcrsFile(pcr_data);
    if (!file.ok()) return file.status().WithPrefix(pcrs_path);
    sel = std::move(file->selection);
    values = std::move(file->values);
  }
  QuoteFailure failure;
  auto info = CheckQuote(ak, msg, sig, *nonce, sel, values, &failure);
  if (!info.ok()) return info.status().WithPrefix("quote check failed");
  LIM_ASSIGN_OR_RETURN(SignatureInfo sinfo, ParseSignature(sig));
  std::printf("quote: ok\nsignature: ok (%s, %s)\nnonce: ok (%s)\npcrs: ok (%s, pcrDigest %s)\n",
              sinfo.sig_alg == TPM2_ALG_ECDSA ? "ecdsa" : sinfo.sig_alg == TPM2_ALG_RSAPSS ? "rsapss" : "rsassa",
              TpmBankName(sinfo.hash_alg).c_str(), ToHex(*nonce).c_str(), SelectionToString(sel).c_str(),
              ToHex(info->pcr_digest).c_str());
  std::printf("clock: %llu resetCount: %u restartCount: %u safe: %s firmwareVersion: 0x%016llx\n",
              static_cast<unsigned long long>(info->clock.clock), info->clock.reset_count, info->clock.restart_count,
              info->clock.safe ? "yes" : "no", static_cast<unsigned long long>(info->firmware_version));
  if (ak.tpm_public()) {
    Status enrol = CheckAkAttributes(*ak.tpm_public());
    std::printf("ak: %s\n", enrol.ok() ? "restricted sign-only fixedTPM fixedParent" : enrol.message().c_str());
  }
  return Status::Ok();
}

Status EkExport(const EkArgs& a) {
  LIM_ASSIGN_OR_RETURN(EkType ek, ParseEkType(a.type));
  const std::string& out = a.out;
  LIM_ASSIGN_OR_RETURN(auto tpm, Open(a.tpm));
  LIM_ASSIGN_OR_RETURN(TPMT_PUBLIC pub, tpm->ReadEkPublic(ek));
  LIM_ASSIGN_OR_RETURN(PublicKey key, PublicKey::FromTpmPublic(pub));
  LIM_ASSIGN_OR_RETURN(Bytes name, PublicName(pub));
  ::mkdir(out.c_str(), 0755);
  LIM_RETURN_IF_ERROR(WriteFileBytes(out + "/ek.pub", MarshalPublic2B(pub)));
  LIM_RETURN_IF_ERROR(WriteFileBytes(out + "/ek.pub.pem", AsBytes(key.ToPem())));
  std::printf("ek: %s (TCG EK template)\nname: %s\nwrote: %s/ek.pub %s/ek.pub.pem\n", DescribePublic(pub).c_str(),
              ToHex(name).c_str(), out.c_str(), out.c_str());
  return Status::Ok();
}

Status MakeCredentialCmd(const MakeCredentialArgs& a) {
  LIM_ASSIGN_OR_RETURN(Bytes ek_bytes, ReadFileBounded(a.ek, kMaxTpmFileSize, "a TPM public area"));
  auto ek = ParsePublic(ek_bytes);
  if (!ek.ok()) return ek.status().WithPrefix(a.ek);
  LIM_ASSIGN_OR_RETURN(Bytes name, ReadFileBounded(a.name, kMaxTpmFileSize, "a TPM name"));
  auto secret = FromHex(a.secret);
  if (!secret.ok()) return secret.status().WithPrefix("--secret");
  LIM_ASSIGN_OR_RETURN(MadeCredential c, MakeCredential(*ek, name, *secret));
  const std::string& out = a.out;
  LIM_RETURN_IF_ERROR(WriteFileBytes(out, ToTpm2ToolsCredentialFile(c)));
  std::printf("wrote: %s (tpm2-tools credential file; activate with `lim tpm activatecredential` or tpm2_activatecredential)\n",
              out.c_str());
  return Status::Ok();
}

Status ActivateCredentialCmd(const ActivateCredentialArgs& a) {
  LIM_ASSIGN_OR_RETURN(AkKey ak, LoadAk(a.ak_dir));
  LIM_ASSIGN_OR_RETURN(Bytes file, ReadFileBounded(a.credential, kMaxTpmFileSize, "a credential file"));
  auto c = FromTpm2ToolsCredentialFile(file);
  if (!c.ok()) return c.status().WithPrefix(a.credential);
  LIM_ASSIGN_OR_RETURN(auto tpm, Open(a.tpm));
  LIM_ASSIGN_OR_RETURN(Bytes secret, tpm->ActivateCredential(ak, c->id_object, c->secret));
  std::printf("%s\n", ToHex(secret).c_str());
  return Status::Ok();
}

Status Info(const TpmFlags& f) {
  LIM_ASSIGN_OR_RETURN(auto tpm, Open(f));
  LIM_ASSIGN_OR_RETURN(std::vector<uint16_t> banks, tpm->AllocatedBanks());
  LIM_ASSIGN_OR_RETURN(ClockInfo clock, tpm->ReadClock());
  std::string b;
  for (uint16_t alg : banks) b += (b.empty() ? "" : " ") + TpmBankName(alg);
  std::printf("tpm: %s\nkind: %s\nbanks: %s\nclock: %llu resetCount: %u restartCount: %u safe: %s\n", tpm->Describe().c_str(),
              TpmKindName(tpm->kind()), b.c_str(), static_cast<unsigned long long>(clock.clock), clock.reset_count,
              clock.restart_count, clock.safe ? "yes" : "no");
  return Status::Ok();
}

struct SwtpmFlags {
  std::string state = "/var/lib/lim/swtpm";
  std::string run_dir = "/run/lim/swtpm";
  int tcp = 0;
  bool no_ek_cert = false;
  SwtpmConfig Config() const {
    SwtpmConfig c;
    c.state_dir = state;
    c.run_dir = run_dir;
    c.tcp_port = tcp;
    c.create_ek_cert = !no_ek_cert;
    return c;
  }
};

void AddSwtpmFlags(CLI::App* cmd, SwtpmFlags* f) {
  cmd->add_option("--state", f->state, "swtpm state directory (root-only)")->capture_default_str();
  cmd->add_option("--run-dir", f->run_dir, "directory for the socket, pid file and log (root-only)")->capture_default_str();
  cmd->add_option("--tcp", f->tcp, "serve on 127.0.0.1:PORT (+1 control) instead of a unix socket: any local user can then reset and extend its PCRs");
}

void Register(CLI::App& app) {
  auto* tpm = app.add_subcommand("tpm", "TPM 2.0: PCRs, attestation keys, quotes, the embedded swtpm");
  tpm->require_subcommand(1);

  // Runs a subcommand's function on its arguments; an error sets the exit code.
  auto run = [](auto* cmd, auto fn, auto* args) {
    cmd->callback([fn, args] {
      Status st = fn(*args);
      if (!st.ok()) Fail(st);
    });
  };

  static PcrReadArgs pr;
  auto* pcrread = tpm->add_subcommand("pcrread", "print PCR values as a PCR set (JSON)");
  AddTpmFlag(pcrread, &pr.tpm);
  pcrread->add_option("--pcrs", pr.pcrs, "PCR indices, e.g. 0-7,10")->capture_default_str();
  pcrread->add_option("--bank", pr.banks, "bank (sha1, sha256, …); repeatable; default: every allocated bank");
  run(pcrread, PcrRead, &pr);

  static ExtendArgs ex;
  auto* extend = tpm->add_subcommand("extend", "extend one PCR in every allocated bank");
  AddTpmFlag(extend, &ex.tpm);
  extend->add_option("PCR", ex.pcr, "PCR index")->required()->check(CLI::Range(0, 23));
  extend->add_option("--data", ex.data_file, "extend with H_bank(contents of FILE) in every bank");
  extend->add_option("--digest", ex.digests, "ALG:HEX, one per allocated bank");
  run(extend, Extend, &ex);

  auto* ak = tpm->add_subcommand("ak", "attestation keys");
  ak->require_subcommand(1);
  static AkCreateArgs akc;
  auto* create = ak->add_subcommand("create", "create an AK under the EK and save it in --out DIR");
  AddTpmFlag(create, &akc.tpm);
  create->add_option("--out", akc.out, "directory for ak.pub.pem, ak.pub, ak.name, ak.priv, ak.json")->required();
  create->add_option("--ek", akc.ek, "EK type: ecc or rsa")->capture_default_str();
  create->add_option("--alg", akc.alg, "AK type: ecc (P-256, ECDSA-SHA256) or rsa (2048, RSASSA-SHA256)")->capture_default_str();
  run(create, AkCreate, &akc);
  static std::string ak_pub;
  auto* check = ak->add_subcommand("check", "enrolment check: restricted, sign-only, fixedTPM, fixedParent");
  check->add_option("--ak", ak_pub, "ak.pub (TPM2B_PUBLIC) or TPMT_PUBLIC")->required();
  run(check, AkCheck, &ak_pub);

  static QuoteArgs qa;
  auto* quote = tpm->add_subcommand("quote", "quote PCRs with a nonce; writes tpm2-tools files");
  AddTpmFlag(quote, &qa.tpm);
  quote->add_option("--nonce", qa.nonce, "verifier's nonce (hex, up to 64 bytes)")->required();
  quote->add_option("--pcrs", qa.pcrs, "PCR indices")->capture_default_str();
  quote->add_option("--bank", qa.banks, "bank; repeatable; default: every allocated bank");
  quote->add_option("--out", qa.out, "directory for quote.msg, quote.sig, quote.pcrs")->required();
  quote->add_option("--ak", qa.ak_dir, "AK directory (from `lim tpm ak create`); default: --out");
  run(quote, QuoteCmd, &qa);

  static CheckQuoteArgs cqa;
  auto* cq = tpm->add_subcommand("checkquote", "check a quote with OpenSSL alone (no TPM)");
  cq->add_option("--ak", cqa.ak, "AK public key: PEM, TPM2B_PUBLIC or TPMT_PUBLIC")->required();
  cq->add_option("--msg", cqa.msg, "quote.msg (TPMS_ATTEST)")->required();
  cq->add_option("--sig", cqa.sig, "quote.sig (TPMT_SIGNATURE)")->required();
  cq->add_option("--pcrs", cqa.pcrs, "quote.pcrs (tpm2_quote -o) or a PCR set (JSON)")->required();
  cq->add_option("--nonce", cqa.nonce, "the nonce the quote must carry (hex; empty allowed)")->required();
  run(cq, CheckQuoteCmd, &cqa);

  static EkArgs eka;
  auto* ekc = tpm->add_subcommand("ek", "export the EK public key (TCG template) as ek.pub and ek.pub.pem");
  AddTpmFlag(ekc, &eka.tpm);
  ekc->add_option("--type", eka.type, "ecc or rsa")->capture_default_str();
  ekc->add_option("--out", eka.out, "output directory")->required();
  run(ekc, EkExport, &eka);
  static MakeCredentialArgs mca;
  auto* mc = tpm->add_subcommand("makecredential", "wrap a secret for (EK, AK name) with OpenSSL alone (no TPM)");
  mc->add_option("--ek", mca.ek, "EK public: ek.pub (TPM2B_PUBLIC)")->required();
  mc->add_option("--name", mca.name, "AK name file (ak.name)")->required();
  mc->add_option("--secret", mca.secret, "secret (hex, 1-64 bytes)")->required();
  mc->add_option("--out", mca.out, "credential file (tpm2-tools format)")->required();
  run(mc, MakeCredentialCmd, &mca);
  static ActivateCredentialArgs aca;
  auto* ac = tpm->add_subcommand("activatecredential", "recover a credential's secret on the TPM holding the EK and AK");
  AddTpmFlag(ac, &aca.tpm);
  ac->add_option("--ak", aca.ak_dir, "AK directory (from `lim tpm ak create`)")->required();
  ac->add_option("--credential", aca.credential, "credential file")->required();
  run(ac, ActivateCredentialCmd, &aca);

  static TpmFlags info_tpm;
  auto* info = tpm->add_subcommand("info", "TPM kind, allocated banks and clock (resetCount, restartCount)");
  AddTpmFlag(info, &info_tpm);
  run(info, Info, &info_tpm);

  static SwtpmFlags sw;
  auto* swtpm = tpm->add_subcommand("swtpm", "the embedded default TPM (swtpm on a root-only unix socket)");
  swtpm->require_subcommand(1);
  auto* start = swtpm->add_subcommand("start", "start swtpm (manufactures the state with swtpm_setup on first start)");
  AddSwtpmFlags(start, &sw);
  start->add_flag("--no-ek-cert", sw.no_ek_cert, "skip swtpm_setup (no EK certificate)");
  start->callback([] {
    std::string note;
    auto pid = SwtpmStart(sw.Config(), &note);
    if (!pid.ok()) {
      Fail(pid.status());
      return;
    }
    if (!note.empty()) std::fprintf(stderr, "lim: %s\n", Escaped(note).c_str());
    std::printf("swtpm: running, pid %d\ntcti: %s\n%s\n", static_cast<int>(*pid), SwtpmTcti(sw.Config()).c_str(), SwtpmNotice());
    if (sw.tcp) std::printf("warning: on TCP loopback any local user can reset and re-extend this TPM's PCRs\n");
  });
  auto* stop = swtpm->add_subcommand("stop", "stop swtpm");
  AddSwtpmFlags(stop, &sw);
  stop->callback([] {
    Status st = SwtpmStop(sw.Config());
    if (!st.ok()) {
      Fail(st);
      return;
    }
    std::printf("swtpm: stopped\n");
  });
  auto* status = swtpm->add_subcommand("status", "is swtpm running? (exit 1 if not)");
  AddSwtpmFlags(status, &sw);
  status->callback([] {
    SwtpmState s = SwtpmStatus(sw.Config());
    if (s.running) {
      std::printf("swtpm: running, pid %d\ntcti: %s\nek certificate: %s\n%s\n", static_cast<int>(s.pid), s.tcti.c_str(),
                  s.ek_cert ? "yes (swtpm_setup)" : "no", SwtpmNotice());
    } else {
      std::printf("swtpm: not running\n");
      ExitCode() = kExitCheckFailed;
    }
  });
}

LIM_REGISTER_COMMAND(Register);

}  // namespace
}  // namespace lim::cli
