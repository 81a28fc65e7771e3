// The invariant checker: a read-only audit of a whole World.
//
// Linux counterpart: the VM_BUG_ON/VM_WARN_ON sites of CONFIG_DEBUG_VM, here
// gathered into one place and run after every step of a test. Each
// invariant is one named function whose comment cites the kernel rule
// (reference: kernel-semantics §7, I1..I17). The checker never changes the
// model; it first takes a census of every page-table entry of every address
// space, then compares each folio, table and Vma against it.
//
// Thread safety: the world must be quiesced (no thread inside mm/) while the
// checker runs.
#pragma once

#include <string>
#include <vector>

#include "mm/world.h"

namespace hmmsim {

struct Violation {
  std::string invariant;  // "I1", "PT", "VMA", ...
  std::string check;      // the checking function, e.g. "check_mapcount_matches_mappings"
  std::string message;    // what is wrong, naming the folio or address
  std::string dump;       // a readable dump of the objects involved
};

class CheckReport {
 public:
  bool ok() const { return violations_.empty(); }
  const std::vector<Violation>& violations() const { return violations_; }
  void add(Violation v) { violations_.push_back(std::move(v)); }
  // Whether some violation names this invariant (for tests).
  bool has(const std::string& invariant) const;
  std::string to_string() const;

 private:
  std::vector<Violation> violations_;
};

// Runs every check.
CheckReport check_world(World& world);

// Runs every check and aborts with the report on a violation (a model bug).
void check_world_or_die(World& world);

}  // namespace hmmsim
