#include "base/mountinfo.h"

#include <sys/sysmacros.h>

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace lim {
namespace {

TEST(Mountinfo, ParsesTheFieldsAndUnescapesTheMountPoint) {
  auto lines = ParseMountinfo(
      "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
      "23 22 0:45 / /mnt/my\\040disk rw - tmpfs tmpfs rw,size=1k\n");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].id, "22");
  EXPECT_EQ(lines[0].dev, makedev(8, 1));
  EXPECT_EQ(lines[0].mount_point, "/");
  EXPECT_EQ(lines[0].fstype, "ext4");
  EXPECT_EQ(lines[0].source, "/dev/sda1");
  EXPECT_EQ(lines[1].dev, makedev(0, 45));
  EXPECT_EQ(lines[1].mount_point, "/mnt/my disk");
  EXPECT_EQ(lines[1].fstype, "tmpfs");
  EXPECT_EQ(lines[1].source, "tmpfs");
}

TEST(Mountinfo, MalformedLinesAreSkipped) {
  auto lines = ParseMountinfo("garbage\n23 22 045 / /x rw - tmpfs t rw\n\n24 1 0:5 / /y rw tmpfs\n"
                              "25 1 0:6 / /z rw - fuse.sshfs\n");
  ASSERT_EQ(lines.size(), 1u);  // no "maj:min", no " - ", an empty line: skipped
  EXPECT_EQ(lines[0].fstype, "fuse.sshfs");  // the type is the last field
}

TEST(Mountinfo, FieldsMaySitBetweenRunsOfBlanksAndLinesAreSplitAsGetlineDoes) {
  auto m = ParseMountinfoLine("31  22 259:3\t/ /boot rw - vfat /dev/nvme0n1p3 rw");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->id, "31");
  EXPECT_EQ(m->dev, makedev(259, 3));
  EXPECT_EQ(m->mount_point, "/boot");
  EXPECT_FALSE(ParseMountinfoLine("31 22").has_value());
  std::string_view text = "a\n\nb", line;
  std::vector<std::string> lines;
  while (NextMountinfoLine(&text, &line)) lines.emplace_back(line);
  EXPECT_EQ(lines, (std::vector<std::string>{"a", "", "b"}));
  text = "c\n";
  lines.clear();
  while (NextMountinfoLine(&text, &line)) lines.emplace_back(line);
  EXPECT_EQ(lines, (std::vector<std::string>{"c"}));
}

TEST(Mountinfo, ReadsThisProcesssOwn) {
  auto lines = ReadMountinfo();
  ASSERT_TRUE(lines.ok()) << lines.status().message();
  bool root = false;
  for (const auto& m : *lines) root |= m.mount_point == "/";
  EXPECT_TRUE(root);
  EXPECT_FALSE(ReadMountinfo("/nonexistent/mountinfo").ok());
}

}  // namespace
}  // namespace lim
