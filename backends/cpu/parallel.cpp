// Thread control: every parallel loop, GEMMs included, runs on OpenMP threads (OMP_NUM_THREADS sets the default).
#include <omp.h>

#include "core/ops.h"

#ifdef TG_USE_CBLAS
extern "C" void openblas_set_num_threads(int);
#endif

namespace tg {

#ifdef TG_USE_CBLAS
namespace {
// GEMMs are split over OpenMP threads by backends/cpu/matmul.cpp; OpenBLAS's own pool must stay idle, or its
// spinning threads and OpenMP's compete for the cores.
const bool blas_single_threaded = [] {
  openblas_set_num_threads(1);
  return true;
}();
}  // namespace
#endif

void set_num_threads(int n) {
  TG_CHECK(n >= 1, "set_num_threads: expected a positive thread count, got {}", n);
  omp_set_num_threads(n);
}

int get_num_threads() { return omp_get_max_threads(); }

}  // namespace tg
