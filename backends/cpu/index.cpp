// Index kernels: index_select, gather, index_add, scatter_add, tril/triu. core/ has already checked that every
// index is in range. The gathers read through a view of x whose stride along dim is 0, so the shared loop
// (loops.h) lands on the right slab and the kernel only adds index * stride.
#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/loops.h"

namespace tg::cpu {

namespace {

// strides of t with dim's stride replaced by 0.
Shape without_dim(const Tensor& t, int64_t dim) {
  Shape s = t.strides();
  s[dim] = 0;
  return s;
}

// strides of a 1-d index spread along dim of an ndim loop.
Shape index_along(const Tensor& index, int64_t dim, size_t ndim) {
  Shape s(ndim, 0);
  s[dim] = index.stride(0);
  return s;
}

constexpr int64_t kSerial = std::numeric_limits<int64_t>::max();  // scatters write shared slots: no threads

// out[p] = x[p with p[dim] = index[p]] over out's shape, index given by its strides over that shape.
void gather_loop(const Tensor& x, int64_t dim, const Tensor& index, const Shape& index_strides, const Tensor& out) {
  Shape xs = without_dim(x, dim);
  const int64_t step = x.stride(dim);
  dispatch(x.dtype(), [&]<class T>() {
    for_each(out.sizes(), std::array<Operand, 3>{operand(out), operand(x, xs), operand(index, index_strides)},
             [&](const std::array<char*, 3>& p, int64_t n, const std::array<int64_t, 3>& st) {
               for (int64_t i = 0; i < n; ++i) {
                 int64_t j = *reinterpret_cast<const int64_t*>(p[2] + i * st[2]);
                 *reinterpret_cast<T*>(p[0] + i * st[0]) = reinterpret_cast<const T*>(p[1] + i * st[1])[j * step];
               }
             });
  });
}

// out[p with p[dim] = index[p]] += src[p] over src's shape.
void scatter_loop(const Tensor& out, int64_t dim, const Tensor& index, const Shape& index_strides, const Tensor& src) {
  Shape os = without_dim(out, dim);
  const int64_t step = out.stride(dim);
  dispatch(out.dtype(), [&]<class T>() {
    if constexpr (std::is_same_v<T, bool>) TG_ERROR("scatter_add: bool tensors are not supported");
    else
      for_each(src.sizes(), std::array<Operand, 3>{operand(out, os), operand(index, index_strides), operand(src)},
               [&](const std::array<char*, 3>& p, int64_t n, const std::array<int64_t, 3>& st) {
                 for (int64_t i = 0; i < n; ++i) {
                   int64_t j = *reinterpret_cast<const int64_t*>(p[1] + i * st[1]);
                   reinterpret_cast<T*>(p[0] + i * st[0])[j * step] += *reinterpret_cast<const T*>(p[2] + i * st[2]);
                 }
               },
               kSerial);
  });
}

}  // namespace

void CpuBackend::index_select(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
  gather_loop(x, dim, index, index_along(index, dim, out.sizes().size()), out);
}

void CpuBackend::gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
  gather_loop(x, dim, index, index.strides(), out);
}

void CpuBackend::index_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  scatter_loop(out, dim, index, index_along(index, dim, src.sizes().size()), src);
}

void CpuBackend::scatter_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {

  Tensor s = src;
  for (int64_t d = 0; d < src.dim(); ++d) s = s.narrow(d, 0, index.size(d));
  scatter_loop(out, dim, index, index.strides(), s);
}

void CpuBackend::triangle(const Tensor& x, int64_t k, bool upper, const Tensor& out) {
  const int64_t R = x.size(-2), C = x.size(-1), batch = x.numel() / std::max<int64_t>(1, R * C);
  dispatch(x.dtype(), [&]<class T>() {
    const T* src = static_cast<const T*>(x.data_ptr());  // contiguous, checked by the caller
    T* dst = static_cast<T*>(out.data_ptr());
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t r = 0; r < R; ++r)
        for (int64_t c = 0; c < C; ++c) {
          int64_t i = (b * R + r) * C + c;
          bool keep = upper ? c - r >= k : c - r <= k;
          dst[i] = keep ? src[i] : T(0);
        }
  });
}

}  // namespace tg::cpu
