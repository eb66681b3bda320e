// EngineBackendConfig: AITune's fields, defaults, JSON, the pinned key goldens and describe strings; Profile dicts;
// the Python-compatible JSON writer behind them.
#include <gtest/gtest.h>

#include "backend/python_json.h"
#include "backend_test_util.h"
#include "kiln/kiln.h"

using namespace kiln;
using backend_test::expect_error;

namespace backend_config_test {
const std::string kDefaultJson =
    "{\"use_dynamo\": true, \"workspace_size\": null, \"opset_version\": null, \"optimization_level\": null, "
    "\"compatibility_level\": null, \"timing_cache\": null, \"profiles\": \"single\", \"device\": \"cuda\", "
    "\"quantization_config\": null, \"enable_tf32\": true, \"use_cuda_graphs\": false}";
}  // namespace backend_config_test
using backend_config_test::kDefaultJson;

TEST(BackendConfig, DefaultsAndFieldOrderMatchAITune) {
  EngineBackendConfig c;
  EXPECT_TRUE(c.use_dynamo);
  EXPECT_FALSE(c.workspace_size || c.opset_version || c.optimization_level || c.compatibility_level);
  EXPECT_EQ(c.timing_cache, "");
  EXPECT_EQ(std::get<ProfileMode>(c.profiles), ProfileMode::Single);
  EXPECT_EQ(c.device, "cuda");
  EXPECT_TRUE(std::holds_alternative<std::monostate>(c.quantization_config));
  EXPECT_TRUE(c.enable_tf32);
  EXPECT_FALSE(c.use_cuda_graphs);
  EXPECT_EQ(c.to_dict(), kDefaultJson);
}

// The four goldens pinned by the issue: sha256 of json.dumps(to_dict()) as AITune computes it.
TEST(BackendConfig, KeyGoldensMatchAITune) {
  EngineBackendConfig c;
  EXPECT_EQ(c.key(), "4f031f850d19d9b2d2e9ec8481318d162e433721811070fdb507da4aa47eba2b");
  EXPECT_EQ(EngineBackend(c).key(), "EngineBackend_4f031f850d19d9b2d2e9ec8481318d162e433721811070fdb507da4aa47eba2b");

  EngineBackendConfig no_dynamo;
  no_dynamo.use_dynamo = false;
  EXPECT_EQ(no_dynamo.key(), "eece41483e3149637d134d0332a31fc6896536b328b13106985f79864e432cf4");

  EngineBackendConfig autocast;
  autocast.quantization_config = AutoCastConfig{};
  EXPECT_EQ(autocast.key(), "996ab7f0ccdc038362de30d9b1ab7bf549ef3476c81ebe3ddbc880505842c860");

  EngineBackendConfig samples;
  samples.profiles = ProfileMode::SamplesUsed;
  EXPECT_EQ(samples.key(), "f0017a8d14aae91e59453fb28b48604c0e86715d88dd1e89dc6540410f18a72a");
}

TEST(BackendConfig, KeyOfProfilesListAndBf16MatchesPython) {
  // Python: json.dumps of this dict hashes to 56f3505e... (computed with the project's .venv).
  EngineBackendConfig c;
  c.profiles = std::vector<Profile>{Profile().add_input_shape("x", {1, 4}, {4, 4}, {8, 4})};
  c.quantization_config = AutoCastConfig{"bf16", false};
  EXPECT_EQ(c.key(), "56f3505e4701cbd56d7e09e945479bff97a5f63c5d1d7b2215cbee76bff751f5");
}

TEST(BackendConfig, DescribeListsChangedFieldsInOrder) {
  EngineBackendConfig c;
  EXPECT_EQ(c.describe(), "");
  EXPECT_EQ(EngineBackend(c).describe(), "EngineBackend()");
  c.use_dynamo = false;
  EXPECT_EQ(c.describe(), "use_dynamo=False");
  c = {};
  c.quantization_config = AutoCastConfig{};
  EXPECT_EQ(c.describe(), "quantization_config=ONNXAutoCastConfig(precision='fp16', keep_io_types=True)");
  c = {};
  c.use_cuda_graphs = true;
  c.timing_cache = "/tmp/t.cache";
  EXPECT_EQ(c.describe(), "timing_cache=/tmp/t.cache,use_cuda_graphs=True");
  c = {};
  c.profiles = ProfileMode::SamplesUsed;
  EXPECT_EQ(c.describe(), "profiles=ProfileMode.SAMPLES_USED");
  c = {};
  c.workspace_size = 1024;
  c.optimization_level = 0;
  c.device = "cpu";
  c.enable_tf32 = false;
  EXPECT_EQ(c.describe(), "workspace_size=1024,optimization_level=0,device=cpu,enable_tf32=False");
  c = {};
  c.quantization_config = OnnxQuantizationConfig{"int8", "", false};
  EXPECT_EQ(c.describe(),
            "quantization_config=ONNXQuantizationConfig(precision='int8', calibration_method=None, "
            "use_model_opt_post_processing=False)");
  c = {};
  c.profiles = std::vector<Profile>{Profile().add_input_shape("x", {1}, {2}, {3})};
  EXPECT_EQ(c.describe(), "profiles=[{'x': [(1,), (2,), (3,)]}]");
}

TEST(BackendConfig, ToDictFromDictRoundTrips) {
  EngineBackendConfig c;
  c.use_dynamo = false;
  c.workspace_size = int64_t(1) << 33;
  c.opset_version = 18;
  c.optimization_level = 0;
  c.compatibility_level = 1;
  c.timing_cache = "/tmp/kiln timing.cache";
  c.profiles = std::vector<Profile>{Profile().add_input_shape("b", {1, 2}, {2, 2}, {4, 2}).add_input_shape("a", {1}, {1}, {1}),
                                    Profile().add_input_shape("b", {8, 2}, {8, 2}, {8, 2}).add_input_shape("a", {2}, {2}, {2})};
  c.device = "cpu";
  c.quantization_config = AutoCastConfig{"bf16", false};
  c.enable_tf32 = false;
  c.use_cuda_graphs = true;
  const std::string d = c.to_dict();
  // Insertion order of the profile inputs is kept (b before a), as Python dicts keep it.
  EXPECT_NE(d.find("\"profiles\": [{\"b\": [[1, 2], [2, 2], [4, 2]], \"a\": [[1], [1], [1]]}"), std::string::npos) << d;
  EngineBackendConfig back = EngineBackendConfig::from_dict(d);
  EXPECT_TRUE(back == c);
  EXPECT_EQ(back.to_dict(), d);
  EXPECT_EQ(back.key(), c.key());

  for (const QuantizationConfig& q : {QuantizationConfig{OnnxQuantizationConfig{"fp8", "max", true}},
                                      QuantizationConfig{TorchQuantizationConfig{"INT8_DEFAULT_CFG", "cuda"}}}) {
    EngineBackendConfig qc;
    qc.quantization_config = q;
    EXPECT_TRUE(EngineBackendConfig::from_dict(qc.to_dict()) == qc) << qc.to_dict();
  }
}

TEST(BackendConfig, FromDictDefaultsMissingKeysAndRejectsBadOnes) {
  EXPECT_TRUE(EngineBackendConfig::from_dict("{}") == EngineBackendConfig{});
  EngineBackendConfig c = EngineBackendConfig::from_dict(R"({"profiles": "samples_used", "device": "cpu"})");
  EXPECT_EQ(std::get<ProfileMode>(c.profiles), ProfileMode::SamplesUsed);
  EXPECT_EQ(c.device, "cpu");
  c = EngineBackendConfig::from_dict(R"({"quantization_config": {"_type": "ONNXAutoCastConfig"}})");
  EXPECT_TRUE(std::get<AutoCastConfig>(c.quantization_config) == AutoCastConfig{});

  auto bad = [](const std::string& json, const std::string& msg) {
    Error e = expect_error([&] { EngineBackendConfig::from_dict(json); }, ErrorCode::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find(msg), std::string::npos) << e.what();
  };
  bad(R"({"quantization_config": {"_type": "Int3Config"}})", "Unknown quantization_config type: Int3Config");
  bad(R"({"profiles": "many"})", "is not a valid ProfileMode");
  bad(R"({"use_dynamo": 1})", "use_dynamo must be true or false");
  bad(R"({"workspace_size": "1G"})", "workspace_size must be an integer or null");
  bad(R"({"no_such_field": 1})", "unknown EngineBackendConfig field 'no_such_field'");
  bad(R"({"quantization_config": {"_type": "ONNXAutoCastConfig", "precision": "fp8"}})", "Unsupported autocast precision: fp8");
  bad(R"({"quantization_config": {"_type": "ONNXQuantizationConfig", "precision": "int2"}})", "Unsupported precision: int2");
  bad(R"({"quantization_config": {"_type": "ONNXQuantizationConfig", "precision": "int8", "calibration_method": "x"}})",
      "Unsupported calibration_method: x");
  bad(R"({"quantization_config": {"_type": "TorchQuantizationConfig", "quantization_config": "FP2"}})",
      "Unsupported quantization_config: FP2");
  bad(R"({"profiles": [{"x": [[1], [4], [2]]}]})", "min <= opt <= max");
  bad("{not json", "not valid JSON");
  // The constructor validates like AITune's __post_init__.
  EngineBackendConfig neg;
  neg.optimization_level = 9;
  expect_error([&] { EngineBackend b(neg); }, ErrorCode::InvalidArgument);
}

TEST(BackendConfig, ToJsonWritesPythonIndentedJson) {
  backend_test::ScratchDir dir;
  EngineBackendConfig c;
  c.profiles = std::vector<Profile>{Profile().add_input_shape("x", {1, 4}, {4, 4}, {8, 4})};
  c.quantization_config = AutoCastConfig{"bf16", false};
  c.to_json(dir / "config.json");
  // json.dump(d, f, indent=2) from Python 3 for the same dict.
  const std::string want =
      "{\n  \"use_dynamo\": true,\n  \"workspace_size\": null,\n  \"opset_version\": null,\n  \"optimization_level\": "
      "null,\n  \"compatibility_level\": null,\n  \"timing_cache\": null,\n  \"profiles\": [\n    {\n      \"x\": [\n  "
      "      [\n          1,\n          4\n        ],\n        [\n          4,\n          4\n        ],\n        [\n  "
      "        8,\n          4\n        ]\n      ]\n    }\n  ],\n  \"device\": \"cuda\",\n  \"quantization_config\": "
      "{\n    \"_type\": \"ONNXAutoCastConfig\",\n    \"precision\": \"bf16\",\n    \"keep_io_types\": false\n  },\n  "
      "\"enable_tf32\": true,\n  \"use_cuda_graphs\": false\n}";
  EXPECT_EQ(backend_test::slurp(dir / "config.json"), want);
  EXPECT_TRUE(EngineBackendConfig::from_dict(want) == c);
}

TEST(BackendConfig, PythonJsonWriterMatchesJsonDumps) {
  namespace pj = kiln::backend::pyjson;
  pj::Json j = pj::Json::object();
  j["s"] = "a\xc3\xa9\xf0\x9f\x98\x80\x7f\x01/\\";
  j["f"] = {1.0, 1e-05, 123456789012345678.0, 0.1, -2.5e-7, 1e16, 12345.678};
  // Python: json.dumps({"s": "a\u00e9\U0001F600\x7f\x01/\\", "f": [...]})
  EXPECT_EQ(pj::dumps(j),
            "{\"s\": \"a\\u00e9\\ud83d\\ude00\\u007f\\u0001/\\\\\", \"f\": [1.0, 1e-05, 1.2345678901234568e+17, 0.1, "
            "-2.5e-07, 1e+16, 12345.678]}");
  EXPECT_EQ(pj::dumps(pj::Json::array()), "[]");
  EXPECT_EQ(pj::dumps(pj::Json::object(), 2), "{}");
  EXPECT_EQ(pj::repr_str("it's"), "\"it's\"");
  EXPECT_EQ(pj::repr_str("fp16"), "'fp16'");
  // An invalid UTF-8 byte is written as Python's surrogateescape would (\udcXX).
  EXPECT_EQ(pj::dumps(pj::Json("a\xff")), "\"a\\udcff\"");
}

TEST(BackendConfig, ProfileDictRoundTripAndEquality) {
  Profile p;
  p.add_input_shape("tokens", {1, 8}, {4, 64}, {8, 128}).add_input_shape("mask", {1, 8}, {4, 64}, {8, 128});
  EXPECT_EQ(p.to_dict(), "{\"tokens\": [[1, 8], [4, 64], [8, 128]], \"mask\": [[1, 8], [4, 64], [8, 128]]}");
  Profile q = Profile::from_dict(p.to_dict());
  EXPECT_TRUE(q == p);
  EXPECT_EQ(q.to_dict(), p.to_dict());
  // Equality and hash ignore insertion order (sorted by name, as AITune's __hash__).
  Profile r;
  r.add_input_shape("mask", {1, 8}, {4, 64}, {8, 128}).add_input_shape("tokens", {1, 8}, {4, 64}, {8, 128});
  EXPECT_TRUE(r == p);
  EXPECT_EQ(r.hash(), p.hash());
  EXPECT_NE(p.str().find("tokens: min [1,8] opt [4,64] max [8,128]"), std::string::npos) << p.str();
  expect_error([] { Profile::from_dict(R"({"x": [[1], [2]]})"); }, ErrorCode::InvalidArgument);
  expect_error([] { Profile().add_input_shape("x", {4}, {2}, {8}); }, ErrorCode::InvalidArgument);
  EXPECT_STREQ(profile_mode_value(ProfileMode::SamplesUsed), "samples_used");
  EXPECT_EQ(profile_mode_from_value("single"), ProfileMode::Single);
}
