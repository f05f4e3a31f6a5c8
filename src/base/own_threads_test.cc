#include "base/own_threads.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <vector>

namespace lim {
namespace {

TEST(OwnThreads, StartedThreadIsOwnForItsLifeOnly) {
  std::atomic<pid_t> tid{0};
  std::atomic<bool> seen_inside{false};
  std::thread t = StartOwnThread([&] {
    tid = ::gettid();
    seen_inside = OwnThreads::Contains(::gettid());
  });
  t.join();
  EXPECT_TRUE(seen_inside.load());
  EXPECT_FALSE(OwnThreads::Contains(tid.load()));  // gone with its thread
}

TEST(OwnThreads, PlainThreadAndForeignTidsAreNotOwn) {
  std::atomic<bool> inside{true};
  std::thread t([&] { inside = OwnThreads::Contains(::gettid()); });
  t.join();
  EXPECT_FALSE(inside.load());
  EXPECT_FALSE(OwnThreads::Contains(0));
  EXPECT_FALSE(OwnThreads::Contains(-1));
  EXPECT_FALSE(OwnThreads::Contains(1));  // init
}

TEST(OwnThreads, ManyThreadsAtOnceEachSeeThemselvesAndOthers) {
  constexpr int kThreads = 40;
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<pid_t> tids(kThreads);
  std::vector<std::thread> ts;
  for (int i = 0; i < kThreads; ++i) {
    ts.push_back(StartOwnThread([&, i] {
      tids[i] = ::gettid();
      ready++;
      while (!go.load()) std::this_thread::yield();
    }));
  }
  while (ready.load() < kThreads) std::this_thread::yield();
  for (pid_t tid : tids) EXPECT_TRUE(OwnThreads::Contains(tid));
  go = true;
  for (auto& t : ts) t.join();
  for (pid_t tid : tids) EXPECT_FALSE(OwnThreads::Contains(tid));
  EXPECT_TRUE(OwnThreads::Complete());
}

}  // namespace
}  // namespace lim
