#include "support/oracle.h"

#include <algorithm>
#include <cstring>

namespace hmmsim::testing {
namespace {

// The syscalls' common range validation: page-aligned start, and a length
// that stays inside the user address space once page aligned.
bool range_in_user_space(Vaddr addr, uint64_t size) {
  return addr.v <= kUserMax && size <= kUserMax - addr.v;
}

// x86's access_error(): a write needs VM_WRITE; a read needs any access
// right, because the hardware cannot express write-only or exec-only pages.
bool access_allowed(const OracleAttrs& attrs, AccessKind kind) {
  if (kind == AccessKind::kWrite) return (attrs.prot & kProtWrite) != 0;
  return (attrs.prot & (kProtRead | kProtWrite | kProtExec)) != 0;
}

}  // namespace

const OracleAttrs* OracleMm::attrs_at(Vaddr addr) const {
  auto it = areas_.upper_bound(addr.v);
  if (it == areas_.begin()) return nullptr;
  const OracleRange& area = std::prev(it)->second;
  return addr < area.end ? &area.attrs : nullptr;
}

bool OracleMm::range_free(Vaddr start, Vaddr end) const {
  return mapped_bytes_in(start, end) == 0;
}

uint64_t OracleMm::mapped_bytes() const {
  uint64_t total = 0;
  for (const auto& [s, area] : areas_) total += area.end - area.start;
  return total;
}

uint64_t OracleMm::mapped_bytes_in(Vaddr start, Vaddr end) const {
  uint64_t total = 0;
  auto it = areas_.upper_bound(start.v);
  if (it != areas_.begin()) --it;
  for (; it != areas_.end() && it->second.start < end; ++it) {
    Vaddr from = std::max(it->second.start, start);
    Vaddr to = std::min(it->second.end, end);
    if (from < to) total += to - from;
  }
  return total;
}

std::vector<OracleRange> OracleMm::ranges() const {
  std::vector<OracleRange> out;
  for (const auto& [s, area] : areas_) {
    if (!out.empty() && out.back().end == area.start && out.back().attrs == area.attrs) {
      out.back().end = area.end;
    } else {
      out.push_back(area);
    }
  }
  return out;
}

Vaddr OracleMm::populated_page(uint64_t n) const {
  auto it = pages_.begin();
  std::advance(it, n);
  return Vaddr{it->first << kPageShift};
}

void OracleMm::peek(Vaddr addr, std::span<std::byte> out) const {
  uint64_t done = 0;
  while (done < out.size()) {
    Vaddr a = addr + done;
    uint64_t off = a.v & (kPageSize - 1);
    uint64_t chunk = std::min<uint64_t>(kPageSize - off, out.size() - done);
    auto it = pages_.find(a.page_index());
    if (it == pages_.end()) {
      std::memset(out.data() + done, 0, chunk);
    } else {
      std::memcpy(out.data() + done, it->second->data() + off, chunk);
    }
    done += chunk;
  }
}

void OracleMm::split_at(Vaddr addr) {
  auto it = areas_.upper_bound(addr.v);
  if (it == areas_.begin()) return;
  OracleRange& area = std::prev(it)->second;
  if (area.start >= addr || area.end <= addr) return;
  OracleRange upper{addr, area.end, area.attrs};
  area.end = addr;
  areas_.emplace(addr.v, upper);
}

void OracleMm::coalesce(Vaddr start, Vaddr end) {
  auto it = areas_.upper_bound(start.v);
  if (it != areas_.begin()) --it;
  if (it != areas_.begin()) --it;
  while (it != areas_.end() && it->second.start <= end) {
    auto next = std::next(it);
    if (next == areas_.end()) break;
    if (it->second.end == next->second.start && it->second.attrs == next->second.attrs) {
      it->second.end = next->second.end;
      areas_.erase(next);
    } else {
      it = next;
    }
  }
}

void OracleMm::zap(Vaddr start, Vaddr end) {
  pages_.erase(pages_.lower_bound(start.page_index()), pages_.lower_bound(end.page_index()));
}

void OracleMm::unmap_range(Vaddr start, Vaddr end) {
  split_at(start);
  split_at(end);
  areas_.erase(areas_.lower_bound(start.v), areas_.lower_bound(end.v));
  zap(start, end);
}

template <typename Fn>
bool OracleMm::for_each_piece(Vaddr start, Vaddr end, Fn fn) {
  split_at(start);
  split_at(end);
  bool hole = false;
  Vaddr cur = start;
  for (auto it = areas_.lower_bound(start.v); it != areas_.end() && it->second.start < end; ++it) {
    if (it->second.start > cur) hole = true;
    fn(it->second);
    cur = it->second.end;
  }
  coalesce(start, end);
  return hole || cur < end;
}

void OracleMm::map(Vaddr start, Vaddr end, uint32_t prot) {
  unmap_range(start, end);
  areas_.emplace(start.v, OracleRange{start, end, OracleAttrs{.prot = prot, .thp = 0}});
  coalesce(start, end);
}

// munmap(): EINVAL for an unaligned start or an empty or wrapping range;
// holes are fine.
Status OracleMm::munmap(Vaddr addr, uint64_t len) {
  uint64_t size = page_align_up(len);
  if (!addr.page_aligned() || size == 0 || size < len || !range_in_user_space(addr, size)) {
    return Err{Errno::kInval};
  }
  unmap_range(addr, addr + size);
  return Ok();
}

// mprotect(): EINVAL for an unaligned start, success for len 0, ENOMEM when
// the start is unmapped. Otherwise it changes the Vmas from the start up to
// the first hole and reports ENOMEM if it met one (do_mprotect_pkey breaks
// out of its Vma loop; what it changed stays changed).
Status OracleMm::mprotect(Vaddr addr, uint64_t len, uint32_t prot) {
  if (!addr.page_aligned()) return Err{Errno::kInval};
  if (len == 0) return Ok();
  uint64_t size = page_align_up(len);
  if (size < len || !range_in_user_space(addr, size)) return Err{Errno::kNoMem};
  Vaddr end = addr + size;
  if (!attrs_at(addr)) return Err{Errno::kNoMem};
  Vaddr cur = addr;
  split_at(addr);
  split_at(end);
  for (auto it = areas_.lower_bound(addr.v);
       it != areas_.end() && it->second.start == cur && cur < end; ++it) {
    it->second.attrs.prot = prot;
    cur = it->second.end;
  }
  coalesce(addr, end);
  return cur < end ? Status(Err{Errno::kNoMem}) : Ok();
}

// madvise(): EINVAL for an unaligned start or a wrapping range, success for
// an empty one. The advice applies to every mapped piece; a hole anywhere
// in the range (above the address space included) makes the call return
// ENOMEM afterwards.
Status OracleMm::madvise(Vaddr addr, uint64_t len, Advice advice) {
  if (!addr.page_aligned()) return Err{Errno::kInval};
  uint64_t size = page_align_up(len);
  if (size < len || addr.v + size < addr.v) return Err{Errno::kInval};
  if (size == 0) return Ok();
  Vaddr end = addr + size;
  bool hole = for_each_piece(addr, end, [&](OracleRange& area) {
    switch (advice) {
      case Advice::kDontNeed: zap(area.start, area.end); break;
      case Advice::kHugePage: area.attrs.thp = kVmHugepage; break;
      case Advice::kNoHugePage: area.attrs.thp = kVmNoHugepage; break;
      case Advice::kFree:      // lazily freeable, but nothing reclaims it
      case Advice::kCollapse:  // the bytes stay the same
        break;
    }
  });
  return hole ? Status(Err{Errno::kNoMem}) : Ok();
}

Result<MremapPlan> OracleMm::plan_mremap(Vaddr old_addr, uint64_t old_len, uint64_t new_len,
                                         uint32_t flags, Vaddr new_addr, Vaddr vma_end) const {
  constexpr uint32_t kAll = kMremapMaymove | kMremapFixed | kMremapDontunmap;
  if (flags & ~kAll) return Err{Errno::kInval};
  if ((flags & kMremapFixed) && !(flags & kMremapMaymove)) return Err{Errno::kInval};
  if ((flags & kMremapDontunmap) && (!(flags & kMremapMaymove) || old_len != new_len))
    return Err{Errno::kInval};
  if (!old_addr.page_aligned()) return Err{Errno::kInval};
  MremapPlan plan{.old_addr = old_addr,
                  .old_len = page_align_up(old_len),
                  .new_len = page_align_up(new_len),
                  .flags = flags,
                  .new_addr = new_addr};
  if (plan.old_len < old_len || plan.new_len < new_len || plan.new_len == 0)
    return Err{Errno::kInval};
  if (!range_in_user_space(old_addr, plan.old_len)) return Err{Errno::kInval};
  if (flags & kMremapFixed) {
    if (!new_addr.page_aligned() || plan.new_len > kUserMax ||
        new_addr.v > kUserMax - plan.new_len || new_addr.v < kUserMin)
      return Err{Errno::kInval};
    if (new_addr < old_addr + plan.old_len && old_addr < new_addr + plan.new_len)
      return Err{Errno::kInval};
  }
  if (!attrs_at(old_addr)) return Err{Errno::kFault};
  if (plan.old_len == 0) return Err{Errno::kInval};
  if (plan.old_len > vma_end - old_addr) return Err{Errno::kFault};
  if (flags & kMremapFixed) {
    plan.kind = MremapPlan::kMove;
  } else if (!(flags & kMremapDontunmap) && plan.new_len <= plan.old_len) {
    plan.kind = MremapPlan::kShrink;
  } else if (!(flags & kMremapDontunmap) && old_addr + plan.old_len == vma_end &&
             vma_end.v <= kUserMax - (plan.new_len - plan.old_len) &&
             range_free(vma_end, vma_end + (plan.new_len - plan.old_len))) {
    plan.kind = MremapPlan::kGrow;
  } else if (!(flags & kMremapMaymove)) {
    return Err{Errno::kNoMem};
  } else {
    plan.kind = MremapPlan::kMove;
  }
  return plan;
}

Vaddr OracleMm::mremap(const MremapPlan& plan, Vaddr dest) {
  Vaddr old_addr = plan.old_addr;
  uint64_t old_len = plan.old_len;
  OracleAttrs attrs = *attrs_at(old_addr);
  switch (plan.kind) {
    case MremapPlan::kShrink:
      unmap_range(old_addr + plan.new_len, old_addr + old_len);
      return old_addr;
    case MremapPlan::kGrow: {
      Vaddr end = old_addr + old_len;
      areas_.emplace(end.v, OracleRange{end, old_addr + plan.new_len, attrs});
      coalesce(end, old_addr + plan.new_len);
      return old_addr;
    }
    case MremapPlan::kMove:
      break;
  }
  if (plan.flags & kMremapFixed) {
    dest = plan.new_addr;
    unmap_range(dest, dest + plan.new_len);
    if (old_len > plan.new_len) {
      unmap_range(old_addr + plan.new_len, old_addr + old_len);
      old_len = plan.new_len;
    }
  }
  // The bytes move with their pages.
  std::vector<std::pair<uint64_t, std::shared_ptr<const PageBytes>>> moved;
  for (auto it = pages_.lower_bound(old_addr.page_index());
       it != pages_.end() && it->first < (old_addr + old_len).page_index(); ++it) {
    moved.emplace_back(it->first - old_addr.page_index(), it->second);
  }
  if (plan.flags & kMremapDontunmap) {
    zap(old_addr, old_addr + old_len);
  } else {
    unmap_range(old_addr, old_addr + old_len);
  }
  unmap_range(dest, dest + plan.new_len);
  areas_.emplace(dest.v, OracleRange{dest, dest + plan.new_len, attrs});
  for (auto& [off, bytes] : moved) pages_[dest.page_index() + off] = std::move(bytes);
  coalesce(dest, dest + plan.new_len);
  return dest;
}

AccessPlan OracleMm::plan_access(Vaddr addr, uint64_t len, AccessKind kind) const {
  AccessPlan plan;
  while (plan.done < len) {
    Vaddr a = addr + plan.done;
    const OracleAttrs* attrs = attrs_at(a);
    if (!attrs || !access_allowed(*attrs, kind)) {
      plan.status = Err{Errno::kFault};
      return plan;
    }
    plan.done += std::min<uint64_t>(kPageSize - (a.v & (kPageSize - 1)), len - plan.done);
  }
  return plan;
}

void OracleMm::write(Vaddr addr, std::span<const std::byte> in) {
  uint64_t done = 0;
  while (done < in.size()) {
    Vaddr a = addr + done;
    uint64_t off = a.v & (kPageSize - 1);
    uint64_t chunk = std::min<uint64_t>(kPageSize - off, in.size() - done);
    auto bytes = std::make_shared<PageBytes>();
    auto it = pages_.find(a.page_index());
    if (it != pages_.end()) {
      *bytes = *it->second;
    } else {
      bytes->fill(std::byte{0});
    }
    std::memcpy(bytes->data() + off, in.data() + done, chunk);
    pages_[a.page_index()] = std::move(bytes);
    done += chunk;
  }
}

}  // namespace hmmsim::testing
