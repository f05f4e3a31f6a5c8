#include "ima/ima_xattr.h"

#include <gtest/gtest.h>

namespace lim::ima {
namespace {

TEST(XattrHashAlgoId, EveryKindOfSecurityIma) {
  EXPECT_EQ(*XattrHashAlgoId(Bytes{kXattrDigsig, 2, 7, 1, 2, 3, 4, 0, 1, 9}), 7);
  EXPECT_FALSE(XattrHashAlgoId(Bytes{kXattrDigsig, 1, 7, 1, 2, 3, 4, 0, 1, 9}).has_value());  // not v2
  EXPECT_FALSE(XattrHashAlgoId(Bytes{kXattrDigsig, 2, 7, 1}).has_value());                   // no header
  EXPECT_EQ(*XattrHashAlgoId(Bytes{kXattrVeritySig, 3, 4, 1, 2, 3, 4, 0, 1, 9}), 4);
  EXPECT_FALSE(XattrHashAlgoId(Bytes{kXattrVeritySig, 2, 4, 1, 2, 3, 4, 0, 1, 9}).has_value());  // v3 only
  EXPECT_EQ(*XattrHashAlgoId(Bytes{kXattrDigestNg, 6}), 6);
  EXPECT_FALSE(XattrHashAlgoId(Bytes{kXattrDigestNg, kKernelHashAlgoCount}).has_value());  // unknown id
  EXPECT_EQ(*XattrHashAlgoId(Bytes(21, 1)), Sha1Algo().kernel_id);  // 0x01 + 20 bytes: sha1
  Bytes md5_padded(21, 1);
  for (size_t i = 17; i < 21; ++i) md5_padded[i] = 0;
  EXPECT_EQ(*XattrHashAlgoId(md5_padded), 1);
  EXPECT_EQ(*XattrHashAlgoId(Bytes(17, 1)), 1);
  EXPECT_FALSE(XattrHashAlgoId(Bytes(18, 1)).has_value());
  EXPECT_FALSE(XattrHashAlgoId(Bytes{kEvmXattrHmac, 1, 2}).has_value());
  EXPECT_FALSE(XattrHashAlgoId(Bytes{}).has_value());
}

}  // namespace
}  // namespace lim::ima
