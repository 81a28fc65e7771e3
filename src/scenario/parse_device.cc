// Line parsers for `device` declarations and the dmirror commands
// (scenario-format.md, "Device steps").
#include <fmt/format.h>

#include "scenario/parse_internal.h"

namespace hmmsim::scenario::internal {
namespace {

// `D P SPEC`, the operands of the range commands.
std::optional<DeviceRange> device_range(ParseCtx& ctx, LineCursor& cur) {
  std::optional<std::string> d = take_device(ctx, cur);
  if (!d) return std::nullopt;
  std::optional<std::string> p = take_process(ctx, cur);
  if (!p) return std::nullopt;
  std::optional<RegionSpec> spec = take_spec(ctx, cur);
  if (!spec) return std::nullopt;
  return DeviceRange{*d, *p, *spec};
}

// `D P`, the operands of fail_alloc, open and close.
std::optional<DeviceProcess> device_process(ParseCtx& ctx, LineCursor& cur) {
  std::optional<std::string> d = take_device(ctx, cur);
  if (!d) return std::nullopt;
  std::optional<std::string> p = take_process(ctx, cur);
  if (!p) return std::nullopt;
  return DeviceProcess{*d, *p};
}

template <typename S>
std::optional<StepKind> range_step(ParseCtx& ctx, LineCursor& cur) {
  std::optional<DeviceRange> r = device_range(ctx, cur);
  if (!r) return std::nullopt;
  return S{*r};
}

template <typename S>
std::optional<StepKind> device_process_step(ParseCtx& ctx, LineCursor& cur) {
  std::optional<DeviceProcess> dp = device_process(ctx, cur);
  if (!dp) return std::nullopt;
  return S{*dp};
}

}  // namespace

std::optional<StepKind> parse_device(ParseCtx& ctx, LineCursor& cur) {
  const SourceLoc at = cur.at_end() ? cur.end_loc() : cur.peek().loc;
  std::optional<std::string> name = take_name(ctx, cur, "a device name");
  if (!name) return std::nullopt;
  if (auto it = ctx.names.devices.find(*name); it != ctx.names.devices.end()) {
    return ctx.fail(at,
                    fmt::format("device '{}' is already declared at line {}", *name, it->second));
  }
  std::optional<DeviceKind> kind = take_keyword<DeviceKind>(
      ctx, cur, {{"private", DeviceKind::kPrivate}, {"coherent", DeviceKind::kCoherent}});
  if (!kind) return std::nullopt;
  DeviceStep step{*name, *kind, uint64_t{1} << 30};
  if (!cur.at_end()) {
    const std::string where = cur.where();
    const Token& t = cur.take();
    std::optional<KeyValue> kv = split_key(t);
    if (!kv || kv->key != "mem") {
      return ctx.fail(t.loc,
                      fmt::format("unexpected {} {} (options: mem=SIZE)", quote(t.text), where));
    }
    std::optional<uint64_t> mem = memory_size(ctx, t, *kv, kMinDeviceMem, kMaxDeviceMem);
    if (!mem) return std::nullopt;
    step.mem = *mem;
  }
  ctx.names.devices.emplace(*name, cur.verb().loc.line);
  return step;
}

std::optional<StepKind> parse_dev_read(ParseCtx& ctx, LineCursor& cur) {
  return range_step<DevReadStep>(ctx, cur);
}

std::optional<StepKind> parse_dev_write(ParseCtx& ctx, LineCursor& cur) {
  std::optional<DeviceRange> r = device_range(ctx, cur);
  if (!r) return std::nullopt;
  std::optional<Pattern> pattern = take_pattern(ctx, cur);
  if (!pattern) return std::nullopt;
  return DevWriteStep{*r, *pattern};
}

std::optional<StepKind> parse_migrate_to_dev(ParseCtx& ctx, LineCursor& cur) {
  return range_step<MigrateToDevStep>(ctx, cur);
}

std::optional<StepKind> parse_migrate_to_sys(ParseCtx& ctx, LineCursor& cur) {
  return range_step<MigrateToSysStep>(ctx, cur);
}

std::optional<StepKind> parse_snapshot(ParseCtx& ctx, LineCursor& cur) {
  return range_step<SnapshotStep>(ctx, cur);
}

std::optional<StepKind> parse_exclusive(ParseCtx& ctx, LineCursor& cur) {
  return range_step<ExclusiveStep>(ctx, cur);
}

std::optional<StepKind> parse_check_exclusive(ParseCtx& ctx, LineCursor& cur) {
  return range_step<CheckExclusiveStep>(ctx, cur);
}

std::optional<StepKind> parse_release(ParseCtx& ctx, LineCursor& cur) {
  std::optional<std::string> d = take_device(ctx, cur);
  if (!d) return std::nullopt;
  return ReleaseStep{*d};
}

std::optional<StepKind> parse_fail_alloc(ParseCtx& ctx, LineCursor& cur) {
  return device_process_step<FailAllocStep>(ctx, cur);
}

std::optional<StepKind> parse_open(ParseCtx& ctx, LineCursor& cur) {
  return device_process_step<OpenStep>(ctx, cur);
}

std::optional<StepKind> parse_close(ParseCtx& ctx, LineCursor& cur) {
  return device_process_step<CloseStep>(ctx, cur);
}

}  // namespace hmmsim::scenario::internal
