// AVS_HD marks small functions shared by host and device code (index math, conversions).
#pragma once

#if defined(__CUDACC__)
#define AVS_HD __host__ __device__ __forceinline__
#else
#define AVS_HD inline
#endif
