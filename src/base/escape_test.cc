#include "base/escape.h"

#include <gtest/gtest.h>

#include <set>

namespace lim {
namespace {

// Undoes Escaped(): "\\" and "\xNN".
std::string Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && s[i + 1] == '\\') {
      out.push_back('\\');
      ++i;
    } else if (s[i] == '\\' && s[i + 1] == 'x') {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 2, 2)), nullptr, 16)));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

TEST(EscapeTest, ControlBytesBackslashAndBadUtf8) {
  EXPECT_EQ(Escaped("/usr/bin/ls"), "/usr/bin/ls");
  EXPECT_EQ(Escaped(std::string("a\nb\0c", 5)), "a\\x0ab\\x00c");
  EXPECT_EQ(Escaped("a\\b"), "a\\\\b");
  EXPECT_EQ(Escaped("\x7f\xff"), "\\x7f\\xff");
  EXPECT_EQ(Escaped("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  EXPECT_EQ(Escaped("\xc3"), "\\xc3");              // cut short
  EXPECT_EQ(Escaped("\xc0\xaf"), "\\xc0\\xaf");     // overlong '/'
  EXPECT_EQ(Escaped("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // a surrogate
}

TEST(EscapeTest, DifferentStringsNeverEscapeAlike) {
  std::set<std::string> seen;
  std::vector<std::string> inputs = {"\xff", "\\xff", "\\\\xff", "\\", "\\\\", "\n", "\\x0a", "\xc3\xa9", "\\xc3\\xa9"};
  for (int b = 0; b < 256; ++b) inputs.push_back(std::string(1, static_cast<char>(b)));
  std::set<std::string> distinct(inputs.begin(), inputs.end());
  for (const auto& s : distinct) {
    std::string e = Escaped(s);
    EXPECT_TRUE(seen.insert(e).second) << e;
    EXPECT_EQ(Unescape(e), s) << e;
    EXPECT_EQ(e.find('\n'), std::string::npos);
    EXPECT_EQ(e.find('\0'), std::string::npos);
  }
}

// Plain strings are exactly those Escaped leaves alone and JSON needs no escape in.
TEST(EscapeTest, PlainForJsonIsItsOwnEscapedForm) {
  EXPECT_TRUE(PlainForJson("/usr/share/doc/a b+c~d"));
  EXPECT_TRUE(PlainForJson(""));
  for (int b = 0; b < 256; ++b) {
    std::string s(1, static_cast<char>(b));
    bool json_plain = b >= 0x20 && b < 0x80 && b != '"' && b != '\\';
    EXPECT_EQ(PlainForJson(s), json_plain && Escaped(s) == s) << b;
  }
  EXPECT_FALSE(PlainForJson("caf\xc3\xa9"));  // well-formed UTF-8, but not ASCII: the slow path
}

}  // namespace
}  // namespace lim
