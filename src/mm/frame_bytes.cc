#include "mm/frame_bytes.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "base/assert.h"
#include "base/types.h"

namespace hmmsim {

FrameBytes::FrameBytes(uint64_t nr_frames) : nr_frames_(nr_frames) {
  // One PMD more than needed, so that frame 0 can sit on a 2 MiB boundary:
  // the host can then back each 2 MiB of frames with one huge page, and a
  // huge folio's slots are exactly one of them.
  map_bytes_ = nr_frames * kPageSize + kPmdSize;
  void* p = mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  HMM_ASSERT(p != MAP_FAILED, "cannot reserve {} bytes of frame memory: {}", map_bytes_,
             std::strerror(errno));
  map_ = static_cast<std::byte*>(p);
  uintptr_t aligned = (reinterpret_cast<uintptr_t>(p) + kPmdSize - 1) & ~uintptr_t{kPmdSize - 1};
  base_ = reinterpret_cast<std::byte*>(aligned);
  (void)madvise(base_, nr_frames * kPageSize, MADV_HUGEPAGE);
}

FrameBytes::~FrameBytes() { munmap(map_, map_bytes_); }

std::byte* FrameBytes::frame(uint64_t idx) const {
  HMM_ASSERT(idx < nr_frames_, "frame {} outside its range of {}", idx, nr_frames_);
  return base_ + idx * kPageSize;
}

void FrameBytes::release(uint64_t idx, uint64_t nr) {
  HMM_ASSERT(idx + nr <= nr_frames_, "release of frames [{}, {}) outside {}", idx, idx + nr,
             nr_frames_);
  // Advice only: if the host refuses it the bytes simply stay committed.
  (void)madvise(base_ + idx * kPageSize, nr * kPageSize, MADV_FREE);
}

}  // namespace hmmsim
