// FaultPoints: named places in the model where a test or a scenario may
// step in (to take an extra reference, fail an allocation, ...).
//
// Code in mm/ calls `world.fault_points().hit("split_folio:before_freeze")`
// at an interesting point of a protocol; nothing happens unless a hook is
// installed. Hooks run on the thread that reaches the point, with whatever
// locks it holds, so they must only do what that context allows.
#pragma once

#include <functional>
#include <string_view>

namespace hmmsim {

class FaultPoints {
 public:
  using Hook = std::function<void(std::string_view site)>;

  void set_hook(Hook hook) { hook_ = std::move(hook); }
  void clear_hook() { hook_ = nullptr; }
  void hit(std::string_view site) const {
    if (hook_) hook_(site);
  }

 private:
  Hook hook_;
};

}  // namespace hmmsim
