#include "mm/page.h"

#include <algorithm>
#include <cstring>

#include "base/assert.h"

namespace hmmsim {

void page_read(const Page& page, uint64_t offset, void* dst, uint64_t len) {
  HMM_ASSERT(offset + len <= kPageSize, "page read out of bounds: {}+{}", offset, len);
  if (page.data) {
    std::memcpy(dst, page.data.get() + offset, len);
  } else {
    std::memset(dst, 0, len);
  }
}

void page_write(Page& page, uint64_t offset, const void* src, uint64_t len) {
  HMM_ASSERT(offset + len <= kPageSize, "page write out of bounds: {}+{}", offset, len);
  if (!page.data) page.data = std::make_unique<std::byte[]>(kPageSize);  // zero-filled
  std::memcpy(page.data.get() + offset, src, len);
}

void page_copy(Page& dst, const Page& src) {
  if (!src.data) {
    dst.data.reset();
    return;
  }
  if (!dst.data) dst.data = std::make_unique_for_overwrite<std::byte[]>(kPageSize);
  std::memcpy(dst.data.get(), src.data.get(), kPageSize);
}

void page_zero(Page& page) { page.data.reset(); }

bool page_is_zero_filled(const Page& page) {
  if (!page.data) return true;
  const std::byte* p = page.data.get();
  return std::all_of(p, p + kPageSize, [](std::byte b) { return b == std::byte{0}; });
}

}  // namespace hmmsim
