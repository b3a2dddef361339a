// The CUDA backend's memory, copies (within the device, and across to and from the host through a pinned staging
// buffer) and elementwise and index methods, plus the backend instance.
#include "backends/cuda/cuda_backend.h"

#include <cstring>

#include "backends/cuda/allocator.h"
#include "core/ops.h"

namespace tg {

Backend& cpu_backend();  // backends/cpu/cpu_backend.cpp

namespace cuda {

namespace {

Tensor device_empty(const Shape& sizes, DType dtype) { return empty(sizes, TensorOptions(dtype).device(Device::cuda())); }
Tensor host_empty(const Shape& sizes, DType dtype) { return empty(sizes, TensorOptions(dtype)); }

bool dense_same(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.sizes() == b.sizes() && a.is_contiguous() && b.is_contiguous();
}

// dst = src on the device, converting dtype; src is already broadcast to dst's shape.
void device_convert(const Tensor& src, const Tensor& dst) {
  Indexer<2> ix = make_indexer<2>(dst.sizes(), {&dst, &src});
  dispatch(dst.dtype(), [&]<class TO>() {
    dispatch(src.dtype(), [&]<class TI>() { launch_convert<TO, TI>(ix, device_ptr(dst), device_ptr(src), stream()); });
  });
  TG_CUDA_CHECK_LAUNCH("copy");
}

}  // namespace

void* CudaBackend::allocate(size_t nbytes) {
  require_device("cuda allocate");
  return allocator().allocate(nbytes);
}
void CudaBackend::deallocate(void* p) { allocator().deallocate(p); }

// Host to device: the CPU backend lays src out densely in dst's dtype, the bytes go through pinned memory, and a
// device copy places them if dst is a strided view. Device to host: the mirror image.
void CudaBackend::copy(const Tensor& src, const Tensor& dst) {
  if (dst.numel() == 0) return;
  const size_t nbytes = static_cast<size_t>(dst.numel()) * element_size(dst.dtype());
  if (src.device().is_cuda() && dst.device().is_cuda()) {
    if (dense_same(src, dst))
      TG_CUDA_CHECK(cudaMemcpyAsync(device_ptr(dst), device_ptr(src), nbytes, cudaMemcpyDeviceToDevice, stream()), "copy");
    else device_convert(src, dst);
    return;
  }
  if (dst.device().is_cuda()) {  // host -> device
    Tensor host = host_empty(dst.sizes(), dst.dtype());
    cpu_backend().copy(src, host);
    Tensor dense = dst.is_contiguous() ? dst : device_empty(dst.sizes(), dst.dtype());
    void* staging = pinned_staging(nbytes);
    std::memcpy(staging, host.data_ptr(), nbytes);
    TG_CUDA_CHECK(cudaMemcpyAsync(device_ptr(dense), staging, nbytes, cudaMemcpyHostToDevice, stream()), "to(cuda)");
    TG_CUDA_CHECK(cudaStreamSynchronize(stream()), "to(cuda)");  // the staging buffer is reused by the next transfer
    if (!dst.is_contiguous()) device_convert(dense, dst);
    return;
  }
  // device -> host
  Tensor dense = src.is_contiguous() && src.sizes() == dst.sizes() ? src : device_empty(dst.sizes(), src.dtype());
  if (!dense.is_same(src)) device_convert(src, dense);
  const size_t src_bytes = static_cast<size_t>(dense.numel()) * element_size(dense.dtype());
  void* staging = pinned_staging(src_bytes);
  TG_CUDA_CHECK(cudaMemcpyAsync(staging, device_ptr(dense), src_bytes, cudaMemcpyDeviceToHost, stream()), "to(cpu)");
  TG_CUDA_CHECK(cudaStreamSynchronize(stream()), "to(cpu)");
  Tensor host = host_empty(dst.sizes(), dense.dtype());
  std::memcpy(host.data_ptr(), staging, src_bytes);
  cpu_backend().copy(host, dst);
}

void CudaBackend::fill(const Tensor& dst, double value) {
  Indexer<1> ix = make_indexer<1>(dst.sizes(), {&dst});
  dispatch(dst.dtype(), [&]<class T>() { launch_fill<T>(ix, device_ptr(dst), scalar_cast<T>(value), stream()); });
  TG_CUDA_CHECK_LAUNCH("fill");
}

void CudaBackend::unary(UnaryOp op, const Tensor& x, const Tensor& out, double p0, double p1) {
  Indexer<2> ix = make_indexer<2>(out.sizes(), {&out, &x});
  if (op == UnaryOp::LogicalNot) {
    dispatch(x.dtype(), [&]<class T>() { launch_logical_not<T>(ix, device_ptr(out), device_ptr(x), stream()); });
  } else {
    const bool integer_ok = op == UnaryOp::Neg || op == UnaryOp::Abs || op == UnaryOp::Sign || op == UnaryOp::Clamp ||
                            op == UnaryOp::ClampMask;
    dispatch(x.dtype(), [&]<class T>() {
      if constexpr (std::is_same_v<T, bool>) TG_ERROR("cuda unary: bool tensors are not supported");
      else {
        TG_CHECK(std::is_floating_point_v<T> || integer_ok, "cuda unary: op {} not supported for dtype {}",
                 static_cast<int>(op), dtype_name(x.dtype()));
        launch_unary<T>(op, ix, device_ptr(out), device_ptr(x), p0, p1, stream());
      }
    });
  }
  TG_CUDA_CHECK_LAUNCH("unary");
}

void CudaBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  Indexer<3> ix = make_indexer<3>(out.sizes(), {&out, &a, &b});
  dispatch(a.dtype(), [&]<class T>() {
    launch_binary<T>(op, ix, device_ptr(out), device_ptr(a), device_ptr(b), T{}, stream());
  });
  TG_CUDA_CHECK_LAUNCH("binary");
}

void CudaBackend::binary_scalar(BinaryOp op, const Tensor& a, double b, const Tensor& out) {
  const Shape zero(out.sizes().size(), 0);
  Indexer<3> ix = make_indexer<3>(out.sizes(), {&out, &a, &a}, {&out.strides(), &a.strides(), &zero});
  dispatch(a.dtype(), [&]<class T>() {
    launch_binary<T>(op, ix, device_ptr(out), device_ptr(a), nullptr, scalar_cast<T>(b), stream());
  });
  TG_CUDA_CHECK_LAUNCH("binary_scalar");
}

void CudaBackend::where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
  Indexer<4> ix = make_indexer<4>(out.sizes(), {&out, &cond, &a, &b});
  dispatch(out.dtype(), [&]<class T>() {
    launch_where<T>(ix, device_ptr(out), device_ptr(cond), device_ptr(a), device_ptr(b), stream());
  });
  TG_CUDA_CHECK_LAUNCH("where");
}

// ---- index kernels, laid out as backends/cpu/index.cpp's: the gathered tensor is walked with dim's stride 0
// and the kernel adds index * stride.

namespace {

Shape without_dim(const Tensor& t, int64_t dim) {
  Shape s = t.strides();
  s[dim] = 0;
  return s;
}
Shape index_along(const Tensor& index, int64_t dim, size_t ndim) {
  Shape s(ndim, 0);
  s[dim] = index.stride(0);
  return s;
}

void gather_loop(const Tensor& x, int64_t dim, const Tensor& index, const Shape& index_strides, const Tensor& out) {
  const Shape xs = without_dim(x, dim);
  Indexer<3> ix = make_indexer<3>(out.sizes(), {&out, &x, &index}, {&out.strides(), &xs, &index_strides});
  dispatch(x.dtype(), [&]<class T>() {
    launch_gather<T>(ix, x.stride(dim), device_ptr(out), device_ptr(x), device_ptr(index), stream());
  });
  TG_CUDA_CHECK_LAUNCH("gather");
}

void scatter_loop(const Tensor& out, int64_t dim, const Tensor& index, const Shape& index_strides, const Tensor& src) {
  const Shape os = without_dim(out, dim);
  Indexer<3> ix = make_indexer<3>(src.sizes(), {&out, &index, &src}, {&os, &index_strides, &src.strides()});
  dispatch(out.dtype(), [&]<class T>() {
    if constexpr (std::is_same_v<T, bool>) TG_ERROR("scatter_add: bool tensors are not supported");
    else launch_scatter_add<T>(ix, out.stride(dim), device_ptr(out), device_ptr(index), device_ptr(src), stream());
  });
  TG_CUDA_CHECK_LAUNCH("scatter_add");
}

}  // namespace

void CudaBackend::index_select(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
  gather_loop(x, dim, index, index_along(index, dim, out.sizes().size()), out);
}
void CudaBackend::gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out) {
  gather_loop(x, dim, index, index.strides(), out);
}
void CudaBackend::index_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  scatter_loop(out, dim, index, index_along(index, dim, src.sizes().size()), src);
}
void CudaBackend::scatter_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src) {
  Tensor s = src;
  for (int64_t d = 0; d < src.dim(); ++d) s = s.narrow(d, 0, index.size(d));
  scatter_loop(out, dim, index, index.strides(), s);
}

void CudaBackend::triangle(const Tensor& x, int64_t k, bool upper, const Tensor& out) {
  const int64_t R = x.size(-2), C = x.size(-1), batch = x.numel() / std::max<int64_t>(1, R * C);
  dispatch(x.dtype(), [&]<class T>() {
    launch_triangle<T>(batch, R, C, k, upper, device_data<T>(out), device_data<T>(x), stream());
  });
  TG_CUDA_CHECK_LAUNCH("triangle");
}

}  // namespace cuda

Backend& cuda_backend() {
  static cuda::CudaBackend b;
  return b;
}

}  // namespace tg
