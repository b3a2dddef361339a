// The CUDA backend's reductions, cumsum and softmax: the host lays out the kept and reduced dims (as
// backends/cpu/reduce.cpp does) and launches the kernels of reduce.cu.
#include "backends/cuda/cuda_backend.h"

namespace tg::cuda {

namespace {

// Rows along `dim`: a loop over every other position (dim set to size 1), each operand at its row start.
template <int N> Indexer<N> rows_along(const Tensor& like, int64_t dim, const std::array<const Tensor*, N>& ts) {
  Shape outer = like.sizes();
  outer[dim] = 1;
  return make_indexer<N>(outer, ts);
}

int64_t byte_stride(const Tensor& t, int64_t dim) { return t.stride(dim) * static_cast<int64_t>(element_size(t.dtype())); }

}  // namespace

void CudaBackend::reduce(ReduceOp op, const Tensor& x, const Shape& dims, const Tensor& out) {
  ReduceGeometry g;
  g.outer = make_indexer<2>(out.sizes(), {&out, &x});
  const int64_t es = static_cast<int64_t>(element_size(x.dtype()));
  for (int64_t d : dims) {  // coalesced, outermost first
    const int64_t n = x.size(d), st = x.stride(d) * es;
    g.rcount *= n;
    if (n == 1) continue;
    if (g.rdims > 0 && g.rstrides[g.rdims - 1] == st * n) {
      g.rsizes[g.rdims - 1] *= n;
      g.rstrides[g.rdims - 1] = st;
      continue;
    }
    TG_CHECK(g.rdims < kMaxDims, "cuda reduce: too many reduced dims");
    g.rsizes[g.rdims] = n;
    g.rstrides[g.rdims] = st;
    ++g.rdims;
  }
  dispatch(x.dtype(), [&]<class T>() {
    if constexpr (std::is_same_v<T, bool>) TG_ERROR("cuda reduce: bool input (convert to int64 first)");
    else launch_reduce<T>(op, g, device_ptr(out), device_ptr(x), stream());
  });
  TG_CUDA_CHECK_LAUNCH("reduce");
}

void CudaBackend::cumsum(const Tensor& x, int64_t dim, bool reverse, const Tensor& out) {
  Indexer<2> rows = rows_along<2>(x, dim, {&out, &x});
  dispatch(x.dtype(), [&]<class T>() {
    if constexpr (std::is_same_v<T, bool>) TG_ERROR("cuda cumsum: bool input");
    else
      launch_cumsum<T>(rows, x.size(dim), byte_stride(out, dim), byte_stride(x, dim), reverse, device_ptr(out),
                       device_ptr(x), stream());
  });
  TG_CUDA_CHECK_LAUNCH("cumsum");
}

void CudaBackend::softmax(const Tensor& x, int64_t dim, bool log, const Tensor& out) {
  Indexer<2> rows = rows_along<2>(x, dim, {&out, &x});
  dispatch_floating(x.dtype(), "softmax", [&]<class T>() {
    launch_softmax<T>(rows, x.size(dim), byte_stride(out, dim), byte_stride(x, dim), log, device_ptr(out),
                      device_ptr(x), stream());
  });
  TG_CUDA_CHECK_LAUNCH("softmax");
}

void CudaBackend::softmax_backward(const Tensor& y, const Tensor& grad_y, int64_t dim, bool log, const Tensor& grad_x) {
  Indexer<3> rows = rows_along<3>(y, dim, {&grad_x, &y, &grad_y});
  dispatch_floating(y.dtype(), "softmax_backward", [&]<class T>() {
    launch_softmax_backward<T>(rows, y.size(dim), byte_stride(grad_x, dim), byte_stride(y, dim),
                               byte_stride(grad_y, dim), log, device_ptr(grad_x), device_ptr(y), device_ptr(grad_y),
                               stream());
  });
  TG_CUDA_CHECK_LAUNCH("softmax_backward");
}

}  // namespace tg::cuda
