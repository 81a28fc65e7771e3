// CPU access steps: write, read and inc through the model's MMU.
//
// The model's cpu_read/cpu_write fault page by page and stop at the first
// page that cannot be accessed (-EFAULT, the SIGSEGV of a real CPU), having
// transferred the pages before it. Protection is per page, so moving whole
// runs of words at once stops at the same word as a word-by-word loop
// would, and nothing after it is touched.
#include <algorithm>
#include <cstring>
#include <span>
#include <vector>

#include "mm/mm.h"
#include "scenario/runner_internal.h"

namespace hmmsim::scenario::run {
namespace {

// CPU steps move at most this much at a time, so that a step over a huge
// region needs no buffer of its size.
constexpr uint64_t kCpuChunk = uint64_t{1} << 20;

// -EFAULT from the CPU path is a segfault; anything else (-ENOMEM of an
// out-of-memory fault) is returned as the errno.
StepResult cpu_result(const Status& status) {
  if (!status.ok() && status.error() == Errno::kFault) return segv_result();
  return result_of(status);
}

// How many of the words [k, end) from `base` fit in the page of word k;
// a word that straddles two pages goes alone.
uint64_t words_in_page(Vaddr base, uint64_t k, uint64_t end) {
  const Vaddr addr = base + 4 * k;
  const uint64_t to_page_end = kPageSize - (addr.v & (kPageSize - 1));
  if (to_page_end < 4) return 1;
  return std::min(end - k, to_page_end / 4);
}

// Loads `n` words at `addr`, adds one to each, stores them back.
Status inc_words(MmStruct& mm, Vaddr addr, uint64_t n) {
  std::vector<uint32_t> words(n);
  HMM_TRY(cpu_read(mm, addr, std::as_writable_bytes(std::span(words))));
  for (uint32_t& w : words) w++;
  return cpu_write(mm, addr, std::as_bytes(std::span(words)));
}

}  // namespace

std::vector<std::byte> pattern_bytes(const Pattern& p, uint64_t anchor, uint64_t len) {
  std::vector<std::byte> out(len);
  const uint64_t end = anchor + len;
  for (uint64_t k = anchor / 4; 4 * k < end; k++) {
    const uint32_t word = pattern_word(p, k);  // little-endian, like x86-64
    const uint64_t lo = std::max(4 * k, anchor);
    const uint64_t hi = std::min(4 * k + 4, end);
    std::memcpy(out.data() + (lo - anchor),
                reinterpret_cast<const std::byte*>(&word) + (lo - 4 * k), hi - lo);
  }
  return out;
}

StepResult execute(RunState& st, const WriteStep& s) {
  Checked<Target> t = st.target(s.process, s.spec);
  if (!t.ok()) return failed(t.why());
  const auto& [mm, r] = *t;
  for (uint64_t done = 0; done < r.len; done += kCpuChunk) {
    const uint64_t n = std::min(kCpuChunk, r.len - done);
    const std::vector<std::byte> bytes = pattern_bytes(s.pattern, r.anchor + done, n);
    Status stored = cpu_write(*mm, r.addr + done, bytes);
    if (!stored.ok()) return cpu_result(stored);
  }
  return StepResult{};
}

// The bytes are compared with `data=` as they arrive, one chunk at a time.
StepResult execute(RunState& st, const ReadStep& s, const std::optional<DataExpect>& want) {
  Checked<Target> t = st.target(s.process, s.spec);
  if (!t.ok()) return failed(t.why());
  const auto& [mm, r] = *t;
  DataVerdict verdict{r.len, std::nullopt};
  std::vector<std::byte> bytes;
  for (uint64_t done = 0; done < r.len; done += kCpuChunk) {
    bytes.resize(std::min(kCpuChunk, r.len - done));
    Status loaded = cpu_read(*mm, r.addr + done, bytes);
    if (!loaded.ok()) return cpu_result(loaded);
    if (want && !verdict.mismatch) {
      verdict.mismatch = data_mismatch(want->pattern, s.spec.region, r.anchor + done, bytes);
    }
  }
  StepResult out;
  out.data = verdict;
  return out;
}

// Every whole word of the spec (words are anchored at the region base; a
// word only partly inside the spec is left alone).
StepResult execute(RunState& st, const IncStep& s) {
  Checked<Target> t = st.target(s.process, s.spec);
  if (!t.ok()) return failed(t.why());
  const auto& [mm, r] = *t;
  const Vaddr base = r.addr - r.anchor;
  const uint64_t end = (r.anchor + r.len) / 4;
  for (uint64_t k = (r.anchor + 3) / 4; k < end;) {
    const uint64_t n = words_in_page(base, k, end);
    Status done = inc_words(*mm, base + 4 * k, n);
    if (!done.ok()) return cpu_result(done);
    k += n;
  }
  return StepResult{};
}

}  // namespace hmmsim::scenario::run
