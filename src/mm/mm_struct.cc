#include "mm/mm_struct.h"

#include "base/assert.h"
#include "mm/mmu_notifier.h"
#include "mm/world.h"

namespace hmmsim {

MmStruct::MmStruct(World& world, int pid)
    : mmap_lock(world.sched()), page_table_lock(world.sched()), world_(&world), pid_(pid),
      notifier_subscriptions_(std::make_shared<MmuNotifierSubscriptions>(world.sched())) {}

MmStruct::~MmStruct() {
  // exit_mmap() must have torn everything down first.
  HMM_ASSERT(vmas_quiesced().empty(), "mm {} destroyed with VMAs", pid_);
  HMM_ASSERT(nr_ptes_.load() == 0, "mm {} destroyed with {} page tables", pid_, nr_ptes_.load());
  HMM_ASSERT(anon_rss_.load() == 0, "mm {} destroyed with rss {}", pid_, anon_rss_.load());
}

Vma* MmStruct::find_vma(Vaddr addr) const {
  auto it = vmas_.upper_bound(addr.v);
  if (it != vmas_.begin()) {
    auto prev = std::prev(it);
    if (prev->second->end() > addr) return prev->second.get();
  }
  return it == vmas_.end() ? nullptr : it->second.get();
}

Vma* MmStruct::vma_lookup(Vaddr addr) const {
  Vma* vma = find_vma(addr);
  return (vma && vma->contains(addr)) ? vma : nullptr;
}

Vma* MmStruct::vma_prev(Vaddr addr) const {
  auto it = vmas_.lower_bound(addr.v);
  if (it == vmas_.begin()) return nullptr;
  Vma* prev = std::prev(it)->second.get();
  return prev->end() <= addr ? prev : nullptr;
}

Vma* MmStruct::insert_vma(std::unique_ptr<Vma> vma) {
  Vma* raw = vma.get();
  auto [it, inserted] = vmas_.emplace(raw->start().v, std::move(vma));
  HMM_ASSERT(inserted, "VMA already at {:#x}", raw->start().v);
  return raw;
}

std::unique_ptr<Vma> MmStruct::remove_vma(Vma* vma) {
  auto it = vmas_.find(vma->start().v);
  HMM_ASSERT(it != vmas_.end() && it->second.get() == vma, "removing unknown VMA {:#x}",
             vma->start().v);
  std::unique_ptr<Vma> owned = std::move(it->second);
  vmas_.erase(it);
  return owned;
}

void MmStruct::rekey_vma(Vma* vma, Vaddr old_start) {
  auto node = vmas_.extract(old_start.v);
  HMM_ASSERT(!node.empty() && node.mapped().get() == vma, "rekey of unknown VMA");
  node.key() = vma->start().v;
  vmas_.insert(std::move(node));
}

PmdTable* MmStruct::pmd_table(Vaddr addr, Alloc alloc) {
  MutexLock guard(page_table_lock);
  std::unique_ptr<PudTable>& pud = pgd_.puds[addr.pgd_index()];
  if (!pud) {
    if (alloc == Alloc::kNo) return nullptr;
    pud = std::make_unique<PudTable>();
  }
  std::unique_ptr<PmdTable>& pmd = pud->pmds[addr.pud_index()];
  if (!pmd) {
    if (alloc == Alloc::kNo) return nullptr;
    pmd = std::make_unique<PmdTable>(world_->sched());
  }
  return pmd.get();
}

std::vector<std::pair<Vaddr, PmdTable*>> MmStruct::pmd_tables_in(Vaddr start, Vaddr end) {
  std::vector<std::pair<Vaddr, PmdTable*>> out;
  MutexLock guard(page_table_lock);
  for (unsigned g = start.pgd_index(); g < kPtrsPerTable; g++) {
    if (uint64_t{g} * kPgdSize >= end.v) break;
    if (!pgd_.puds[g]) continue;
    for (unsigned u = 0; u < kPtrsPerTable; u++) {
      Vaddr base{uint64_t{g} * kPgdSize + uint64_t{u} * kPudSize};
      if (base >= end) break;
      if (base + kPudSize <= start || !pgd_.puds[g]->pmds[u]) continue;
      out.emplace_back(base, pgd_.puds[g]->pmds[u].get());
    }
  }
  return out;
}

void MmStruct::free_empty_upper_tables() {
  MutexLock guard(page_table_lock);
  for (auto& pud : pgd_.puds) {
    if (!pud) continue;
    bool pud_empty = true;
    for (auto& pmd : pud->pmds) {
      if (!pmd) continue;
      bool empty = true;
      for (unsigned i = 0; i < kPtrsPerTable && empty; i++) {
        empty = pmd->peek(i).entry.is_none();
      }
      if (empty) {
        pmd.reset();
      } else {
        pud_empty = false;
      }
    }
    if (pud_empty) pud.reset();
  }
}

}  // namespace hmmsim
