// Profile resolution and input specialization for the builder.
#pragma once
#include <map>
#include <vector>

#include "ir/graph.h"
#include "kiln/model.h"
#include "kiln/profile.h"

namespace kiln::builder {

// Validates user profiles against the model's inputs (every input named exactly once, ranks and fixed dims
// agree), or derives one profile from static shapes when `user` is empty (dynamic dims -> 1, with a warning).
// Inputs with a default (`defaults`) may be left out of user profiles: their default's shape is added.
std::vector<Profile> resolve_profiles(const std::vector<TensorInfo>& inputs, const std::vector<Profile>& user,
                                      const std::map<std::string, Tensor>& defaults = {});

// Turns inputs with defaults into constants (initializers) and drops them from `inputs`.
void freeze_input_defaults(ir::Graph& g, std::vector<TensorInfo>& inputs);

// Sets graph input types: a dim becomes static where every profile has min == max == the same value.
void specialize_inputs(ir::Graph& g, const std::vector<TensorInfo>& inputs, const std::vector<Profile>& profiles);

// Every value's concrete shape at each profile's min, opt and max input shapes, from host shape inference (values
// whose shape stays unknown there are left out; an instance whose inference fails is skipped).
std::vector<std::map<std::string, Shape>> profile_value_shapes(const ir::Graph& g, const std::vector<Profile>& profiles);

}  // namespace kiln::builder
