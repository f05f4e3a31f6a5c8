#include "daemon/precontent_ignores.h"

#include <sys/fanotify.h>

#include "daemon/fanotify_uapi.h"

namespace lim::daemon {

uint64_t PrecontentIgnores::Epoch(const InodeKey& key) {
  std::lock_guard<std::mutex> lk(mu_);
  return Slot(key);
}

void PrecontentIgnores::Add(int fd, const InodeKey& key, uint64_t epoch) {
  std::lock_guard<std::mutex> lk(mu_);
  if (Slot(key) != epoch) return;  // removed since
  if (group_->AddInodeIgnore(fd, FAN_PRE_ACCESS)) (*added_)++;
}

void PrecontentIgnores::Remove(int fd, const InodeKey& key) {
  std::lock_guard<std::mutex> lk(mu_);
  Slot(key)++;
  if (group_->RemoveInodeIgnore(fd, FAN_PRE_ACCESS)) (*removed_)++;
}

void PrecontentIgnores::Flush() {
  std::lock_guard<std::mutex> lk(mu_);
  for (auto& e : epoch_) e++;
  group_->FlushInodeMarks();
}

}  // namespace lim::daemon
