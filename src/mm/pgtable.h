// Page-table entries and tables: four levels of 512 entries.
//
// Linux counterparts: `pte_t`/`pmd_t` with the softleaf encodings of
// `include/linux/leafops.h` (6.19), and the page-table pages with their
// split locks (`pte_lockptr`, `pmd_lockptr`).
//
// An entry is a closed tagged class, not a bit pattern:
//
//   Pte kinds: none | present | zero page | migration (read, read-exclusive,
//              write) | device-private (read, write) | device-exclusive
//   Pmd kinds: none | table (points at a PteTable) | present THP leaf |
//              huge zero page | migration | device-private
//
// Every PMD leaf that maps an anonymous THP has one deposited PteTable
// (pgtable_trans_huge_deposit), used when the PMD is split.
//
// Thread safety: a PteTable's entries are guarded by its `ptl`
// (pte_lockptr); a PmdTable's entries, child tables and deposits by its own
// `ptl` (pmd_lockptr, split PMD locks). Upper levels are guarded by
// MmStruct::page_table_lock. The checker reads tables with the world quiesced.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "base/assert.h"
#include "base/thread_annotations.h"
#include "base/types.h"
#include "sync/lock.h"

namespace hmmsim {

enum class MigrationKind : uint8_t { kRead, kReadExclusive, kWrite };

// The software and hardware bits an entry may carry.
struct EntryBits {
  bool write = false;
  bool dirty = false;
  bool young = false;
  bool soft_dirty = false;
};

enum class PteKind : uint8_t {
  kNone,
  kPresent,
  kZero,
  kMigration,
  kDevicePrivate,
  kDeviceExclusive,
};

enum class PmdKind : uint8_t {
  kNone,
  kTable,
  kPresent,  // a present THP leaf (pmd_trans_huge)
  kHugeZero,
  kMigration,
  kDevicePrivate,
};

// The leaf payload shared by PTE and PMD entries.
class Leaf {
 public:
  Pfn pfn() const { return pfn_; }
  bool write() const { return bits_.write; }
  bool dirty() const { return bits_.dirty; }
  bool young() const { return bits_.young; }
  bool soft_dirty() const { return bits_.soft_dirty; }
  const EntryBits& bits() const { return bits_; }
  MigrationKind migration_kind() const { return mkind_; }

 protected:
  Pfn pfn_{};
  EntryBits bits_{};
  MigrationKind mkind_ = MigrationKind::kRead;
};

class Pte : public Leaf {
 public:
  Pte() : kind_(PteKind::kNone) {}
  static Pte none() { return Pte(PteKind::kNone); }
  static Pte zero_page() { return Pte(PteKind::kZero); }
  static Pte present(Pfn pfn, EntryBits bits) { return Pte(PteKind::kPresent, pfn, bits); }
  static Pte migration(Pfn pfn, MigrationKind mk, EntryBits bits = {});
  static Pte device_private(Pfn pfn, bool write, bool soft_dirty = false);
  static Pte device_exclusive(Pfn pfn, bool soft_dirty = false);

  PteKind kind() const { return kind_; }
  bool is_none() const { return kind_ == PteKind::kNone; }
  bool is_present() const { return kind_ == PteKind::kPresent || kind_ == PteKind::kZero; }
  bool is_migration() const { return kind_ == PteKind::kMigration; }
  // Entries that hold a folio reference and a mapcount.
  bool maps_folio() const {
    return kind_ == PteKind::kPresent || kind_ == PteKind::kDevicePrivate ||
           kind_ == PteKind::kDeviceExclusive;
  }
  // Entries that name a pfn (all but none and the zero page).
  bool has_pfn() const { return maps_folio() || kind_ == PteKind::kMigration; }

  Pte with_write(bool write) const;
  Pte with_young(bool young) const;
  Pte with_dirty(bool dirty) const;
  std::string describe() const;
  bool operator==(const Pte& o) const;

 private:
  explicit Pte(PteKind kind) : kind_(kind) {}
  Pte(PteKind kind, Pfn pfn, EntryBits bits) : kind_(kind) {
    pfn_ = pfn;
    bits_ = bits;
  }
  PteKind kind_;
};

class Pmd : public Leaf {
 public:
  Pmd() : kind_(PmdKind::kNone) {}
  static Pmd none() { return Pmd(PmdKind::kNone); }
  static Pmd table() { return Pmd(PmdKind::kTable); }
  static Pmd huge_zero() { return Pmd(PmdKind::kHugeZero); }
  static Pmd present(Pfn head, EntryBits bits) { return Pmd(PmdKind::kPresent, head, bits); }
  static Pmd migration(Pfn head, MigrationKind mk, EntryBits bits = {});
  static Pmd device_private(Pfn head, bool write, bool soft_dirty = false);

  PmdKind kind() const { return kind_; }
  bool is_none() const { return kind_ == PmdKind::kNone; }
  bool is_table() const { return kind_ == PmdKind::kTable; }
  // pmd_is_huge(): a present THP, the huge zero page or any valid softleaf.
  bool is_huge() const { return !is_none() && !is_table(); }
  bool maps_folio() const {
    return kind_ == PmdKind::kPresent || kind_ == PmdKind::kDevicePrivate;
  }
  bool has_pfn() const { return maps_folio() || kind_ == PmdKind::kMigration; }

  Pmd with_write(bool write) const;
  std::string describe() const;
  bool operator==(const Pmd& o) const;

 private:
  explicit Pmd(PmdKind kind) : kind_(kind) {}
  Pmd(PmdKind kind, Pfn pfn, EntryBits bits) : kind_(kind) {
    pfn_ = pfn;
    bits_ = bits;
  }
  PmdKind kind_;
};

// The lowest level: 512 PTEs and their lock.
class PteTable {
 public:
  explicit PteTable(Scheduler& sched) : ptl(sched) {}

  Pte get(unsigned i) const REQUIRES(ptl) { return ptes_[i]; }
  void set(unsigned i, Pte pte) REQUIRES(ptl) { ptes_[i] = pte; }
  // For readers that run with the world quiesced (checker, dumps).
  const Pte& peek(unsigned i) const NO_THREAD_SAFETY_ANALYSIS { return ptes_[i]; }
  bool empty() const NO_THREAD_SAFETY_ANALYSIS;

  mutable SpinLock ptl;

 private:
  std::array<Pte, kPtrsPerTable> ptes_ GUARDED_BY(ptl);
};

// One PMD slot: the entry, the PTE table it points at, and the deposit.
struct PmdSlot {
  Pmd entry = Pmd::none();
  std::unique_ptr<PteTable> table;    // iff entry.is_table()
  std::unique_ptr<PteTable> deposit;  // iff entry maps an anon THP
};

class PmdTable {
 public:
  explicit PmdTable(Scheduler& sched) : ptl(sched) {}

  PmdSlot& slot(unsigned i) REQUIRES(ptl) { return slots_[i]; }
  const PmdSlot& peek(unsigned i) const NO_THREAD_SAFETY_ANALYSIS { return slots_[i]; }
  PmdSlot& slot_quiesced(unsigned i) NO_THREAD_SAFETY_ANALYSIS { return slots_[i]; }

  mutable SpinLock ptl;

 private:
  std::array<PmdSlot, kPtrsPerTable> slots_ GUARDED_BY(ptl);
};

struct PudTable {
  std::array<std::unique_ptr<PmdTable>, kPtrsPerTable> pmds;
};

struct PgdTable {
  std::array<std::unique_ptr<PudTable>, kPtrsPerTable> puds;
};

std::string_view pte_kind_name(PteKind kind);
std::string_view pmd_kind_name(PmdKind kind);

}  // namespace hmmsim
