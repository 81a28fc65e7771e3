// The scenario runner: executes one parsed case (ast.h) on a fresh World.
//
// scenario-format.md is the contract. Each step maps onto the model the way
// a kselftest maps onto a kernel: `mmap` is do_mmap(), `write` is the CPU
// storing through the MMU, `migrate_to_dev` is the dmirror ioctl, and so on.
// After the step the runner compares what happened with the step's
// expectations (`ret` defaults to 0). The first mismatch ends the case with
// a message that names the expected and the actual value; the caller prints
// it as `FILE:LINE: MESSAGE`.
//
// Depending on `config check=`, the whole invariant checker (check/) runs
// after every step, once at the end, or never; a violation fails the case
// and names the invariant. A broken internal assertion of the model is not
// a case failure: it aborts the process (it is a model bug).
//
// Runs are deterministic: the same case and seed give the same result and
// the same step log, byte for byte. `concurrent` blocks run their threads'
// steps round-robin (A's first, B's first, A's second, ...) on the calling
// thread. Stateless between calls; each call builds and destroys its own
// World, so calls may run on different threads.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "scenario/ast.h"

namespace hmmsim::scenario {

// Receives the step log of `-v`, one line at a time (no newline).
using StepLog = std::function<void(std::string_view line)>;

struct RunOptions {
  std::optional<uint64_t> seed;  // replaces `config seed=` when set
  StepLog log;                   // empty: no step log
};

// How one case ended.
struct CaseResult {
  bool passed = true;
  int line = 0;              // the line of the step that failed
  std::string message;       // e.g. "cpages: expected 512, got 0"
  bool unsupported = false;  // failed because the model lacks a feature ("unsupported: VERB")
};

CaseResult run_case(const Scenario& scenario, const RunOptions& options);

// `FILE:LINE: MESSAGE` of a failed case.
std::string format_failure(const Scenario& scenario, const CaseResult& result);

// The vary values of a case as the suffix of its name, ` [NAME=VALUE ...]`
// (with the leading space), or "" without vary lines.
std::string vary_suffix(const std::vector<VaryBinding>& vary);

}  // namespace hmmsim::scenario
