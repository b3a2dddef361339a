// MultiheadAttention (float64 gradcheck with grouped-query heads and RoPE), RoPE's laws, KV-cache decoding against
// the full forward pass for every position encoding, GPT weight tying and the feed-forward hook, the encoder
// block's padding mask, and the samplers.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tapegrad.h"

using tg::Tensor;
namespace nn = tg::nn;

namespace {

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  return tg::max(tg::abs(a.to(tg::kFloat64) - b.to(tg::kFloat64))).item<double>();
}

}  // namespace

TEST_CASE("transformer: MultiheadAttention self-attention passes gradcheck (GQA, RoPE, causal)") {
  tg::manual_seed(11);
  for (int64_t kv : {int64_t{4}, int64_t{2}, int64_t{1}}) {
    INFO("kv heads ", kv);
    nn::MultiheadAttention m({.embed_dim = 8, .num_heads = 4, .num_kv_heads = kv, .rope = kv != 4});
    m.to(tg::kFloat64);
    Tensor x = tg::randn({2, 3, 8}, tg::kFloat64).requires_grad_();
    std::vector<Tensor> inputs{x, m.in_proj_weight, m.in_proj_bias, m.out_proj->weight};
    for (auto& t : inputs) t.requires_grad_();
    std::string report;
    CHECK_MESSAGE(tg::gradcheck([&](const std::vector<Tensor>&) { return m.self_attention(x, {}, true); }, inputs, {},
                                &report),
                  report);
  }
}

TEST_CASE("transformer: RoPE is a rotation whose dot products depend on relative position only") {
  tg::manual_seed(12);
  Tensor q = tg::randn({1, 2, 5, 6}, tg::kFloat64), k = tg::randn({1, 2, 5, 6}, tg::kFloat64);
  Tensor rq = nn::apply_rotary(q, 0), rk = nn::apply_rotary(k, 0);
  CHECK(max_abs_diff((rq * rq).sum(-1), (q * q).sum(-1)) < 1e-12);
  // shifting both by 7 positions leaves every q_i . k_j unchanged
  Tensor s0 = tg::matmul(rq, rk.transpose(-2, -1));
  Tensor s7 = tg::matmul(nn::apply_rotary(q, 7), nn::apply_rotary(k, 7).transpose(-2, -1));
  CHECK(max_abs_diff(s0, s7) < 1e-12);
  CHECK(max_abs_diff(rq.narrow(2, 0, 1), q.narrow(2, 0, 1)) < 1e-15);  // position 0 is not rotated
  Tensor x = tg::randn({2, 3, 4}, tg::kFloat64).requires_grad_();
  CHECK(tg::gradcheck([](const std::vector<Tensor>& v) { return nn::apply_rotary(v[0], 2); }, {x}));
  CHECK_THROWS_AS(nn::apply_rotary(tg::randn({2, 3})), tg::Error);
}

TEST_CASE("transformer: decoding through the KV cache equals the full forward pass") {
  for (std::string pos : {"learned", "sinusoidal", "rope"}) {
    INFO("pos ", pos);
    tg::manual_seed(13);
    nn::GPT gpt({.vocab_size = 11, .context = 12, .d_model = 16, .n_layer = 2, .n_head = 4,
                 .n_kv_head = pos == "rope" ? 2 : 0, .norm = pos == "rope" ? "rms" : "layer",
                 .mlp = pos == "rope" ? "swiglu" : "gelu", .pos = pos});
    gpt.eval();
    Tensor idx = tg::randint(0, 11, {2, 9});
    tg::NoGradGuard ng;
    Tensor full = gpt.forward(idx);
    // a prefill of 4 positions, a chunk of 2, then one token at a time
    auto caches = gpt.make_caches(2);
    std::vector<Tensor> parts{gpt.forward(idx.narrow(1, 0, 4), &caches), gpt.forward(idx.narrow(1, 4, 2), &caches)};
    for (int64_t t = 6; t < 9; ++t) parts.push_back(gpt.forward(idx.narrow(1, t, 1), &caches));
    CHECK(caches[0].len == 9);
    CHECK(max_abs_diff(tg::cat(parts, 1), full) < 1e-5);
    CHECK_THROWS_AS(gpt.forward(idx.narrow(1, 0, 4), &caches), tg::Error);  // 9 + 4 > context 12
  }
}

TEST_CASE("transformer: GPT ties weights, takes the ffn hook, and trains") {
  tg::manual_seed(14);
  int calls = 0;
  nn::GPTConfig cfg{.vocab_size = 7, .context = 8, .d_model = 8, .n_layer = 2, .n_head = 2, .tie_weights = true};
  cfg.ffn_factory = [&](int layer) -> std::shared_ptr<nn::UnaryModule> {
    ++calls;
    return std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(8, 8), std::make_shared<nn::ReLU>());
  };
  nn::GPT gpt(cfg);
  CHECK(calls == 2);
  CHECK(gpt.lm_head->weight.is_same(gpt.wte->weight));
  auto names = gpt.named_parameters();
  bool has_hook = false, has_head = false;
  for (auto& [n, p] : names) {
    has_hook |= n == "blocks.1.mlp.0.weight";
    has_head |= n == "lm_head.weight";
  }
  CHECK(has_hook);
  CHECK_FALSE(has_head);  // listed once, as wte.weight
  tg::optim::Adam opt(gpt.parameters(), {.lr = 1e-2});
  Tensor x = tg::randint(0, 7, {3, 8}), y = tg::randint(0, 7, {3, 8});
  double first = 0, last = 0;
  for (int s = 0; s < 30; ++s) {
    Tensor loss = tg::nn::functional::cross_entropy(gpt.forward(x).reshape({24, 7}), y.reshape({-1}));
    opt.zero_grad();
    loss.backward();
    opt.step();
    (s == 0 ? first : last) = loss.item<double>();
  }
  CHECK(last < first * 0.7);
}

TEST_CASE("transformer: the encoder block ignores padded keys") {
  tg::manual_seed(15);
  nn::TransformerEncoderBlock blk({.d_model = 8, .n_head = 2});
  Tensor x = tg::randn({2, 5, 8});
  Tensor pad = tg::tensor(std::vector<bool>{false, false, false, true, true, false, false, false, false, true}, {2, 5});
  Tensor y = blk.forward(x, pad);
  Tensor x2 = x.clone();
  x2.narrow(1, 3, 2).fill_(100.0);  // changes only padded positions of row 0 (and position 4 of row 1)
  Tensor y2 = blk.forward(x2, pad);
  CHECK(max_abs_diff(y.select(0, 0).narrow(0, 0, 3), y2.select(0, 0).narrow(0, 0, 3)) < 1e-5);
  CHECK(max_abs_diff(y.select(0, 1).narrow(0, 0, 3), y2.select(0, 1).narrow(0, 0, 3)) > 1e-3);  // row 1 sees position 3
  // bidirectional: the first position sees later ones
  Tensor x3 = x.clone();
  x3.narrow(1, 2, 1).fill_(5.0);
  CHECK(max_abs_diff(blk.forward(x3, pad).select(1, 0), y.select(1, 0)) > 1e-4);
}

TEST_CASE("transformer: sampling is seeded, greedy is argmax, top-k and top-p keep the likely tokens") {
  Tensor logits = tg::tensor(std::vector<float>{0.f, 2.f, 1.f, -1.f, 3.f, 0.5f}, {2, 3});
  CHECK(nn::sample_next(logits, {.greedy = true}).to_vector<int64_t>() == std::vector<int64_t>{1, 1});
  tg::Generator g(1);
  CHECK(nn::sample_next(logits, {.top_k = 1}, g).to_vector<int64_t>() == std::vector<int64_t>{1, 1});
  CHECK(nn::sample_next(logits, {.top_p = 0.01}, g).to_vector<int64_t>() == std::vector<int64_t>{1, 1});
  // p = softmax([0, log 3]) = (0.25, 0.75)
  Tensor two = tg::tensor(std::vector<double>{0.0, std::log(3.0)}, {1, 2});
  int ones = 0;
  for (int i = 0; i < 4000; ++i) ones += nn::sample_next(two, {}, g).item<int64_t>() == 1;
  CHECK(ones / 4000.0 == doctest::Approx(0.75).epsilon(0.05));
  // top-k = 2 never picks the third token
  for (int i = 0; i < 200; ++i) CHECK(nn::sample_next(logits.select(0, 0), {.top_k = 2}, g).item<int64_t>() != 0);
  CHECK_THROWS_AS(nn::sample_next(logits, {.temperature = 0}), tg::Error);

  tg::manual_seed(16);
  nn::GPT gpt({.vocab_size = 9, .context = 6, .d_model = 8, .n_layer = 1, .n_head = 2});
  Tensor prompt = tg::tensor(std::vector<int64_t>{1, 2, 3}, {1, 3});
  tg::Generator a(5), b(5);
  Tensor s1 = gpt.generate(prompt, 10, {.temperature = 0.8, .top_k = 5}, a);
  Tensor s2 = gpt.generate(prompt, 10, {.temperature = 0.8, .top_k = 5}, b);
  CHECK(s1.sizes() == tg::Shape{1, 13});  // past the context of 6: the sliding window
  CHECK(tg::equal(s1, s2));
  CHECK(gpt.is_training());
  // greedy generation picks the full forward's argmax at each step (within the context)
  Tensor gsq = gpt.generate(prompt, 3, {.greedy = true});
  tg::NoGradGuard ng;
  gpt.eval();
  for (int64_t t = 3; t < 6; ++t) {
    Tensor lg = gpt.forward(gsq.narrow(1, 0, t));
    CHECK(tg::argmax(lg.select(1, t - 1), -1).item<int64_t>() == gsq.select(1, t).item<int64_t>());
  }
}
