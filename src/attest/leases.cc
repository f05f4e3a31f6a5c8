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
  return leases_.count(agent) != 0;
}

std::optional<int64_t> LeaseKeeper::Fence(const std::string& agent) const {
  if (!store_.Shared()) return 0;
  std::lock_guard lk(mu_);
  auto it = leases_.find(agent);
  if (it == leases_.end()) return std::nullopt;
  return it->second;
}

Status LeaseKeeper::Refresh() {
  if (!store_.Shared()) return Status::Ok();
  auto claimed = store_.ClaimLeases(owner_, ttl_);
  std::vector<std::string> fresh;
  size_t before = 0, after = 0;
  {
    std::lock_guard lk(mu_);
    before = leases_.size();
    // A failed claim (the database is down): our leases expire in the database too, so
    // none is ours any more; the rounds stop until a claim succeeds again.
    if (!claimed.ok()) {
      leases_.clear();
    } else {
      for (const auto& [id, fence] : *claimed) {
        auto it = leases_.find(id);
        if (it == leases_.end() || it->second != fence) fresh.push_back(id);
      }
      leases_ = std::move(claimed).value();
    }
    after = leases_.size();
  }
  if (log_ && after != before) {
    log_("lim-verifier: " + owner_ + " attests " + std::to_string(after) + " agents (was " + std::to_string(before) +
         ")");
  }
  if (!claimed.ok()) return claimed.status().WithPrefix("claiming leases");
  if (!fresh.empty() && acquired_) acquired_(fresh);
  return Status::Ok();
}

void LeaseKeeper::Run() {
  std::unique_lock lk(mu_);
  while (!stop_) {
    if (cv_.wait_for(lk, period_, [this] { return stop_; })) break;
    lk.unlock();
    if (Status st = Refresh(); !st.ok() && log_) log_("lim-verifier: " + st.message());
    lk.lock();
  }
}

}  // namespace lim::attest
