// Gradient noise (Neelakantan et al. 2015, "Adding Gradient Noise Improves Learning for Very Deep Networks"):
// before each optimizer step, every gradient gets independent Gaussian noise whose VARIANCE (not standard
// deviation) is sigma_t^2 = eta / (1 + t)^gamma. It composes with any optimizer:
//
//   tg::optim::GradientNoise noise(0.01);       // eta, gamma = 0.55, seed
//   loss.backward();
//   noise.apply(opt);                           // t = 0, 1, 2, ... counted by the object
//   opt.step();
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/random.h"
#include "core/tensor.h"

namespace tg::optim {

class Optimizer;

// Adds N(0, variance) noise to the gradient of every parameter that has one, drawing from gen in order
// (parameter by parameter, element by element), so a seed gives the same noise at any thread count.
void add_gradient_noise(const std::vector<Tensor>& params, double variance, Generator& gen);

class GradientNoise {
 public:
  explicit GradientNoise(double eta, double gamma = 0.55, uint64_t seed = 0);

  double variance(int64_t t) const;  // eta / (1 + t)^gamma
  double stddev(int64_t t) const;    // sqrt(variance(t))

  // Adds the noise of the current step t to the gradients, then counts the step.
  void apply(const std::vector<Tensor>& params);
  void apply(const Optimizer& opt);  // all of the optimizer's parameters

  int64_t step() const { return t_; }  // the t the next apply() uses
  double eta() const { return eta_; }
  double gamma() const { return gamma_; }

  // "t" (0-d int64), "eta" and "gamma" (0-d float64) and the generator: "rng.state" (int64 [4], the xoshiro words
  // bit-cast), "rng.has_spare" (0-d int64), "rng.spare" (0-d float64). load_state_dict checks every entry.
  std::map<std::string, Tensor> state_dict() const;
  void load_state_dict(const std::map<std::string, Tensor>& dict);

 private:
  double eta_, gamma_;
  int64_t t_ = 0;
  Generator gen_;
};

// A Generator's state as named tensors (prefix + "state", "has_spare", "spare") and back; shared with checkpoints.
void generator_to_tensors(const Generator& gen, const std::string& prefix, std::map<std::string, Tensor>& out);
// Throws a tg::Error naming `what` and the entry when an entry is missing or malformed.
void generator_from_tensors(Generator& gen, const std::string& prefix, const std::map<std::string, Tensor>& in,
                            const std::string& what);

}  // namespace tg::optim
