#include "daemon/mount_watch.h"

#include <gtest/gtest.h>

namespace lim::daemon {
namespace {

TEST(MountWatch, DefaultSetIsDiskFilesystemsTmpfsOverlayAndFuse) {
  for (const char* t : {"ext4", "xfs", "btrfs", "tmpfs", "vfat", "squashfs", "overlay", "fuse", "fuseblk", "fuse.sshfs"}) {
    EXPECT_TRUE(DefaultFsType(t)) << t;
  }
  for (const char* t : {"proc", "sysfs", "devtmpfs", "fusectl", "cgroup2", "nfs4"}) {
    EXPECT_FALSE(DefaultFsType(t)) << t;
  }
}

TEST(MountWatch, WithWatchOnlyTheRootsAndBelow) {
  std::vector<std::string> watch = {"/mnt/a", "/srv"};
  EXPECT_TRUE(MountQualifies("ext4", "/mnt/a", watch));
  EXPECT_TRUE(MountQualifies("tmpfs", "/mnt/a/b/c", watch));
  EXPECT_TRUE(MountQualifies("nfs4", "/srv/x", watch));  // any non-refused type below a root
  EXPECT_FALSE(MountQualifies("ext4", "/mnt/ab", watch));  // a sibling with a common prefix
  EXPECT_FALSE(MountQualifies("ext4", "/mnt", watch));
  EXPECT_FALSE(MountQualifies("ext4", "/", watch));
  EXPECT_FALSE(MountQualifies("proc", "/srv/proc", watch));
  EXPECT_FALSE(MountQualifies("fusectl", "/srv/fs/fuse/connections", watch));
  // overlay and FUSE below a root qualify (limd's own view is refused by its device).
  EXPECT_TRUE(MountQualifies("overlay", "/srv/merged", watch));
  EXPECT_TRUE(MountQualifies("fuse.lim", "/srv/view", watch));
  EXPECT_TRUE(MountQualifies("ext4", "/", {}));  // default set: by type (the root fs is refused elsewhere)
  EXPECT_FALSE(MountQualifies("proc", "/proc", {}));
}

}  // namespace
}  // namespace lim::daemon
