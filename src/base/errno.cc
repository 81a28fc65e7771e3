#include "base/errno.h"

#include <array>
#include <utility>

namespace hmmsim {
namespace {

constexpr std::array<std::pair<Errno, std::string_view>, 10> kNames = {{
    {Errno::kPerm, "EPERM"},
    {Errno::kNoEnt, "ENOENT"},
    {Errno::kAgain, "EAGAIN"},
    {Errno::kNoMem, "ENOMEM"},
    {Errno::kFault, "EFAULT"},
    {Errno::kBusy, "EBUSY"},
    {Errno::kExist, "EEXIST"},
    {Errno::kInval, "EINVAL"},
    {Errno::kNoSpc, "ENOSPC"},
    {Errno::kOverflow, "EOVERFLOW"},
}};

}  // namespace

std::string_view errno_name(Errno e) {
  for (const auto& [value, name] : kNames) {
    if (value == e) return name;
  }
  return "E?";
}

std::optional<Errno> errno_from_name(std::string_view name) {
  for (const auto& [value, known] : kNames) {
    if (known == name) return value;
  }
  return std::nullopt;
}

}  // namespace hmmsim
