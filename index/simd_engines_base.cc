// The SIMD engines for any x86-64 CPU (SSE2 kernels); see simd_engines_impl.h.
#define TOWERPS_SIMD_NS simd_base
#include "index/simd_engines_impl.h"
