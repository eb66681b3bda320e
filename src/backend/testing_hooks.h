// Test-only hooks of the backend (internal header; tests include it, the public API does not expose it):
// fault injection for the correctness gate, and a hook that runs while an inference is in flight.
#pragma once
#include <functional>

#include "kiln/engine.h"

namespace kiln::backend::testing {

// A deliberately wrong kernel spliced in front of the engine's first output by EngineBackend::build while set.
enum class Fault {
  None,
  WrongValue,  // element 0 is off by 1e-2 * (1 + |x|)
  NaN,         // element 0 becomes NaN (float outputs)
  WrongShape,  // the output comes out flattened to one axis
};
void set_fault(Fault f);
Fault fault();
// A copy of `engine` whose first output goes through the faulty op ("KilnFault", domain "kiln.testing").
Engine inject_fault(const Engine& engine, Fault f);

// Called by infer() on the calling thread after the call counts as in flight and before the engine runs.
void set_infer_hook(std::function<void()> hook);
void run_infer_hook();

}  // namespace kiln::backend::testing
