// Defining a differentiable op outside the library, in the spirit of torch::autograd::Function:
//
//   struct Cube : tg::autograd::Function<Cube> {
//     static tg::Tensor forward(tg::autograd::Context& ctx, const tg::Tensor& x) {
//       ctx.save_for_backward({x});
//       return x * x * x;
//     }
//     static std::vector<tg::Tensor> backward(tg::autograd::Context& ctx, const tg::Tensor& grad) {
//       tg::Tensor x = ctx.saved()[0];
//       return {grad * x * x * 3.0};
//     }
//   };
//   tg::Tensor y = Cube::apply(x);
//
// forward runs with recording off; backward returns one gradient per Tensor argument of forward, in order
// (an undefined Tensor for none). The tape records the op like a built-in one, named by F::name() if present.
#pragma once
#include <any>
#include <map>
#include <string>
#include <type_traits>
#include <typeinfo>

#include "autograd/node.h"

namespace tg::autograd {

class Context {
 public:
  void save_for_backward(std::vector<Tensor> ts) { to_save_ = std::move(ts); }
  // The saved tensors, checked against in-place modification (valid inside backward).
  const std::vector<Tensor>& saved() const { return saved_; }
  // Non-tensor values for backward.
  std::map<std::string, std::any> saved_data;

 private:
  template <class F> friend struct Function;
  std::vector<Tensor> to_save_;
  std::vector<Tensor> saved_;
};

template <class F> struct Function {
  template <class... Args> static Tensor apply(Args&&... args) {
    auto ctx = std::make_shared<Context>();
    Tensor out;
    {
      NoGradGuard guard;
      out = F::forward(*ctx, args...);
    }
    std::vector<Tensor> inputs;
    (collect(inputs, args), ...);
    if (!needs_grad(inputs)) return out;
    // The op's output must be a fresh tensor: give forward's result its own handle so no other tensor shares the node.
    out = out.detach();
    record(op_name(), out, inputs, std::move(ctx->to_save_), [ctx, n = inputs.size()](const Tensor& g, const Node& node) {
      ctx->saved_.clear();
      for (size_t i = 0; i < node.saved.size(); ++i) ctx->saved_.push_back(node.saved_tensor(i));
      std::vector<Tensor> grads = F::backward(*ctx, g);
      TG_CHECK(grads.size() == n, "{}: backward returned {} gradients for {} tensor inputs", op_name(), grads.size(),
               n);
      ctx->saved_.clear();
      return grads;
    });
    return out;
  }

 private:
  // Not called name(): F inherits this class's members, so F::name() would find it and recurse when F has none.
  static const char* op_name() {
    if constexpr (requires { F::name(); }) return F::name();
    else return typeid(F).name();
  }
  template <class A> static void collect(std::vector<Tensor>& v, const A& a) {
    if constexpr (std::is_same_v<std::decay_t<A>, Tensor>) v.push_back(a);
  }
};

}  // namespace tg::autograd
