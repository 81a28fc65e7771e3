// The dmirror test device (Linux lib/test_hmm.c): a pretend GPU with
// device-private memory that mirrors processes' address spaces.
//
// A DmirrorDevice owns device memory in 256 MiB chunks, each a DevPagemap
// of ZONE_DEVICE pages, handed out from two free lists (single pages and
// PMD-order folios) exactly as test_hmm.c does; each device page keeps its
// bytes in its own descriptor (the CPU path never reads them). Opening the
// device for a process creates a Dmirror: a device page table (virtual page
// number -> page, tagged read/write/atomic) for that process's mm and the
// one-shot FAIL_ALLOC flag. The commands are the driver's ioctls: READ,
// WRITE, SNAPSHOT (through hmm_range_fault), EXCLUSIVE, CHECK_EXCLUSIVE
// (device-exclusive entries), MIGRATE_TO_DEV, MIGRATE_TO_SYS, RELEASE,
// FLAGS, and close(), which evicts every chunk; migrate_to_ram() serves CPU
// faults on the device's pages.
//
// Thread safety: `devmem_lock_` guards the chunks and free lists; each
// mirror's `mutex_` guards its page table. Lock order: mmap_lock, then the
// mirror mutex, then devmem_lock_.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "base/result.h"
#include "base/thread_annotations.h"
#include "base/types.h"
#include "driver/device_table.h"
#include "mm/hmm.h"
#include "mm/memremap.h"
#include "mm/migrate_device.h"
#include "mm/mmu_notifier.h"
#include "sync/lock.h"

namespace hmmsim {

class MmStruct;
class World;
class DmirrorDevice;

// HMM_DMIRROR_FLAG_FAIL_ALLOC: the next allocation decision fails once.
inline constexpr uint64_t kDmirrorFlagFailAlloc = 1;
inline constexpr uint64_t kDevmemChunkSize = uint64_t{256} << 20;

// The command block of an ioctl (struct hmm_dmirror_cmd), minus `ptr`:
// data moves through `data`.
struct DmirrorCmd {
  DmirrorCmd() = default;
  DmirrorCmd(Vaddr a, uint64_t n) : addr(a), npages(n) {}

  // The ioctl front end's checks, common to every command (§1.4 of the
  // catalogue): a page-aligned address and 1..N pages inside user space,
  // else -EINVAL.
  Status validate() const;

  Vaddr addr;
  uint64_t npages = 0;
  uint64_t cpages = 0;  // out
  uint64_t faults = 0;  // out
  std::vector<std::byte> data;  // in (WRITE) / out (READ-like commands)
};

// The protection bytes of SNAPSHOT (HMM_DMIRROR_PROT_*). The types (none,
// zero, device-private local/remote) are values; read/write and PMD are
// bits or-ed into them.
enum DmirrorProt : uint8_t {
  kDmirrorProtError = 0xFF,
  kDmirrorProtNone = 0x00,
  kDmirrorProtRead = 0x01,
  kDmirrorProtWrite = 0x02,
  kDmirrorProtPmd = 0x04,
  kDmirrorProtZero = 0x10,
  kDmirrorProtDevPrivateLocal = 0x20,
  kDmirrorProtDevPrivateRemote = 0x30,
};

// One open of the device by a process. Its interval notifier covers the
// whole address space: every invalidation drops the device's entries for
// the range (and, a test_hmm.c quirk, one page past its end), except the
// device's own migrations.
class Dmirror final : public MmuIntervalNotifierOps {
 public:
  Dmirror(DmirrorDevice& dev, MmStruct& mm);
  ~Dmirror() override;
  Dmirror(const Dmirror&) = delete;
  Dmirror& operator=(const Dmirror&) = delete;

  // dmirror_interval_invalidate()
  bool invalidate(MmuIntervalNotifier& sub, const MmuNotifierRange& range,
                  uint64_t cur_seq) override;
  std::vector<MirroredPage> debug_mirrored_pages() const override EXCLUDES(mutex_);

  DmirrorDevice& device() const { return *dev_; }
  // The process that opened the device. Its address space may be gone
  // (exit); the mirror never keeps a pointer to it.
  int pid() const { return pid_; }

  // HMM_DMIRROR_READ / WRITE: copy npages through the device page table,
  // faulting missing pages in 32-page rounds (`faults` counts the rounds).
  Status read(DmirrorCmd& cmd);
  Status write(DmirrorCmd& cmd);
  // HMM_DMIRROR_SNAPSHOT: one DmirrorProt byte per page into cmd.data.
  Status snapshot(DmirrorCmd& cmd);
  // HMM_DMIRROR_EXCLUSIVE / CHECK_EXCLUSIVE (device-exclusive access).
  Status exclusive(DmirrorCmd& cmd);
  Status check_exclusive(DmirrorCmd& cmd);
  Status migrate_to_dev(DmirrorCmd& cmd);
  Status migrate_to_sys(DmirrorCmd& cmd);
  Status set_flags(DmirrorCmd& cmd);

  // The device page table (tests, checker).
  std::optional<DptEntry> pt_lookup(Vaddr addr) const EXCLUDES(mutex_);
  // Tests only: plant an entry, as a broken driver would.
  void debug_pt_store(Vaddr addr, DptEntry entry) EXCLUDES(mutex_);
  uint64_t pt_size() const EXCLUDES(mutex_);
  // Drops the entries of `npages` pages from `addr`.
  void pt_erase(Vaddr addr, uint64_t npages = 1) EXCLUDES(mutex_);

  // Consumes FAIL_ALLOC: true (once) if it was set.
  bool take_fail_alloc();

 private:
  friend class DmirrorDevice;
  // The opener's address space while it lives (mmget_not_zero()), else
  // nullptr; pids are never reused.
  MmStruct* live_mm() const;
  void finalize_and_map(const MigrateVma& args) EXCLUDES(mutex_);
  // dmirror_do_read() without faulting: -ENOENT for a missing page.
  Status read_back(Vaddr start, uint64_t npages, std::vector<std::byte>& out) EXCLUDES(mutex_);
  void alloc_and_copy_to_dev(MigrateVma& args);

  // struct dmirror_bounce: the kernel-side copy of the user buffer, with
  // the counts the command reports if it succeeds.
  struct Bounce {
    Vaddr addr;
    std::vector<std::byte> buf;
    uint64_t cpages = 0;
    uint64_t faults = 0;
  };
  class SnapshotNotifier;
  enum class Access : bool { kRead, kWrite };
  // dmirror_do_read() / dmirror_do_write() over [start, end): -ENOENT at
  // the first page the table lacks (or, for a write, lacks writable).
  Status do_read(Vaddr start, Vaddr end, Bounce& bounce) REQUIRES(mutex_);
  Status do_write(Vaddr start, Vaddr end, Bounce& bounce) REQUIRES(mutex_);
  // The loop of dmirror_read()/dmirror_write().
  Status copy_loop(Access access, const DmirrorCmd& cmd, Bounce& bounce) EXCLUDES(mutex_);
  // dmirror_fault(): [start, end) in 32-page hmm ranges.
  Status fault(Vaddr start, Vaddr end, Access access) EXCLUDES(mutex_);
  // The read_begin / hmm_range_fault / read_retry loop of
  // dmirror_range_fault() and dmirror_range_snapshot(): walks `range` (under
  // mmap_lock) until no invalidation of `notifier` raced with the walk, then
  // returns `use()`, called with mutex_ held. -EBUSY after too many races.
  Status walk_stable(MmStruct& mm, MmuIntervalNotifier& notifier, HmmRange& range,
                     const std::function<Status()>& use) EXCLUDES(mutex_);
  // dmirror_range_fault(): a settled range into the device page table.
  Status range_fault(HmmRange& range) EXCLUDES(mutex_);
  // dmirror_do_fault(): store the pfns of a settled range.
  Status do_fault(const HmmRange& range) REQUIRES(mutex_);
  // dmirror_range_snapshot(): one piece of at most 32 pages.
  Status range_snapshot(HmmRange& range, std::span<uint8_t> perm) EXCLUDES(mutex_);
  // dmirror_mkentry()
  uint8_t mkentry(const HmmPfn& entry) const;
  // dmirror_atomic_map()
  void atomic_map(Vaddr addr, Pfn pfn) EXCLUDES(mutex_);

  DmirrorDevice* dev_;
  int pid_;
  MmuIntervalNotifier notifier_;
  mutable Mutex mutex_;
  DeviceTable pt_ GUARDED_BY(mutex_);
  std::atomic<uint64_t> flags_{0};
};

class DmirrorDevice final : public DevPagemapOps {
 public:
  // A device with at most `mem_bytes` of device memory; like the module,
  // it allocates its first (small-page) chunk at once.
  DmirrorDevice(World& world, int id, uint64_t mem_bytes);
  ~DmirrorDevice() override;

  World& world() const { return *world_; }
  int id() const { return id_; }
  const void* owner() const { return this; }

  // open(): the mirror of `mm` on this device (created on first use).
  Dmirror& open(MmStruct& mm);
  // close(): evicts every chunk of the device (for every process), then
  // forgets the mirror.
  Status close(Dmirror& mirror);
  // HMM_DMIRROR_RELEASE: evict and remove every chunk.
  Status release();
  const std::vector<std::unique_ptr<Dmirror>>& mirrors() const { return mirrors_; }

  // dmirror_devmem_alloc_page(): a locked device folio of order 0 or 9.
  std::optional<Folio> devmem_alloc(Order order, Dmirror* mirror) EXCLUDES(devmem_lock_);
  // The mirror that owns a device page (zone_device_data).
  Dmirror* page_mirror(Pfn pfn) const EXCLUDES(devmem_lock_);
  uint64_t nr_chunks() const EXCLUDES(devmem_lock_);
  uint64_t calloc() const { return calloc_.load(); }
  uint64_t cfree() const { return cfree_.load(); }
  // Whether pfn belongs to this device's memory.
  bool owns(Pfn pfn) const EXCLUDES(devmem_lock_);

  // DevPagemapOps
  void folio_free(Folio folio) override;
  VmFault migrate_to_ram(const DeviceFault& vmf) override;
  void folio_split(Folio head, Folio tail) override;

 private:
  struct Chunk {
    std::unique_ptr<DevPagemap> pgmap;
    std::vector<Dmirror*> mirror;  // per page: who allocated it (zone_device_data)
    bool removing = false;

    // The `mirror` slots of pages [pfn, pfn + nr).
    std::span<Dmirror*> owners(Pfn pfn, uint64_t nr) {
      return std::span(mirror).subspan(pfn - pgmap->range().base(), nr);
    }
  };

  Status add_chunk(bool large) REQUIRES(devmem_lock_);
  Chunk* chunk_of(Pfn pfn) const REQUIRES(devmem_lock_);
  void evict_chunk(DevPagemap& pgmap);
  Status remove_chunks();

  World* world_;
  int id_;
  uint64_t max_chunks_;
  mutable Mutex devmem_lock_;
  std::vector<Chunk> chunks_ GUARDED_BY(devmem_lock_);
  std::vector<Pfn> free_pages_ GUARDED_BY(devmem_lock_);
  std::vector<Pfn> free_folios_ GUARDED_BY(devmem_lock_);
  std::atomic<uint64_t> calloc_{0};
  std::atomic<uint64_t> cfree_{0};
  std::vector<std::unique_ptr<Dmirror>> mirrors_;
};

// dmirror_devmem_fault_alloc_and_copy(): allocate RAM for every device
// page collected in `args`, copy it, and drop the device's table entries.
// VmFault::kOom when a small page cannot be had.
VmFault dmirror_fault_alloc_and_copy(MigrateVma& args, Dmirror& mirror);

}  // namespace hmmsim
