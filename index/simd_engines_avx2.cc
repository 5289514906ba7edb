// The SIMD engines with AVX2+FMA kernels, called only when the CPU has both
// (ann_index.cc); see simd_engines_impl.h for how they are compiled.
#define TOWERPS_SIMD_NS simd_avx2
#define TOWERPS_SIMD_AVX2 1
#include "index/simd_engines_impl.h"
