// The prefetching loader: one worker thread, a bounded queue, a condition variable both sides wait on.
#include "data/loader.h"

#include "core/error.h"

namespace tg::data {

PrefetchLoader::PrefetchLoader(std::unique_ptr<BatchStream> stream, size_t depth)
    : stream_(std::move(stream)), depth_(depth) {
  TG_CHECK(stream_ != nullptr, "PrefetchLoader: no stream");
  TG_CHECK(depth_ >= 1, "PrefetchLoader: depth must be >= 1, got {}", depth_);
  delivered_ = stream_->state_dict();
  worker_ = std::thread([this] { run(); });
}

PrefetchLoader::~PrefetchLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

void PrefetchLoader::run() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return stop_ || ready_.size() < depth_; });
      if (stop_) return;
    }
    // Made outside the lock, so the consumer can take a ready batch meanwhile.
    Item item;
    try {
      item.batch = stream_->next();
      item.after = stream_->state_dict();
    } catch (...) {
      item.error = std::current_exception();
    }
    const bool failed = item.error != nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ready_.push_back(std::move(item));
    }
    cv_.notify_all();
    if (failed) return;  // a broken stream makes nothing more
  }
}

Batch PrefetchLoader::next() {
  if (error_) std::rethrow_exception(error_);
  Item item;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [&] { return !ready_.empty(); });
    item = std::move(ready_.front());
    ready_.pop_front();
  }
  cv_.notify_all();  // room for the worker
  if (item.error) {
    error_ = item.error;
    std::rethrow_exception(error_);
  }
  delivered_ = std::move(item.after);
  return std::move(item.batch);
}

}  // namespace tg::data
