// PrefetchLoader: prepares the next batches of a BatchStream on a background thread while the model trains on the
// current one. It changes when batches are made, never which: next() returns exactly the sequence the stream's
// own next() would, so a run is deterministic with or without it.
//
//   auto loader = tg::data::PrefetchLoader(std::make_unique<tg::data::LMWindowStream>(train, opts));
//   for (int step = 0; step < n; ++step) { tg::data::Batch b = loader.next(); ... }
//   save(..., loader.state_dict());   // the stream's state after the last batch next() returned
#pragma once
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>

#include "data/dataset.h"

namespace tg::data {

class PrefetchLoader {
 public:
  // Owns the stream, so nothing else can advance it behind the worker's back. To resume, load the saved state into
  // the stream before handing it over. depth: how many batches may wait ready (>= 1).
  explicit PrefetchLoader(std::unique_ptr<BatchStream> stream, size_t depth = 2);
  // Stops the worker (it finishes the batch it is making, if any) and joins it.
  ~PrefetchLoader();
  PrefetchLoader(const PrefetchLoader&) = delete;
  PrefetchLoader& operator=(const PrefetchLoader&) = delete;

  // Blocks until the next batch is ready. An exception thrown by the stream is rethrown here, in order, and again
  // by every later call.
  Batch next();
  // The stream's state just after the last batch next() returned (before the first: its state at construction).
  // Batches made ahead but not yet returned are not counted, so a checkpoint resumes at the right batch.
  const StateDict& state_dict() const { return delivered_; }

 private:
  struct Item {
    Batch batch;
    StateDict after;  // the stream's state once this batch was made
    std::exception_ptr error;
  };
  void run();

  std::unique_ptr<BatchStream> stream_;  // touched only by the worker once it runs
  const size_t depth_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Item> ready_;
  bool stop_ = false;
  std::exception_ptr error_;  // consumer side: the failure already delivered
  StateDict delivered_;       // consumer side
  std::thread worker_;        // last: started once everything above exists
};

}  // namespace tg::data
