#include "check/census.h"

#include <fmt/format.h>

namespace hmmsim::check {
namespace {

bool rss_counted(PteKind kind) {
  return kind == PteKind::kPresent || kind == PteKind::kMigration ||
         kind == PteKind::kDevicePrivate || kind == PteKind::kDeviceExclusive;
}

void record(World& world, Census& c, EntryRef ref) {
  size_t idx = c.entries.size();
  Pfn pfn;
  bool has_pfn = ref.pmd_level ? ref.pmd.has_pfn() : ref.pte.has_pfn();
  if (has_pfn) {
    pfn = ref.pmd_level ? ref.pmd.pfn() : ref.pte.pfn();
    if (MemRange* range = world.mem().range_of(pfn)) {
      Folio folio = page_folio(*range, pfn);
      c.folio_entries[folio.pfn().v].push_back(idx);
      if (ref.pmd_level && ref.pmd.maps_folio()) c.folio_pmd_maps[folio.pfn().v]++;
      if (!ref.pmd_level && ref.pte.maps_folio()) c.page_pte_maps[pfn.v]++;
    }
  }
  MmCensus& mc = c.mms[ref.mm];
  if (ref.pmd_level) {
    if (ref.pmd.has_pfn()) mc.anon_entries += kHPageNr;
  } else if (rss_counted(ref.pte.kind())) {
    mc.anon_entries++;
  }
  c.entries.push_back(ref);
}

Vma* vma_of(MmStruct& mm, Vaddr addr) {
  const auto& vmas = mm.vmas_quiesced();
  auto it = vmas.upper_bound(addr.v);
  if (it == vmas.begin()) return nullptr;
  Vma* vma = std::prev(it)->second.get();
  return vma->contains(addr) ? vma : nullptr;
}

void census_pte_table(World& world, Census& c, MmStruct& mm, const PteTable& table, Vaddr base) {
  c.mms[&mm].pte_tables++;
  for (unsigned i = 0; i < kPtrsPerTable; i++) {
    const Pte& pte = table.peek(i);
    if (pte.is_none()) continue;
    Vaddr addr = base + uint64_t{i} * kPageSize;
    record(world, c, EntryRef{.mm = &mm, .vma = vma_of(mm, addr), .addr = addr, .pte = pte, .pmd = {}});
  }
}

void census_mm(World& world, Census& c, MmStruct& mm) {
  c.mms[&mm];
  for_each_pmd_slot(mm, [&](Vaddr base, const PmdTable&, const PmdSlot& slot) {
    if (slot.deposit) c.mms[&mm].pte_tables++;
    if (slot.table) census_pte_table(world, c, mm, *slot.table, base);
    if (slot.entry.is_huge()) {
      record(world, c, EntryRef{.mm = &mm, .vma = vma_of(mm, base), .addr = base,
                                .pmd_level = true, .pte = {}, .pmd = slot.entry});
    }
  });
}

std::string flag_names(const Page& p) {
  static const std::pair<PageFlag, const char*> kNames[] = {
      {kPgLocked, "locked"}, {kPgAnon, "anon"}, {kPgLargeRmappable, "large_rmappable"},
      {kPgDirty, "dirty"}, {kPgAnonExclusive, "anon_exclusive"}, {kPgHead, "head"},
      {kPgTail, "tail"}, {kPgBuddy, "buddy"}, {kPgLru, "lru"},
      {kPgPartiallyMapped, "partially_mapped"}, {kPgSwapBacked, "swapbacked"},
      {kPgReserved, "reserved"}};
  std::string out;
  for (const auto& [f, name] : kNames) {
    if (!p.test(f)) continue;
    if (!out.empty()) out += '|';
    out += name;
  }
  return out.empty() ? "-" : out;
}

}  // namespace

std::string EntryRef::describe() const {
  return fmt::format("mm {} {:#x} {}: {}{}", mm->pid(), addr.v, pmd_level ? "pmd" : "pte",
                     pmd_level ? pmd.describe() : pte.describe(), vma ? "" : " (outside any Vma)");
}

void for_each_pmd_slot(const MmStruct& mm,
                       const std::function<void(Vaddr, const PmdTable&, const PmdSlot&)>& fn) {
  const PgdTable& pgd = mm.pgd_quiesced();
  for (unsigned g = 0; g < kPtrsPerTable; g++) {
    if (!pgd.puds[g]) continue;
    for (unsigned u = 0; u < kPtrsPerTable; u++) {
      const PmdTable* pmdt = pgd.puds[g]->pmds[u].get();
      if (!pmdt) continue;
      for (unsigned m = 0; m < kPtrsPerTable; m++) {
        Vaddr base{uint64_t{g} * kPgdSize + uint64_t{u} * kPudSize + uint64_t{m} * kPmdSize};
        fn(base, *pmdt, pmdt->peek(m));
      }
    }
  }
}

Census take_census(World& world) {
  Census c;
  for (MmStruct* mm : world.mms()) census_mm(world, c, *mm);
  return c;
}

std::string folio_dump(World& world, const Census& census, Folio folio) {
  (void)world;
  std::string out = fmt::format(
      "folio pfn={:#x} order={} refcount={} mapcount={} entire_mapcount={} "
      "nr_pages_mapped={:#x} flags={} index={} mapping={}\n",
      folio.pfn().v, folio.order().v, folio_ref_count(folio), folio_mapcount(folio),
      folio_entire_mapcount(folio), folio_nr_pages_mapped(folio), flag_names(folio.head()),
      folio.head().index, static_cast<const void*>(folio.head().mapping));
  for (uint64_t i = 0; i < folio.nr_pages(); i++) {
    const Page& p = folio.page(i);
    if (p.mapcount.load() == -1 && !p.test(kPgAnonExclusive)) continue;
    out += fmt::format("  page +{} pfn={:#x} mapcount={} flags={}\n", i, p.pfn,
                       page_pte_mapcount(p), flag_names(p));
  }
  auto it = census.folio_entries.find(folio.pfn().v);
  if (it != census.folio_entries.end()) {
    for (size_t idx : it->second) out += "  mapped by " + census.entries[idx].describe() + "\n";
  } else {
    out += "  mapped by no page-table entry\n";
  }
  return out;
}

std::string mm_dump(const Census& census, const MmStruct& mm) {
  auto it = census.mms.find(&mm);
  MmCensus found = it == census.mms.end() ? MmCensus{} : it->second;
  std::string out = fmt::format(
      "mm {}: nr_ptes={} anon_rss={} (found {} PTE tables, {} pages in rss-counted entries)"
      "{}{}\n",
      mm.pid(), mm.nr_ptes(), mm.anon_rss(), found.pte_tables, found.anon_entries,
      mm.mmap_lock.is_locked() ? " mmap_lock held" : "",
      mm.page_table_lock.is_locked() ? " page_table_lock held" : "");
  for (const auto& [start, vma] : mm.vmas_quiesced()) {
    out += fmt::format("  vma [{:#x}, {:#x}) flags={:#x} pgoff={:#x} anon_vma={} chain={}\n",
                       vma->start().v, vma->end().v, vma->flags(), vma->pgoff(),
                       static_cast<const void*>(vma->anon_vma()), vma->anon_vma_chain().size());
  }
  if (mm.vmas_quiesced().empty()) out += "  no Vmas\n";
  return out;
}

std::string page_dump(const Page& page) {
  return fmt::format(
      "page pfn={:#x} refcount={} _mapcount={} flags={} order={} head_offset={} data={}\n",
      page.pfn, page.refcount.load(), page.mapcount.load(), flag_names(page), page.order,
      page.head_offset, page.has_data() ? "yes" : "no");
}

}  // namespace hmmsim::check
