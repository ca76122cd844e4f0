// Native buffers for tensors, GEMM panels and the bandwidth probe. Freed with std::free.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace bs {

/**
 * Zeroed memory, 64-byte aligned. Large buffers (weights, KV caches, GEMM panels) are 2 MiB aligned and
 * asked to be backed by transparent huge pages: the kernels stream them, and with 4 KiB pages every few
 * KiB of a scattered KV-cache walk would also be a TLB miss (THP is often "madvise" only, as here).
 */
inline void* alignedZeroed(int64_t bytes) {
  constexpr size_t kHuge = size_t{2} << 20;
  const bool huge = static_cast<size_t>(bytes) >= 2 * kHuge;
  const size_t align = huge ? kHuge : 64;
  const size_t rounded = std::max<size_t>(align, (static_cast<size_t>(bytes) + align - 1) / align * align);
  void* p = std::aligned_alloc(align, rounded);
  if (!p) return nullptr;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (huge) madvise(p, rounded, MADV_HUGEPAGE);  // advisory: failure just means small pages
#endif
  std::memset(p, 0, rounded);
  return p;
}

}  // namespace bs
