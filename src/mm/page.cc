#include "mm/page.h"

#include <algorithm>
#include <cstring>

#include "base/assert.h"

namespace hmmsim {

void page_read(const Page& page, uint64_t offset, void* dst, uint64_t len) {
  HMM_ASSERT(offset + len <= kPageSize, "page read out of bounds: {}+{}", offset, len);
  if (page.has_data()) {
    std::memcpy(dst, page.bytes + offset, len);
  } else {
    std::memset(dst, 0, len);
  }
}

void page_write(Page& page, uint64_t offset, const void* src, uint64_t len) {
  HMM_ASSERT(offset + len <= kPageSize, "page write out of bounds: {}+{}", offset, len);
  if (!page.has_data()) {
    if (len < kPageSize) std::memset(page.bytes, 0, kPageSize);
    page.set(kPgHasData);
  }
  std::memcpy(page.bytes + offset, src, len);
}

void page_copy(Page& dst, const Page& src) {
  if (!src.has_data()) {
    dst.clear(kPgHasData);
    return;
  }
  std::memcpy(dst.bytes, src.bytes, kPageSize);
  dst.set(kPgHasData);
}

void pages_read(const Page& first, uint64_t nr, std::byte* dst) {
  const Page* pages = &first;
  for (uint64_t i = 0; i < nr;) {
    uint64_t run = 1;
    bool data = pages[i].has_data();
    while (i + run < nr && pages[i + run].has_data() == data) run++;
    if (data) {
      HMM_ASSERT(pages[i + run - 1].bytes == pages[i].bytes + (run - 1) * kPageSize,
                 "frames {:#x}..{:#x} are not consecutive", pages[i].pfn, pages[i + run - 1].pfn);
      std::memcpy(dst + i * kPageSize, pages[i].bytes, run * kPageSize);
    } else {
      std::memset(dst + i * kPageSize, 0, run * kPageSize);
    }
    i += run;
  }
}

void page_zero(Page& page) { page.clear(kPgHasData); }

bool page_is_zero_filled(const Page& page) {
  if (!page.has_data()) return true;
  const std::byte* p = page.bytes;
  return std::all_of(p, p + kPageSize, [](std::byte b) { return b == std::byte{0}; });
}

}  // namespace hmmsim
