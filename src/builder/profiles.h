// Profile resolution and input specialization for the builder.
#pragma once
#include <vector>

#include "ir/graph.h"
#include "kiln/model.h"
#include "kiln/profile.h"

namespace kiln::builder {

// Validates user profiles against the model's inputs (every input named exactly once, ranks and fixed dims
// agree), or derives one profile from static shapes when `user` is empty (dynamic dims -> 1, with a warning).
std::vector<Profile> resolve_profiles(const std::vector<TensorInfo>& inputs, const std::vector<Profile>& user);

// Sets graph input types: a dim becomes static where every profile has min == max == the same value.
void specialize_inputs(ir::Graph& g, const std::vector<TensorInfo>& inputs, const std::vector<Profile>& profiles);

}  // namespace kiln::builder
