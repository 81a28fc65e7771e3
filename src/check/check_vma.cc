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
                             vma->start().v, vma->end().v, prev_end.v));
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
                           vma->start().v, vma->mm().pid()));
    }
    for (AnonVma* av : chain) {
      if (!ctx.world.anon_vma_live(av) || !av->vmas.count(const_cast<Vma*>(vma))) {
        ctx.fail("VMA", "check_anon_vma_links",
                 fmt::format("Vma {:#x} of mm {} chains to an anon_vma that does not list it",
                             vma->start().v, vma->mm().pid()));
        continue;
      }
      for (Vma* other : av->vmas) {
        if (!all.count(other)) {
          ctx.fail("VMA", "check_anon_vma_links", "an anon_vma lists a Vma that is gone");
        }
      }
    }
  }
}

// The rmap walk finds every mapping: a mapped anon folio's anon_vma is live,
// lists the Vma of each entry that maps the folio, and the Vma's pgoff puts
// the mapped page exactly at the entry's address. (Otherwise try_to_migrate
// would leave a mapping behind and migration would lose it.)
void check_rmap_reaches_every_mapping(const Ctx& ctx) {
  for (const auto& [head, idxs] : ctx.census.folio_entries) {
    Folio folio = pfn_folio(ctx.world.mem(), Pfn{head});
    if (!folio_test_anon(folio)) continue;
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

// Between steps nobody is inside mm/: no mmap_lock, page-table lock or
// folio lock is held.
void check_no_lock_held(const Ctx& ctx) {
  for (MmStruct* mm : ctx.world.mms()) {
    if (mm->mmap_lock.is_locked() || mm->page_table_lock.is_locked()) {
      ctx.fail("LOCK", "check_no_lock_held", fmt::format("mm {} lock held", mm->pid()));
    }
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
