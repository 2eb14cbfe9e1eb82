/* The avx2 level of the kernels (flags: setup.py, _LEVEL_FLAGS["avx2"]). */
#define HB_TARGET HB_LEVEL_AVX2
#define HB_OPS_NAME hb_ops_avx2
#include "hb_kernels.h"
