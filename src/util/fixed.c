/* fixed.c — placeholder until the quantization work lands (see fixed.h). */
#include "nnlo/fixed.h"
