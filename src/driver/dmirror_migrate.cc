// dmirror migration commands (lib/test_hmm.c: dmirror_migrate_to_device,
// dmirror_migrate_alloc_and_copy, dmirror_migrate_finalize_and_map,
// dmirror_migrate_to_system, dmirror_devmem_fault_alloc_and_copy,
// dmirror_do_read).
#include "base/assert.h"
#include "driver/dmirror.h"
#include "mm/mm_struct.h"
#include "mm/vma.h"
#include "mm/world.h"

namespace hmmsim {
namespace {

// One source page into a fresh device page (or zeros for a hole).
void copy_to_device(World& world, Folio dst, uint64_t dst_idx, const MigratePfn& src,
                    uint64_t src_idx) {
  if (!src.valid) {
    page_zero(dst.page(dst_idx));
    return;
  }
  page_copy(dst.page(dst_idx), world.mem().page(src.pfn + src_idx));
}

using WindowFn = std::function<Status(MigrateVma& args)>;

// The window walk of the migrate commands: at most 512 pages at a time,
// never past a Vma; -EINVAL for a hole or an unreadable Vma.
Status for_each_window(MmStruct& mm, Vaddr start, Vaddr end, uint32_t flags, const void* owner,
                       const WindowFn& fn) {
  std::vector<MigratePfn> src(kPtrsPerTable), dst(kPtrsPerTable);
  ReadLock guard(mm.mmap_lock);
  for (Vaddr addr = start; addr < end;) {
    Vma* vma = mm.vma_lookup(addr);
    if (!vma || !vma->has(kVmRead)) return Err{Errno::kInval};
    Vaddr next = std::min(end, addr + kPtrsPerTable * kPageSize);
    if (next > vma->end()) next = vma->end();
    MigrateVma args{.vma = vma, .start = addr, .end = next, .src = src, .dst = dst,
                    .pgmap_owner = owner, .flags = flags, .fault_page = std::nullopt};
    HMM_TRY(migrate_vma_setup(mm.world(), args));
    HMM_TRY(fn(args));
    addr = next;
  }
  return Ok();
}

}  // namespace

Dmirror::Dmirror(DmirrorDevice& dev, MmStruct& mm)
    : dev_(&dev), pid_(mm.pid()), mutex_(dev.world().sched()) {
  Status st = mmu_interval_notifier_insert(notifier_, mm, Vaddr{0}, kUserMax, *this);
  HMM_ASSERT(st.ok(), "mirror notifier insert failed");
}

Dmirror::~Dmirror() { mmu_interval_notifier_remove(notifier_); }

MmStruct* Dmirror::live_mm() const { return dev_->world().find_mm(pid_); }

bool Dmirror::invalidate(MmuIntervalNotifier& sub, const MmuNotifierRange& range,
                         uint64_t cur_seq) {
  // The device updates its own table around its own migrations.
  if (range.event == MmuNotifyEvent::kMigrate && range.owner == dev_->owner()) return true;
  MutexLock guard(mutex_);
  mmu_interval_set_seq(sub, cur_seq);
  // dmirror_do_update(): erase [start, end] in pages, the end included.
  uint64_t first = range.start.page_index();
  uint64_t last = range.end.v >> kPageShift;
  pt_.erase_range(first, last);
  return true;
}

bool Dmirror::take_fail_alloc() {
  return flags_.fetch_and(~kDmirrorFlagFailAlloc) & kDmirrorFlagFailAlloc;
}

Status Dmirror::set_flags(DmirrorCmd& cmd) {
  HMM_TRY(cmd.validate());
  flags_.store(cmd.npages);
  return Ok();
}

std::optional<DptEntry> Dmirror::pt_lookup(Vaddr addr) const {
  MutexLock guard(mutex_);
  const DptEntry* e = pt_.find(addr.page_index());
  if (!e) return std::nullopt;
  return *e;
}

uint64_t Dmirror::pt_size() const {
  MutexLock guard(mutex_);
  return pt_.size();
}

std::vector<MmuIntervalNotifierOps::MirroredPage> Dmirror::debug_mirrored_pages() const {
  MutexLock guard(mutex_);
  std::vector<MirroredPage> out;
  pt_.for_each(0, UINT64_MAX, [&](uint64_t vpn, const DptEntry& e) {
    out.push_back(MirroredPage{Vaddr{vpn << kPageShift}, e.pfn, e.write});
    return true;
  });
  return out;
}

void Dmirror::debug_pt_store(Vaddr addr, DptEntry entry) {
  MutexLock guard(mutex_);
  pt_.store(addr.page_index(), entry);
}

void Dmirror::pt_erase(Vaddr addr, uint64_t npages) {
  MutexLock guard(mutex_);
  pt_.erase_range(addr.page_index(), addr.page_index() + npages - 1);
}

// dmirror_migrate_alloc_and_copy().
void Dmirror::alloc_and_copy_to_dev(MigrateVma& args) {
  World& world = dev_->world();
  for (uint64_t i = 0; i < args.npages; i++) {
    MigratePfn& src = args.src[i];
    if (!src.migrate) continue;
    if (src.valid && world.mem().range_of(src.pfn)->kind() == MemKind::kDevicePrivate) continue;
    bool large = src.compound;
    std::optional<Folio> dpage;
    if (!take_fail_alloc()) dpage = dev_->devmem_alloc(Order{large ? kHPageOrder : 0}, this);
    if (!dpage && !large) continue;  // stays in RAM
    if (!dpage) {
      // The large allocation failed: one small page per sub-page, so that
      // the core splits the source.
      for (uint64_t j = 0; j < kHPageNr && i + j < args.npages; j++) {
        std::optional<Folio> small = dev_->devmem_alloc(Order{0}, this);
        if (!small) continue;
        copy_to_device(world, *small, 0, src, j);
        args.dst[i + j] = MigratePfn::page(small->pfn());
        args.dst[i + j].write = src.write;
      }
      i += kHPageNr - 1;
      continue;
    }
    if (src.valid && large) {
      folio_copy(*dpage, pfn_folio(world.mem(), src.pfn));
    } else {
      for (uint64_t j = 0; j < dpage->nr_pages(); j++) copy_to_device(world, *dpage, j, src, j);
    }
    args.dst[i] = MigratePfn::page(dpage->pfn(), large);
    args.dst[i].write = src.write;
  }
}

// dmirror_migrate_finalize_and_map(): the device maps what it now holds.
void Dmirror::finalize_and_map(const MigrateVma& args) {
  MutexLock guard(mutex_);
  for (uint64_t i = 0; i < args.npages; i++) {
    const MigratePfn& src = args.src[i];
    const MigratePfn& dst = args.dst[i];
    if (!src.migrate || !dst.valid) continue;
    uint64_t nr = dst.compound ? kHPageNr : 1;
    uint64_t vpn = args.start.page_index() + i;
    for (uint64_t j = 0; j < nr; j++) pt_.store(vpn + j, DptEntry{dst.pfn + j, dst.write, false});
  }
}

Status Dmirror::read_back(Vaddr start, uint64_t npages, std::vector<std::byte>& out) {
  // The caller's buffer is reused when it is already the right size (as a
  // process passes the same buffer to every ioctl); every byte is written.
  out.resize(npages * kPageSize);
  Bounce bounce{start, std::move(out)};
  Status st = Ok();
  {
    MutexLock guard(mutex_);
    st = do_read(start, start + npages * kPageSize, bounce);
  }
  out = std::move(bounce.buf);
  if (!st.ok()) {
    std::fill(out.begin() + static_cast<std::ptrdiff_t>(bounce.cpages * kPageSize), out.end(),
              std::byte{0});
  }
  return st;
}

Status Dmirror::migrate_to_dev(DmirrorCmd& cmd) {
  HMM_TRY(cmd.validate());
  MmStruct* mm = live_mm();
  if (!mm) return Err{Errno::kInval};
  Vaddr end = cmd.addr + cmd.npages * kPageSize;
  World& world = dev_->world();
  HMM_TRY(for_each_window(*mm, cmd.addr, end, kSelectSystem | kSelectCompound, dev_->owner(),
                          [&](MigrateVma& args) {
                            alloc_and_copy_to_dev(args);
                            migrate_vma_pages(world, args);
                            finalize_and_map(args);
                            migrate_vma_finalize(world, args);
                            return Ok();
                          }));
  HMM_TRY(read_back(cmd.addr, cmd.npages, cmd.data));
  cmd.cpages = cmd.npages;
  return Ok();
}

Status Dmirror::migrate_to_sys(DmirrorCmd& cmd) {
  HMM_TRY(cmd.validate());
  MmStruct* mm = live_mm();
  if (!mm) return Err{Errno::kInval};
  Vaddr end = cmd.addr + cmd.npages * kPageSize;
  World& world = dev_->world();
  HMM_TRY(for_each_window(*mm, cmd.addr, end, kSelectDevicePrivate | kSelectCompound,
                          dev_->owner(), [&](MigrateVma& args) -> Status {
                            if (dmirror_fault_alloc_and_copy(args, *this) != VmFault::kDone) {
                              // Out of RAM: nothing of this window moves.
                              migrate_vma_finalize(world, args);
                              return Err{Errno::kNoMem};
                            }
                            migrate_vma_pages(world, args);
                            for (uint64_t i = 0; i < args.npages; i++) {
                              if (args.src[i].valid && args.src[i].migrate) cmd.cpages++;
                            }
                            migrate_vma_finalize(world, args);
                            return Ok();
                          }));
  return Ok();
}

namespace {

// The destination pages of a window that will not be used: unlocked, freed,
// and their slots cleared, so that migrate_vma_finalize() restores every
// source page where it was.
void drop_destinations(World& world, std::span<MigratePfn> dst) {
  for (MigratePfn& d : dst) {
    if (!d.valid) continue;
    Folio folio = pfn_folio(world.mem(), d.pfn);
    folio_unlock(folio);
    folio_put(folio);
    d = MigratePfn{};
  }
}

}  // namespace

VmFault dmirror_fault_alloc_and_copy(MigrateVma& args, Dmirror& mirror) {
  World& world = mirror.device().world();
  for (uint64_t i = 0; i < args.npages; i++) {
    MigratePfn& src = args.src[i];
    if (!src.valid || !src.migrate) continue;
    Folio spage = pfn_folio(world.mem(), src.pfn);
    if (!spage.is_device_private()) continue;
    Order order = spage.order();
    std::optional<Folio> dpage;
    if (!mirror.take_fail_alloc()) dpage = folio_alloc(world.mem(), order);
    uint64_t nr = dpage ? order.nr_pages() : 1;
    if (!dpage && order.v > 0) {
      // Small pages for every sub-page: the core splits the device folio.
      for (uint64_t j = 0; j < order.nr_pages() && i + j < args.npages; j++) {
        std::optional<Folio> small = folio_alloc(world.mem(), Order{0});
        if (!small) {
          // test_hmm.c frees the small pages of this folio only; the
          // destinations of earlier folios of the window would then be
          // mapped by migrate_vma_finalize() without having been migrated
          // (docs/findings.md, F3). Free them all: nothing of the window
          // moves.
          drop_destinations(world, args.dst);
          return VmFault::kOom;
        }
        bool locked = folio_trylock(*small);
        HMM_ASSERT(locked, "a new folio is locked by somebody");
        page_copy(small->head(), spage.page(j));
        mirror.pt_erase(args.start + (i + j) * kPageSize);
        args.dst[i + j] = MigratePfn::page(small->pfn());
        args.dst[i + j].write = src.write;
      }
      i += order.nr_pages() - 1;
      continue;
    }
    if (!dpage) {
      drop_destinations(world, args.dst);
      return VmFault::kOom;
    }
    bool locked = folio_trylock(*dpage);
    HMM_ASSERT(locked, "a new folio is locked by somebody");
    folio_copy(*dpage, spage);
    mirror.pt_erase(args.start + i * kPageSize, nr);
    args.dst[i] = MigratePfn::page(dpage->pfn(), order.v > 0);
    args.dst[i].write = src.write;
  }
  return VmFault::kDone;
}

}  // namespace hmmsim
