// run_case(): steps in order, blocks (repeat, concurrent), the checker, and
// the step log.
#include "scenario/runner.h"

#include <fmt/format.h>

#include "scenario/format.h"
#include "scenario/runner_internal.h"

namespace hmmsim::scenario {
namespace {

using run::RunState;
using run::StepResult;

struct Failure {
  int line = 0;
  std::string message;
  bool unsupported = false;
};
using Outcome = std::optional<Failure>;

// The steps whose data the runner compares with `data=` as it arrives.
template <typename S>
constexpr bool kReadsData = std::is_same_v<S, ReadStep> || std::is_same_v<S, DevReadStep> ||
                            std::is_same_v<S, MigrateToDevStep> || std::is_same_v<S, ExclusiveStep>;

// Whether `check=step` runs the checker after a step: not inside a
// `concurrent` block, whose threads are checked after the join.
enum class AfterStep { kCheck, kNoCheck };

// Where a step runs: in which thread, and in which iteration of the
// innermost repeat. Failure messages name both.
struct Where {
  std::string thread;
  int repeat_line = 0;
  uint64_t iteration = 0;
  uint64_t count = 0;

  std::string wrap(const std::string& message) const {
    std::string out = thread.empty() ? message : fmt::format("thread {}: {}", thread, message);
    if (count > 0) {
      out += fmt::format(" (iteration {} of {} of the repeat at line {})", iteration, count,
                         repeat_line);
    }
    return out;
  }
};

// The steps of one `thread`, one leaf step at a time, with `repeat`
// blocks unrolled.
class ThreadCursor {
 public:
  ThreadCursor(const ThreadBlock& t) : name_(t.name) {  // NOLINT: implicit by design
    frames_.push_back(Frame{&t.steps, 0, 1, 1, 0});
  }

  // The next leaf step and where it runs, or nullptr at the end. `outer`
  // is where the block runs (a repeat around the whole `concurrent`).
  const Step* next(const Where& outer, Where& where);

 private:
  struct Frame {
    const std::vector<Step>* steps;
    size_t index;
    uint64_t iteration;
    uint64_t count;
    int line;
  };
  std::string name_;
  std::vector<Frame> frames_;
};

const Step* ThreadCursor::next(const Where& outer, Where& where) {
  while (!frames_.empty()) {
    Frame& f = frames_.back();
    if (f.index == f.steps->size()) {
      if (f.iteration < f.count) {
        f.iteration++;
        f.index = 0;
      } else {
        frames_.pop_back();
      }
      continue;
    }
    const Step& step = (*f.steps)[f.index++];
    if (const auto* r = std::get_if<RepeatStep>(&step.kind)) {
      if (r->count > 0) frames_.push_back(Frame{&r->body, 0, 1, r->count, step.loc.line});
      continue;
    }
    const Frame& top = frames_.back();
    where = top.line ? Where{name_, top.line, top.iteration, top.count} : outer;
    where.thread = name_;
    return &step;
  }
  return nullptr;
}

// The log line of a step's result.
std::string result_line(const StepResult& r) {
  if (r.failure) return "    ! " + *r.failure;
  std::string out = "    = " + run::ret_name(r.ret);
  if (r.cpages) out += fmt::format(" cpages={}", *r.cpages);
  if (r.faults) out += fmt::format(" faults={}", *r.faults);
  if (r.data) out += fmt::format(" data={} bytes", r.data->bytes);
  if (!r.note.empty()) out += " (" + r.note + ")";
  return out;
}

class CaseRunner {
 public:
  CaseRunner(const Scenario& s, const RunOptions& o) : scenario_(s), st_(s, o) {}

  Outcome run();

 private:
  Outcome run_steps(const std::vector<Step>& steps, const Where& where);
  Outcome run_repeat(const Step& step, const RepeatStep& r, const Where& where);
  Outcome run_concurrent(const ConcurrentStep& c, const Where& where);
  Outcome run_leaf(const Step& step, const Where& where, AfterStep after);
  Outcome check(int line, const Where& where);
  Outcome check_teardown(int line);
  StepResult dispatch(const Step& step);
  void log_step(const Step& step, const Where& where);

  const Scenario& scenario_;
  RunState st_;
};

Outcome CaseRunner::run() {
  Outcome failure = run_steps(scenario_.steps, Where{});
  if (failure) return failure;
  int line = 0;
  if (!scenario_.steps.empty()) {
    const Step& last = scenario_.steps.back();
    line = last.loc.line;
    if (const auto* c = std::get_if<ConcurrentStep>(&last.kind)) line = c->end_loc.line;
    if (const auto* r = std::get_if<RepeatStep>(&last.kind)) line = r->end_loc.line;
  }
  if (scenario_.config.check == CheckMode::kEnd && !scenario_.steps.empty()) {
    if (Outcome bad = check(line, Where{})) return bad;
  }
  return check_teardown(line);
}

// The end of every case: every process exits and every device goes away;
// then everything the world handed out must be back (unless checks are off).
Outcome CaseRunner::check_teardown(int line) {
  st_.teardown();
  if (scenario_.config.check == CheckMode::kOff) return std::nullopt;
  if (std::optional<std::string> bad = run::check_now(st_)) return Failure{line, *bad};
  if (std::optional<std::string> leak = st_.leaks()) return Failure{line, *leak};
  st_.log("    teardown: clean");
  return std::nullopt;
}

Outcome CaseRunner::run_steps(const std::vector<Step>& steps, const Where& where) {
  for (const Step& step : steps) {
    Outcome failure;
    if (const auto* r = std::get_if<RepeatStep>(&step.kind)) {
      failure = run_repeat(step, *r, where);
    } else if (const auto* c = std::get_if<ConcurrentStep>(&step.kind)) {
      st_.log(fmt::format("{}: concurrent", step.loc.line));
      failure = run_concurrent(*c, where);
    } else {
      failure = run_leaf(step, where, AfterStep::kCheck);
    }
    if (failure) return failure;
  }
  return std::nullopt;
}

Outcome CaseRunner::run_repeat(const Step& step, const RepeatStep& r, const Where& where) {
  for (uint64_t i = 1; i <= r.count; i++) {
    st_.log(fmt::format("{}: repeat {} (iteration {})", step.loc.line, r.count, i));
    Where inner = where;
    inner.repeat_line = step.loc.line;
    inner.iteration = i;
    inner.count = r.count;
    if (Outcome failure = run_steps(r.body, inner)) return failure;
  }
  return std::nullopt;
}

// Round-robin: one step of each thread in turn, until every thread is done;
// then the join, after which the checker runs.
Outcome CaseRunner::run_concurrent(const ConcurrentStep& c, const Where& where) {
  std::vector<ThreadCursor> threads(c.threads.begin(), c.threads.end());
  for (bool progress = true; progress;) {
    progress = false;
    for (ThreadCursor& t : threads) {
      Where in_thread;
      const Step* step = t.next(where, in_thread);
      if (!step) continue;
      progress = true;
      if (Outcome failure = run_leaf(*step, in_thread, AfterStep::kNoCheck)) return failure;
    }
  }
  st_.log(fmt::format("{}: end (join)", c.end_loc.line));
  if (scenario_.config.check != CheckMode::kStep) return std::nullopt;
  return check(c.end_loc.line, where);
}

Outcome CaseRunner::run_leaf(const Step& step, const Where& where, AfterStep after) {
  log_step(step, where);
  const StepResult r = dispatch(step);
  if (st_.logging()) st_.log(result_line(r));
  if (r.failure) return Failure{step.loc.line, where.wrap(*r.failure), r.unsupported};
  if (auto bad = run::compare(step, r)) return Failure{step.loc.line, where.wrap(*bad)};
  const bool checked = std::holds_alternative<CheckStep>(step.kind);
  if (after == AfterStep::kNoCheck || checked || scenario_.config.check != CheckMode::kStep) {
    return std::nullopt;
  }
  return check(step.loc.line, where);
}

Outcome CaseRunner::check(int line, const Where& where) {
  std::optional<std::string> bad = run::check_now(st_);
  if (!bad) {
    st_.log("    check: clean");
    return std::nullopt;
  }
  return Failure{line, where.wrap(*bad)};
}

StepResult CaseRunner::dispatch(const Step& step) {
  return std::visit(
      [&](const auto& s) -> StepResult {
        using S = std::decay_t<decltype(s)>;
        if constexpr (std::is_same_v<S, ExitStep>) {
          return run::execute(st_, s, step.loc.line);
        } else if constexpr (kReadsData<S>) {
          return run::execute(st_, s, step.expect.data);
        } else if constexpr (std::is_same_v<S, RepeatStep> || std::is_same_v<S, ConcurrentStep>) {
          HMM_BUG("block step at line {} dispatched as a leaf", step.loc.line);
        } else {
          return run::execute(st_, s);
        }
      },
      step.kind);
}

void CaseRunner::log_step(const Step& step, const Where& where) {
  if (!st_.logging()) return;
  std::string text = format_step(step);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  const std::string thread = where.thread.empty() ? "" : "[" + where.thread + "] ";
  st_.log(fmt::format("{}: {}{}", step.loc.line, thread, text));
}

}  // namespace

CaseResult run_case(const Scenario& scenario, const RunOptions& options) {
  Outcome failure = CaseRunner(scenario, options).run();
  if (!failure) return CaseResult{};
  return CaseResult{false, failure->line, std::move(failure->message), failure->unsupported};
}

std::string format_failure(const Scenario& scenario, const CaseResult& result) {
  return fmt::format("{}:{}: {}", scenario.file, result.line, result.message);
}

std::string vary_suffix(const std::vector<VaryBinding>& vary) {
  if (vary.empty()) return "";
  std::string out = " [";
  for (size_t i = 0; i < vary.size(); i++) {
    if (i) out += " ";
    out += vary[i].name + "=" + vary[i].value;
  }
  return out + "]";
}

}  // namespace hmmsim::scenario
