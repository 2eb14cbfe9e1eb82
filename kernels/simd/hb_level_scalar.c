/* The scalar level of the kernels (flags: setup.py, _LEVEL_FLAGS["scalar"]). */
#define HB_TARGET HB_LEVEL_SCALAR
#define HB_OPS_NAME hb_ops_scalar
#include "hb_kernels.h"
