// The synthetic task generators. Each builds its batch in plain vectors, row by row, and wraps them as tensors at
// the end; the row loops read as the task's definition in data/synthetic.h.
#include "data/synthetic.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/ops.h"
#include "data/sampling.h"
#include "optim/grad_noise.h"

namespace tg::data {

namespace {

void check_batch(const char* task, int64_t batch_size) {
  TG_CHECK(batch_size >= 1, "{}: batch_size must be >= 1, got {}", task, batch_size);
}

// A [rows, cols] int64 matrix built row by row, then handed over as a tensor.
struct Rows {
  int64_t cols;
  std::vector<int64_t> v;
  Rows(int64_t rows, int64_t c, int64_t fill) : cols(c), v(static_cast<size_t>(rows * c), fill) {}
  int64_t* row(int64_t r) { return v.data() + r * cols; }
  Tensor tensor(int64_t rows) const { return tg::tensor<int64_t>(v, {rows, cols}); }
};

Batch make_batch(Tensor input, Tensor target) {
  Batch b;
  b.input = std::move(input);
  b.target = std::move(target);
  return b;
}

// Pads variable-length rows with `pad` to the longest one.
Tensor pad_rows(const std::vector<std::vector<int64_t>>& rows, int64_t pad, Tensor* lengths) {
  size_t width = 0;
  std::vector<int64_t> lens;
  for (const auto& r : rows) width = std::max(width, r.size()), lens.push_back(static_cast<int64_t>(r.size()));
  Rows out(static_cast<int64_t>(rows.size()), static_cast<int64_t>(width), pad);
  for (size_t i = 0; i < rows.size(); ++i) std::copy(rows[i].begin(), rows[i].end(), out.row(static_cast<int64_t>(i)));
  *lengths = tensor<int64_t>(lens);
  return out.tensor(static_cast<int64_t>(rows.size()));
}

}  // namespace

// ---------------------------------------------------------------- copying

Batch copying(const CopyingOptions& o, int64_t B, Generator& gen) {
  check_batch("copying", B);
  TG_CHECK(o.vocab_size >= 3, "copying: vocab_size must be >= 3 (blank, marker and a data token), got {}",
           o.vocab_size);
  TG_CHECK(o.num_tokens >= 1 && o.num_tokens <= o.seq_len, "copying: need 1 <= num_tokens <= seq_len, got {} and {}",
           o.num_tokens, o.seq_len);
  const int64_t L = o.seq_len + o.num_tokens, n_data = o.vocab_size - 2;
  Rows x(B, L, 0), y(B, L, kIgnore);
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int64_t> pos(static_cast<size_t>(o.num_tokens));
    if (o.selective) {
      pos = sample_distinct(gen, o.seq_len, o.num_tokens);
      std::sort(pos.begin(), pos.end());
    } else {
      std::iota(pos.begin(), pos.end(), 0);
    }
    for (int64_t i = 0; i < o.num_tokens; ++i) {
      const int64_t tok = 2 + uniform_int(gen, n_data);
      x.row(b)[pos[static_cast<size_t>(i)]] = tok;
      x.row(b)[o.seq_len + i] = 1;
      y.row(b)[o.seq_len + i] = tok;
    }
  }
  return make_batch(x.tensor(B), y.tensor(B));
}

// ---------------------------------------------------------------- induction heads

Batch induction_heads(const InductionOptions& o, int64_t B, Generator& gen) {
  check_batch("induction_heads", B);
  TG_CHECK(o.vocab_size >= 2 && o.seq_len >= 4, "induction_heads: need vocab_size >= 2 and seq_len >= 4, got {} "
           "and {}", o.vocab_size, o.seq_len);
  const int64_t L = o.seq_len;
  Rows x(B, L, 0), y(B, L, kIgnore);
  for (int64_t b = 0; b < B; ++b) {
    int64_t* r = x.row(b);
    for (int64_t t = 0; t < L; ++t) r[t] = 1 + uniform_int(gen, o.vocab_size - 1);
    const int64_t p = uniform_int(gen, L - 2);  // trigger at p, answer at p + 1 <= L - 2
    r[p] = 0;
    r[L - 1] = 0;
    y.row(b)[L - 1] = r[p + 1];
  }
  return make_batch(x.tensor(B), y.tensor(B));
}

// ---------------------------------------------------------------- MQAR

Batch mqar(const MqarOptions& o, int64_t B, Generator& gen) {
  check_batch("mqar", B);
  const int64_t K = o.num_kv_pairs, V = o.vocab_size, L = o.seq_len, C = 2 * K;
  TG_CHECK(K >= 1 && V / 2 - 1 >= K, "mqar: {} key-value pairs need vocab_size >= {} (keys are distinct draws "
           "from [1, vocab_size / 2)), got {}", K, 2 * (K + 1), V);
  const int64_t space = (L - C) / 2;
  TG_CHECK(space >= K, "mqar: seq_len {} is too short for {} pairs and their queries (need >= {})", L, K, 4 * K);
  TG_CHECK(o.power_a > 0, "mqar: power_a must be > 0, got {}", o.power_a);
  std::vector<double> weight(static_cast<size_t>(space));
  for (int64_t g = 0; g < space; ++g) weight[static_cast<size_t>(g)] = o.power_a * std::pow(g + 1.0, o.power_a - 1);

  Rows x(B, L, -1), y(B, L, kIgnore);
  for (int64_t b = 0; b < B; ++b) {
    int64_t* r = x.row(b);
    std::vector<int64_t> keys = sample_distinct(gen, V / 2 - 1, K), values = sample_distinct(gen, V - V / 2, K);
    for (int64_t i = 0; i < K; ++i) {
      keys[static_cast<size_t>(i)] += 1;
      values[static_cast<size_t>(i)] += V / 2;
      r[2 * i] = keys[static_cast<size_t>(i)];
      r[2 * i + 1] = values[static_cast<size_t>(i)];
    }
    // Gaps without replacement, each draw over the remaining weight (numpy's choice(replace=False, p=...)).
    std::vector<double> w = weight;
    double total = std::accumulate(w.begin(), w.end(), 0.0);
    for (int64_t i = 0; i < K; ++i) {
      double u = gen.uniform() * total;
      int64_t g = 0;
      while (g + 1 < space && (u >= w[static_cast<size_t>(g)] || w[static_cast<size_t>(g)] == 0))
        u -= w[static_cast<size_t>(g++)];
      if (w[static_cast<size_t>(g)] == 0)  // rounding ran past the end: take the last gap still free
        while (w[static_cast<size_t>(g)] == 0) --g;
      total -= w[static_cast<size_t>(g)];
      w[static_cast<size_t>(g)] = 0;
      r[C + 2 * g] = keys[static_cast<size_t>(i)];
      y.row(b)[C + 2 * g] = values[static_cast<size_t>(i)];
    }
    for (int64_t t = C; t < L; ++t)
      if (r[t] < 0) r[t] = o.random_non_queries ? uniform_int(gen, V) : 0;
  }
  return make_batch(x.tensor(B), y.tensor(B));
}

// ---------------------------------------------------------------- adding problem

Batch adding_problem(const AddingOptions& o, int64_t B, Generator& gen) {
  check_batch("adding_problem", B);
  const int64_t T = o.seq_len;
  TG_CHECK(T >= 2, "adding_problem: seq_len must be >= 2, got {}", T);
  std::vector<float> x(static_cast<size_t>(B * T * 2), 0.0f), y(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    float* r = x.data() + b * T * 2;
    for (int64_t t = 0; t < T; ++t) r[2 * t] = static_cast<float>(gen.uniform());
    const int64_t i = uniform_int(gen, T / 2), j = T / 2 + uniform_int(gen, T - T / 2);
    r[2 * i + 1] = r[2 * j + 1] = 1.0f;
    y[static_cast<size_t>(b)] = r[2 * i] + r[2 * j];
  }
  return make_batch(tensor<float>(x, {B, T, 2}), tensor<float>(y, {B}));
}

// ---------------------------------------------------------------- sorting

Batch sorting(const SortingOptions& o, int64_t B, Generator& gen) {
  check_batch("sorting", B);
  const int64_t N = o.length;
  TG_CHECK(N >= 1, "sorting: length must be >= 1, got {}", N);
  std::vector<float> x(static_cast<size_t>(B * N));
  Rows y(B, N, 0);
  for (int64_t b = 0; b < B; ++b) {
    float* r = x.data() + b * N;
    for (int64_t i = 0; i < N; ++i) r[i] = static_cast<float>(gen.uniform());
    std::iota(y.row(b), y.row(b) + N, 0);
    std::stable_sort(y.row(b), y.row(b) + N, [&](int64_t i, int64_t j) { return r[i] < r[j]; });
  }
  return make_batch(tensor<float>(x, {B, N}), y.tensor(B));
}

// ---------------------------------------------------------------- seq2seq on digits

std::string Seq2SeqVocab::to_string(const std::vector<int64_t>& ids) {
  std::string s;
  for (int64_t id : ids) {
    if (id == kPad) continue;
    if (id == kBos) s += "<bos>";
    else if (id == kEos) s += "<eos>";
    else if (id == kPlus) s += '+';
    else if (id >= kDigit0 && id < kDigit0 + 10) s += static_cast<char>('0' + (id - kDigit0));
    else s += "<?>";
  }
  return s;
}

Batch seq2seq_digits(const Seq2SeqOptions& o, int64_t B, Generator& gen) {
  check_batch("seq2seq_digits", B);
  TG_CHECK(o.min_digits >= 1 && o.min_digits <= o.max_digits && o.max_digits <= 18,
           "seq2seq_digits: need 1 <= min_digits <= max_digits <= 18, got {} and {}", o.min_digits, o.max_digits);
  auto digit = [](int64_t d) { return Seq2SeqVocab::kDigit0 + d; };
  // A number of n digits without a leading zero (the number 0 itself for n = 1 is allowed).
  auto number = [&](int64_t n) {
    int64_t v = n == 1 ? uniform_int(gen, 10) : 1 + uniform_int(gen, 9);
    for (int64_t i = 1; i < n; ++i) v = v * 10 + uniform_int(gen, 10);
    return v;
  };
  auto append_digits = [&](std::vector<int64_t>& out, int64_t v) {
    for (char c : std::to_string(v)) out.push_back(digit(c - '0'));
  };
  std::vector<std::vector<int64_t>> src(static_cast<size_t>(B)), tgt(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    auto& s = src[static_cast<size_t>(b)];
    auto& t = tgt[static_cast<size_t>(b)];
    t.push_back(Seq2SeqVocab::kBos);
    if (o.task == Seq2SeqTask::Reverse) {
      const int64_t n = uniform_int(gen, o.min_digits, o.max_digits);
      for (int64_t i = 0; i < n; ++i) s.push_back(digit(uniform_int(gen, 10)));
      t.insert(t.end(), s.rbegin(), s.rend());
    } else {
      const int64_t a = number(uniform_int(gen, o.min_digits, o.max_digits));
      const int64_t c = number(uniform_int(gen, o.min_digits, o.max_digits));
      append_digits(s, a);
      s.push_back(Seq2SeqVocab::kPlus);
      append_digits(s, c);
      append_digits(t, a + c);
    }
    t.push_back(Seq2SeqVocab::kEos);
  }
  Batch out;
  out.input = pad_rows(src, Seq2SeqVocab::kPad, &out.input_lengths);
  out.target = pad_rows(tgt, Seq2SeqVocab::kPad, &out.target_lengths);
  return out;
}

// ---------------------------------------------------------------- ListOps

std::string ListOpsVocab::to_string(const std::vector<int64_t>& ids) {
  std::string s;
  for (int64_t id : ids) {
    if (id == kPad) continue;
    if (!s.empty()) s += ' ';
    if (id >= kDigit0 && id < kDigit0 + 10) s += static_cast<char>('0' + (id - kDigit0));
    else if (id == kMin) s += "[MIN";
    else if (id == kMax) s += "[MAX";
    else if (id == kMed) s += "[MED";
    else if (id == kSumMod) s += "[SM";
    else if (id == kClose) s += "]";
    else s += "<?>";
  }
  return s;
}

namespace {
int64_t apply_op(int64_t op, std::vector<int64_t> args) {
  switch (op) {
    case ListOpsVocab::kMin: return *std::min_element(args.begin(), args.end());
    case ListOpsVocab::kMax: return *std::max_element(args.begin(), args.end());
    case ListOpsVocab::kSumMod: return std::accumulate(args.begin(), args.end(), int64_t{0}) % 10;
    default: {  // median; the mean of the middle two rounded down, as LRA's int(np.median(...))
      std::sort(args.begin(), args.end());
      const size_t n = args.size();
      return n % 2 ? args[n / 2] : (args[n / 2 - 1] + args[n / 2]) / 2;
    }
  }
}
}  // namespace

int64_t ListOpsVocab::evaluate(const std::vector<int64_t>& ids) {
  // An explicit stack of open operators with their arguments so far.
  std::vector<std::pair<int64_t, std::vector<int64_t>>> stack;
  int64_t result = -1;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int64_t id = ids[i];
    TG_CHECK(result < 0, "ListOps: tokens after the end of the expression (position {})", i);
    int64_t value = -1;
    if (id >= kDigit0 && id < kDigit0 + 10) {
      value = id - kDigit0;
    } else if (id >= kMin && id <= kSumMod) {
      stack.push_back({id, {}});
      continue;
    } else if (id == kClose) {
      TG_CHECK(!stack.empty() && !stack.back().second.empty(), "ListOps: ']' without an open operator or its "
               "arguments at position {}", i);
      value = apply_op(stack.back().first, std::move(stack.back().second));
      stack.pop_back();
    } else {
      TG_ERROR("ListOps: token {} at position {} is not part of the vocabulary", id, i);
    }
    if (stack.empty()) result = value;
    else stack.back().second.push_back(value);
  }
  TG_CHECK(result >= 0 && stack.empty(), "ListOps: the expression is incomplete");
  return result;
}

namespace {
// LRA's generate_tree, writing tokens as it goes and giving up (false) once past max_length.
bool listops_tree(const ListOpsOptions& o, int64_t depth, Generator& gen, std::vector<int64_t>& out, int64_t* value) {
  const double r = depth < o.max_depth ? gen.uniform() : 1.0;
  if (r > 0.25) {
    *value = uniform_int(gen, 10);
    out.push_back(ListOpsVocab::kDigit0 + *value);
    return static_cast<int64_t>(out.size()) <= o.max_length;
  }
  const int64_t nargs = uniform_int(gen, 2, o.max_args);
  std::vector<int64_t> args(static_cast<size_t>(nargs));
  // LRA draws the arguments before the operator; keeping that order keeps the same trees for the same draws.
  std::vector<int64_t> body;
  for (auto& a : args)
    if (!listops_tree(o, depth + 1, gen, body, &a) || static_cast<int64_t>(out.size() + body.size()) + 2 > o.max_length)
      return false;
  const int64_t op = ListOpsVocab::kMin + uniform_int(gen, 4);
  out.push_back(op);
  out.insert(out.end(), body.begin(), body.end());
  out.push_back(ListOpsVocab::kClose);
  *value = apply_op(op, std::move(args));
  return true;
}
}  // namespace

Batch listops(const ListOpsOptions& o, int64_t B, Generator& gen) {
  check_batch("listops", B);
  TG_CHECK(o.max_depth >= 1 && o.max_args >= 2 && o.min_length >= 1 && o.min_length <= o.max_length,
           "listops: need max_depth >= 1, max_args >= 2 and 1 <= min_length <= max_length, got {}, {}, {}, {}",
           o.max_depth, o.max_args, o.min_length, o.max_length);
  std::vector<std::vector<int64_t>> rows(static_cast<size_t>(B));
  std::vector<int64_t> values(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t attempt = 0;; ++attempt) {
      TG_CHECK(attempt < 1000000, "listops: no expression of {}..{} tokens in a million draws (max_depth {}, "
               "max_args {})", o.min_length, o.max_length, o.max_depth, o.max_args);
      std::vector<int64_t> toks;
      int64_t v = 0;
      if (listops_tree(o, 1, gen, toks, &v) && static_cast<int64_t>(toks.size()) >= o.min_length) {
        rows[static_cast<size_t>(b)] = std::move(toks);
        values[static_cast<size_t>(b)] = v;
        break;
      }
    }
  }
  Batch out;
  out.input = pad_rows(rows, ListOpsVocab::kPad, &out.input_lengths);
  out.target = tensor<int64_t>(values);
  return out;
}

// ---------------------------------------------------------------- TaskStream

TaskStream::TaskStream(TaskFn fn, uint64_t seed) : fn_(std::move(fn)), gen_(seed) {
  TG_CHECK(fn_ != nullptr, "TaskStream: no task function");
}

Batch TaskStream::next() {
  Batch b = fn_(gen_);
  b.index = index_++;
  return b;
}

StateDict TaskStream::state_dict() const {
  StateDict s{{"index", state_scalar(index_)}};
  optim::generator_to_tensors(gen_, "rng.", s);
  return s;
}

void TaskStream::load_state_dict(const StateDict& s) {
  const std::string what = "TaskStream::load_state_dict";
  const int64_t index = state_int(s, "index", what);
  Generator g;
  optim::generator_from_tensors(g, "rng.", s, what);
  gen_ = g;
  index_ = index;
}

}  // namespace tg::data
