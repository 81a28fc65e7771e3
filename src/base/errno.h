// Errno: the kernel error numbers the model returns.
//
// The model reports failures the way Linux does, with a negative errno, so a
// scenario can expect `-EINVAL` where the kernel would return it. Only the
// values that the modelled paths can produce are listed; the numeric values
// are the Linux ones so that printed results read like strace output.
#pragma once

#include <optional>
#include <string_view>

namespace hmmsim {

enum class Errno : int {
  kPerm = 1,     // EPERM
  kNoEnt = 2,    // ENOENT
  kAgain = 11,   // EAGAIN
  kNoMem = 12,   // ENOMEM
  kFault = 14,   // EFAULT
  kBusy = 16,    // EBUSY
  kExist = 17,   // EEXIST
  kInval = 22,   // EINVAL
  kNoSpc = 28,   // ENOSPC
  kOverflow = 75,  // EOVERFLOW
};

// "EINVAL" for Errno::kInval.
std::string_view errno_name(Errno e);

// Errno for "EINVAL"; empty when the name is unknown.
std::optional<Errno> errno_from_name(std::string_view name);

}  // namespace hmmsim
