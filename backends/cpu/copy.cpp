// Strided copy with dtype conversion, and fill: the kernels behind contiguous(), to(dtype), clone(), cat, fill_.
#include <cstring>

#include "backends/cpu/cpu_backend.h"
#include "backends/cpu/loops.h"

namespace tg::cpu {

void CpuBackend::copy(const Tensor& src, const Tensor& dst) {
  if (dst.numel() == 0) return;  // size-0 storage may be a null pointer, which memcpy must not see
  if (src.dtype() == dst.dtype() && src.is_contiguous() && dst.is_contiguous() && src.sizes() == dst.sizes()) {
    std::memcpy(dst.data_ptr(), src.data_ptr(), static_cast<size_t>(src.numel()) * element_size(src.dtype()));
    return;
  }
  dispatch(dst.dtype(), [&]<class TO>() {
    dispatch(src.dtype(), [&]<class TI>() {
      map1<TO, TI>(src, src.strides(), dst, [](TI v) {
        if constexpr (std::is_floating_point_v<TI> && !std::is_floating_point_v<TO>) return scalar_cast<TO>(v);
        else return static_cast<TO>(v);
      });
    });
  });
}

void CpuBackend::fill(const Tensor& dst, double value) {
  dispatch(dst.dtype(), [&]<class T>() {
    const T v = scalar_cast<T>(value);
    for_each(dst.sizes(), std::array<Operand, 1>{operand(dst)},
             [&](const std::array<char*, 1>& p, int64_t n, const std::array<int64_t, 1>& st) {
               if (st[0] == sizeof(T)) {
                 T* o = reinterpret_cast<T*>(p[0]);
                 for (int64_t i = 0; i < n; ++i) o[i] = v;
               } else {
                 for (int64_t i = 0; i < n; ++i) *reinterpret_cast<T*>(p[0] + i * st[0]) = v;
               }
             });
  });
}

}  // namespace tg::cpu
