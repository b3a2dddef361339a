// Thread control for OpenMP loops and the BLAS GEMM.
#include <omp.h>

#include "core/ops.h"

#ifdef TG_USE_CBLAS
extern "C" void openblas_set_num_threads(int);
#endif

namespace tg {

void set_num_threads(int n) {
  TG_CHECK(n >= 1, "set_num_threads: expected a positive thread count, got {}", n);
  omp_set_num_threads(n);
#ifdef TG_USE_CBLAS
  openblas_set_num_threads(n);
#endif
}

int get_num_threads() { return omp_get_max_threads(); }

}  // namespace tg
