#include "attest/leases.h"

#include <openssl/rand.h>
#include <unistd.h>

#include <algorithm>

namespace lim::attest {

namespace {
std::string DefaultOwner() {
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  unsigned char r[4] = {};
  (void)RAND_bytes(r, sizeof(r));
  char tag[16];
  std::snprintf(tag, sizeof(tag), "%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
  // The random part: a restarted process with the same pid does not inherit stale leases.
  return std::string(host) + "/" + std::to_string(::getpid()) + "/" + tag;
}
}  // namespace

LeaseKeeper::LeaseKeeper(Store& store, std::string owner, std::chrono::milliseconds interval,
                         std::function<void(const std::vector<std::string>&)> acquired,
                         std::function<void(const std::string&)> log)
    : store_(store),
      owner_(owner.empty() ? DefaultOwner() : std::move(owner)),
      interval_(std::max<std::chrono::milliseconds>(interval, std::chrono::milliseconds(1))),
      period_(std::max<std::chrono::milliseconds>(interval / 2, std::chrono::milliseconds(1))),
      ttl_(std::max<std::chrono::milliseconds>(interval * 3 / 2, std::chrono::milliseconds(2))),
      acquired_(std::move(acquired)),
      log_(std::move(log)) {}

LeaseKeeper::~LeaseKeeper() { Stop(); }

Status LeaseKeeper::Start() {
  LIM_RETURN_IF_ERROR(Refresh());
  if (store_.Shared()) thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void LeaseKeeper::Stop() {
  {
    std::lock_guard lk(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (store_.Shared()) {
    if (Status st = store_.ReleaseLeases(owner_); !st.ok() && log_) log_("lim-verifier: releasing leases: " + st.message());
  }
}

bool LeaseKeeper::Owns(const std::string& agent) const {
  if (!store_.Shared()) return true;
  std::lock_guard lk(mu_);
  return leases_.count(agent) != 0 && draining_.count(agent) == 0;
}

std::optional<int64_t> LeaseKeeper::Fence(const std::string& agent) const {
  if (!store_.Shared()) return 0;
  std::lock_guard lk(mu_);
  auto it = leases_.find(agent);
  if (it == leases_.end() || draining_.count(agent)) return std::nullopt;
  return it->second;
}

std::optional<int64_t> LeaseKeeper::Chosen(const std::string& agent) {
  if (!store_.Shared()) return 0;
  std::lock_guard lk(mu_);
  auto it = leases_.find(agent);
  if (it == leases_.end() || draining_.count(agent)) return std::nullopt;
  taken_.insert(agent);
  return it->second;
}

std::optional<int64_t> LeaseKeeper::BeginRound(const std::string& agent) {
  if (!store_.Shared()) return 0;
  std::lock_guard lk(mu_);
  auto it = leases_.find(agent);
  if (it == leases_.end() || draining_.count(agent)) return std::nullopt;
  ++in_flight_[agent];
  return it->second;
}

void LeaseKeeper::EndRound(const std::string& agent) {
  if (!store_.Shared()) return;
  std::lock_guard lk(mu_);
  auto it = in_flight_.find(agent);
  if (it != in_flight_.end() && --it->second <= 0) in_flight_.erase(it);
}

Result<int64_t> LeaseKeeper::Take(const std::string& agent) {
  if (!store_.Shared()) return 0;
  LIM_ASSIGN_OR_RETURN(int64_t fence, store_.TakeLease(agent, owner_, ttl_));
  std::lock_guard lk(mu_);
  leases_[agent] = fence;
  draining_.erase(agent);
  taken_.insert(agent);
  return fence;
}

size_t LeaseKeeper::owned() const {
  std::lock_guard lk(mu_);
  return leases_.size() - draining_.size();
}

size_t LeaseKeeper::fair_share() const {
  std::lock_guard lk(mu_);
  return fair_share_;
}

Status LeaseKeeper::Refresh() {
  if (!store_.Shared()) return Status::Ok();
  std::vector<std::string> give_up;
  {
    std::lock_guard lk(mu_);
    for (const auto& id : draining_) {
      if (!in_flight_.count(id)) give_up.push_back(id);  // its round ended: a round boundary
    }
  }
  auto claimed = store_.ClaimLeases(owner_, ttl_, give_up);
  std::vector<std::string> fresh;
  std::vector<std::string> lines;
  size_t before = 0, after = 0;
  {
    std::lock_guard lk(mu_);
    before = leases_.size() - draining_.size();
    auto now = std::chrono::steady_clock::now();
    // A failed claim (the database is down): our leases expire in the database too, so
    // none is ours any more; the rounds stop until a claim succeeds again.
    if (!claimed.ok()) {
      if (failures_++ == 0) {
        outage_start_ = now;
        outage_agents_ = before;
        lines.push_back("lim-verifier: store unavailable: " + claimed.status().message() + "; rounds of " +
                        std::to_string(before) + " agents stop until it is back");
      }
      leases_.clear();
      draining_.clear();
      taken_.clear();
    } else {
      if (failures_ > 0) {
        auto away = std::chrono::duration_cast<std::chrono::milliseconds>(now - outage_start_);
        lines.push_back("lim-verifier: store back after " + std::to_string(away.count()) + " ms (" +
                        std::to_string(failures_) + " failed claims): about " +
                        std::to_string(outage_agents_ * static_cast<size_t>(away / interval_)) + " rounds of " +
                        std::to_string(outage_agents_) + " agents were not run; rounds resume");
        failures_ = 0;
      }
      for (const auto& [id, fence] : claimed->leases) {
        auto it = leases_.find(id);
        if (it == leases_.end() || it->second != fence) fresh.push_back(id);
      }
      leases_ = std::move(claimed->leases);
      fair_share_ = claimed->fair_share;
      // Released, or lost to another verifier: no longer draining.
      for (auto* set : {&draining_, &taken_}) {
        for (auto it = set->begin(); it != set->end();) it = leases_.count(*it) ? std::next(it) : set->erase(it);
      }
      // Over the fair share (a verifier joined): drain the surplus, the last agents first.
      size_t owned = leases_.size() - draining_.size();
      for (auto it = leases_.rbegin(); it != leases_.rend() && owned > fair_share_; ++it) {
        if (!taken_.count(it->first) && draining_.insert(it->first).second) --owned;
      }
      if (owned < before && lines.empty()) {
        lines.push_back("lim-verifier: " + owner_ + " hands over " + std::to_string(before - owned) +
                        " agents (fair share " + std::to_string(fair_share_) + " of " +
                        std::to_string(claimed->verifiers) + " verifiers)");
      }
    }
    after = leases_.size() - draining_.size();
  }
  if (log_ && after != before) {
    lines.push_back("lim-verifier: " + owner_ + " attests " + std::to_string(after) + " agents (was " +
                    std::to_string(before) + ")");
  }
  if (log_) {
    for (const auto& l : lines) log_(l);
  }
  if (!claimed.ok()) return claimed.status().WithPrefix("claiming leases");
  if (!fresh.empty() && acquired_) acquired_(fresh);
  return Status::Ok();
}

void LeaseKeeper::Run() {
  std::unique_lock lk(mu_);
  while (!stop_) {
    // Backoff while the store is away: interval/2, interval, 2 intervals (the cap).
    auto wait = period_ * (1 << std::min(failures_, 2));
    if (cv_.wait_for(lk, wait, [this] { return stop_; })) break;
    lk.unlock();
    if (Status st = Refresh(); !st.ok() && log_) log_("lim-verifier: " + st.message());
    lk.lock();
  }
}

}  // namespace lim::attest
