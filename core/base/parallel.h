// A loop over independent items spread over a few threads: the signature
// checks of a pushed batch (hub) and of a pulled batch (device).
#ifndef ENLACE_CORE_BASE_PARALLEL_H_
#define ENLACE_CORE_BASE_PARALLEL_H_

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <system_error>
#include <thread>
#include <vector>

namespace enlace::internal {

// Runs fn(i) once for every i in [0, n). Below `min_parallel` items, here
// alone; otherwise on up to `max_threads` threads, this one included (0:
// one per hardware thread), each taking the next index. A thread that cannot
// be started leaves its share to the others. fn must write only to its own
// slot i, so that the results are the same as a serial loop's.
template <typename F>
void ParallelFor(size_t n, size_t min_parallel, size_t max_threads, F&& fn) {
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < n; i = next++) fn(i);
  };
  size_t threads = std::max(1u, std::thread::hardware_concurrency());
  if (max_threads != 0) threads = std::min(threads, max_threads);
  const size_t helpers_wanted = n < min_parallel ? 0 : threads - 1;
  std::vector<std::thread> helpers;
  helpers.reserve(helpers_wanted);
  for (size_t t = 0; t < helpers_wanted; ++t) {
    try {
      helpers.emplace_back(work);
    } catch (const std::system_error&) {
      break;  // no thread to spare: the others do the rest
    }
  }
  work();
  for (auto& t : helpers) t.join();
}

}  // namespace enlace::internal

#endif  // ENLACE_CORE_BASE_PARALLEL_H_
