// Vma, anon_vma and rmap invariants, and the quiescence check.
#include <fmt/format.h>

#include <set>

#include "check/checks.h"
#include "mm/rmap.h"

namespace hmmsim::check {

// Vmas are page aligned, non-empty, inside the user range and do not
// overlap; the map key is the start.
void check_vma_tree(const Ctx& ctx) {
  for (MmStruct* mm : ctx.world.mms()) {
    Vaddr prev_end{0};
    for (const auto& [start, vma] : mm->vmas_quiesced()) {
      bool ok = start == vma->start().v && vma->start().page_aligned() &&
                vma->end().page_aligned() && vma->start() < vma->end() &&
                vma->start().v >= kUserMin && vma->end().v <= kUserMax &&
                vma->start() >= prev_end && &vma->mm() == mm;
      if (!ok) {
        ctx.fail("VMA", "check_vma_tree",
                 fmt::format("mm {}: bad Vma [{:#x}, {:#x}) after end {:#x}", mm->pid(),
                             vma->start().v, vma->end().v, prev_end.v),
                 mm_dump(ctx.census, *mm));
      }
      prev_end = vma->end();
    }
  }
}

// A Vma's anon_vma is in its chain; every anon_vma of the chain is live and
// lists the Vma; every Vma an anon_vma lists has it in its chain.
void check_anon_vma_links(const Ctx& ctx) {
  std::set<const Vma*> all;
  for (MmStruct* mm : ctx.world.mms()) {
    for (const auto& [start, vma] : mm->vmas_quiesced()) all.insert(vma.get());
  }
  for (const Vma* vma : all) {
    const auto& chain = vma->anon_vma_chain();
    bool own_in_chain = !vma->anon_vma() ||
                        std::find(chain.begin(), chain.end(), vma->anon_vma()) != chain.end();
    if (!own_in_chain) {
      ctx.fail("VMA", "check_anon_vma_links",
               fmt::format("Vma {:#x} of mm {}: its anon_vma is not in its chain",
                           vma->start().v, vma->mm().pid()),
               mm_dump(ctx.census, vma->mm()));
    }
    for (AnonVma* av : chain) {
      if (!ctx.world.anon_vma_live(av) || !av->vmas.count(const_cast<Vma*>(vma))) {
        ctx.fail("VMA", "check_anon_vma_links",
                 fmt::format("Vma {:#x} of mm {} chains to anon_vma {} that does not list it",
                             vma->start().v, vma->mm().pid(), static_cast<const void*>(av)),
                 mm_dump(ctx.census, vma->mm()));
        continue;
      }
      for (Vma* other : av->vmas) {
        if (!all.count(other)) {
          ctx.fail("VMA", "check_anon_vma_links",
                   fmt::format("anon_vma {} of Vma {:#x} lists a Vma that is gone",
                               static_cast<const void*>(av), vma->start().v),
                   mm_dump(ctx.census, vma->mm()));
        }
      }
    }
  }
}

// The rmap walk finds every mapping: a folio that entries name is anonymous
// (the model maps only anonymous memory, and rmap_walk skips anything else),
// its anon_vma is live, lists the Vma of each entry that maps the folio, and
// the Vma's pgoff puts the mapped page exactly at the entry's address.
// (Otherwise try_to_migrate would leave a mapping behind and migration would
// lose it.) Linux: rmap_walk_anon() walks folio_anon_vma()'s interval tree
// and finds each address with vma_address().
void check_rmap_reaches_every_mapping(const Ctx& ctx) {
  for (const auto& [head, idxs] : ctx.census.folio_entries) {
    Folio folio = pfn_folio(ctx.world.mem(), Pfn{head});
    if (!folio_test_anon(folio)) {
      ctx.fail("RMAP", "check_rmap_reaches_every_mapping",
               fmt::format("folio {:#x} is mapped but not anonymous: {}", head,
                           ctx.census.entries[idxs.front()].describe()),
               folio_dump(ctx.world, ctx.census, folio));
      continue;
    }
    AnonVma* av = folio.head().mapping;
    if (!ctx.world.anon_vma_live(av)) {
      ctx.fail("RMAP", "check_rmap_reaches_every_mapping",
               fmt::format("mapped folio {:#x} points at a dead anon_vma", head),
               folio_dump(ctx.world, ctx.census, folio));
      continue;
    }
    for (size_t i : idxs) {
      const EntryRef& e = ctx.census.entries[i];
      if (!e.vma) continue;
      Pfn pfn = e.pmd_level ? e.pmd.pfn() : e.pte.pfn();
      uint64_t expect = folio.head().index + (pfn - folio.pfn());
      if (!av->vmas.count(e.vma) || e.vma->linear_page_index(e.addr) != expect) {
        ctx.fail("RMAP", "check_rmap_reaches_every_mapping",
                 fmt::format("rmap of folio {:#x} cannot reach {}", head, e.describe()),
                 folio_dump(ctx.world, ctx.census, folio));
      }
    }
  }
}

namespace {

// The page-table locks of `mm`: its page_table_lock and the split locks of
// every PMD table, PTE table and deposited table.
void check_page_table_locks(const Ctx& ctx, const MmStruct& mm) {
  if (mm.page_table_lock.is_locked()) {
    ctx.fail("LOCK", "check_no_lock_held", fmt::format("mm {} page_table_lock held", mm.pid()),
             mm_dump(ctx.census, mm));
  }
  const PmdTable* reported = nullptr;
  for_each_pmd_slot(mm, [&](Vaddr base, const PmdTable& pmdt, const PmdSlot& slot) {
    if (pmdt.ptl.is_locked() && reported != &pmdt) {
      reported = &pmdt;
      ctx.fail("LOCK", "check_no_lock_held",
               fmt::format("mm {} PMD table lock held (the table from {:#x})", mm.pid(),
                           base.v & ~(kPudSize - 1)),
               mm_dump(ctx.census, mm));
    }
    for (const PteTable* t : {slot.table.get(), slot.deposit.get()}) {
      if (!t || !t->ptl.is_locked()) continue;
      ctx.fail("LOCK", "check_no_lock_held",
               fmt::format("mm {} PTE table lock held ({} table at {:#x})", mm.pid(),
                           t == slot.table.get() ? "the" : "the deposited", base.v),
               mm_dump(ctx.census, mm));
    }
  });
}

// The anon_vma locks (the root's rwsem) of every anon_vma a Vma of `mm` is
// linked to.
void check_anon_vma_locks(const Ctx& ctx, const MmStruct& mm) {
  for (const auto& [start, vma] : mm.vmas_quiesced()) {
    for (const AnonVma* av : vma->anon_vma_chain()) {
      if (!ctx.world.anon_vma_live(av) || !av->root->rwsem.is_locked()) continue;
      ctx.fail("LOCK", "check_no_lock_held",
               fmt::format("anon_vma lock held (anon_vma {} of Vma {:#x} of mm {})",
                           static_cast<const void*>(av), start, mm.pid()),
               mm_dump(ctx.census, mm));
      return;
    }
  }
}

}  // namespace

// Between steps nobody is inside mm/: no mmap_lock, anon_vma lock,
// page-table lock (page_table_lock or a split PMD/PTE lock) or folio lock is
// held. Linux: lockdep's check that no lock is held on return to user space
// (lockdep_sys_exit).
void check_no_lock_held(const Ctx& ctx) {
  for (MmStruct* mm : ctx.world.mms()) {
    if (mm->mmap_lock.is_locked()) {
      ctx.fail("LOCK", "check_no_lock_held", fmt::format("mm {} mmap_lock held", mm->pid()),
               mm_dump(ctx.census, *mm));
    }
    check_page_table_locks(ctx, *mm);
    check_anon_vma_locks(ctx, *mm);
  }
  for_each_allocated_folio(ctx.world, [&](Folio folio) {
    if (folio_test_locked(folio)) {
      ctx.fail("LOCK", "check_no_lock_held",
               fmt::format("folio {:#x} left locked", folio.pfn().v),
               folio_dump(ctx.world, ctx.census, folio));
    }
  });
}

}  // namespace hmmsim::check
