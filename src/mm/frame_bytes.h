// FrameBytes: the bytes behind the frames of one memory range.
//
// Every frame of a MemRange owns one 4 KiB slot of an anonymous host
// mapping reserved for the whole range (MAP_NORESERVE), so that a frame's
// bytes sit at a fixed place computed from its pfn, the way a physical
// frame does, and moving a page costs one memcpy — no allocation, no host
// page fault once the slot has been touched.
//
// The host commits a slot when it is first written. Whether a frame holds
// bytes at all is the page's kPgHasData flag (page.h): a frame without it
// reads as zeros, and freeing a frame clears it. Freed slots keep their host
// memory for reuse, except that release() hands the slots of a freed huge
// folio back to the host lazily (MADV_FREE). A range's footprint follows
// the most its frames have held at once (rounded to 2 MiB where the host
// backs the mapping with huge pages), is never more than its size, and
// shrinks under host memory pressure after large frees.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hmmsim {

class FrameBytes {
 public:
  explicit FrameBytes(uint64_t nr_frames);
  ~FrameBytes();
  FrameBytes(const FrameBytes&) = delete;
  FrameBytes& operator=(const FrameBytes&) = delete;

  std::byte* frame(uint64_t idx) const;
  // The slots [idx, idx + nr) no longer hold anything anyone will read.
  void release(uint64_t idx, uint64_t nr);

 private:
  std::byte* map_ = nullptr;   // the host mapping
  uint64_t map_bytes_ = 0;
  std::byte* base_ = nullptr;  // frame 0, 2 MiB-aligned inside it
  uint64_t nr_frames_ = 0;
};

}  // namespace hmmsim
