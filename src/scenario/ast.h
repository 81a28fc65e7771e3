// The scenario AST: what a checked `.scn` file says, ready for a runner.
//
// scenario-format.md is the contract; this header is its data model. One
// Scenario is one case: `vary` lines are already expanded and every `${NAME}`
// substituted (parser.h), sizes are evaluated to byte counts, region specs are
// resolved to (region, offset, length) and checked against the region's size,
// and every name a step uses was declared before it. A runner executes the
// steps in order and compares each step's result with its Expectations.
//
// One struct per kind of line, held in the Step variant. Every Step, region
// spec and expectation records where it was written (SourceLoc), so a failed
// case can name `FILE:LINE`. The AST owns plain values only; it is immutable
// once parsed and needs no locking.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "base/errno.h"
#include "scenario/diagnostic.h"
#include "scenario/pattern.h"

namespace hmmsim::scenario {

// ---- Shared pieces -------------------------------------------------------

// `NAME[+OFFSET][:LENGTH]`, resolved: `length` is the region's size minus
// the offset when no length was written. Lies inside the region as the region
// was sized at this point of the file.
struct RegionSpec {
  std::string region;
  uint64_t offset = 0;
  uint64_t length = 0;
  std::string text;  // as written, for messages
  SourceLoc loc;
};

enum class Prot { kReadWrite, kRead, kNone };          // rw | r | none
enum class Sharing { kPrivate, kShared };              // [shared]
enum class ThpHint { kNone, kHugepage, kNoHugepage };  // [hugepage|nohugepage]
enum class Advice { kHugepage, kNoHugepage, kDontneed, kFree, kCollapse };
enum class RemapUnmap { kUnmap, kDontUnmap };  // [dontunmap]
enum class DeviceKind { kPrivate, kCoherent };
enum class ThpMode { kAlways, kMadvise, kNever };
enum class CheckMode { kStep, kEnd, kOff };
enum class MappedAs { kPmd, kPte, kNone };

// ---- Expectations (`=> key=value ...`) ---------------------------------

// One allowed outcome in `ret=`: 0, -ERRNO, or segv.
struct RetValue {
  enum class Kind { kZero, kErrno, kSegv };
  Kind kind = Kind::kZero;
  Errno err = Errno::kInval;  // meaningful for kErrno only
};

// `ret=0`, `ret=-EBUSY`, `ret=segv`, `ret=any`, `ret=(0,-EBUSY)`.
struct RetExpect {
  SourceLoc loc;
  bool any = false;
  std::vector<RetValue> allowed;  // empty when `any`
};

// `cpages=N`, `faults=N`.
struct CountExpect {
  SourceLoc loc;
  uint64_t value = 0;
};

// `data=PATTERN`, compared over the whole spec.
struct DataExpect {
  SourceLoc loc;
  Pattern pattern;
};

// The SNAPSHOT protection bytes of test_hmm.c (HMM_DMIRROR_PROT_*).
inline constexpr uint8_t kProtError = 0xFF;
inline constexpr uint8_t kProtNone = 0x00;
inline constexpr uint8_t kProtRead = 0x01;
inline constexpr uint8_t kProtWrite = 0x02;
inline constexpr uint8_t kProtPmd = 0x04;
inline constexpr uint8_t kProtPud = 0x08;
inline constexpr uint8_t kProtZero = 0x10;
inline constexpr uint8_t kProtDevPrivateLocal = 0x20;
inline constexpr uint8_t kProtDevPrivateRemote = 0x30;
inline constexpr uint8_t kProtDevCoherentLocal = 0x40;
inline constexpr uint8_t kProtDevCoherentRemote = 0x50;

// `prot=V` (every page of the spec: `end` empty), `prot[I]=V` (first I,
// end I+1) or `prot[A..B]=V` (pages A to B-1).
struct ProtExpect {
  SourceLoc loc;
  uint64_t first = 0;
  std::optional<uint64_t> end;
  uint8_t value = 0;
};

// What a step expects. A step without `ret` expects ret=0: a runner treats an
// empty `ret` as RetExpect{allowed = {kZero}}.
struct Expectations {
  std::optional<RetExpect> ret;
  std::optional<CountExpect> cpages;
  std::optional<CountExpect> faults;
  std::optional<DataExpect> data;
  std::vector<ProtExpect> prot;
};

// ---- Declarations and process steps ------------------------------------

struct Config {
  uint64_t sysmem = uint64_t{1} << 30;
  ThpMode thp = ThpMode::kMadvise;
  uint64_t seed = 1;
  CheckMode check = CheckMode::kStep;
};

struct DeviceStep {  // device NAME private|coherent [mem=SIZE]
  std::string name;
  DeviceKind kind = DeviceKind::kPrivate;
  uint64_t mem = uint64_t{1} << 30;
};
struct ProcessStep {  // process NAME
  std::string name;
};
struct MmapStep {  // mmap P NAME SIZE [prot=] [shared] [align=] [hugepage|nohugepage]
  std::string process;
  std::string region;
  uint64_t size = 0;
  Prot prot = Prot::kReadWrite;
  Sharing sharing = Sharing::kPrivate;
  uint64_t align = 4096;
  ThpHint thp = ThpHint::kNone;
};
struct MunmapStep {
  std::string process;
  RegionSpec spec;
};
struct MprotectStep {
  std::string process;
  RegionSpec spec;
  Prot prot = Prot::kReadWrite;
};
struct MadviseStep {
  std::string process;
  RegionSpec spec;
  Advice advice = Advice::kHugepage;
};
struct MremapStep {  // mremap P SPEC NEWNAME [size=SIZE] [to=SPEC] [dontunmap]
  std::string process;
  RegionSpec spec;
  std::string new_region;
  uint64_t new_size = 0;  // size= if written, else the spec's length
  std::optional<RegionSpec> to;
  RemapUnmap unmap = RemapUnmap::kUnmap;
};
struct RegionStep {  // region NAME = SPEC
  std::string name;
  RegionSpec spec;
};
struct ForkStep {
  std::string parent;
  std::string child;
};
struct ExitStep {
  std::string process;
};
struct WriteStep {
  std::string process;
  RegionSpec spec;
  Pattern pattern;
};
struct ReadStep {
  std::string process;
  RegionSpec spec;
};
struct IncStep {
  std::string process;
  RegionSpec spec;
};

// ---- Device steps (dmirror commands) -----------------------------------

struct DeviceRange {
  std::string device;
  std::string process;
  RegionSpec spec;
};
struct DevReadStep : DeviceRange {};
struct DevWriteStep : DeviceRange {
  Pattern pattern;
};
struct MigrateToDevStep : DeviceRange {};
struct MigrateToSysStep : DeviceRange {};
struct SnapshotStep : DeviceRange {};
struct ExclusiveStep : DeviceRange {};
struct CheckExclusiveStep : DeviceRange {};

struct ReleaseStep {
  std::string device;
};
struct DeviceProcess {
  std::string device;
  std::string process;
};
struct FailAllocStep : DeviceProcess {};
struct OpenStep : DeviceProcess {};
struct CloseStep : DeviceProcess {};

// ---- Inspection steps --------------------------------------------------

struct CheckStep {};
struct ShrinkStep {};

// where=system | where=device:D
struct FolioWhere {
  enum class Kind { kSystem, kDevice };
  Kind kind = Kind::kSystem;
  std::string device;  // for kDevice
};

// expect_folio P ADDRSPEC key=value ...: only the keys written are checked.
struct ExpectFolioStep {
  std::string process;
  RegionSpec spec;
  std::optional<uint32_t> order;
  std::optional<FolioWhere> where;
  std::optional<MappedAs> mapped;
  std::optional<uint64_t> mapcount;
  std::optional<uint64_t> refcount;
};

// ---- Blocks --------------------------------------------------------------

struct Step;

struct ThreadBlock {  // thread NAME, up to the next `thread` or `end`
  std::string name;
  SourceLoc loc;
  std::vector<Step> steps;
};
struct ConcurrentStep {  // concurrent ... end
  std::vector<ThreadBlock> threads;
  SourceLoc end_loc;
};
struct RepeatStep {  // repeat N ... end
  uint64_t count = 0;
  std::vector<Step> body;
  SourceLoc end_loc;
};

using StepKind =
    std::variant<DeviceStep, ProcessStep, MmapStep, MunmapStep, MprotectStep, MadviseStep,
                 MremapStep, RegionStep, ForkStep, ExitStep, WriteStep, ReadStep, IncStep,
                 DevReadStep, DevWriteStep, MigrateToDevStep, MigrateToSysStep, SnapshotStep,
                 ExclusiveStep, CheckExclusiveStep, ReleaseStep, FailAllocStep, OpenStep, CloseStep,
                 CheckStep, ShrinkStep, ExpectFolioStep, ConcurrentStep, RepeatStep>;

// One line of the file (or one block, with its lines inside).
struct Step {
  SourceLoc loc;  // the step's first token
  StepKind kind;
  Expectations expect;
};

// `vary NAME = ...`: the value this case uses.
struct VaryBinding {
  std::string name;
  std::string value;
};

// One case of a scenario file.
struct Scenario {
  std::string file;
  Config config;
  std::vector<VaryBinding> vary;  // in the order of the vary lines
  std::vector<Step> steps;
};

// The verb that starts a step's line ("mmap", "concurrent", ...).
std::string_view step_verb(const StepKind& kind);

}  // namespace hmmsim::scenario
