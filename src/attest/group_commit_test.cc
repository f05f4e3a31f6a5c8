#include "attest/group_commit.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <thread>
#include <vector>

#include "attest/store.h"

namespace lim::attest {
namespace {

// Many threads writing at once through a slow commit: every round comes back with its own
// result, commits never overlap, rounds queue into shared batches, each batch is sorted by
// agent, and no batch is larger than asked.
TEST(GroupCommitTest, ConcurrentRoundsShareBatchesAndEachGetsItsOwnResult) {
  GroupCommit group(16);
  std::atomic<int> in_commit{0};
  std::atomic<bool> overlapped{false}, unsorted{false};
  std::atomic<size_t> largest{0};
  constexpr int kThreads = 8, kRounds = 40;
  std::atomic<int> started{0};
  std::atomic<bool> first{true};
  auto commit = [&](const std::vector<const RoundWrite*>& rounds, std::vector<Status>* results) {
    if (in_commit.fetch_add(1) != 0) overlapped = true;
    // The first commit waits until every writer has begun its first Write (and then a little
    // more, for them to queue): the next batch then holds several rounds on any machine.
    if (first.exchange(false)) {
      for (int i = 0; i < 5000 && started.load() < kThreads; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    for (size_t i = 0; i < rounds.size(); ++i) {
      if (i > 0 && *rounds[i - 1]->agent > *rounds[i]->agent) unsorted = true;
      // The result names the round it belongs to; agents ending in 7 are refused.
      (*results)[i] = rounds[i]->agent->back() == '7'
                          ? Status::NotFound(*rounds[i]->agent + "@" + std::to_string(rounds[i]->time))
                          : Status::Ok();
    }
    if (rounds.size() > largest) largest = rounds.size();
    in_commit.fetch_sub(1);
  };
  std::atomic<int> wrong{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::string agent = "agent" + std::to_string(t + 2);  // agent2 … agent9
      AgentState state;
      std::vector<Finding> none;
      for (int r = 0; r < kRounds; ++r) {
        if (r == 0) ++started;
        RoundWrite w{&agent, std::nullopt, &state, AgentStatus::kAttested, r, &none, std::nullopt, nullptr};
        Status st = group.Write(w, commit);
        if (agent.back() == '7') {
          ++refused;
          if (st.message() != agent + "@" + std::to_string(r)) ++wrong;
        } else if (!st.ok()) {
          ++wrong;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(refused.load(), kRounds);
  EXPECT_FALSE(overlapped.load());
  EXPECT_FALSE(unsorted.load());
  EXPECT_LE(largest.load(), 16u);
  GroupCommit::Stats s = group.stats();
  EXPECT_EQ(s.rounds, static_cast<uint64_t>(kThreads * kRounds));
  EXPECT_LT(s.batches, s.rounds) << "writers queued behind a commit share the next transaction";
  EXPECT_GT(s.largest, 1u);
}

TEST(GroupCommitTest, OneWriterAloneIsABatchOfOne) {
  GroupCommit group;
  std::string agent = "a";
  AgentState state;
  std::vector<Finding> none;
  size_t calls = 0;
  for (int r = 0; r < 5; ++r) {
    RoundWrite w{&agent, 3, &state, AgentStatus::kAttested, r, &none, std::nullopt, nullptr};
    EXPECT_TRUE(group
                    .Write(w,
                           [&](const std::vector<const RoundWrite*>& rounds, std::vector<Status>* results) {
                             ++calls;
                             EXPECT_EQ(rounds.size(), 1u);
                             EXPECT_EQ(rounds[0]->fence, std::optional<int64_t>(3));
                             (*results)[0] = Status::Ok();
                           })
                    .ok());
  }
  EXPECT_EQ(calls, 5u);
  EXPECT_EQ(group.stats().largest, 1u);
}

// A commit function that throws (out of memory) wakes every round of its batch with an error
// instead of leaving them waiting.
TEST(GroupCommitTest, AThrowingCommitFailsItsRoundsAndTheNextBatchRuns) {
  GroupCommit group;
  std::string agent = "a";
  AgentState state;
  std::vector<Finding> none;
  RoundWrite w{&agent, std::nullopt, &state, AgentStatus::kAttested, 1, &none, std::nullopt, nullptr};
  Status st = group.Write(w, [](const std::vector<const RoundWrite*>&, std::vector<Status>*) {
    throw std::bad_alloc();
  });
  EXPECT_EQ(st.code(), StatusCode::kInternal);
  EXPECT_TRUE(group.Write(w, [](const std::vector<const RoundWrite*>&, std::vector<Status>* r) { (*r)[0] = Status::Ok(); }).ok());
}

TEST(GroupCommitTest, OnlyNoAgentAndStaleFenceAreRefusalsOfOneRound) {
  EXPECT_TRUE(RoundRefusedAlone(Status::NotFound("no agent")));
  EXPECT_TRUE(RoundRefusedAlone(Status::Mismatch("stale lease")));
  EXPECT_FALSE(RoundRefusedAlone(Status::IoError("disk full")));
  EXPECT_FALSE(RoundRefusedAlone(Status::Unavailable("connection lost")));
}

}  // namespace
}  // namespace lim::attest
