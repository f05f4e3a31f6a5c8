// AttribWatch on real filesystems (root: fanotify). A tmpfs unmounted and mounted again
// usually gets the same anonymous device number: the new superblock must be marked anew.
#include "daemon/attrib_watch.h"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "daemon/limd_test_util.h"
#include "tests/testing.h"

namespace lim::daemon {
namespace {

TEST(AttribWatchRoot, ANewSuperblockOnAReusedDeviceNumberIsMarkedAgain) {
  std::string why = testing::FanotifyUnavailable(FAN_CLASS_NOTIF);
  if (!why.empty()) GTEST_SKIP() << why;
  std::atomic<int> changes{0};
  std::string lost;  // on_overflow's why (called on this thread, from Mark)
  auto w = AttribWatch::Create([&](const std::string&) { changes++; }, [&](const std::string& reason) { lost = reason; });
  if (!w.ok()) GTEST_SKIP() << w.status().message();
  std::string dir = lim::testing::MakeTempDir();
  auto mount_tmpfs = [&] { return ::mount("limdtest", dir.c_str(), "tmpfs", 0, "size=8m") == 0; };
  ASSERT_TRUE(mount_tmpfs()) << strerror(errno);
  struct stat st {};
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  const uint64_t dev = st.st_dev;
  ASSERT_TRUE((*w)->Mark(dir, dev).ok());
  ASSERT_EQ(::umount(dir.c_str()), 0);
  ASSERT_TRUE(mount_tmpfs()) << strerror(errno);
  struct Unmount {
    std::string d;
    ~Unmount() { ::umount2(d.c_str(), MNT_DETACH); }
  } unmount{dir};
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  if (static_cast<uint64_t>(st.st_dev) != dev) GTEST_SKIP() << "the new tmpfs got another device number";
  // What limd does for a filesystem attached at a root it watched before. What was verified
  // on the old one is forgotten (its files may have changed while it was away).
  ASSERT_TRUE((*w)->Mark(dir, dev).ok());
  EXPECT_NE(lost.find("is a new filesystem on a device number watched before"), std::string::npos) << lost;
  std::string f = dir + "/f";
  ASSERT_EQ(lim::testing::RunCommand("touch " + f + " && chmod 600 " + f).exit_code, 0);
  for (int i = 0; i < 100 && changes == 0; ++i) {
    auto n = (*w)->Drain();
    ASSERT_TRUE(n.ok()) << n.status().message();
    if (changes == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GT(changes.load(), 0) << "a chmod on the new superblock was not seen";
}

}  // namespace
}  // namespace lim::daemon
