// Device steps: `device` declarations and the dmirror commands
// (lib/test_hmm.c ioctls, open and close of the device file).
//
// A range command sends the spec's start and its length in whole pages;
// the driver checks alignment and returns -EINVAL like the ioctl. What it
// copies back (READ and MIGRATE_TO_DEV data, SNAPSHOT bytes) is kept only
// on success, as the ioctl copies nothing back on an error. Device-coherent
// devices do not exist in the model: they fail the case as "unsupported",
// so that a scenario never passes by skipping them.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "scenario/runner_internal.h"

namespace hmmsim::scenario::run {
namespace {

// The command block of a range step: the spec's start and its length
// rounded up to whole pages (the driver checks alignment itself).
DmirrorCmd range_cmd(const Range& r) {
  return DmirrorCmd(r.addr, (r.len + kPageSize - 1) / kPageSize);
}

// The device read-back of a range command (the bytes of the spec only),
// compared with `data=` if the step has it.
DataVerdict read_back(const DmirrorCmd& cmd, const Range& r, const RegionSpec& spec,
                      const std::optional<DataExpect>& want) {
  const uint64_t n = std::min<uint64_t>(r.len, cmd.data.size());
  DataVerdict v{n, std::nullopt};
  if (want) v.mismatch = data_mismatch(want->pattern, spec.region, r.anchor, {cmd.data.data(), n});
  return v;
}

// A range command of a mirror, and what it did.
using Command = Status (Dmirror::*)(DmirrorCmd&);

struct Sent {
  Range range;
  DmirrorCmd cmd;
  StepResult result;  // ret and cpages, or why the command could not be sent
};

bool succeeded(const Sent& s) {
  return !s.result.failure && s.result.ret.kind == RetValue::Kind::kZero;
}

// Resolves the spec and the mirror (opened on first use) and sends the
// command, with the bytes of `fill` (if given) over its whole pages as data.
Sent send(RunState& st, const DeviceRange& s, Command command, const Pattern* fill = nullptr) {
  Checked<Range> r = st.range(s.spec);
  if (!r.ok()) return Sent{{}, {}, failed(r.why())};
  Checked<Dmirror*> mirror = st.mirror(s.device, s.process);
  if (!mirror.ok()) return Sent{{}, {}, failed(mirror.why())};
  Sent out{*r, range_cmd(*r), {}};
  if (fill) out.cmd.data = pattern_bytes(*fill, r->anchor, out.cmd.npages * kPageSize);
  out.result = result_of(((**mirror).*command)(out.cmd));
  out.result.cpages = out.cmd.cpages;
  return out;
}

// send(), keeping the device read-back (compared with `data=` if the step
// has it) when the command succeeded.
Sent send_reading(RunState& st, const DeviceRange& s, Command command,
                  const std::optional<DataExpect>& want) {
  Sent sent = send(st, s, command);
  if (succeeded(sent)) sent.result.data = read_back(sent.cmd, sent.range, s.spec, want);
  return sent;
}

}  // namespace

StepResult execute(RunState& st, const DeviceStep& s) {
  if (s.kind == DeviceKind::kCoherent) return unsupported("device coherent");
  st.add_device(s.name, s.mem);
  return StepResult{};
}

StepResult execute(RunState& st, const DevReadStep& s, const std::optional<DataExpect>& want) {
  Sent sent = send_reading(st, s, &Dmirror::read, want);
  sent.result.faults = sent.cmd.faults;
  return sent.result;
}

// The device writes whole pages: the pattern fills every page the spec
// touches.
StepResult execute(RunState& st, const DevWriteStep& s) {
  Sent sent = send(st, s, &Dmirror::write, &s.pattern);
  sent.result.faults = sent.cmd.faults;
  return sent.result;
}

StepResult execute(RunState& st, const SnapshotStep& s) {
  Sent sent = send(st, s, &Dmirror::snapshot);
  if (succeeded(sent)) {
    std::vector<uint8_t> prot(sent.cmd.data.size());
    std::memcpy(prot.data(), sent.cmd.data.data(), prot.size());
    sent.result.prot = std::move(prot);
  }
  return sent.result;
}

StepResult execute(RunState& st, const ExclusiveStep& s, const std::optional<DataExpect>& want) {
  return send_reading(st, s, &Dmirror::exclusive, want).result;
}

StepResult execute(RunState& st, const CheckExclusiveStep& s) {
  Sent sent = send(st, s, &Dmirror::check_exclusive);
  sent.result.cpages.reset();  // CHECK_EXCLUSIVE counts nothing; `ret` says it all
  return sent.result;
}

StepResult execute(RunState& st, const MigrateToDevStep& s, const std::optional<DataExpect>& want) {
  return send_reading(st, s, &Dmirror::migrate_to_dev, want).result;
}

StepResult execute(RunState& st, const MigrateToSysStep& s) {
  return send(st, s, &Dmirror::migrate_to_sys).result;
}

StepResult execute(RunState& st, const ReleaseStep& s) {
  Checked<DmirrorDevice*> dev = st.device(s.device);
  if (!dev.ok()) return failed(dev.why());
  return result_of((*dev)->release());
}

// FLAGS with HMM_DMIRROR_FLAG_FAIL_ALLOC (the flag value travels in npages).
StepResult execute(RunState& st, const FailAllocStep& s) {
  Checked<Dmirror*> mirror = st.mirror(s.device, s.process);
  if (!mirror.ok()) return failed(mirror.why());
  DmirrorCmd cmd(Vaddr{0}, kDmirrorFlagFailAlloc);
  return result_of((*mirror)->set_flags(cmd));
}

StepResult execute(RunState& st, const OpenStep& s) {
  Checked<Dmirror*> mirror = st.mirror(s.device, s.process);
  if (!mirror.ok()) return failed(mirror.why());
  return StepResult{};
}

StepResult execute(RunState& st, const CloseStep& s) {
  Checked<DmirrorDevice*> dev = st.device(s.device);
  if (!dev.ok()) return failed(dev.why());
  Checked<MmStruct*> mm = st.process(s.process);
  if (!mm.ok()) return failed(mm.why());
  Dmirror* mirror = st.open_mirror(**dev, **mm);
  if (!mirror) {
    return failed(
        fmt::format("close: device '{}' is not open for process '{}'", s.device, s.process));
  }
  return result_of((*dev)->close(*mirror));
}

}  // namespace hmmsim::scenario::run
