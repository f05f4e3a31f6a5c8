// The securityfs view's logic without FUSE or root: the per-bank renderings of limd's SHA1
// list, the tree, and LivePolicy's write semantics (kernel-ima.md §2.4, §5).
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <thread>

#include "base/file.h"
#include "daemon/evm_state.h"
#include "daemon/live_policy.h"
#include "daemon/securityfs_view.h"
#include "ima/list_reader.h"
#include "ima/list_writer.h"
#include "tests/testing.h"

namespace lim::daemon {
namespace {

std::vector<ima::Record> SomeRecords() {
  Bytes d(32, 0x11);
  std::vector<ima::Record> r;
  r.push_back(ima::ImaNgRecord(Sha256Algo(), d, "/usr/bin/true"));
  r.push_back(ima::ViolationRecord(Sha256Algo(), "/mnt/f"));
  auto buf = ima::ImaBufRecord(Sha256Algo(), "lim-start", AsBytes(std::string("version=0.1.0;")));
  EXPECT_TRUE(buf.ok());
  r.push_back(*buf);
  r.push_back(ima::ImaNgRecord(Sha256Algo(), d, "/with space", 11));
  return r;
}

Bytes Sha1List(const std::vector<ima::Record>& records) {
  Bytes out;
  ima::ListWriter w(Sha1Algo());
  for (const auto& r : records) EXPECT_TRUE(w.Append(r, &out).ok());
  return out;
}

TEST(SecurityfsViewTest, BanksAreSha1ThenEachComputableTpmBank) {
  auto banks = ViewBanks({0x000b, 0x0004, 0x000c, 0x0099});  // sha256, sha1, sha384, unknown
  ASSERT_EQ(banks.size(), 3u);
  EXPECT_EQ(std::string(banks[0].kernel_name), "sha1");
  EXPECT_EQ(std::string(banks[1].kernel_name), "sha256");
  EXPECT_EQ(std::string(banks[2].kernel_name), "sha384");
  EXPECT_EQ(ViewBanks({}).size(), 1u);  // no TPM: only the _sha1 pair, as the kernel
}

TEST(SecurityfsViewTest, AsciiShowsEachBanksTemplateDigestAndZerosForViolations) {
  auto records = SomeRecords();
  Bytes list = Sha1List(records);
  for (const HashAlgo& bank : {Sha1Algo(), Sha256Algo()}) {
    auto text = RenderAsciiList(list, bank);
    ASSERT_TRUE(text.ok()) << text.status().message();
    std::vector<std::string> lines;
    size_t at = 0;
    for (size_t nl; (nl = text->find('\n', at)) != std::string::npos; at = nl + 1) {
      lines.push_back(text->substr(at, nl - at));
    }
    ASSERT_EQ(lines.size(), records.size());
    for (size_t i = 0; i < records.size(); ++i) {
      auto digest = ima::TemplateDigestOf(records[i], bank, kNativeOrder);
      ASSERT_TRUE(digest.ok());
      std::string pcr = records[i].pcr < 10 ? " " + std::to_string(records[i].pcr) : std::to_string(records[i].pcr);
      EXPECT_EQ(lines[i].substr(0, 3 + bank.size * 2), pcr + " " + ToHex(*digest)) << bank.kernel_name << " " << i;
    }
    EXPECT_EQ(lines[1], "10 " + std::string(bank.size * 2, '0') + " ima-ng sha256:" + std::string(64, '0') + " /mnt/f");
    EXPECT_EQ(lines[3].substr(lines[3].size() - 11), "/with_space");  // the kernel's '_' for ' '
  }
  auto empty = RenderAsciiList({}, Sha256Algo());
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "");
}

TEST(SecurityfsViewTest, BinaryPerBankListsCarryTheBanksDigests) {
  auto records = SomeRecords();
  Bytes list = Sha1List(records);
  auto same = RenderBinaryList(list, Sha1Algo());
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(*same, list);  // the sha1 file is the store
  auto bin = RenderBinaryList(list, Sha256Algo());
  ASSERT_TRUE(bin.ok());
  Bytes expected;
  ima::ListWriter w(Sha256Algo());
  for (const auto& r : records) ASSERT_TRUE(w.Append(r, &expected).ok());
  EXPECT_EQ(*bin, expected);
  ima::ListOptions o;
  o.bank = Sha256Algo();
  auto reader = ima::ListReader::FromBytes(*bin, o);
  ASSERT_TRUE(reader.ok());
  ima::Entry e;
  size_t n = 0;
  while (*(*reader)->Next(&e)) n++;
  EXPECT_EQ(n, records.size());
}

TEST(SecurityfsViewTest, TreeHasTheKernelsNamesModesAndLinks) {
  auto tree = BuildViewTree(ViewBanks({0x000b}), true);
  std::map<std::string, ViewNode> t(tree.begin(), tree.end());
  ASSERT_TRUE(t.count("/ima"));
  EXPECT_EQ(t["/ima"].type, ViewNode::Type::kLink);
  EXPECT_EQ(t["/ima"].target, "integrity/ima");
  EXPECT_EQ(t["/integrity/ima/binary_runtime_measurements"].target, "binary_runtime_measurements_sha1");
  EXPECT_EQ(t["/integrity/ima/ascii_runtime_measurements"].target, "ascii_runtime_measurements_sha1");
  EXPECT_EQ(t["/integrity/ima/ascii_runtime_measurements_sha256"].mode, 0440u);
  EXPECT_EQ(t["/integrity/ima/binary_runtime_measurements_sha256"].file, ViewNode::File::kBinary);
  EXPECT_EQ(t["/integrity/ima/runtime_measurements_count"].mode, 0440u);
  EXPECT_EQ(t["/integrity/ima/violations"].mode, 0440u);
  EXPECT_EQ(t["/integrity/ima/policy"].mode, 0600u);
  EXPECT_EQ(t["/evm"].target, "integrity/evm/evm");  // the kernel's evm_symlink
  EXPECT_EQ(t["/integrity/evm/evm"].mode, 0660u);
  EXPECT_EQ(t["/integrity/evm/evm"].file, ViewNode::File::kEvm);
  EXPECT_EQ(t["/tpm0/binary_bios_measurements"].file, ViewNode::File::kBootLog);
  // Every child a directory lists exists, and every node but / is listed by its parent.
  for (const auto& [path, node] : t) {
    for (const auto& c : node.children) EXPECT_TRUE(t.count((path == "/" ? "" : path) + "/" + c)) << path << "/" << c;
    if (path == "/") continue;
    std::string parent = path.substr(0, path.rfind('/'));
    const auto& siblings = t[parent.empty() ? "/" : parent].children;
    EXPECT_NE(std::find(siblings.begin(), siblings.end(), path.substr(path.rfind('/') + 1)), siblings.end()) << path;
  }
  auto without = BuildViewTree(ViewBanks({}), false);
  for (const auto& [path, node] : without) EXPECT_EQ(path.find("tpm0"), std::string::npos);
}

// LivePolicy with a recorder that remembers what limd would append.
struct Recorded {
  std::vector<std::string> texts;
  std::vector<std::string> files;
  int installs = 0;
  bool policy_check_rule = false;
};

PolicyRecorder Recorder(Recorded* r) {
  PolicyRecorder rec;
  rec.measure_file = [r](int, const std::string& path) -> Result<bool> {
    if (r->policy_check_rule) r->files.push_back(path);
    return r->policy_check_rule;
  };
  rec.record_text = [r](std::string_view b) {
    r->texts.emplace_back(b);
    return Status::Ok();
  };
  rec.install = [r](const ima::PolicyMatcher*) { r->installs++; };
  return rec;
}

ima::Policy Builtin() {
  auto p = ima::ParsePolicy("dont_measure fsmagic=0x1021994\nmeasure func=BPRM_CHECK\n", "builtin:test");
  EXPECT_TRUE(p.ok());
  return *p;
}

// Writes all of data as a writer looping on short writes would; the first failure ends it.
Status WriteAll(PolicyWriter* w, std::string_view data) {
  while (!data.empty()) {
    auto n = w->Write(data);
    if (!n.ok()) return n.status();
    if (*n == 0 || *n > data.size()) return Status::Internal("bad write count");
    data.remove_prefix(*n);
  }
  return Status::Ok();
}

// evm_xattrs' writes, as the kernel's evm_write_xattrs (the FUSE side is
// LimdEvmRoot.TheViewsEvmXattrsAddsANameToTheHmacInputAndLocks).
TEST(SecurityfsViewTest, EvmXattrsWritesFollowTheKernel) {
  EvmState evm(SecretBytes(), nullptr);
  std::atomic<bool> locked{false};
  std::string audit;
  EXPECT_EQ(WriteEvmXattrs(&evm, &locked, "security.lim\n", &audit), 13);
  EXPECT_EQ(audit, "xattr=\"security.lim\" res=0");
  EXPECT_EQ(evm.Xattrs().back(), "security.lim");
  EXPECT_NE(evm.XattrsText().find("security.capability\nsecurity.lim\n"), std::string::npos);
  EXPECT_EQ(WriteEvmXattrs(&evm, &locked, "security.lim", &audit), -EEXIST);
  EXPECT_EQ(audit, "xattr=\"security.lim\" res=-17");
  EXPECT_EQ(WriteEvmXattrs(&evm, &locked, "trusted.x\n", &audit), -EINVAL);
  EXPECT_EQ(audit, "xattr=\"trusted.x\" res=-22");
  // The name ends at a NUL; a name with a space is audited in hex.
  EXPECT_EQ(WriteEvmXattrs(&evm, &locked, std::string_view("security.a b\0junk", 17), &audit), 17);
  EXPECT_EQ(audit, "xattr=73656375726974792E612062 res=0");
  EXPECT_EQ(evm.Xattrs().back(), "security.a b");
  EXPECT_EQ(WriteEvmXattrs(&evm, &locked, std::string(256, 's'), &audit), -E2BIG);
  EXPECT_EQ(audit, "");
  EXPECT_EQ(WriteEvmXattrs(&evm, &locked, ".\n", &audit), 2);
  EXPECT_EQ(audit, "xattr=\".\" res=0");
  EXPECT_TRUE(locked.load());
  size_t names = evm.Xattrs().size();
  EXPECT_EQ(WriteEvmXattrs(&evm, &locked, "security.more", &audit), -EPERM);
  EXPECT_EQ(audit, "");
  EXPECT_EQ(evm.Xattrs().size(), names);
}

TEST(LivePolicyTest, FirstWriteReplacesLaterWritesAppendLiveAtFlush) {
  Recorded rec;
  LivePolicy live(Builtin(), false, Recorder(&rec));
  const ima::PolicyMatcher* before = live.matcher();
  auto w = live.OpenWriter();
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(WriteAll(w->get(), "measure func=FILE_CHECK mask=MAY_READ\n").ok());
  EXPECT_EQ(live.matcher(), before);  // nothing before the flush
  ASSERT_TRUE((*w)->Flush().ok());
  EXPECT_NE(live.matcher(), before);
  EXPECT_EQ(live.Show(), "measure func=FILE_CHECK mask=MAY_READ \n");
  ASSERT_EQ(rec.texts.size(), 1u);
  EXPECT_EQ(rec.texts[0], "measure func=FILE_CHECK mask=MAY_READ\n");
  EXPECT_EQ(rec.installs, 1);
  ASSERT_TRUE((*w)->Flush().ok());  // a second flush without a write commits nothing
  EXPECT_EQ(live.loads(), 1u);
  w->reset();
  auto w2 = live.OpenWriter();
  ASSERT_TRUE(w2.ok());
  ASSERT_TRUE(WriteAll(w2->get(), "# comment\ndont_measure fowner=7\n").ok());
  ASSERT_TRUE((*w2)->Flush().ok());
  EXPECT_EQ(live.Show(), "measure func=FILE_CHECK mask=MAY_READ \ndont_measure fowner=7 \n");
  EXPECT_EQ(live.matcher()->size(), 2u);
  EXPECT_EQ(rec.texts.back(), "# comment\ndont_measure fowner=7\n");  // the exact bytes
}

// ima_write_policy() parses only the first line of each write and returns its length; a
// write without a newline is one whole line. So a rule split across two writes is two
// rules (here the first is invalid), never joined.
TEST(LivePolicyTest, EachWriteIsOneLineAsInTheKernel) {
  Recorded rec;
  LivePolicy live(Builtin(), false, Recorder(&rec));
  std::string shown = live.Show();
  auto w = live.OpenWriter();
  ASSERT_TRUE(w.ok());
  auto n = (*w)->Write("measure func=FILE_CHECK\ndont_measure fowner=7\n");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 24u);  // "measure func=FILE_CHECK\n" only: the writer loops for the rest
  n = (*w)->Write("dont_measure fowner=7");  // unterminated: still a complete rule
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 21u);
  ASSERT_TRUE((*w)->Flush().ok());
  EXPECT_EQ(live.Show(), "measure func=FILE_CHECK \ndont_measure fowner=7 \n");
  ASSERT_EQ(rec.texts.size(), 1u);
  EXPECT_EQ(rec.texts[0], "measure func=FILE_CHECK\ndont_measure fowner=7\n");  // one line per write
  w->reset();
  // The split rule: "measure func=FILE_" is refused on its own write.
  auto w2 = live.OpenWriter();
  ASSERT_TRUE(w2.ok());
  n = (*w2)->Write("measure func=FILE_");
  EXPECT_EQ(n.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*w2)->error_number(), EINVAL);
  EXPECT_TRUE((*w2)->Write("CHECK\n").status().code() == StatusCode::kInvalidArgument);
  ASSERT_TRUE((*w2)->Flush().ok());  // dropped; close() returns 0 as the kernel's
  EXPECT_EQ(live.loads(), 1u);
  // A NUL ends the line (memdup_user_nul + strsep): it is consumed with it, the rest is
  // the next write's.
  w2->reset();
  auto w4 = live.OpenWriter();
  ASSERT_TRUE(w4.ok());
  n = (*w4)->Write(std::string_view("dont_measure fowner=8\0junk", 26));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 22u);
  w4->reset();
  // Only PAGE_SIZE - 1 bytes of one write are looked at.
  auto w3 = live.OpenWriter();
  ASSERT_TRUE(w3.ok());
  std::string long_comment = "#" + std::string(5000, 'x') + "\n";
  n = (*w3)->Write(long_comment);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, kPolicyWriteMax);
}

// Issue 18 item 11: `echo "" > policy` (or only comments) succeeds and changes nothing.
TEST(LivePolicyTest, BlankOrCommentOnlyWriteSucceedsAndChangesNothing) {
  Recorded rec;
  LivePolicy live(Builtin(), false, Recorder(&rec));
  std::string shown = live.Show();
  const ima::PolicyMatcher* before = live.matcher();
  for (std::string_view text : {"\n", "# only a comment\n", "  \t\n# a\n\n", "   "}) {
    auto w = live.OpenWriter();
    ASSERT_TRUE(w.ok());
    EXPECT_TRUE(WriteAll(w->get(), text).ok()) << text;
    EXPECT_TRUE((*w)->Flush().ok()) << text;
  }
  EXPECT_EQ(live.Show(), shown);
  EXPECT_EQ(live.matcher(), before);
  EXPECT_EQ(live.loads(), 0u);
  EXPECT_TRUE(rec.texts.empty());
  EXPECT_EQ(rec.installs, 0);
  // Comments do not poison a batch: with a rule after them it loads.
  auto w = live.OpenWriter();
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(WriteAll(w->get(), "\n# c\n").ok());
  ASSERT_TRUE(WriteAll(w->get(), "measure func=BPRM_CHECK\n").ok());
  ASSERT_TRUE((*w)->Flush().ok());
  EXPECT_EQ(live.Show(), "measure func=BPRM_CHECK \n");
  ASSERT_EQ(rec.texts.size(), 1u);
  EXPECT_EQ(rec.texts[0], "\n# c\nmeasure func=BPRM_CHECK\n");
}

TEST(LivePolicyTest, PolicyFromTheCommandLineCountsAsTheFirst) {
  Recorded rec;
  LivePolicy live(Builtin(), true, Recorder(&rec));
  ASSERT_TRUE(live.Load("measure func=FILE_CHECK\n").ok());
  EXPECT_EQ(live.matcher()->size(), 3u);  // appended
}

TEST(LivePolicyTest, BadRuleFailsItsWriteAndDiscardsTheBatch) {
  Recorded rec;
  LivePolicy live(Builtin(), false, Recorder(&rec));
  std::string shown = live.Show();
  auto w = live.OpenWriter();
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(WriteAll(w->get(), "measure func=FILE_CHECK\n").ok());
  auto bad = (*w)->Write("measure func=NOPE\n");
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*w)->error_number(), EINVAL);
  // Later writes are still checked (a good one succeeds, as in the kernel) ...
  EXPECT_TRUE(WriteAll(w->get(), "measure func=BPRM_CHECK\n").ok());
  EXPECT_FALSE(WriteAll(w->get(), "bogus\n").ok());
  // ... and the whole batch is dropped at the flush, which still succeeds.
  EXPECT_TRUE((*w)->Flush().ok());
  EXPECT_EQ(live.Show(), shown);
  EXPECT_TRUE(rec.texts.empty());
  EXPECT_EQ(rec.installs, 0);
  // A bad rule on an unterminated last write fails that write.
  w->reset();
  auto w2 = live.OpenWriter();
  ASSERT_TRUE(w2.ok());
  EXPECT_EQ((*w2)->Write("measure func=NOPE").status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE((*w2)->Flush().ok());
  EXPECT_EQ(live.Show(), shown);
  EXPECT_EQ(live.Load("# only a comment\n").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(live.loads(), 0u);
}

TEST(LivePolicyTest, OneWriterAtATime) {
  Recorded rec;
  LivePolicy live(Builtin(), false, Recorder(&rec));
  auto w = live.OpenWriter();
  ASSERT_TRUE(w.ok());
  auto second = live.OpenWriter();
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);  // EBUSY
  w->reset();
  EXPECT_TRUE(live.OpenWriter().ok());
}

TEST(LivePolicyTest, PathLoadsTheFileRecordedAsPolicyCheckOrText) {
  std::string dir = lim::testing::MakeTempDir();
  std::string file = dir + "/p";
  std::string body = "measure func=MMAP_CHECK mask=MAY_EXEC\n";
  ASSERT_TRUE(WriteFileBytes(file, AsBytes(body)).ok());
  Recorded rec;
  LivePolicy live(Builtin(), false, Recorder(&rec));
  // No POLICY_CHECK rule: the file's bytes are recorded as lim-policy-update.
  auto w = live.OpenWriter();
  ASSERT_TRUE(w.ok());
  auto n = (*w)->Write(file + "\n");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, file.size() + 1);  // the whole write
  ASSERT_TRUE((*w)->Flush().ok());
  EXPECT_EQ(live.Show(), "measure func=MMAP_CHECK mask=MAY_EXEC \n");
  ASSERT_EQ(rec.texts.size(), 1u);
  EXPECT_EQ(rec.texts[0], body);
  // A rule asks: measured as POLICY_CHECK, no text entry. Text after the path's newline
  // is ignored, as ima_read_policy() does.
  rec.policy_check_rule = true;
  ASSERT_TRUE(live.Load(file + "\nignored junk").ok());
  EXPECT_EQ(rec.files, std::vector<std::string>{file});
  EXPECT_EQ(rec.texts.size(), 1u);
  // A missing file fails the write that names it; nothing loads.
  w->reset();
  auto w2 = live.OpenWriter();
  ASSERT_TRUE(w2.ok());
  EXPECT_EQ((*w2)->Write(dir + "/missing\n").status().code(), StatusCode::kNotFound);
  EXPECT_EQ((*w2)->error_number(), ENOENT);
  EXPECT_TRUE((*w2)->Flush().ok());
  EXPECT_EQ(live.loads(), 2u);
  // A file with no rule is accepted by the write and dropped with the empty batch.
  std::string comments = dir + "/comments";
  ASSERT_TRUE(WriteFileBytes(comments, AsBytes(std::string("# nothing\n"))).ok());
  w2->reset();
  auto w3 = live.OpenWriter();
  ASSERT_TRUE(w3.ok());
  EXPECT_TRUE((*w3)->Write(comments).ok());
  EXPECT_TRUE((*w3)->Flush().ok());
  EXPECT_EQ(live.loads(), 2u);
}

// Issue 18 item 5: a path that is not a regular file (FIFO, device, directory) fails its
// write with EINVAL at once, as kernel_read_file() does, without opening it blocking; a
// file over the size cap fails with EFBIG; a read that does not finish in time fails with
// ETIMEDOUT; none of them blocks the writer slot for the next writer.
TEST(LivePolicyTest, PathThatIsNotARegularFileFailsAtOnce) {
  std::string dir = lim::testing::MakeTempDir();
  std::string fifo = dir + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string big = dir + "/big";
  {
    int fd = ::open(big.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(kPolicyFileMaxBytes) + 1), 0);  // sparse
    ::close(fd);
  }
  Recorded rec;
  LivePolicy live(Builtin(), false, Recorder(&rec));
  std::string shown = live.Show();
  struct Case {
    std::string path;
    int err;
  };
  for (const Case& c : {Case{fifo, EINVAL}, Case{"/dev/zero", EINVAL}, Case{"/dev/null", EINVAL}, Case{dir, EINVAL},
                        Case{big, EFBIG}}) {
    auto w = live.OpenWriter();
    ASSERT_TRUE(w.ok()) << c.path;  // never EBUSY: the earlier writer is gone
    auto t0 = std::chrono::steady_clock::now();
    auto n = (*w)->Write(c.path + "\n");
    EXPECT_FALSE(n.ok()) << c.path;
    EXPECT_EQ((*w)->error_number(), c.err) << c.path;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1)) << c.path;
    EXPECT_TRUE((*w)->Flush().ok());
  }
  EXPECT_EQ(live.Show(), shown);
  EXPECT_EQ(live.loads(), 0u);
  EXPECT_TRUE(rec.files.empty());
}

TEST(LivePolicyTest, PolicyFileThatDoesNotAnswerTimesOut) {
  std::string dir = lim::testing::MakeTempDir();
  std::string file = dir + "/p";
  ASSERT_TRUE(WriteFileBytes(file, AsBytes(std::string("measure func=BPRM_CHECK\n"))).ok());
  // The loader thread hangs (as on a dead FUSE or NFS server) until released.
  auto release = std::make_shared<std::atomic<bool>>(false);
  PolicyRecorder hanging;
  hanging.measure_file = [release](int, const std::string&) -> Result<bool> {
    while (!release->load()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return false;
  };
  LivePolicy live(Builtin(), false, hanging);
  live.set_file_timeout(std::chrono::milliseconds(200));
  std::string shown = live.Show();
  auto w = live.OpenWriter();
  ASSERT_TRUE(w.ok());
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE((*w)->Write(file).ok());
  EXPECT_EQ((*w)->error_number(), ETIMEDOUT);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_TRUE((*w)->Flush().ok());
  w->reset();
  EXPECT_EQ(live.Show(), shown);
  // The next writer is not blocked by the hung loader.
  auto w2 = live.OpenWriter();
  ASSERT_TRUE(w2.ok());
  ASSERT_TRUE(WriteAll(w2->get(), "measure func=FILE_CHECK\n").ok());
  ASSERT_TRUE((*w2)->Flush().ok());
  EXPECT_EQ(live.loads(), 1u);
  // Hung loaders are bounded: once kMaxPolicyLoaders hang, the next path fails at once.
  for (int i = 1; i < kMaxPolicyLoaders; ++i) {
    EXPECT_FALSE((*w2)->Write(file).ok());
    EXPECT_EQ((*w2)->error_number(), ETIMEDOUT);
  }
  t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE((*w2)->Write(file).ok());
  EXPECT_EQ((*w2)->error_number(), EBUSY);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(100));
  EXPECT_TRUE((*w2)->Flush().ok());
  w2->reset();
  // Released, they finish alone; then a path load works again.
  release->store(true);
  live.set_file_timeout(std::chrono::seconds(5));
  for (int i = 0; i < 100; ++i) {
    auto w3 = live.OpenWriter();
    ASSERT_TRUE(w3.ok());
    auto n = (*w3)->Write(file);
    if (n.ok()) {
      ASSERT_TRUE((*w3)->Flush().ok());
      break;
    }
    EXPECT_EQ((*w3)->error_number(), EBUSY);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(live.loads(), 2u);
}

}  // namespace
}  // namespace lim::daemon
