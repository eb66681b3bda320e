"""kiln from Python through ctypes over libkiln.so's C API (include/kiln/c_api.h, docs/c-api.md).

Needs only numpy (host runs). Device runs take raw device pointers and a cudaStream_t as integers, so PyTorch
tensors work without this module importing torch:

    import kiln_ctypes as kc
    eng = kc.Engine.build("model.onnx", target="cuda", precision="fp16", keep_io_types=False,
                          profiles=[{"input": ((1, 3, 224, 224), (8, 3, 224, 224), (8, 3, 224, 224))}])
    ctx = eng.create_context(use_cuda_graphs=True)
    out = {o.name: torch.empty(..., device="cuda") for o in eng.outputs}
    ctx.enqueue({"input": kc.DeviceTensor.from_torch(x)}, {n: kc.DeviceTensor.from_torch(t) for n, t in out.items()},
                torch.cuda.current_stream().cuda_stream)

The library: $KILN_LIB (a path to libkiln.so), else libkiln.so next to this module, else the loader's search
(LD_LIBRARY_PATH). Every failing call raises KilnError(status, message) with the C API's message.
"""
import ctypes
import re
import os
from collections import namedtuple

import numpy as np

KILN_MAX_DIMS = 8

# kiln dtype codes (c_api.h) <-> names <-> numpy.
DTYPE_NAMES = ["float32", "float16", "bfloat16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool"]
_NP = {"float32": np.float32, "float16": np.float16, "float64": np.float64, "int64": np.int64, "int32": np.int32,
       "int16": np.int16, "int8": np.int8, "uint8": np.uint8, "bool": np.bool_}
_STATUS = {0: "OK", 1: "Internal", 10: "InvalidModel", 11: "Unsupported", 12: "InvalidArgument",
           13: "ShapeOutOfProfile", 14: "InvalidState", 15: "PlanMismatch", 16: "Integrity", 17: "Correctness",
           18: "Io", 19: "Cuda", 20: "OutOfMemory"}


class KilnError(RuntimeError):
    """A failing C API call: .status (int), .code (name, e.g. "InvalidArgument"), .message."""

    def __init__(self, status, message):
        self.status = status
        self.code = _STATUS.get(status, "Unknown")
        self.message = message
        super().__init__(f"{self.code}: {message}")


class _Tensor(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("dtype", ctypes.c_int32), ("rank", ctypes.c_int32),
                ("shape", ctypes.c_int64 * KILN_MAX_DIMS), ("data", ctypes.c_void_p), ("capacity", ctypes.c_size_t)]


class _TensorDesc(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("dtype", ctypes.c_int32), ("rank", ctypes.c_int32),
                ("dims", ctypes.POINTER(ctypes.c_int64)), ("has_default", ctypes.c_int32)]


class _BuildStats(ctypes.Structure):
    _fields_ = [("load_seconds", ctypes.c_double), ("build_seconds", ctypes.c_double), ("nodes", ctypes.c_uint64),
                ("tactics_timed", ctypes.c_uint64), ("timing_cache_hits", ctypes.c_uint64),
                ("timing_cache_misses", ctypes.c_uint64), ("tactic_candidates_timed", ctypes.c_uint64),
                ("profiles_seconds", ctypes.c_double), ("passes_seconds", ctypes.c_double),
                ("tactics_seconds", ctypes.c_double), ("total_seconds", ctypes.c_double),
                ("profiles", ctypes.c_uint64), ("per_profile_tactic_nodes", ctypes.c_uint64),
                ("timing_cache", ctypes.c_char_p)]


class _EngineMemory(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in ("weights_bytes", "planned_arena_bytes", "activation_bytes",
                                               "workspace_bytes", "host_fallback_nodes")]


class _ContextStats(ctypes.Structure):
    _fields_ = [("device", ctypes.c_char_p)] + [
        (n, ctypes.c_uint64) for n in ("weight_bytes", "arena_bytes", "planned_arena_bytes", "activation_bytes",
                                       "arena_growths", "dynamic_pool_bytes", "host_fallback_nodes",
                                       "cuda_graph_captures", "cuda_graph_replays", "cuda_graph_fallbacks")]


def _struct_dict(s):
    return {n: (v.decode() if isinstance(v, bytes) else v) for n, v in ((f[0], getattr(s, f[0])) for f in s._fields_)}


_P = ctypes.c_void_p
_I = ctypes.c_int
_PI = ctypes.POINTER(ctypes.c_int)
_S = ctypes.c_char_p
_PT = ctypes.POINTER(_Tensor)
_SIGNATURES = {
    "kiln_version": (_S, []), "kiln_build_id": (_S, []), "kiln_last_error": (_S, []), "kiln_status_name": (_S, [_I]),
    "kiln_cuda_device_count": (_I, []), "kiln_set_log_level": (_I, [_I]),
    "kiln_build_config_create": (_I, [ctypes.POINTER(_P)]), "kiln_build_config_destroy": (None, [_P]),
    "kiln_build_config_set_target": (_I, [_P, _S]), "kiln_build_config_set_precision": (_I, [_P, _S]),
    "kiln_build_config_set_keep_io_types": (_I, [_P, _I]),
    "kiln_build_config_set_optimization_level": (_I, [_P, _I]),
    "kiln_build_config_set_workspace": (_I, [_P, ctypes.c_uint64]),
    "kiln_build_config_set_timing_cache": (_I, [_P, _S]), "kiln_build_config_add_profile": (_I, [_P, _PI]),
    "kiln_build_config_set_shape": (_I, [_P, _I, _S, _I, ctypes.POINTER(ctypes.c_int64),
                                         ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(ctypes.c_int64)]),
    "kiln_engine_build": (_I, [_S, _P, ctypes.POINTER(_P)]), "kiln_engine_load": (_I, [_S, ctypes.POINTER(_P)]),
    "kiln_engine_save": (_I, [_P, _S]), "kiln_engine_destroy": (None, [_P]),
    "kiln_engine_num_inputs": (_I, [_P, _PI]), "kiln_engine_num_outputs": (_I, [_P, _PI]),
    "kiln_engine_input": (_I, [_P, _I, ctypes.POINTER(_TensorDesc)]),
    "kiln_engine_output": (_I, [_P, _I, ctypes.POINTER(_TensorDesc)]),
    "kiln_engine_num_profiles": (_I, [_P, _PI]), "kiln_engine_target": (_I, [_P, ctypes.POINTER(_S)]),
    "kiln_engine_precision": (_I, [_P, ctypes.POINTER(_S)]),
    "kiln_engine_memory_info": (_I, [_P, ctypes.POINTER(_EngineMemory)]),
    "kiln_engine_build_stats": (_I, [_P, ctypes.POINTER(_BuildStats)]),
    "kiln_context_create": (_I, [_P, _I, _I, ctypes.POINTER(_P)]), "kiln_context_destroy": (None, [_P]),
    "kiln_context_run": (_I, [_P, _PT, _I, _PT, _I]), "kiln_context_output": (_I, [_P, _S, _PT]),
    "kiln_context_enqueue": (_I, [_P, _PT, _I, _PT, _I, _P]),
    "kiln_context_output_shapes": (_I, [_P, _PT, _I, _PT, _I]),
    "kiln_context_get_stats": (_I, [_P, ctypes.POINTER(_ContextStats)]),
    "kiln_context_last_profile": (_I, [_P, _PI]),
}

_lib = None


def library_path():
    """Where load() looks first: $KILN_LIB, else libkiln.so next to this module, else None (loader search)."""
    env = os.environ.get("KILN_LIB")
    if env:
        return env
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "libkiln.so")
    return here if os.path.exists(here) else None


def lib():
    """The loaded libkiln.so (loaded on first use)."""
    global _lib
    if _lib is None:
        path = library_path()
        preloaded = set()
        while True:
            try:
                handle = ctypes.CDLL(path or "libkiln.so")
                break
            except OSError as e:
                # A dependency the loader cannot find (LD_LIBRARY_PATH not set) but that lies next to libkiln.so,
                # as in the GPU bundle's lib/: load it first, then try again.
                m = re.match(r"^(\S+\.so[.\d]*): cannot open shared object file", str(e))
                dep = os.path.join(os.path.dirname(path), m.group(1)) if (m and path) else None
                if dep and dep not in preloaded and os.path.exists(dep):
                    ctypes.CDLL(dep, mode=ctypes.RTLD_GLOBAL)
                    preloaded.add(dep)
                    continue
                raise OSError(f"cannot load libkiln.so ({path or 'loader search path'}): {e}; set KILN_LIB") from e
        for name, (res, args) in _SIGNATURES.items():
            f = getattr(handle, name)
            f.restype = res
            f.argtypes = args
        _lib = handle
    return _lib


def _check(status):
    if status != 0:
        raise KilnError(status, lib().kiln_last_error().decode(errors="replace"))


def version():
    return lib().kiln_version().decode()


def build_id():
    return lib().kiln_build_id().decode()


def cuda_device_count():
    return lib().kiln_cuda_device_count()


def set_log_level(level):
    """0 trace, 1 debug, 2 info, 3 warning (default), 4 error, 5 off."""
    _check(lib().kiln_set_log_level(level))


def dtype_code(dtype):
    """A kiln dtype code from a code, a name ("float16"), a numpy dtype or a torch dtype (by its name)."""
    if isinstance(dtype, int):
        return dtype
    name = str(dtype)
    name = name[6:] if name.startswith("torch.") else name
    name = {"half": "float16", "float": "float32", "double": "float64", "long": "int64", "int": "int32",
            "bool_": "bool"}.get(name, name)
    if name not in DTYPE_NAMES:
        name = np.dtype(dtype).name
    if name not in DTYPE_NAMES:
        raise ValueError(f"dtype {dtype!r} has no kiln equivalent")
    return DTYPE_NAMES.index(name)


TensorDesc = namedtuple("TensorDesc", "name dtype shape has_default")  # dtype a name, shape with -1 for dynamic


class DeviceTensor(namedtuple("DeviceTensor", "ptr dtype shape capacity")):
    """A device buffer: raw pointer (int), dtype (code or name), shape, capacity in bytes (0 = bytes of shape)."""

    def __new__(cls, ptr, dtype, shape, capacity=0):
        return super().__new__(cls, int(ptr), dtype, tuple(int(d) for d in shape), int(capacity))

    @classmethod
    def from_torch(cls, t):
        """A contiguous torch tensor (duck-typed: data_ptr, dtype, shape, numel, element_size)."""
        if not t.is_contiguous():
            raise ValueError("kiln needs contiguous tensors")
        return cls(t.data_ptr(), dtype_code(t.dtype), tuple(t.shape), t.numel() * t.element_size())


def _fill(t, name_bytes, dtype, shape, data=None, capacity=0):
    if len(shape) > KILN_MAX_DIMS:
        raise ValueError(f"{name_bytes.decode()}: rank {len(shape)} is more than {KILN_MAX_DIMS}")
    t.name = name_bytes
    t.dtype = dtype
    t.rank = len(shape)
    for i, d in enumerate(shape):
        t.shape[i] = d
    t.data = data
    t.capacity = capacity


def _shape_of(t):
    return tuple(t.shape[i] for i in range(t.rank))


class Engine:
    """A built or loaded kiln engine (immutable; contexts keep it alive)."""

    def __init__(self, handle):
        self._h = ctypes.c_void_p(handle)
        L = lib()
        n_in, n_out = ctypes.c_int(), ctypes.c_int()
        _check(L.kiln_engine_num_inputs(self._h, ctypes.byref(n_in)))
        _check(L.kiln_engine_num_outputs(self._h, ctypes.byref(n_out)))
        self.inputs = [self._desc(L.kiln_engine_input, i) for i in range(n_in.value)]
        self.outputs = [self._desc(L.kiln_engine_output, i) for i in range(n_out.value)]

    def _desc(self, fn, i):
        d = _TensorDesc()
        _check(fn(self._h, i, ctypes.byref(d)))
        return TensorDesc(d.name.decode(), DTYPE_NAMES[d.dtype], tuple(d.dims[k] for k in range(d.rank)),
                          bool(d.has_default))

    @classmethod
    def build(cls, onnx_path, target="cpu", precision="tf32", profiles=None, keep_io_types=True,
              optimization_level=None, workspace=None, timing_cache=None):
        """profiles: a list of {input: (min, opt, max)} (shapes as sequences); None = the model's static shapes."""
        L = lib()
        cfg = ctypes.c_void_p()
        _check(L.kiln_build_config_create(ctypes.byref(cfg)))
        try:
            _check(L.kiln_build_config_set_target(cfg, target.encode()))
            _check(L.kiln_build_config_set_precision(cfg, precision.encode()))
            _check(L.kiln_build_config_set_keep_io_types(cfg, 1 if keep_io_types else 0))
            if optimization_level is not None:
                _check(L.kiln_build_config_set_optimization_level(cfg, int(optimization_level)))
            if workspace is not None:
                _check(L.kiln_build_config_set_workspace(cfg, int(workspace)))
            if timing_cache:
                _check(L.kiln_build_config_set_timing_cache(cfg, os.fspath(timing_cache).encode()))
            for prof in profiles or []:
                idx = ctypes.c_int()
                _check(L.kiln_build_config_add_profile(cfg, ctypes.byref(idx)))
                for name, (mn, opt, mx) in prof.items():
                    arr = [(ctypes.c_int64 * len(s))(*s) for s in (mn, opt, mx)]
                    if not len(mn) == len(opt) == len(mx):
                        raise ValueError(f"profile {idx.value}, input {name}: min/opt/max ranks differ")
                    _check(L.kiln_build_config_set_shape(cfg, idx, name.encode(), len(mn), *arr))
            out = ctypes.c_void_p()
            _check(L.kiln_engine_build(os.fspath(onnx_path).encode(), cfg, ctypes.byref(out)))
        finally:
            L.kiln_build_config_destroy(cfg)
        return cls(out.value)

    @classmethod
    def load(cls, plan_path):
        out = ctypes.c_void_p()
        _check(lib().kiln_engine_load(os.fspath(plan_path).encode(), ctypes.byref(out)))
        return cls(out.value)

    def save(self, plan_path):
        _check(lib().kiln_engine_save(self._h, os.fspath(plan_path).encode()))

    def _str(self, fn):
        s = ctypes.c_char_p()
        _check(fn(self._h, ctypes.byref(s)))
        return s.value.decode()

    @property
    def target(self):
        return self._str(lib().kiln_engine_target)

    @property
    def precision(self):
        return self._str(lib().kiln_engine_precision)

    @property
    def num_profiles(self):
        n = ctypes.c_int()
        _check(lib().kiln_engine_num_profiles(self._h, ctypes.byref(n)))
        return n.value

    def memory_info(self):
        m = _EngineMemory()
        _check(lib().kiln_engine_memory_info(self._h, ctypes.byref(m)))
        return _struct_dict(m)

    def build_stats(self):
        """kiln_build_stats as a dict (zeros for a loaded plan): load/build seconds, nodes, tactics_timed,
        timing_cache_hits/misses, tactic_candidates_timed, the phases' seconds (profiles, passes, tactics, total),
        profiles, per_profile_tactic_nodes and the timing_cache status line."""
        s = _BuildStats()
        _check(lib().kiln_engine_build_stats(self._h, ctypes.byref(s)))
        return _struct_dict(s)

    def create_context(self, device=-1, use_cuda_graphs=False):
        return Context(self, device, use_cuda_graphs)

    def close(self):
        if self._h is not None and self._h.value:
            lib().kiln_engine_destroy(self._h)
        self._h = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass


class Context:
    """An execution context: run() on numpy arrays, enqueue() / prepare_enqueue() on device pointers."""

    def __init__(self, engine, device=-1, use_cuda_graphs=False):
        self.engine = engine  # not needed by kiln (the context keeps its engine), kept for .inputs / .outputs
        h = ctypes.c_void_p()
        _check(lib().kiln_context_create(engine._h, device, 1 if use_cuda_graphs else 0, ctypes.byref(h)))
        self._h = h
        self._names = {}  # name -> bytes (kept alive for the C strings)

    def _name(self, n):
        b = self._names.get(n)
        if b is None:
            b = self._names[n] = n.encode()
        return b

    def run(self, feeds):
        """feeds: {name: numpy array}; returns {output name: numpy array (a copy)}."""
        arrs = {n: np.ascontiguousarray(a) for n, a in feeds.items()}
        ins = (_Tensor * max(1, len(arrs)))()
        for i, (n, a) in enumerate(arrs.items()):
            _fill(ins[i], self._name(n), dtype_code(a.dtype), a.shape, a.ctypes.data, a.nbytes)
        L = lib()
        _check(L.kiln_context_run(self._h, ins, len(arrs), None, 0))
        res = {}
        for o in self.engine.outputs:
            t = _Tensor()
            _check(L.kiln_context_output(self._h, self._name(o.name), ctypes.byref(t)))
            dt = DTYPE_NAMES[t.dtype]
            if dt not in _NP:
                raise KilnError(12, f"output '{o.name}' is {dt}, which numpy cannot hold")
            shape = _shape_of(t)
            n = int(np.prod(shape)) if shape else 1
            if n == 0:
                res[o.name] = np.zeros(shape, dtype=_NP[dt])
                continue
            buf = (ctypes.c_char * t.capacity).from_address(t.data)
            res[o.name] = np.frombuffer(buf, dtype=_NP[dt], count=n).reshape(shape).copy()
        return res

    def output_shapes(self, input_shapes):
        """{input: shape} -> {output: (dtype name, shape with -1 for data-dependent dims)}."""
        ins = (_Tensor * max(1, len(input_shapes)))()
        for i, (n, s) in enumerate(input_shapes.items()):
            _fill(ins[i], self._name(n), 0, tuple(s))
        outs = (_Tensor * max(1, len(self.engine.outputs)))()
        for i, o in enumerate(self.engine.outputs):
            _fill(outs[i], self._name(o.name), 0, ())
        _check(lib().kiln_context_output_shapes(self._h, ins, len(input_shapes), outs, len(self.engine.outputs)))
        return {o.name: (DTYPE_NAMES[outs[i].dtype], _shape_of(outs[i])) for i, o in enumerate(self.engine.outputs)}

    def prepare_enqueue(self, inputs, outputs):
        """Binds {name: DeviceTensor} inputs and outputs once; returns f(stream) that enqueues them with one
        ctypes call (the cheap path for timing loops) and returns None; f.output_shapes() gives the outputs'
        shapes after a call."""
        ins = (_Tensor * max(1, len(inputs)))()
        outs = (_Tensor * max(1, len(outputs)))()
        for arr, d in ((ins, inputs), (outs, outputs)):
            for i, (n, t) in enumerate(d.items()):
                _fill(arr[i], self._name(n), dtype_code(t.dtype), t.shape, t.ptr, t.capacity)
        n_in, n_out = len(inputs), len(outputs)
        out_names = list(outputs)
        fn = lib().kiln_context_enqueue
        h = self._h

        def enqueue(stream=0):
            st = fn(h, ins, n_in, outs, n_out, stream)
            if st != 0:
                _check(st)

        enqueue.output_shapes = lambda: {out_names[i]: _shape_of(outs[i]) for i in range(n_out)}
        enqueue.keepalive = (ins, outs, self)
        return enqueue

    def enqueue(self, inputs, outputs, stream=0):
        """inputs / outputs: {name: DeviceTensor}; stream: a cudaStream_t as an int (0 = the legacy default
        stream). Returns {output: shape}. Asynchronous: outputs are ready in `stream` order."""
        f = self.prepare_enqueue(inputs, outputs)
        f(stream)
        return f.output_shapes()

    def stats(self):
        s = _ContextStats()
        _check(lib().kiln_context_get_stats(self._h, ctypes.byref(s)))
        return _struct_dict(s)

    @property
    def last_profile(self):
        n = ctypes.c_int()
        _check(lib().kiln_context_last_profile(self._h, ctypes.byref(n)))
        return n.value

    def close(self):
        if self._h is not None and self._h.value:
            lib().kiln_context_destroy(self._h)
        self._h = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
