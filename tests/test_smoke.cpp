// First light: a tensor, an op, a backward.
#include <doctest/doctest.h>

#include "tapegrad.h"

TEST_CASE("smoke: add and backward") {
  tg::Tensor a = tg::tensor(std::vector<double>{1, 2, 3}).requires_grad_();
  tg::Tensor b = (a * a + a).sum();
  b.backward();
  CHECK(b.item<double>() == doctest::Approx(20));
  auto g = a.grad().to_vector<double>();
  CHECK(g == std::vector<double>{3, 5, 7});
}
