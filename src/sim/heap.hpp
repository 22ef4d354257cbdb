#pragma once

namespace thingsync::sim {

/// The simulator's store grows by about a kilobyte per created binding, and a first touch of
/// a fresh 4 KiB page costs a page fault: on virtual machines ~20 us of CPU, more than the
/// rest of a create. These two functions make the malloc heap (glibc's brk heap) grow in big
/// steps that are populated by one madvise(MADV_POPULATE_WRITE) call each, with transparent
/// huge pages where the kernel has them: about 1 us per 4 KiB instead. Without glibc, or on a
/// kernel without MADV_POPULATE_WRITE (before 5.14), they do nothing.

/// Call once at start: the heap then grows 32 MiB at a time, holds blocks up to 32 MiB
/// (rather than mmap), and is trimmed back only when 128 MiB at its top are free.
void tune_heap_growth();

/// Call after each request: once the heap has grown past its first 32 MiB, populates what it
/// grew by since the last call (cheap when it did not grow: a comparison).
void populate_heap_growth();

}  // namespace thingsync::sim
