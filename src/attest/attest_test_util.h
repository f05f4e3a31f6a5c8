// Test helper (header only, attest tests and benchmarks): a simulated host on the test
// swtpm — a measurement list in memory whose entries are extended into the TPM's PCR 10
// like the kernel (or limd) does, a firmware log replayed into PCRs 0–9, an AK, and the
// evidence an agent would send (quote first, then the list from the entry asked). Test
// thread only.
#pragma once

#include <gtest/gtest.h>
#include <openssl/rand.h>

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "attest/evidence.h"
#include "attest/round.h"
#include "crypto/digest.h"
#include "crypto/hash_algo.h"
#include "ima/list_writer.h"
#include "tcg/event_log.h"
#include "tpm/key.h"
#include "tpm/swtpm_test_util.h"
#include "tpm/tpm.h"

namespace lim::attest::testing {

// Restarts the test swtpm: PCRs back to their reset values, reset count + 1 (a reboot).
// An orderly TPM2_Shutdown first: killing a TPM mid-session counts as a dictionary attack
// and a few of those lock out every AK use.
inline void RebootSwtpm() {
  const tpm::SwtpmConfig& c = tpm::testing::Swtpm().Get();
  tpm::testing::Tpm2Tools("tpm2_shutdown -c");
  ASSERT_TRUE(tpm::SwtpmStop(c).ok());
  auto pid = tpm::SwtpmStart(c);
  ASSERT_TRUE(pid.ok()) << pid.status().message();
  tpm::testing::Tpm2Tools("tpm2_startup -c && tpm2_dictionarylockout -c");
}

inline Bytes RandomBytes(size_t n) {
  Bytes b(n);
  EXPECT_EQ(RAND_bytes(b.data(), static_cast<int>(n)), 1);
  return b;
}

inline Bytes Sha256Of(std::string_view s) {
  auto h = Hasher::Create(Sha256Algo());
  h->Update(AsBytes(s));
  return h->Final();
}

// The records of a keylime ascii list (ima-sig with optional signature, ima-buf), rebuilt
// with sha256 file digests; the template digest of each is checked against the line's.
inline std::vector<ima::Record> AsciiRecords(const std::string& text) {
  std::vector<ima::Record> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    std::istringstream f(line);
    std::string pcr, td, tmpl, dng, path, extra;
    f >> pcr >> td >> tmpl >> dng >> path >> extra;
    ima::Record r;
    if (tmpl == "ima-buf") {
      auto rec = ima::ImaBufRecord(Sha256Algo(), path, *FromHex(extra));
      EXPECT_TRUE(rec.ok());
      r = *rec;
    } else {
      r = ima::ImaSigRecord(Sha256Algo(), *FromHex(dng.substr(7)), path, *FromHex(extra));
    }
    EXPECT_EQ(ToHex(*ima::TemplateDigestOf(r, Sha1Algo(), ByteOrder::kLittle)), td) << path;
    out.push_back(std::move(r));
  }
  return out;
}

// The firmware log with the sha256 digest of its first PCR 7 event (not a no-action one)
// changed; *victim is that event's index (0 and the log unchanged when there is none).
inline Bytes WithOnePcr7EventChanged(const Bytes& log_bytes, size_t* victim) {
  *victim = 0;
  auto log = tcg::ParseEventLog(log_bytes);
  EXPECT_TRUE(log.ok());
  if (!log.ok()) return log_bytes;
  Bytes changed = log_bytes;
  for (const auto& e : log->events) {
    ByteView d = e.DigestFor(TPM2_ALG_SHA256);
    if (e.pcr == 7 && !d.empty() && e.type != 3) {
      *victim = e.index;
      changed[static_cast<size_t>(d.data() - log_bytes.data())] ^= 0x5a;
      break;
    }
  }
  return changed;
}

class Host {
 public:
  // Opens the (freshly rebooted) swtpm and creates an AK.
  void Boot() {
    auto t = tpm::OpenTpm(tpm::testing::SwtpmTctiForTests());
    ASSERT_TRUE(t.ok()) << t.status().message();
    tpm_ = std::move(t).value();
    auto banks = tpm_->AllocatedBanks();
    ASSERT_TRUE(banks.ok());
    banks_ = *banks;
    auto ak = tpm_->CreateAk(tpm::EkType::kEcc, tpm::AkAlg::kEccP256);
    ASSERT_TRUE(ak.ok()) << ak.status().message();
    ak_ = *ak;
    auto pub = tpm::PublicKey::FromTpmPublic(ak_.pub);
    ASSERT_TRUE(pub.ok());
    ak_pub_ = std::make_shared<tpm::PublicKey>(std::move(pub).value());
    list_.clear();
    offsets_.clear();
    boot_id_ = ToHex(RandomBytes(16));
  }

  // After RebootSwtpm: a new connection, the same AK, an empty list, a new boot_id.
  void Reboot() {
    auto t = tpm::OpenTpm(tpm::testing::SwtpmTctiForTests());
    ASSERT_TRUE(t.ok()) << t.status().message();
    tpm_ = std::move(t).value();
    list_.clear();
    offsets_.clear();
    boot_id_ = ToHex(RandomBytes(16));
  }

  // Extends the firmware log's events for PCRs 0–9 into the TPM (sha256 from the log,
  // other banks a digest of the event's sha256 one).
  void ReplayFirmware(ByteView log_bytes) {
    auto log = tcg::ParseEventLog(log_bytes);
    ASSERT_TRUE(log.ok());
    for (const auto& e : log->events) {
      if (e.spec_id_header || e.type == 3 || e.pcr > 9) continue;
      std::map<uint16_t, Bytes> d;
      for (uint16_t alg : banks_) {
        ByteView v = e.DigestFor(alg);
        if (v.empty()) {
          auto algo = HashAlgoByTpmAlg(alg);
          auto h = Hasher::Create(*algo);
          h->Update(e.DigestFor(TPM2_ALG_SHA256));
          d[alg] = h->Final();
        } else {
          d[alg] = Bytes(v.begin(), v.end());
        }
      }
      ASSERT_TRUE(tpm_->Extend(static_cast<int>(e.pcr), d).ok());
    }
  }

  // The boot_aggregate entry over the TPM's sha256 PCRs 0–9.
  void AppendBootAggregate() {
    auto v = tpm_->ReadPcrs({{TPM2_ALG_SHA256, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}}});
    ASSERT_TRUE(v.ok());
    auto h = Hasher::Create(Sha256Algo());
    for (int i = 0; i <= 9; ++i) h->Update((*v)[TPM2_ALG_SHA256][i]);
    Append(ima::ImaNgRecord(Sha256Algo(), h->Final(), "boot_aggregate"));
  }

  void Append(const ima::Record& r, bool extend = true) {
    offsets_.push_back(list_.size());
    ASSERT_TRUE(ima::ListWriter(Sha1Algo(), ByteOrder::kLittle).Append(r, &list_).ok());
    if (extend) Extend(r);
  }
  // PCR 10 extended by r's template digest in every bank. Append(r, false), then the list
  // written where the agent reads it, then Extend(r) is the kernel's (and limd's) order: a
  // round in between sees a quote covering a prefix of the list, never a list behind the quote.
  void Extend(const ima::Record& r) {
    std::map<uint16_t, Bytes> d;
    for (uint16_t alg : banks_) {
      auto algo = HashAlgoByTpmAlg(alg);
      auto td = ima::TemplateDigestOf(r, *algo, ByteOrder::kLittle);
      ASSERT_TRUE(td.ok());
      d[alg] = *td;
    }
    ASSERT_TRUE(tpm_->Extend(10, d).ok());
  }
  void AppendFile(const std::string& path, std::string_view content) {
    Append(ima::ImaNgRecord(Sha256Algo(), Sha256Of(content), path));
  }

  // Quote first, then the list from entry `from` (what lim-agent does).
  Evidence Gather(const EvidenceRequest& req, ByteView nonce, const tpm::AkKey* other_ak = nullptr) {
    Evidence ev;
    tpm::PcrSelection sel;
    for (const auto& b : req.pcrs) sel.push_back({b.alg, std::set<int>(b.pcrs.begin(), b.pcrs.end())});
    auto q = tpm_->MakeQuote(other_ak ? *other_ak : ak_, sel, nonce);
    EXPECT_TRUE(q.ok()) << q.status().message();
    if (!q.ok()) return ev;
    ev.nonce = Bytes(nonce.begin(), nonce.end());
    ev.quote = q->msg;
    ev.signature = q->sig;
    ev.pcrs = q->values;
    ev.list = ListFrom(req.list_from);
    if (req.want_event_log && firmware_) ev.event_log = *firmware_;
    ev.boot_id = boot_id_;
    ev.limd.running = true;
    ev.limd.detail = "limd running";
    return ev;
  }
  ListTail ListFrom(uint64_t from) const {
    ListTail t;
    t.first_index = from;
    t.total_entries = offsets_.size();
    if (from < offsets_.size()) t.records.assign(list_.begin() + static_cast<ptrdiff_t>(offsets_[from]), list_.end());
    return t;
  }
  std::vector<uint16_t> banks() const { return banks_; }

  tpm::Tpm& tpm() { return *tpm_; }
  const tpm::PublicKey& ak_pub() const { return *ak_pub_; }
  const tpm::AkKey& ak() const { return ak_; }
  Bytes& list() { return list_; }
  std::vector<size_t>& offsets() { return offsets_; }
  void set_firmware(Bytes log) { firmware_ = std::move(log); }
  std::optional<Bytes>& firmware() { return firmware_; }
  std::string& boot_id() { return boot_id_; }

 private:
  std::unique_ptr<tpm::Tpm> tpm_;
  std::vector<uint16_t> banks_;
  tpm::AkKey ak_;
  std::shared_ptr<tpm::PublicKey> ak_pub_;
  Bytes list_;
  std::vector<size_t> offsets_;
  std::optional<Bytes> firmware_;
  std::string boot_id_;
};

}  // namespace lim::attest::testing
