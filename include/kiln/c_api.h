/* kiln — C API (docs/c-api.md). Pure C, exported from libkiln.so, for callers in other languages (Python through
 * ctypes: python/kiln_ctypes.py) and processes that must not link C++ (a PyTorch process loading kiln at run time).
 *
 * Conventions
 * - Every function that can fail returns an int status: KILN_OK (0), or the kiln::ErrorCode of the failure as the
 *   CLI's exit code (10 + the code: KILN_ERR_INVALID_MODEL ... KILN_ERR_OUT_OF_MEMORY), or KILN_ERR_INTERNAL (1)
 *   for an unexpected exception. kiln_last_error() then gives the message (per thread, until the next failing call
 *   on this thread), which names the culprit: the handle, input, output, file or size at fault.
 * - Handles are opaque. A NULL handle, NULL out-pointer or bad enum value is KILN_ERR_INVALID_ARGUMENT, never a
 *   crash. Destroy functions accept NULL.
 * - A context keeps its engine alive: an engine handle may be destroyed while contexts made from it still run.
 * - Strings returned as `const char*` belong to the handle they came from (or are static) and stay valid until it
 *   is destroyed; kiln_last_error()'s string stays valid until the next failing call on this thread.
 * - Structs are plain data; fields are only ever appended in later versions.
 * - One context is used by one thread at a time; several contexts of one engine may run concurrently.
 */
#ifndef KILN_C_API_H_
#define KILN_C_API_H_

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define KILN_CAPI
#else
#define KILN_CAPI __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes (= kiln::exit_code(ErrorCode), docs/errors.md) ------------------------------------------- */
#define KILN_OK 0
#define KILN_ERR_INTERNAL 1
#define KILN_ERR_INVALID_MODEL 10
#define KILN_ERR_UNSUPPORTED 11
#define KILN_ERR_INVALID_ARGUMENT 12
#define KILN_ERR_SHAPE_OUT_OF_PROFILE 13
#define KILN_ERR_INVALID_STATE 14
#define KILN_ERR_PLAN_MISMATCH 15
#define KILN_ERR_INTEGRITY 16
#define KILN_ERR_CORRECTNESS 17
#define KILN_ERR_IO 18
#define KILN_ERR_CUDA 19
#define KILN_ERR_OUT_OF_MEMORY 20

/* ---- element types (the order of kiln::DType) -------------------------------------------------------------- */
#define KILN_FLOAT32 0
#define KILN_FLOAT16 1
#define KILN_BFLOAT16 2
#define KILN_FLOAT64 3
#define KILN_INT64 4
#define KILN_INT32 5
#define KILN_INT16 6
#define KILN_INT8 7
#define KILN_UINT8 8
#define KILN_BOOL 9

/* Most dimensions a kiln_tensor carries. */
#define KILN_MAX_DIMS 8

typedef struct kiln_build_config kiln_build_config;
typedef struct kiln_engine kiln_engine;
typedef struct kiln_context kiln_context;

/* A tensor passed to or returned from a run. `shape[0..rank)` is used; -1 marks a dimension known only after
 * running (kiln_context_output_shapes). Host runs: `data` is host memory; enqueue: device memory. `capacity` is
 * the bytes available at `data`: for inputs 0 means "not given" (else the shape must fit in it); for outputs 0 means
 * the bytes of `shape` as given. kiln sets an output's dtype, rank and shape to the actual ones. */
typedef struct kiln_tensor {
  const char* name;
  int32_t dtype;
  int32_t rank;
  int64_t shape[KILN_MAX_DIMS];
  void* data;
  size_t capacity;
} kiln_tensor;

/* An engine input or output as declared: dims -1 where dynamic. `name` and `dims` belong to the engine. */
typedef struct kiln_tensor_desc {
  const char* name;
  int32_t dtype;
  int32_t rank;
  const int64_t* dims;
  int32_t has_default; /* inputs only: optional at run time (an ONNX initializer-input) */
} kiln_tensor_desc;

/* What a build did (kiln_engine_build_stats; kiln::BuildStats, docs/c-api.md). Zeros (and "" for timing_cache) for an
 * engine loaded from a plan. */
typedef struct kiln_build_stats {
  double load_seconds;  /* reading and importing the ONNX file */
  double build_seconds; /* kiln::build_engine: passes, tactics, timing */
  uint64_t nodes;
  uint64_t tactics_timed;       /* (node, profile) choices made by timing candidates, summed over the profiles */
  uint64_t timing_cache_hits;   /* node choices the timing cache knew (once per node and distinct signature) */
  uint64_t timing_cache_misses; /* node choices it did not know (recorded into it) */
  /* Since kiln 0.1 with per-profile tactics (the struct grew: rebuild callers against this header). */
  uint64_t tactic_candidates_timed; /* candidates measured, summed over the timed choices */
  double profiles_seconds;          /* build phases (kiln::BuildStats): profile resolution and specialization, */
  double passes_seconds;            /* the pass pipeline (autocast and fusion included), */
  double tactics_seconds;           /* tactic choice (cache lookups, timing, cache write-back), */
  double total_seconds;             /* and the whole kiln::build_engine call */
  uint64_t profiles;                /* optimization profiles of the engine */
  uint64_t per_profile_tactic_nodes; /* nodes whose tactic differs between profiles (each timed at its own opt) */
  const char* timing_cache;         /* what happened to the timing-cache file ("" when none); owned by the engine */
} kiln_build_stats;

/* Device memory an engine plans (no GPU needed); zeros for CPU engines except weights_bytes. */
typedef struct kiln_engine_memory {
  uint64_t weights_bytes;
  uint64_t planned_arena_bytes;
  uint64_t activation_bytes;
  uint64_t workspace_bytes;
  uint64_t host_fallback_nodes;
} kiln_engine_memory;

/* kiln::ContextStats (docs/cuda.md). `device` belongs to the context ("cpu" or "cuda:N"). */
typedef struct kiln_context_stats {
  const char* device;
  uint64_t weight_bytes;
  uint64_t arena_bytes;
  uint64_t planned_arena_bytes;
  uint64_t activation_bytes;
  uint64_t arena_growths;
  uint64_t dynamic_pool_bytes;
  uint64_t host_fallback_nodes;
  uint64_t cuda_graph_captures;
  uint64_t cuda_graph_replays;
  uint64_t cuda_graph_fallbacks;
} kiln_context_stats;

/* ---- library ----------------------------------------------------------------------------------------------- */
KILN_CAPI const char* kiln_version(void);
KILN_CAPI const char* kiln_build_id(void);
/* The message of this thread's last failing call ("" if none). */
KILN_CAPI const char* kiln_last_error(void);
/* "OK", "InvalidModel", ... "Internal"; "Unknown" for other values. */
KILN_CAPI const char* kiln_status_name(int status);
/* Bytes per element; 0 for an unknown dtype. */
KILN_CAPI size_t kiln_dtype_size(int dtype);
/* "float32", ...; "unknown" for an unknown dtype. */
KILN_CAPI const char* kiln_dtype_name(int dtype);
KILN_CAPI int kiln_cuda_device_count(void);
/* Log messages below `level` (0 trace, 1 debug, 2 info, 3 warning, 4 error, 5 off) are dropped; default 3. */
KILN_CAPI int kiln_set_log_level(int level);

/* ---- build configuration (kiln::BuildConfig) ---------------------------------------------------------------- */
KILN_CAPI int kiln_build_config_create(kiln_build_config** out);
KILN_CAPI void kiln_build_config_destroy(kiln_build_config* config);
/* "cpu" (default), "cuda" or "cuda:N". */
KILN_CAPI int kiln_build_config_set_target(kiln_build_config* config, const char* target);
/* "fp32" (TF32 off), "tf32" (float32 with TF32 GEMM / conv; the default), "fp16", "bf16". */
KILN_CAPI int kiln_build_config_set_precision(kiln_build_config* config, const char* precision);
/* fp16 / bf16 only. 1 (default): float32 inputs and outputs stay float32; 0: they take the low type. */
KILN_CAPI int kiln_build_config_set_keep_io_types(kiln_build_config* config, int keep);
KILN_CAPI int kiln_build_config_set_optimization_level(kiln_build_config* config, int level);
/* Cap on per-node scratch memory in bytes (0 = none). */
KILN_CAPI int kiln_build_config_set_workspace(kiln_build_config* config, uint64_t bytes);
/* Timing cache file to load and update (NULL or "" = none). */
KILN_CAPI int kiln_build_config_set_timing_cache(kiln_build_config* config, const char* path);
/* Starts a new optimization profile; its index (0, 1, ...) goes to *index (may be NULL). */
KILN_CAPI int kiln_build_config_add_profile(kiln_build_config* config, int* index);
/* Sets one input's min / opt / max shape (each `rank` dims) in profile `profile`. */
KILN_CAPI int kiln_build_config_set_shape(kiln_build_config* config, int profile, const char* input, int rank,
                                          const int64_t* min, const int64_t* opt, const int64_t* max);

/* ---- engines ------------------------------------------------------------------------------------------------ */
/* Reads the ONNX file and builds an engine (config NULL = defaults: cpu, tf32, the model's static shapes). */
KILN_CAPI int kiln_engine_build(const char* onnx_path, const kiln_build_config* config, kiln_engine** out);
KILN_CAPI int kiln_engine_load(const char* plan_path, kiln_engine** out);
/* Writes atomically (temporary file + rename). */
KILN_CAPI int kiln_engine_save(const kiln_engine* engine, const char* plan_path);
KILN_CAPI void kiln_engine_destroy(kiln_engine* engine);
KILN_CAPI int kiln_engine_num_inputs(const kiln_engine* engine, int* count);
KILN_CAPI int kiln_engine_num_outputs(const kiln_engine* engine, int* count);
KILN_CAPI int kiln_engine_input(const kiln_engine* engine, int index, kiln_tensor_desc* out);
KILN_CAPI int kiln_engine_output(const kiln_engine* engine, int index, kiln_tensor_desc* out);
KILN_CAPI int kiln_engine_num_profiles(const kiln_engine* engine, int* count);
/* "cpu" or "cuda:sm_90 ..." / "fp32", "fp16", ...; the strings belong to the engine. */
KILN_CAPI int kiln_engine_target(const kiln_engine* engine, const char** out);
KILN_CAPI int kiln_engine_precision(const kiln_engine* engine, const char** out);
KILN_CAPI int kiln_engine_memory_info(const kiln_engine* engine, kiln_engine_memory* out);
KILN_CAPI int kiln_engine_build_stats(const kiln_engine* engine, kiln_build_stats* out);

/* ---- execution contexts -------------------------------------------------------------------------------------- */
/* device: CUDA ordinal (-1 = the engine's build device); use_cuda_graphs: capture and replay per input-shape key. */
KILN_CAPI int kiln_context_create(const kiln_engine* engine, int device, int use_cuda_graphs, kiln_context** out);
KILN_CAPI void kiln_context_destroy(kiln_context* context);
/* Synchronous run on host memory. Inputs: name, dtype, rank, shape, data. The results stay in the context until
 * the next run: each of `outputs` (n_outputs may be 0) gets its dtype, rank and shape set and, when its `data` is
 * not NULL, the bytes copied (KILN_ERR_INVALID_ARGUMENT naming it when `capacity` is too small). */
KILN_CAPI int kiln_context_run(kiln_context* context, const kiln_tensor* inputs, int n_inputs, kiln_tensor* outputs,
                               int n_outputs);
/* The last run's output `name`: dtype, rank, shape, and in `data` a pointer to host memory owned by the context
 * (valid until the next run or destroy). */
KILN_CAPI int kiln_context_output(kiln_context* context, const char* name, kiln_tensor* out);
/* CUDA engines: runs on device pointers. Inputs name, dtype, rank, shape, data (device); every engine output must
 * be given with a device buffer and capacity. `stream` is a cudaStream_t (NULL = the legacy default stream): the
 * context's work waits for what the stream has enqueued so far and the stream then waits for the context, so the
 * outputs are ready in stream order. Returns without waiting for the device (unless shapes depend on data). */
KILN_CAPI int kiln_context_enqueue(kiln_context* context, const kiln_tensor* inputs, int n_inputs,
                                   kiln_tensor* outputs, int n_outputs, void* stream);
/* Output shapes for the inputs' shapes (inputs' data and dtype are not read), without running: each named output
 * gets its dtype, rank and shape (-1 for dims that depend on data). */
KILN_CAPI int kiln_context_output_shapes(kiln_context* context, const kiln_tensor* inputs, int n_inputs,
                                         kiln_tensor* outputs, int n_outputs);
KILN_CAPI int kiln_context_get_stats(const kiln_context* context, kiln_context_stats* out);
/* Index of the profile the last run used (-1 before the first). */
KILN_CAPI int kiln_context_last_profile(const kiln_context* context, int* index);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* KILN_C_API_H_ */
