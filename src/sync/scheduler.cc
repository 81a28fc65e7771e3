#include "sync/scheduler.h"

#include <thread>

namespace hmmsim {

void NativeScheduler::block(const void*) { std::this_thread::yield(); }

}  // namespace hmmsim
