// Prints the tape of a small expression, y = sum(tanh(x @ w + b)), as text and as a Graphviz graph.
// Render the graph with:  ./example_tape_dot | sed -n '/^digraph/,/^}/p' | dot -Tpng -o tape.png
#include <iostream>
#include <string>

#include "tapegrad.h"

int main() {
  tg::manual_seed(0);
  tg::Tensor x = tg::randn({4, 3});                         // data: does not require grad
  tg::Tensor w = tg::randn({3, 2}).requires_grad_();        // parameters: leaves that require grad
  tg::Tensor b = tg::zeros({2}).requires_grad_();
  tg::Tensor y = tg::tanh(tg::matmul(x, w) + b).sum();

  std::string tape = tg::autograd::tape_string();
  std::string dot = tg::autograd::to_dot(y);
  std::cout << "tg::autograd::tape_string():\n" << tape << "\n";
  std::cout << "tg::autograd::to_dot(y):\n" << dot;

  // What was recorded: matmul on [4, 3] @ [3, 2] runs as one 3-d product, [1, 4, 3] @ [1, 3, 2], reshaped back
  // to [4, 2]. x does not require grad, so its reshape is not recorded (shown as "-" in the matmul line); w's
  // unsqueeze is. Then add, tanh, sum: 6 nodes. Every op must be in both views, and both leaves in the graph.
  int failures = 0;
  for (const char* op : {"unsqueeze", "matmul", "reshape", "add", "tanh", "sum"}) {
    if (tape.find(op) == std::string::npos) { std::cerr << "tape lacks " << op << "\n"; ++failures; }
    if (dot.find(op) == std::string::npos) { std::cerr << "dot lacks " << op << "\n"; ++failures; }
  }
  if (dot.find("leaf [3, 2]") == std::string::npos || dot.find("leaf [2]") == std::string::npos) {
    std::cerr << "dot lacks a leaf\n";
    ++failures;
  }
  if (dot.rfind("digraph tape {", 0) != 0 || dot.back() != '\n') ++failures;
  // The tape has exactly the nodes that some input requiring grad flowed through.
  if (tg::autograd::tape_size() != 6) {
    std::cerr << "expected 6 live nodes, got " << tg::autograd::tape_size() << "\n";
    ++failures;
  }
  return failures == 0 ? 0 : 1;
}
