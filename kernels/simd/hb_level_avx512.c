/* The avx512 level of the kernels (flags: setup.py, _LEVEL_FLAGS["avx512"]). */
#define HB_TARGET HB_LEVEL_AVX512
#define HB_OPS_NAME hb_ops_avx512
#include "hb_kernels.h"
