// RunState: the World of one case and the names its steps resolve to.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "mm/mm.h"
#include "scenario/runner_internal.h"

namespace hmmsim::scenario::run {
namespace {

ThpPolicy thp_policy(ThpMode mode) {
  switch (mode) {
    case ThpMode::kAlways: return ThpPolicy::kAlways;
    case ThpMode::kMadvise: return ThpPolicy::kMadvise;
    case ThpMode::kNever: return ThpPolicy::kNever;
  }
  return ThpPolicy::kMadvise;
}

::hmmsim::Config world_config(const Scenario& s, const RunOptions& o) {
  return ::hmmsim::Config{.sysmem_bytes = s.config.sysmem,
                          .seed = o.seed.value_or(s.config.seed),
                          .thp = thp_policy(s.config.thp)};
}

}  // namespace

RunState::RunState(const Scenario& scenario, const RunOptions& options)
    : options_(&options),
      world_(std::make_unique<World>(world_config(scenario, options))),
      initial_free_pages_(world_->mem().buddy().nr_free_pages()) {}

RunState::~RunState() {
  teardown();
}

void RunState::log(std::string_view line) const {
  if (options_->log) options_->log(line);
}

Checked<MmStruct*> RunState::process(const std::string& name) const {
  auto it = processes_.find(name);
  if (it == processes_.end()) {
    return Checked<MmStruct*>::failure(fmt::format("process '{}' does not exist", name));
  }
  if (!it->second.mm) {
    return Checked<MmStruct*>::failure(
        fmt::format("process '{}' has exited (line {})", name, it->second.exit_line));
  }
  return it->second.mm;
}

void RunState::add_process(const std::string& name, MmStruct& mm) {
  HMM_ASSERT(!processes_.contains(name) || !processes_.at(name).mm,
             "process '{}' added while alive", name);
  if (!processes_.contains(name)) process_order_.push_back(name);
  processes_[name] = Process{&mm, 0};
}

void RunState::exit_process(const std::string& name, int line) {
  Process& p = processes_.at(name);
  std::vector<std::pair<DmirrorDevice*, Dmirror*>> handles;
  for (Device& d : devices_) {
    if (Dmirror* m = open_mirror(*d.dev, *p.mm)) handles.emplace_back(d.dev.get(), m);
  }
  exit_mmap(*p.mm);
  for (auto [dev, m] : handles) {
    Status closed = dev->close(*m);
    HMM_ASSERT(closed.ok(), "close of the mirror of an exited process failed");
  }
  p = Process{nullptr, line};
}

Checked<Range> RunState::range(const RegionSpec& spec) const {
  auto it = regions_.find(spec.region);
  if (it == regions_.end()) {
    return Checked<Range>::failure(fmt::format("region '{}' does not exist", spec.region));
  }
  const Region& r = it->second;
  if (!r.not_mapped.empty()) {
    return Checked<Range>::failure(
        fmt::format("region '{}' has no address: {}", spec.region, r.not_mapped));
  }
  if (spec.offset > r.size || spec.length > r.size - spec.offset) {
    return Checked<Range>::failure(
        fmt::format("'{}' lies outside region '{}' ({} bytes)", spec.text, spec.region, r.size));
  }
  return Range{r.base + spec.offset, spec.length, spec.offset};
}

Checked<Target> RunState::target(const std::string& proc, const RegionSpec& spec) const {
  Checked<MmStruct*> mm = process(proc);
  if (!mm.ok()) return Checked<Target>::failure(mm.why());
  Checked<Range> r = range(spec);
  if (!r.ok()) return Checked<Target>::failure(r.why());
  return Target{*mm, *r};
}

void RunState::define_region(const std::string& name, Vaddr base, uint64_t size) {
  regions_[name] = Region{base, size, ""};
}

void RunState::region_not_mapped(const std::string& name, std::string why) {
  regions_[name] = Region{Vaddr{0}, 0, std::move(why)};
}

void RunState::add_device(const std::string& name, uint64_t mem_bytes) {
  const int id = static_cast<int>(devices_.size());
  devices_.push_back(Device{name, std::make_unique<DmirrorDevice>(*world_, id, mem_bytes)});
}

Checked<DmirrorDevice*> RunState::device(const std::string& name) const {
  for (const Device& d : devices_) {
    if (d.name == name) return d.dev.get();
  }
  return Checked<DmirrorDevice*>::failure(fmt::format("device '{}' does not exist", name));
}

Checked<Dmirror*> RunState::mirror(const std::string& device_name, const std::string& proc) {
  Checked<DmirrorDevice*> dev = device(device_name);
  if (!dev.ok()) return Checked<Dmirror*>::failure(dev.why());
  Checked<MmStruct*> mm = process(proc);
  if (!mm.ok()) return Checked<Dmirror*>::failure(mm.why());
  return &(*dev)->open(**mm);
}

Dmirror* RunState::open_mirror(DmirrorDevice& dev, const MmStruct& mm) const {
  for (const auto& m : dev.mirrors()) {
    if (m->pid() == mm.pid()) return m.get();
  }
  return nullptr;
}

std::string RunState::device_name(const void* owner) const {
  for (const Device& d : devices_) {
    if (d.dev->owner() == owner) return d.name;
  }
  return "";
}

void RunState::teardown() {
  for (const std::string& name : process_order_) {
    if (processes_.at(name).mm) exit_process(name, 0);
  }
  // Removing a device evicts whatever is left on it; no process remains.
  while (!devices_.empty()) devices_.pop_back();
}

std::optional<std::string> RunState::leaks() {
  std::vector<std::string> what;
  uint64_t free_pages = world_->mem().buddy().nr_free_pages();
  if (free_pages != initial_free_pages_) {
    what.push_back(fmt::format("{} RAM frames still allocated",
                               int64_t(initial_free_pages_) - int64_t(free_pages)));
  }
  if (size_t n = world_->mem().ranges().size(); n != 1)
    what.push_back(fmt::format("{} device memory ranges still present", n - 1));
  if (uint64_t n = world_->nr_anon_vmas(); n != 0)
    what.push_back(fmt::format("{} anon_vmas still live", n));
  if (what.empty()) return std::nullopt;
  return fmt::format("leak after teardown: {}", fmt::join(what, ", "));
}

}  // namespace hmmsim::scenario::run
