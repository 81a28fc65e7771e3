// Private to the runner: the state of one running case and the step
// executors that share it.
//
// RunState owns the World of the case and everything the steps name: the
// devices (`device`), the processes (`process`, `fork`), and the regions
// (`mmap`, `mremap`, `region`) with the addresses they resolved to. Names
// are checked by the parser; what the parser cannot know (a region whose
// mmap failed, a process that has exited, a mirror that was never opened)
// is found here and ends the case with a clear message instead of a crash.
//
// Every step executor returns a StepResult: what the step returned and
// produced (cpages, data, ...), for the expectations to compare; or a
// failure when the step could not run at all. Executors are overloads of
// `execute`, one per step struct, grouped by family in runner_*.cc.
//
// Single-threaded: a case runs on one host thread, so RunState needs no
// locking of its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "base/result.h"
#include "base/types.h"
#include "driver/dmirror.h"
#include "mm/mm_struct.h"
#include "mm/world.h"
#include "scenario/ast.h"
#include "scenario/runner.h"

namespace hmmsim::scenario::run {

// A value, or why it could not be had (a message for the case failure).
template <typename T>
class [[nodiscard]] Checked {
 public:
  Checked(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  static Checked failure(std::string why) { return Checked(Why{std::move(why)}); }

  bool ok() const { return v_.index() == 0; }
  const T& operator*() const { return std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  const std::string& why() const { return std::get<1>(v_).text; }

 private:
  struct Why {
    std::string text;
  };
  explicit Checked(Why why) : v_(std::move(why)) {}
  std::variant<T, Why> v_;
};

// The data a step read, compared with the step's `data=` (if it has one)
// as it was read, so that no step needs a buffer as large as its range.
struct DataVerdict {
  uint64_t bytes = 0;                   // how many were read (the whole spec)
  std::optional<std::string> mismatch;  // the first difference, as a failure message
};

// What one step did.
struct StepResult {
  RetValue ret;                              // 0, -errno or segv
  std::optional<uint64_t> cpages;            // device commands
  std::optional<uint64_t> faults;            // device READ/WRITE
  std::optional<DataVerdict> data;           // the spec was read (and compared)
  std::optional<std::vector<uint8_t>> prot;  // SNAPSHOT bytes, one per page
  std::optional<std::string> failure;        // the step could not run: the case fails
  bool unsupported = false;                  // ... because the model lacks the feature
  std::string note;                          // extra detail for the step log
};

StepResult result_of(const Status& status);  // 0 or the errno
StepResult segv_result();
StepResult failed(std::string why);
// A verb (or form of a verb) whose model feature does not exist yet.
StepResult unsupported(std::string_view what);
std::string ret_name(const RetValue& ret);

// A resolved region spec.
struct Range {
  Vaddr addr;           // first byte
  uint64_t len = 0;     // bytes
  uint64_t anchor = 0;  // offset of `addr` from the base of the named region
};

// A process and a resolved region spec: what a step on `PROC SPEC` acts on.
struct Target {
  MmStruct* mm = nullptr;
  Range range;
};

class RunState {
 public:
  RunState(const Scenario& scenario, const RunOptions& options);
  ~RunState();
  RunState(const RunState&) = delete;
  RunState& operator=(const RunState&) = delete;

  World& world() { return *world_; }
  bool logging() const { return static_cast<bool>(options_->log); }
  void log(std::string_view line) const;

  // Processes.
  Checked<MmStruct*> process(const std::string& name) const;
  void add_process(const std::string& name, MmStruct& mm);
  // exit(): tears the address space down, then closes the process's
  // mirrors on every device (exit_mm before exit_files, as Linux does).
  void exit_process(const std::string& name, int line);

  // Regions.
  Checked<Range> range(const RegionSpec& spec) const;
  // process(), then range(): the first that fails gives the message.
  Checked<Target> target(const std::string& process, const RegionSpec& spec) const;
  void define_region(const std::string& name, Vaddr base, uint64_t size);
  // The step that would have defined `name` failed: later uses fail.
  void region_not_mapped(const std::string& name, std::string why);

  // Devices and their mirrors.
  void add_device(const std::string& name, uint64_t mem_bytes);
  Checked<DmirrorDevice*> device(const std::string& name) const;
  // The mirror of (device, process), opened on first use.
  Checked<Dmirror*> mirror(const std::string& device, const std::string& process);
  // The mirror if it is open, else nullptr.
  Dmirror* open_mirror(DmirrorDevice& dev, const MmStruct& mm) const;
  // The scenario name of the device owning pgmap owner `owner`, or "".
  std::string device_name(const void* owner) const;

  // exit of every live process and removal of every device: the end of a case.
  void teardown();
  // After teardown(): what the world still holds that nothing can reach
  // (RAM frames, device memory, anon_vmas), or nullopt when it is all back.
  std::optional<std::string> leaks();

 private:
  struct Region {
    Vaddr base;
    uint64_t size = 0;
    std::string not_mapped;  // why the region has no address ("" when it has one)
  };
  struct Process {
    MmStruct* mm = nullptr;  // nullptr once exited
    int exit_line = 0;
  };
  struct Device {
    std::string name;
    std::unique_ptr<DmirrorDevice> dev;
  };

  const RunOptions* options_;
  std::unique_ptr<World> world_;
  uint64_t initial_free_pages_;  // RAM frames free before the first step
  std::vector<Device> devices_;             // in declaration order
  std::vector<std::string> process_order_;  // in creation order
  std::map<std::string, Process, std::less<>> processes_;
  std::map<std::string, Region, std::less<>> regions_;
};

// The step executors (runner_process.cc, runner_cpu.cc, runner_device.cc,
// runner_inspect.cc). `line` is the step's line, for messages.
StepResult execute(RunState& st, const DeviceStep& s);
StepResult execute(RunState& st, const ProcessStep& s);
StepResult execute(RunState& st, const MmapStep& s);
StepResult execute(RunState& st, const MunmapStep& s);
StepResult execute(RunState& st, const MprotectStep& s);
StepResult execute(RunState& st, const MadviseStep& s);
StepResult execute(RunState& st, const MremapStep& s);
StepResult execute(RunState& st, const RegionStep& s);
StepResult execute(RunState& st, const ForkStep& s);
StepResult execute(RunState& st, const ExitStep& s, int line);
StepResult execute(RunState& st, const WriteStep& s);
StepResult execute(RunState& st, const ReadStep& s, const std::optional<DataExpect>& want);
StepResult execute(RunState& st, const IncStep& s);

StepResult execute(RunState& st, const DevReadStep& s, const std::optional<DataExpect>& want);
StepResult execute(RunState& st, const DevWriteStep& s);
StepResult execute(RunState& st, const MigrateToDevStep& s, const std::optional<DataExpect>& want);
StepResult execute(RunState& st, const MigrateToSysStep& s);
StepResult execute(RunState& st, const SnapshotStep& s);
StepResult execute(RunState& st, const ExclusiveStep& s, const std::optional<DataExpect>& want);
StepResult execute(RunState& st, const CheckExclusiveStep& s);
StepResult execute(RunState& st, const ReleaseStep& s);
StepResult execute(RunState& st, const FailAllocStep& s);
StepResult execute(RunState& st, const OpenStep& s);
StepResult execute(RunState& st, const CloseStep& s);

StepResult execute(RunState& st, const CheckStep& s);
StepResult execute(RunState& st, const ShrinkStep& s);
StepResult execute(RunState& st, const ExpectFolioStep& s);

// The whole invariant checker: nullopt when clean, else the case failure
// naming the first violated invariant (the full report goes to the log).
std::optional<std::string> check_now(RunState& st);

// Compares a step's result with its expectations (runner_expect.cc):
// nullopt when every key holds, else the message of the first mismatch.
std::optional<std::string> compare(const Step& step, const StepResult& result);

// The bytes pattern `p` gives to `len` bytes starting `anchor` bytes after
// the base of its region (pattern words are anchored at the base).
std::vector<std::byte> pattern_bytes(const Pattern& p, uint64_t anchor, uint64_t len);

// Compares `bytes`, which start `anchor` bytes after the base of region
// `region`, with pattern `p`: nullopt when equal, else the message naming
// the first differing word, `data: word K (REGION+OFF): expected X, got Y`.
std::optional<std::string> data_mismatch(const Pattern& p, std::string_view region, uint64_t anchor,
                                         std::span<const std::byte> bytes);

}  // namespace hmmsim::scenario::run
