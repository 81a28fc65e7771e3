// Clang thread-safety annotations (no-ops on other compilers).
//
// Fields carry GUARDED_BY(lock), functions REQUIRES/EXCLUDES, and the model's
// lock types are CAPABILITY types. The clang build of the test command turns
// on -Wthread-safety so that a missing lock is a compile error.
#pragma once

#if defined(__clang__)
#define HMM_TSA(x) __attribute__((x))
#else
#define HMM_TSA(x)
#endif

#define CAPABILITY(x) HMM_TSA(capability(x))
#define SCOPED_CAPABILITY HMM_TSA(scoped_lockable)
#define GUARDED_BY(x) HMM_TSA(guarded_by(x))
#define PT_GUARDED_BY(x) HMM_TSA(pt_guarded_by(x))
#define ACQUIRED_BEFORE(...) HMM_TSA(acquired_before(__VA_ARGS__))
#define ACQUIRED_AFTER(...) HMM_TSA(acquired_after(__VA_ARGS__))
#define REQUIRES(...) HMM_TSA(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) HMM_TSA(requires_shared_capability(__VA_ARGS__))
#define ACQUIRE(...) HMM_TSA(acquire_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) HMM_TSA(acquire_shared_capability(__VA_ARGS__))
#define RELEASE(...) HMM_TSA(release_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) HMM_TSA(release_shared_capability(__VA_ARGS__))
#define RELEASE_GENERIC(...) HMM_TSA(release_generic_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) HMM_TSA(try_acquire_capability(__VA_ARGS__))
#define TRY_ACQUIRE_SHARED(...) HMM_TSA(try_acquire_shared_capability(__VA_ARGS__))
#define EXCLUDES(...) HMM_TSA(locks_excluded(__VA_ARGS__))
#define ASSERT_CAPABILITY(x) HMM_TSA(assert_capability(x))
#define RETURN_CAPABILITY(x) HMM_TSA(lock_returned(x))
#define NO_THREAD_SAFETY_ANALYSIS HMM_TSA(no_thread_safety_analysis)
