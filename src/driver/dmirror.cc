// dmirror device memory: chunks, free lists, the pagemap callbacks and
// eviction (lib/test_hmm.c: dmirror_allocate_chunk,
// dmirror_devmem_alloc_page, dmirror_devmem_free, dmirror_devmem_fault,
// dmirror_device_evict_chunk, dmirror_device_remove_chunks).
#include "driver/dmirror.h"

#include <algorithm>

#include "base/assert.h"
#include "mm/mm_struct.h"
#include "mm/vma.h"
#include "mm/world.h"

namespace hmmsim {

Status DmirrorCmd::validate() const {
  if (!addr.page_aligned()) return Err{Errno::kInval};
  if (npages == 0 || npages > (kUserMax >> kPageShift) || addr.v > kUserMax - (npages << kPageShift))
    return Err{Errno::kInval};
  return Ok();
}

DmirrorDevice::DmirrorDevice(World& world, int id, uint64_t mem_bytes)
    : world_(&world), id_(id), max_chunks_(mem_bytes / kDevmemChunkSize),
      devmem_lock_(world.sched()) {
  HMM_ASSERT(max_chunks_ > 0, "device memory below one chunk: {} bytes", mem_bytes);
  MutexLock guard(devmem_lock_);
  Status first = add_chunk(false);
  HMM_ASSERT(first.ok(), "the first device chunk cannot fail");
}

DmirrorDevice::~DmirrorDevice() {
  // dmirror_device_remove(): everything goes back to RAM first.
  Status st = remove_chunks();
  HMM_ASSERT(st.ok(), "device teardown failed");
}

Status DmirrorDevice::add_chunk(bool large) {
  if (chunks_.size() >= max_chunks_) return Err{Errno::kNoMem};
  uint64_t nr = kDevmemChunkSize / kPageSize;
  auto pgmap = std::make_unique<DevPagemap>(*world_, nr, owner(), *this);
  Pfn base = pgmap->range().base();
  // Free lists are LIFO, as the driver's linked lists are.
  if (large) {
    for (uint64_t off = 0; off + kHPageNr <= nr; off += kHPageNr) free_folios_.push_back(base + off);
  } else {
    for (uint64_t off = 0; off < nr; off++) free_pages_.push_back(base + off);
  }
  chunks_.push_back(Chunk{std::move(pgmap), std::vector<Dmirror*>(nr, nullptr), false});
  return Ok();
}

DmirrorDevice::Chunk* DmirrorDevice::chunk_of(Pfn pfn) const {
  for (const Chunk& c : chunks_) {
    if (c.pgmap->range().contains(pfn)) return const_cast<Chunk*>(&c);
  }
  return nullptr;
}

bool DmirrorDevice::owns(Pfn pfn) const {
  MutexLock guard(devmem_lock_);
  return chunk_of(pfn) != nullptr;
}

uint64_t DmirrorDevice::nr_chunks() const {
  MutexLock guard(devmem_lock_);
  return chunks_.size();
}

Dmirror* DmirrorDevice::page_mirror(Pfn pfn) const {
  MutexLock guard(devmem_lock_);
  Chunk* chunk = chunk_of(pfn);
  return chunk ? chunk->owners(pfn, 1)[0] : nullptr;
}

std::optional<Folio> DmirrorDevice::devmem_alloc(Order order, Dmirror* mirror) {
  MutexLock guard(devmem_lock_);
  std::vector<Pfn>& list = order.v > 0 ? free_folios_ : free_pages_;
  if (list.empty() && !add_chunk(order.v > 0).ok()) return std::nullopt;
  Pfn pfn = list.back();
  list.pop_back();
  Chunk* chunk = chunk_of(pfn);
  Folio folio = chunk->pgmap->zone_device_folio_init(pfn, order);
  std::ranges::fill(chunk->owners(pfn, order.nr_pages()), mirror);
  calloc_ += order.nr_pages();
  return folio;
}

void DmirrorDevice::folio_free(Folio folio) {
  MutexLock guard(devmem_lock_);
  uint64_t nr = folio.nr_pages();
  cfree_ += nr;
  Chunk* chunk = chunk_of(folio.pfn());
  HMM_ASSERT(chunk, "device folio {:#x} outside this device", folio.pfn().v);
  std::ranges::fill(chunk->owners(folio.pfn(), nr), nullptr);
  if (chunk->removing) return;
  (nr > 1 ? free_folios_ : free_pages_).push_back(folio.pfn());
}

void DmirrorDevice::folio_split(Folio head, Folio tail) {
  // The backing state splits 1:1: each new folio keeps its page's mirror.
  (void)head;
  (void)tail;
}

Dmirror& DmirrorDevice::open(MmStruct& mm) {
  for (auto& m : mirrors_) {
    if (m->pid() == mm.pid()) return *m;
  }
  mirrors_.push_back(std::make_unique<Dmirror>(*this, mm));
  return *mirrors_.back();
}

Status DmirrorDevice::close(Dmirror& mirror) {
  std::vector<DevPagemap*> pgmaps;
  {
    MutexLock guard(devmem_lock_);
    for (Chunk& c : chunks_) pgmaps.push_back(c.pgmap.get());
  }
  for (DevPagemap* p : pgmaps) evict_chunk(*p);
  auto it = std::find_if(mirrors_.begin(), mirrors_.end(),
                         [&](const auto& m) { return m.get() == &mirror; });
  HMM_ASSERT(it != mirrors_.end(), "closing an unknown mirror");
  mirrors_.erase(it);
  return Ok();
}

Status DmirrorDevice::release() { return remove_chunks(); }

Status DmirrorDevice::remove_chunks() {
  std::vector<DevPagemap*> pgmaps;
  {
    MutexLock guard(devmem_lock_);
    for (Chunk& c : chunks_) {
      c.removing = true;
      Pfn base = c.pgmap->range().base();
      Pfn end = c.pgmap->range().end();
      auto outside = [&](Pfn p) { return p >= base && p < end; };
      std::erase_if(free_pages_, outside);
      std::erase_if(free_folios_, outside);
      pgmaps.push_back(c.pgmap.get());
    }
  }
  for (DevPagemap* p : pgmaps) evict_chunk(*p);
  MutexLock guard(devmem_lock_);
  for (Chunk& c : chunks_) {
    HMM_ASSERT(c.pgmap->ref() == 0, "device chunk still in use after eviction ({} pages)",
               c.pgmap->ref());
    world_->mem().remove_range(c.pgmap->range());
  }
  chunks_.clear();
  return Ok();
}

// dmirror_device_evict_chunk(): every page of the chunk in use by anybody
// goes back to RAM, keeping its order.
void DmirrorDevice::evict_chunk(DevPagemap& pgmap) {
  uint64_t npages = pgmap.range().nr_pages();
  std::vector<MigratePfn> src(npages), dst(npages);
  Status st = migrate_device_range(*world_, src, pgmap.range().base(), npages);
  HMM_ASSERT(st.ok(), "eviction collect failed");
  for (uint64_t i = 0; i < npages; i++) {
    if (!src[i].valid || !src[i].migrate) continue;
    Folio spage = pfn_folio(world_->mem(), src[i].pfn);
    std::optional<Folio> dpage = folio_alloc(world_->mem(), spage.order());
    // __GFP_NOFAIL: the kernel would retry or OOM-kill until it succeeds.
    HMM_ASSERT(dpage, "out of RAM while evicting device memory (order {})", spage.order().v);
    bool locked = folio_trylock(*dpage);
    HMM_ASSERT(locked, "a new folio is locked by somebody");
    folio_copy(*dpage, spage);
    dst[i] = MigratePfn::page(dpage->pfn(), spage.is_large());
  }
  migrate_device_pages(*world_, src, dst);
  migrate_device_finalize(*world_, src, dst);
}

VmFault DmirrorDevice::migrate_to_ram(const DeviceFault& vmf) {
  Dmirror* mirror = page_mirror(vmf.page);
  HMM_ASSERT(mirror, "fault on device page {:#x} with no mirror", vmf.page.v);
  Folio folio = pfn_folio(world_->mem(), vmf.page);
  // A fault through a PTE migrates one page even of a large folio: it is
  // partly mapped and will be split during collect.
  Order order = vmf.pmd ? folio.order() : Order{0};
  uint64_t nr = order.nr_pages();
  Vaddr start{vmf.address.v & ~(nr * kPageSize - 1)};
  std::vector<MigratePfn> src(nr), dst(nr);
  MigrateVma args{.vma = vmf.vma,
                  .start = start,
                  .end = start + nr * kPageSize,
                  .src = src,
                  .dst = dst,
                  .pgmap_owner = owner(),
                  .flags = kSelectDevicePrivate | (order.v > 0 ? kSelectCompound : 0u),
                  .fault_page = vmf.page};
  if (!migrate_vma_setup(*world_, args).ok()) return VmFault::kSigbus;
  VmFault ret = dmirror_fault_alloc_and_copy(args, *mirror);
  if (ret != VmFault::kDone) {
    migrate_vma_finalize(*world_, args);  // nothing moves; the CPU faults again
    return ret;
  }
  migrate_vma_pages(*world_, args);
  migrate_vma_finalize(*world_, args);
  return ret;
}

}  // namespace hmmsim
