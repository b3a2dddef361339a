// A register-tiled GEMM without packing, for products whose B operand is row-major: C[M, N] (+)= op(A) B, op(A)
// being A [M, K] or, transposed, A^T for A [K, M]. Written for the fused recurrent layers (backends/cpu/rnn.cpp),
// where every product has that form (the per-step h W_hh^T and dG W_hh, the projection x W_ih^T, dx = dG W_ih,
// the weight gradients dG^T x and dG^T h) once W_ih and W_hh are transposed once per sequence.
//
// Why not the library GEMM: a BLAS or Eigen GEMM repacks both operands on every call, which for the per-step
// products means copying all of W_hh at every step; and Debian's OpenBLAS runs its AVX2 (Haswell) kernels on this
// machine's AVX-512 CPU. A tile of 8 rows of C by 3 vectors (24 accumulators, 48 floats wide with AVX-512) runs
// down K, broadcasting A and streaming rows of B, and measured in CPU time: 240 GFLOP/s against Eigen's 130 on
// the step shapes (32 x 240 x 1024) and the projection (2048 x 1008 x 256), 165 against 120 on the transposed
// weight gradients. Without AVX-512 there are 16 vector registers, not 32: the tile is 4 rows by 3 vectors of the
// native width, and an AVX2 build measured 80-94 GFLOP/s against OpenBLAS's 105-135, so kPreferred says whether
// to use this kernel over the library's. Single-threaded; callers split C among threads.
#pragma once
#include <algorithm>
#include <cstdint>

namespace tg::cpu::tiled {

#if defined(__AVX512F__)
inline constexpr int kVectorBytes = 64, kTileRows = 8;
inline constexpr bool kPreferred = true;
#elif defined(__AVX__)
inline constexpr int kVectorBytes = 32, kTileRows = 4;
inline constexpr bool kPreferred = false;
#else
inline constexpr int kVectorBytes = 16, kTileRows = 4;
inline constexpr bool kPreferred = false;
#endif

template <class T> struct Simd {
  typedef T v __attribute__((vector_size(kVectorBytes)));
  typedef T vu __attribute__((vector_size(kVectorBytes), aligned(alignof(T))));  // unaligned loads and stores
  static constexpr int64_t n = kVectorBytes / sizeof(T);
};

// C[MR, NV vectors] (+)= op(A)[MR, K] B[K, NV vectors].
template <bool TA, class T, int MR, int NV>
void tile(int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb, T* C, int64_t ldc, bool accumulate) {
  using v = typename Simd<T>::v;
  using vu = typename Simd<T>::vu;
  constexpr int64_t n = Simd<T>::n;
  v c[MR][NV];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NV; ++j) c[i][j] = accumulate ? v(*reinterpret_cast<const vu*>(C + i * ldc + j * n)) : v{};
  for (int64_t k = 0; k < K; ++k) {
    v b[NV];
    for (int j = 0; j < NV; ++j) b[j] = *reinterpret_cast<const vu*>(B + k * ldb + j * n);
    for (int i = 0; i < MR; ++i) {
      const T a = TA ? A[k * lda + i] : A[i * lda + k];
      for (int j = 0; j < NV; ++j) c[i][j] += a * b[j];
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NV; ++j) *reinterpret_cast<vu*>(C + i * ldc + j * n) = c[i][j];
}

// Rows of C in tiles of kTileRows, the remainder with a smaller tile.
template <bool TA, class T, int NV>
void tile_rows(int64_t M, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb, T* C, int64_t ldc, bool acc) {
  auto at = [&](int64_t i) { return TA ? A + i : A + i * lda; };
  int64_t i = 0;
  for (; i + kTileRows <= M; i += kTileRows) tile<TA, T, kTileRows, NV>(K, at(i), lda, B, ldb, C + i * ldc, ldc, acc);
  const T* a = at(i);
  T* c = C + i * ldc;
  switch (M - i) {
    case 7: return tile<TA, T, 7, NV>(K, a, lda, B, ldb, c, ldc, acc);
    case 6: return tile<TA, T, 6, NV>(K, a, lda, B, ldb, c, ldc, acc);
    case 5: return tile<TA, T, 5, NV>(K, a, lda, B, ldb, c, ldc, acc);
    case 4: return tile<TA, T, 4, NV>(K, a, lda, B, ldb, c, ldc, acc);
    case 3: return tile<TA, T, 3, NV>(K, a, lda, B, ldb, c, ldc, acc);
    case 2: return tile<TA, T, 2, NV>(K, a, lda, B, ldb, c, ldc, acc);
    case 1: return tile<TA, T, 1, NV>(K, a, lda, B, ldb, c, ldc, acc);
    default: return;
  }
}

// Columns of C left over from whole vectors (N not a multiple of the vector width), in plain loops.
template <bool TA, class T>
void tail_columns(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb, T* C,
                  int64_t ldc, bool accumulate) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      T acc = accumulate ? C[i * ldc + j] : T(0);
      for (int64_t k = 0; k < K; ++k) acc += (TA ? A[k * lda + i] : A[i * lda + k]) * B[k * ldb + j];
      C[i * ldc + j] = acc;
    }
}

// C[M, N] (+)= op(A) B, all row-major with leading dimensions lda, ldb, ldc. Column panels of 3 vectors, then 2
// and 1 (a lone 1-vector panel after 3-vector ones becomes two 2-vector panels). With TA the rows of A a tile
// reads are far apart, so K runs in blocks of 256 that keep a tile's slices of A and B in cache.
template <bool TA, class T>
void gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb, T* C, int64_t ldc,
          bool accumulate) {
  if (M == 0 || N == 0) return;
  constexpr int64_t n = Simd<T>::n;
  const int64_t kb = TA ? 256 : std::max<int64_t>(K, 1);
  for (int64_t k0 = 0; k0 < std::max<int64_t>(K, 1); k0 += kb) {
    const int64_t kk = std::min(kb, K - k0);  // 0 when K == 0: C = 0, or left as is when accumulating
    const T* a = TA ? A + k0 * lda : A + k0;
    const T* b = B + k0 * ldb;
    const bool acc = accumulate || k0 > 0;
    int64_t p3 = N / (3 * n);
    if (p3 > 0 && N - p3 * 3 * n >= n && N - p3 * 3 * n < 2 * n) --p3;
    int64_t j = 0;
    for (; j < p3 * 3 * n; j += 3 * n) tile_rows<TA, T, 3>(M, kk, a, lda, b + j, ldb, C + j, ldc, acc);
    for (; j + 2 * n <= N; j += 2 * n) tile_rows<TA, T, 2>(M, kk, a, lda, b + j, ldb, C + j, ldc, acc);
    for (; j + n <= N; j += n) tile_rows<TA, T, 1>(M, kk, a, lda, b + j, ldb, C + j, ldc, acc);
    if (j < N) tail_columns<TA, T>(M, N - j, kk, a, lda, b + j, ldb, C + j, ldc, acc);
  }
}

}  // namespace tg::cpu::tiled
