// kiln conformance: one ONNX backend node test — what it uses (scanned from model.onnx) and running it.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "kiln/builder.h"
#include "kiln/compare.h"

namespace kiln::conformance {

enum class Status { Pass, Fail, Skip };
const char* status_name(Status s);

// What the runner learns from a test's model.onnx without running kiln on it.
struct TestInfo {
  std::string name;              // "test_add_bcast"
  std::string dir;               // folder holding model.onnx and test_data_set_N/
  bool expanded = false;         // an `_expanded` variant (the op decomposed into primitive ops)
  std::string base;              // name without the `_expanded[_verN]` suffix
  std::string op;                // main op: the op the test is about ("Add"); for expanded tests, the base test's op
  std::string domain;            // main op's domain ("" = ai.onnx)
  int64_t opset = 0;             // opset of the default domain
  std::string dtype;             // element type of the first graph input (or output): "float32", "uint32", "string"...
  std::vector<std::string> ops;  // every (domain-qualified) op the model runs, functions inlined, sorted
  std::vector<std::string> unclaimed;  // "Op (opset N)" for ops kiln's registry lacks at that opset
  std::string type_skip;               // non-empty: why kiln cannot even feed / read the test (sequence type, dtype)
  std::vector<std::string> input_names, output_names;  // graph inputs / outputs in order (input_N.pb order)
  std::string error;                                   // the model could not be scanned (unreadable file)
  bool claimed() const { return unclaimed.empty(); }
};

// Reads dir/model.onnx. Never throws: problems land in `error`.
TestInfo scan_test(const std::string& name, const std::string& dir);
// Op type the node test is named after, among `op_types`: the one whose lower-case name is the longest prefix of
// the test name after "test_", underscores ignored (test_reduce_sum_keepdims -> ReduceSum); "" when none matches.
std::string op_from_test_name(const std::string& test_name, const std::vector<std::string>& op_types);

struct Result {
  Status status = Status::Skip;
  std::string reason;  // "" for passes
};

// Where the engines of the run are built and run: the CPU, or CUDA device `device` (TF32 off: node tests hold
// float32 results to the float32 bound).
struct RunTarget {
  Target target = Target::Cpu;
  int device = 0;
  std::string str() const { return target == Target::Cpu ? "cpu" : "cuda:" + std::to_string(device); }
};

// Loads the model with kiln::Model::load, builds an engine for `where` whose one profile is the exact input shapes
// of each data set, runs it and compares every output with `tol` (integer and bool outputs exactly; bfloat16 outputs
// with rtol at least 2^-6, two bfloat16 ULPs, as upstream's runner does).
// Throws nothing: kiln::Error and std::exception become a Fail with the error in the reason.
// `dump_dir` non-empty: on a mismatch, kiln's output is written as dump_dir/<test>/<data set>/output_N.pb.
Result run_test(const TestInfo& t, const Tolerance& tol, const std::string& dump_dir = "",
                const RunTarget& where = RunTarget{});

// Where the runner keeps a child process's result while a test runs in it.
std::string encode_result(const Result& r);
Result decode_result(const std::string& s);

}  // namespace kiln::conformance
