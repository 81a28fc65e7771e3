// Step results and their comparison with `=> key=value ...`.
//
// Keys are compared in a fixed order (ret, cpages, faults, data, prot) and
// the first mismatch is the case's failure message, which names the key,
// the expected and the actual value.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "scenario/runner_internal.h"

namespace hmmsim::scenario::run {
namespace {

std::string ret_list(const RetExpect& e) {
  if (e.any) return "any";
  if (e.allowed.size() == 1) return ret_name(e.allowed[0]);
  std::string out = "(";
  for (size_t i = 0; i < e.allowed.size(); i++) {
    if (i) out += ",";
    out += ret_name(e.allowed[i]);
  }
  return out + ")";
}

bool same_ret(const RetValue& a, const RetValue& b) {
  if (a.kind != b.kind) return false;
  return a.kind != RetValue::Kind::kErrno || a.err == b.err;
}

std::optional<std::string> compare_ret(const Expectations& e, const StepResult& r) {
  const RetExpect want = e.ret ? *e.ret : RetExpect{{}, false, {RetValue{}}};
  if (want.any) return std::nullopt;
  for (const RetValue& v : want.allowed) {
    if (same_ret(v, r.ret)) return std::nullopt;
  }
  return fmt::format("ret: expected {}, got {}", ret_list(want), ret_name(r.ret));
}

std::optional<std::string> compare_count(std::string_view key, std::string_view verb,
                                         const std::optional<CountExpect>& want,
                                         const std::optional<uint64_t>& got) {
  if (!want) return std::nullopt;
  if (!got) return fmt::format("{}: does not apply to '{}'", key, verb);
  if (want->value == *got) return std::nullopt;
  return fmt::format("{}: expected {}, got {}", key, want->value, *got);
}

// Word k (from the region base) as `bytes` hold it; `bytes` start `anchor`
// bytes after the base, and where they do not cover the word (a word cut by
// the spec's edge) the bytes of `fallback` stand in.
uint32_t word_in(std::span<const std::byte> bytes, uint64_t anchor, uint64_t k, uint32_t fallback) {
  std::byte w[4];
  std::memcpy(w, &fallback, 4);
  for (uint64_t b = 0; b < 4; b++) {
    const uint64_t off = 4 * k + b;
    if (off >= anchor && off - anchor < bytes.size()) w[b] = bytes[off - anchor];
  }
  uint32_t out;
  std::memcpy(&out, w, 4);
  return out;
}

std::optional<std::string> compare_data(const Step& step, const StepResult& r) {
  if (!step.expect.data) return std::nullopt;
  if (!r.data) {
    return fmt::format("data: nothing to compare, '{}' returned {}", step_verb(step.kind),
                       ret_name(r.ret));
  }
  return r.data->mismatch;
}

std::optional<std::string> compare_prot(const Step& step, const StepResult& r) {
  for (const ProtExpect& p : step.expect.prot) {
    if (!r.prot) return fmt::format("prot: does not apply to '{}'", step_verb(step.kind));
    const uint64_t end = p.end.value_or(r.prot->size());
    for (uint64_t i = p.first; i < end; i++) {
      const uint8_t got = i < r.prot->size() ? (*r.prot)[i] : kProtError;
      if (got == p.value) continue;
      return fmt::format("prot[{}]: expected {:#04x}, got {:#04x}", i, p.value, got);
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> data_mismatch(const Pattern& p, std::string_view region, uint64_t anchor,
                                         std::span<const std::byte> bytes) {
  const std::vector<std::byte> expected = pattern_bytes(p, anchor, bytes.size());
  auto diff = std::mismatch(expected.begin(), expected.end(), bytes.begin());
  if (diff.first == expected.end()) return std::nullopt;
  const uint64_t k = (anchor + static_cast<uint64_t>(diff.first - expected.begin())) / 4;
  const uint32_t want = pattern_word(p, k);
  const uint32_t got = word_in(bytes, anchor, k, want);
  return fmt::format("data: word {} ({}+{:#x}): expected {:#x}, got {:#x}", k, region, 4 * k, want,
                     got);
}

StepResult result_of(const Status& status) {
  StepResult r;
  if (!status.ok()) r.ret = RetValue{RetValue::Kind::kErrno, status.error()};
  return r;
}

StepResult segv_result() {
  StepResult r;
  r.ret = RetValue{RetValue::Kind::kSegv, Errno::kFault};
  return r;
}

StepResult failed(std::string why) {
  StepResult r;
  r.failure = std::move(why);
  return r;
}

StepResult unsupported(std::string_view what) {
  StepResult r = failed(fmt::format("unsupported: {}", what));
  r.unsupported = true;
  return r;
}

std::string ret_name(const RetValue& ret) {
  switch (ret.kind) {
    case RetValue::Kind::kZero: return "0";
    case RetValue::Kind::kErrno: return fmt::format("-{}", errno_name(ret.err));
    case RetValue::Kind::kSegv: return "segv";
  }
  return "?";
}

std::optional<std::string> compare(const Step& step, const StepResult& result) {
  const std::string_view verb = step_verb(step.kind);
  if (auto bad = compare_ret(step.expect, result)) return bad;
  if (auto bad = compare_count("cpages", verb, step.expect.cpages, result.cpages)) return bad;
  if (auto bad = compare_count("faults", verb, step.expect.faults, result.faults)) return bad;
  if (auto bad = compare_data(step, result)) return bad;
  return compare_prot(step, result);
}

}  // namespace hmmsim::scenario::run
