// kiln conformance: the committed lists (skips, tolerance overrides, floor) and what the runner reports
// (JSON results, docs/operators.md).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "kiln/compare.h"
#include "node_test.h"

namespace kiln::conformance {

// One test with its outcome.
struct Record {
  TestInfo info;
  Result result;
  bool listed = false;  // named in skips.txt
};

// skips.txt: `test_name  # reason`, one a line; blank lines and lines starting with '#' are comments.
// Throws kiln::Error (InvalidArgument) naming the file and line for a line without a reason or a duplicate.
std::map<std::string, std::string> read_skips(const std::string& path);

struct ToleranceOverride {
  Tolerance tol;
  std::string reason;
};
// tolerances.txt: `test_name  rtol=R atol=A  # reason`. Same comment rules; a reason is required.
std::map<std::string, ToleranceOverride> read_tolerances(const std::string& path);

// The skips.txt reason for a claimed test skipped because of a type kiln lacks (`type_skip` of TestInfo).
std::string type_skip_reason(const std::string& type_skip);

// floor.txt: the first non-comment line is the minimum pass count.
int read_floor(const std::string& path);

// Aggregate over tests. claimed: every op of the test is in the registry at the test's opset; of those, `typed`
// are skipped because a graph input/output has a type kiln lacks (uint32, float8, string, sequence...), the
// rest (`run`) ran and `passed` of them passed.
struct Tally {
  int passed = 0, run = 0, typed = 0, claimed = 0, unclaimed = 0;
  int exp_passed = 0, exp_run = 0;  // the `_expanded` share of passed / run
};
Tally tally(const std::vector<Record>& records);

// What the data folder says about its origin (its .stamp written by gen_node_tests.py), "" when absent.
std::string data_origin(const std::string& data_dir);

// ONNX's since versions per op ("Op" or "domain.Op"), from the data folder's schemas.json; empty when absent.
using Schemas = std::map<std::string, std::vector<int>>;
Schemas read_schemas(const std::string& data_dir);

// ONNX since versions >= 11 of `op` that kiln's registry entry does not list (a newer schema kiln accepts but
// does not claim to implement, e.g. new dtypes or attributes).
std::vector<int> missing_versions(const Schemas& schemas, const std::string& qualified_op,
                                  const std::vector<int>& since);

// Results as JSON: the registry (op, domain, since versions), each test and the per (op, dtype) tallies.
std::string results_json(const std::vector<Record>& records, const std::string& origin, const Schemas& schemas);

// docs/operators.md from the registry and the results. Deterministic: same registry and results, same text.
std::string operators_markdown(const std::vector<Record>& records, const std::string& origin, const Schemas& schemas);

}  // namespace kiln::conformance
