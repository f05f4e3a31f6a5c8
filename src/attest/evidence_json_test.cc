#include "attest/evidence_json.h"

#include <gtest/gtest.h>

#include <cctype>
#include <tss2/tss2_tpm2_types.h>

#include <nlohmann/json.hpp>

namespace lim::attest {
namespace {

Bytes B(std::initializer_list<int> v) {
  Bytes out;
  for (int x : v) out.push_back(static_cast<uint8_t>(x));
  return out;
}

Evidence SampleEvidence() {
  Evidence e;
  e.nonce = Bytes(20, 0xab);
  e.quote = B({0xff, 0x54, 0x43, 0x47, 1, 2});
  e.signature = B({0, 0x18, 0, 0xb});
  e.pcrs[TPM2_ALG_SHA256][0] = Bytes(32, 1);
  e.pcrs[TPM2_ALG_SHA256][10] = Bytes(32, 2);
  e.pcrs[TPM2_ALG_SHA1][10] = Bytes(20, 3);
  e.list.first_index = 7;
  e.list.records = Bytes(100, 0x5a);
  e.list.total_entries = 9;
  e.event_log = B({1, 2, 3});
  e.boot_id = "0c5f1c2e-1111-2222-3333-444455556666";
  e.limd = {true, "limd 0.1.0 running"};
  return e;
}

TEST(Base64, RoundTripsEveryLengthAndIsStrict) {
  for (size_t n = 0; n < 10; ++n) {
    Bytes b;
    for (size_t i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(i * 37 + 250));
    auto back = Base64Decode(Base64Encode(b));
    ASSERT_TRUE(back.ok()) << n;
    EXPECT_EQ(*back, b);
  }
  EXPECT_EQ(Base64Encode(B({'f', 'o', 'o', 'b'})), "Zm9vYg==");
  EXPECT_FALSE(Base64Decode("Zm9vYg=").ok());    // length
  EXPECT_FALSE(Base64Decode("Zm9vYh==").ok());   // non-canonical padding bits
  EXPECT_FALSE(Base64Decode("Zm=vYg==").ok());   // padding in the middle
  EXPECT_FALSE(Base64Decode("Zm9v\nYg==").ok());  // whitespace
  EXPECT_FALSE(Base64Decode("Zm9-Yg==").ok());   // URL alphabet
  auto err = Base64Decode("Zm9*");
  ASSERT_FALSE(err.ok());
  EXPECT_NE(err.status().message().find("character 3"), std::string::npos);
  // A bad character is named by its position whether it is in the last group or one
  // before it (the two are decoded apart), and a byte with the high bit set is no base64
  // character.
  for (auto [text, pos] : {std::pair<std::string, size_t>{"Zm9vY\xffg=", 5}, {"Zm9vYmFy=mF6", 8}, {"Zm9vYmFyYmF6Zm9v!m9v", 16},
                           {"Zm9vY\xffg=Zm9v", 5}, {"Zm9vYm=yYmF6", 6}, {"Zm9vYmFyY-F6Zm9v", 9}, {"*m9vYmFy", 0}}) {
    auto bad = Base64Decode(text);
    ASSERT_FALSE(bad.ok()) << text;
    EXPECT_NE(bad.status().message().find("character " + std::to_string(pos)), std::string::npos)
        << bad.status().message();
  }
  // Every byte value decodes only if it is in the alphabet (the table has no stray entry).
  for (int c = 0; c < 256; ++c) {
    std::string text = "QUFB" + std::string(1, static_cast<char>(c)) + "UFB";
    bool alphabet = std::isalnum(c) || c == '+' || c == '/';
    EXPECT_EQ(Base64Decode(text).ok(), alphabet) << c;
  }
}

TEST(EvidenceJson, RoundTrip) {
  Evidence e = SampleEvidence();
  auto back = EvidenceFromJson(EvidenceToJson(e));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->nonce, e.nonce);
  EXPECT_EQ(back->quote, e.quote);
  EXPECT_EQ(back->signature, e.signature);
  EXPECT_EQ(back->pcrs, e.pcrs);
  EXPECT_EQ(back->list.first_index, 7u);
  EXPECT_EQ(back->list.records, e.list.records);
  EXPECT_EQ(back->list.total_entries, 9u);
  EXPECT_EQ(back->event_log, e.event_log);
  EXPECT_EQ(back->boot_id, e.boot_id);
  EXPECT_TRUE(back->limd.running);
  e.event_log.reset();
  auto no_log = EvidenceFromJson(EvidenceToJson(e));
  ASSERT_TRUE(no_log.ok());
  EXPECT_FALSE(no_log->event_log.has_value());
}

// Each mutation of a valid document gives an error naming the field.
TEST(EvidenceJson, StrictErrorsNameTheField) {
  using nlohmann::json;
  json good = json::parse(EvidenceToJson(SampleEvidence()));
  struct Case {
    std::function<void(json&)> mutate;
    std::string expect;
  } cases[] = {
      {[](json& j) { j["extra"] = 1; }, "evidence: unknown field \"extra\""},
      {[](json& j) { j.erase("quote"); }, "evidence.quote: missing"},
      {[](json& j) { j["nonce"] = "AAAA"; }, "evidence.nonce: 3 bytes"},
      {[](json& j) { j["nonce"] = 5; }, "evidence.nonce: not a string"},
      {[](json& j) { j["list"]["records"] = "!!!!"; }, "evidence.list.records: bad base64"},
      {[](json& j) { j["list"]["first_index"] = -1; }, "evidence.list.first_index: not a non-negative integer"},
      {[](json& j) { j["list"]["byte_order"] = "middle"; }, "evidence.list.byte_order"},
      {[](json& j) { j["list"]["source"] = "x"; }, "evidence.list.source"},
      {[](json& j) { j["pcrs"]["md4"] = json::object(); }, "evidence.pcrs.md4: unknown bank"},
      {[](json& j) { j["pcrs"]["sha256"]["24"] = j["pcrs"]["sha256"]["0"]; }, "evidence.pcrs.sha256.24: PCR index"},
      {[](json& j) { j["pcrs"]["sha256"]["01"] = j["pcrs"]["sha256"]["0"]; }, "evidence.pcrs.sha256.01: PCR index"},
      {[](json& j) { j["pcrs"]["sha256"]["1"] = "AAAA"; }, "evidence.pcrs.sha256.1: 3 bytes, a sha256 PCR has 32"},
      {[](json& j) { j["limd"]["running"] = "yes"; }, "evidence.limd.running: not true/false"},
      {[](json& j) { j["boot_id"] = std::string(100, 'x'); }, "evidence.boot_id: longer than 64"},
      {[](json& j) { j = json::array(); }, "evidence: not a JSON object"},
  };
  for (auto& c : cases) {
    json j = good;
    c.mutate(j);
    auto r = EvidenceFromJson(j.dump());
    ASSERT_FALSE(r.ok()) << c.expect;
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos) << r.status().message();
  }
  EXPECT_NE(EvidenceFromJson("{").status().message().find("not valid JSON"), std::string::npos);
  EXPECT_NE(EvidenceFromJson(std::string(100, '[') + std::string(100, ']')).status().message().find("nested"),
            std::string::npos);
}

TEST(EvidenceRequestJson, RoundTripAndBounds) {
  EvidenceRequest r;
  r.nonce = Bytes(32, 7);
  r.pcrs = {{TPM2_ALG_SHA256, {0, 1, 10}}, {TPM2_ALG_SHA1, {10}}};
  r.list_from = 42;
  r.want_event_log = true;
  r.max_list_bytes = 1000;
  auto back = EvidenceRequestFromJson(EvidenceRequestToJson(r));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->nonce, r.nonce);
  ASSERT_EQ(back->pcrs.size(), 2u);
  EXPECT_EQ(back->pcrs[0].alg, TPM2_ALG_SHA256);
  EXPECT_EQ(back->pcrs[0].pcrs, (std::vector<int>{0, 1, 10}));
  EXPECT_EQ(back->list_from, 42u);
  EXPECT_TRUE(back->want_event_log);

  auto bad = [](const std::string& s) { return EvidenceRequestFromJson(s).status().message(); };
  std::string tail = R"(,"list_from":0,"want_event_log":false,"max_list_bytes":10})";
  EXPECT_NE(bad(R"({"nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","pcrs":[{"bank":"sha256","pcrs":[10]}])" + tail)
                .find("evidence request.nonce: 72 bytes, must be 8..64"),
            std::string::npos);
  std::string nonce = R"({"nonce":"AAAAAAAAAAA=",)";
  EXPECT_NE(bad(nonce + R"("pcrs":[{"bank":"sha256","pcrs":[10,10]}])" + tail).find("ascend"), std::string::npos);
  EXPECT_NE(bad(nonce + R"("pcrs":[{"bank":"sha256","pcrs":[24]}])" + tail).find("0..23"), std::string::npos);
  EXPECT_NE(bad(nonce + R"("pcrs":[])" + tail).find("1..16 banks"), std::string::npos);
  EXPECT_NE(bad(nonce + R"("pcrs":[{"bank":"sha256","pcrs":[1]},{"bank":"sha256","pcrs":[2]}])" + tail).find("twice"),
            std::string::npos);
  EXPECT_NE(bad(nonce + R"("pcrs":[{"bank":"sha256","pcrs":[1]}],"list_from":0,"want_event_log":false,"max_list_bytes":999999999999})")
                .find("max_list_bytes"),
            std::string::npos);
}

TEST(IdentityJson, RoundTripWithAndWithoutCertificate) {
  Identity id;
  id.agent_id = "host-1";
  id.ek_public = Bytes(90, 1);
  id.ak_public = Bytes(88, 2);
  auto back = IdentityFromJson(IdentityToJson(id));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->ek_public, id.ek_public);
  EXPECT_FALSE(back->ek_certificate.has_value());
  id.ek_certificate = Bytes(700, 3);
  back = IdentityFromJson(IdentityToJson(id));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->ek_certificate, id.ek_certificate);
  EXPECT_NE(IdentityFromJson(R"({"agent_id":"","ek_public":"AA==","ak_public":"AA=="})").status().message().find("agent_id: empty"),
            std::string::npos);
}

TEST(CredentialJson, RoundTripAndBounds) {
  CredentialChallenge c{Bytes(50, 1), Bytes(70, 2)};
  auto back = CredentialChallengeFromJson(CredentialChallengeToJson(c));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->id_object, c.id_object);
  EXPECT_EQ(back->secret, c.secret);
  auto r = CredentialResponseFromJson(CredentialResponseToJson({Bytes(32, 9)}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->credential, Bytes(32, 9));
  EXPECT_FALSE(CredentialResponseFromJson(CredentialResponseToJson({Bytes(65, 9)})).ok());
  EXPECT_FALSE(CredentialChallengeFromJson(R"({"id_object":"AA==","secret":"AA==","x":1})").ok());
}

}  // namespace
}  // namespace lim::attest
