// Finite-difference gradient checking in float64, used by every op's test.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace tg {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-5;
  double rtol = 1e-3;
  int projections = 2;  // random output weightings checked
};

// Checks the autograd gradient of fn at inputs against central differences. Inputs that require grad must be
// float64 leaves without overlapping elements. For each random weighting w of the output, it compares
// d(sum(fn(x) * w))/dx from autograd with the finite difference for every element of every input. On failure
// it returns false and, if report is given, fills it with the worst element.
bool gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::vector<Tensor>& inputs,
               const GradcheckOptions& opt = {}, std::string* report = nullptr);

}  // namespace tg
