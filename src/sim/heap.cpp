#include "heap.hpp"

#include <cstdlib>  // defines __GLIBC__ with glibc

#if defined(__GLIBC__) && defined(__linux__)
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif
#endif

namespace thingsync::sim {

#if defined(__GLIBC__) && defined(__linux__)
namespace {

constexpr int kStep = 32 << 20;
bool enabled = false;
char* start = nullptr;      // heap end at tune_heap_growth()
char* populated = nullptr;  // heap end as of the last call

char* heap_end() { return static_cast<char*>(sbrk(0)); }

}  // namespace

void tune_heap_growth() {
  // Blocks up to kStep (the store's index tables) come from the heap too, not from mmap.
  if (mallopt(M_TOP_PAD, kStep) == 0 || mallopt(M_TRIM_THRESHOLD, 4 * kStep) == 0 ||
      mallopt(M_MMAP_THRESHOLD, kStep) == 0) {
    return;
  }
  start = populated = heap_end();
  enabled = populated != reinterpret_cast<char*>(-1);
}

void populate_heap_growth() {
  if (!enabled) return;
  char* end = heap_end();
  if (end <= populated) {
    populated = end;  // trimmed (rare): what grows again is new
    return;
  }
  if (end - start <= kStep) return;  // a small simulator (most tests) faults in what it uses
  const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto from = reinterpret_cast<std::uintptr_t>(populated) & ~(page - 1);
  const auto len = static_cast<std::size_t>(reinterpret_cast<std::uintptr_t>(end) - from);
  auto* range = reinterpret_cast<void*>(from);
  ::madvise(range, len, MADV_HUGEPAGE);  // a hint: no harm when THP is off
  if (::madvise(range, len, MADV_POPULATE_WRITE) != 0) enabled = false;  // older kernel
  populated = end;
}

#else

void tune_heap_growth() {}
void populate_heap_growth() {}

#endif

}  // namespace thingsync::sim
