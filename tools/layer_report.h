// `kiln bench --layers`: a layer profile (kiln/profile_layers.h) as a text table, JSON and an SVG bar chart.
#pragma once
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "kiln/profile_layers.h"

namespace kiln_cli {

// The `top` slowest layers (all when top <= 0) as an aligned table, then the sums.
void print_layer_table(std::ostream& os, const kiln::LayerProfile& p, int top);
// Adds every layer (slowest first) and the totals to `j`.
void add_layer_json(nlohmann::ordered_json& j, const kiln::LayerProfile& p);
// A horizontal bar chart (SVG 1.1, plain text) of the `top` slowest layers, titled `title`.
std::string layer_svg(const kiln::LayerProfile& p, int top, const std::string& title);

}  // namespace kiln_cli
