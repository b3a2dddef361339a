// docs/attention.md's program: the fused attention against the formula, a causal mask, grouped-query heads, the
// KV cache giving the full forward's outputs, and a tiny GPT that learns a repeating string and then generates it.
// It checks every claim and exits non-zero if one fails.
#include <cstdio>
#include <string>

#include "tapegrad.h"

using tg::Tensor;
namespace F = tg::nn::functional;
namespace nn = tg::nn;

static int failures = 0;
static void check(bool ok, const char* what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what);
  failures += !ok;
}
static double diff(const Tensor& a, const Tensor& b) { return tg::max(tg::abs(a - b)).item<double>(); }

int main() {
  tg::manual_seed(0);
  // 1. softmax(q k^T / sqrt(d)) v, written out, against the fused op: the same numbers.
  Tensor q = tg::randn({2, 4, 10, 8}), k = tg::randn({2, 4, 12, 8}), v = tg::randn({2, 4, 12, 8});
  Tensor by_hand = tg::softmax(tg::matmul(q, k.transpose(-2, -1)) / std::sqrt(8.0), -1).matmul(v);
  check(diff(F::scaled_dot_product_attention(q, k, v), by_hand) < 1e-5, "fused attention equals the formula");

  // 2. causal: query i sees keys j <= i; the first query's output is the first value.
  Tensor c = F::scaled_dot_product_attention(q, k, v, {}, 0.0, /*is_causal=*/true);
  check(diff(c.narrow(2, 0, 1), v.narrow(2, 0, 1)) < 1e-6, "a causal first row copies the first value");

  // 3. grouped-query attention: 4 query heads share 2 kv heads; the same as repeating each kv head twice.
  Tensor k2 = tg::randn({2, 2, 12, 8}), v2 = tg::randn({2, 2, 12, 8});
  auto repeat = [](const Tensor& t) { return t.unsqueeze(2).expand({2, 2, 2, 12, 8}).reshape({2, 4, 12, 8}); };
  check(diff(F::scaled_dot_product_attention(q, k2, v2), F::scaled_dot_product_attention(q, repeat(k2), repeat(v2))) <
            1e-6,
        "GQA equals repeated kv heads");

  // 4. the KV cache: one token at a time gives what the whole sequence gives.
  nn::MultiheadAttention mha({.embed_dim = 16, .num_heads = 4, .num_kv_heads = 2, .rope = true});
  Tensor x = tg::randn({1, 6, 16});
  tg::NoGradGuard ng;
  Tensor full = mha.self_attention(x, {}, true);
  nn::KVCache cache = mha.make_cache(1, 6);
  std::vector<Tensor> steps;
  for (int64_t t = 0; t < 6; ++t) steps.push_back(mha.self_attention(x.narrow(1, t, 1), {}, true, &cache));
  check(diff(tg::cat(steps, 1), full) < 1e-5, "decoding through the KV cache equals the full forward");

  // 5. a tiny GPT learns "abcabc..." and generates it greedily.
  tg::EnableGradGuard eg;
  nn::GPT gpt({.vocab_size = 3, .context = 16, .d_model = 32, .n_layer = 1, .n_head = 2});
  tg::optim::Adam opt(gpt.parameters(), {.lr = 1e-2});
  std::vector<int64_t> ids;
  for (int i = 0; i < 17; ++i) ids.push_back(i % 3);
  Tensor data = tg::tensor(ids, {1, 17});
  Tensor in = data.narrow(1, 0, 16), target = data.narrow(1, 1, 16);
  double loss = 0;
  for (int s = 0; s < 60; ++s) {
    Tensor l = F::cross_entropy(gpt.forward(in).reshape({16, 3}), target.reshape({-1}));
    opt.zero_grad();
    l.backward();
    opt.step();
    loss = l.item<double>();
  }
  check(loss < 0.05, "the GPT learns the repeating string");
  Tensor out = gpt.generate(tg::tensor(std::vector<int64_t>{0, 1}, {1, 2}), 7, {.greedy = true});
  std::string text;
  for (int64_t id : out.reshape({-1}).to_vector<int64_t>()) text += static_cast<char>('a' + id);
  std::printf("generated: %s\n", text.c_str());
  check(text == "abcabcabc", "and generates it through the KV cache");
  return failures;
}
