#include "mm/pgtable.h"

#include <fmt/format.h>

namespace hmmsim {
namespace {

std::string_view migration_name(MigrationKind mk) {
  switch (mk) {
    case MigrationKind::kRead: return "read";
    case MigrationKind::kReadExclusive: return "read-exclusive";
    case MigrationKind::kWrite: return "write";
  }
  return "?";
}

std::string bits_string(const EntryBits& b) {
  return fmt::format("{}{}{}{}", b.write ? "w" : "r", b.dirty ? "d" : "", b.young ? "y" : "",
                     b.soft_dirty ? "s" : "");
}

}  // namespace

Pte Pte::migration(Pfn pfn, MigrationKind mk, EntryBits bits) {
  bits.write = false;
  Pte pte(PteKind::kMigration, pfn, bits);
  pte.mkind_ = mk;
  return pte;
}

Pte Pte::device_private(Pfn pfn, bool write, bool soft_dirty) {
  return Pte(PteKind::kDevicePrivate, pfn, EntryBits{.write = write, .soft_dirty = soft_dirty});
}

Pte Pte::device_exclusive(Pfn pfn, bool soft_dirty) {
  return Pte(PteKind::kDeviceExclusive, pfn, EntryBits{.soft_dirty = soft_dirty});
}

Pte Pte::with_write(bool write) const {
  HMM_ASSERT(kind_ == PteKind::kPresent || kind_ == PteKind::kDevicePrivate,
             "with_write on a {} pte", pte_kind_name(kind_));
  Pte p = *this;
  p.bits_.write = write;
  return p;
}

Pte Pte::with_young(bool young) const {
  Pte p = *this;
  p.bits_.young = young;
  return p;
}

Pte Pte::with_dirty(bool dirty) const {
  Pte p = *this;
  p.bits_.dirty = dirty;
  return p;
}

bool Pte::operator==(const Pte& o) const {
  return kind_ == o.kind_ && pfn_ == o.pfn_ && bits_.write == o.bits_.write &&
         bits_.dirty == o.bits_.dirty && bits_.young == o.bits_.young &&
         bits_.soft_dirty == o.bits_.soft_dirty && mkind_ == o.mkind_;
}

std::string Pte::describe() const {
  switch (kind_) {
    case PteKind::kNone: return "none";
    case PteKind::kZero: return "zero-page";
    case PteKind::kPresent: return fmt::format("present pfn={:#x} {}", pfn_.v, bits_string(bits_));
    case PteKind::kMigration:
      return fmt::format("migration-{} pfn={:#x}", migration_name(mkind_), pfn_.v);
    case PteKind::kDevicePrivate:
      return fmt::format("device-private-{} pfn={:#x}", bits_.write ? "write" : "read", pfn_.v);
    case PteKind::kDeviceExclusive: return fmt::format("device-exclusive pfn={:#x}", pfn_.v);
  }
  return "?";
}

Pmd Pmd::migration(Pfn head, MigrationKind mk, EntryBits bits) {
  bits.write = false;
  Pmd pmd(PmdKind::kMigration, head, bits);
  pmd.mkind_ = mk;
  return pmd;
}

Pmd Pmd::device_private(Pfn head, bool write, bool soft_dirty) {
  return Pmd(PmdKind::kDevicePrivate, head, EntryBits{.write = write, .soft_dirty = soft_dirty});
}

Pmd Pmd::with_write(bool write) const {
  HMM_ASSERT(kind_ == PmdKind::kPresent || kind_ == PmdKind::kDevicePrivate,
             "with_write on a {} pmd", pmd_kind_name(kind_));
  Pmd p = *this;
  p.bits_.write = write;
  return p;
}

bool Pmd::operator==(const Pmd& o) const {
  return kind_ == o.kind_ && pfn_ == o.pfn_ && bits_.write == o.bits_.write &&
         bits_.dirty == o.bits_.dirty && bits_.young == o.bits_.young &&
         bits_.soft_dirty == o.bits_.soft_dirty && mkind_ == o.mkind_;
}

std::string Pmd::describe() const {
  switch (kind_) {
    case PmdKind::kNone: return "none";
    case PmdKind::kTable: return "table";
    case PmdKind::kHugeZero: return "huge-zero";
    case PmdKind::kPresent:
      return fmt::format("present-huge pfn={:#x} {}", pfn_.v, bits_string(bits_));
    case PmdKind::kMigration:
      return fmt::format("migration-{} pfn={:#x}", migration_name(mkind_), pfn_.v);
    case PmdKind::kDevicePrivate:
      return fmt::format("device-private-{} pfn={:#x}", bits_.write ? "write" : "read", pfn_.v);
  }
  return "?";
}

bool PteTable::empty() const {
  for (const Pte& p : ptes_) {
    if (!p.is_none()) return false;
  }
  return true;
}

std::string_view pte_kind_name(PteKind kind) {
  switch (kind) {
    case PteKind::kNone: return "none";
    case PteKind::kPresent: return "present";
    case PteKind::kZero: return "zero";
    case PteKind::kMigration: return "migration";
    case PteKind::kDevicePrivate: return "device-private";
    case PteKind::kDeviceExclusive: return "device-exclusive";
  }
  return "?";
}

std::string_view pmd_kind_name(PmdKind kind) {
  switch (kind) {
    case PmdKind::kNone: return "none";
    case PmdKind::kTable: return "table";
    case PmdKind::kPresent: return "present";
    case PmdKind::kHugeZero: return "huge-zero";
    case PmdKind::kMigration: return "migration";
    case PmdKind::kDevicePrivate: return "device-private";
  }
  return "?";
}

}  // namespace hmmsim
