// MeasurerFixture: the parts a Measurer unit test needs — a FakeEnv, a software TPM, a
// parsed policy and its matcher, and a measurement list in a fresh temporary directory.
// Subclasses build the Measurer with their own MeasurerConfig after OpenParts(). Header
// only; single-threaded like the tests that use it.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>

#include "daemon/fake_env_test_util.h"
#include "daemon/measurement_list.h"
#include "daemon/measurer.h"
#include "ima/policy.h"
#include "ima/policy_match.h"
#include "tests/testing.h"
#include "tpm/tpm.h"

namespace lim::daemon::testing {

class MeasurerFixture : public ::testing::Test {
 protected:
  // Drops the previous measurer and list, then opens new ones for policy_text (lc.state_dir
  // is set to a fresh directory, kept in dir_). env: the list's Env (default the FakeEnv
  // env_; RealEnv() for tests on real files). Check with ASSERT_NO_FATAL_FAILURE.
  void OpenParts(std::string_view policy_text, ListConfig lc = {}, Env* env = nullptr) {
    measurer_.reset();
    list_.reset();
    dir_ = lim::testing::MakeTempDir();
    tpm_ = tpm::OpenSoftwareTpm();
    auto p = ima::ParsePolicy(policy_text, "test");
    ASSERT_TRUE(p.ok()) << p.status().message();
    policy_ = *p;
    matcher_ = std::make_unique<ima::PolicyMatcher>(policy_);
    lc.state_dir = dir_;
    auto l = MeasurementList::Open(lc, tpm_.get(), env ? env : &env_);
    ASSERT_TRUE(l.ok()) << l.status().message();
    list_ = std::move(*l);
  }
  InodeKey Key(int fd) { return {env_.file(fd).facts.dev, env_.file(fd).facts.ino}; }

  FakeEnv env_;
  std::string dir_;
  std::unique_ptr<tpm::Tpm> tpm_;
  ima::Policy policy_;
  std::unique_ptr<ima::PolicyMatcher> matcher_;
  std::unique_ptr<MeasurementList> list_;
  std::unique_ptr<Measurer> measurer_;
};

}  // namespace lim::daemon::testing
