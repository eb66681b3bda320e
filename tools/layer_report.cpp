#include "layer_report.h"

#include <algorithm>
#include <cstdio>
#include <iomanip>
#include <sstream>

namespace kiln_cli {
namespace {

size_t shown(const kiln::LayerProfile& p, int top) {
  return top <= 0 ? p.layers.size() : std::min(p.layers.size(), static_cast<size_t>(top));
}

std::string fit(const std::string& s, size_t w) { return s.size() <= w ? s : s.substr(0, w - 3) + "..."; }

std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&apos;"; break;
      default:
        // Control characters are not allowed in XML 1.0 text.
        if (static_cast<unsigned char>(c) >= 0x20 || c == '\t') o += c;
    }
  }
  return o;
}

std::string num(double v, int prec) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(prec) << v;
  return os.str();
}

}  // namespace

void print_layer_table(std::ostream& os, const kiln::LayerProfile& p, int top) {
  const size_t n = shown(p, top);
  size_t wn = 4, wo = 2, wt = 6;
  for (size_t i = 0; i < n; ++i) {
    wn = std::max(wn, std::min<size_t>(p.layers[i].name.size(), 40));
    wo = std::max(wo, p.layers[i].op.size());
    wt = std::max(wt, std::min<size_t>(p.layers[i].tactic.size(), 32));
  }
  os << std::left << std::setw(5) << "#" << std::setw(static_cast<int>(wn) + 2) << "node" << std::setw(static_cast<int>(wo) + 2)
     << "op" << std::setw(10) << "dtype" << std::setw(static_cast<int>(wt) + 2) << "tactic" << std::right << std::setw(12)
     << "median ms" << std::setw(8) << "share" << std::setw(8) << "cum" << "\n";
  double cum = 0;
  for (size_t i = 0; i < n; ++i) {
    const kiln::LayerTime& l = p.layers[i];
    cum += l.share;
    os << std::left << std::setw(5) << l.index << std::setw(static_cast<int>(wn) + 2) << fit(l.name, 40)
       << std::setw(static_cast<int>(wo) + 2) << l.op << std::setw(10) << l.dtype << std::setw(static_cast<int>(wt) + 2)
       << fit(l.tactic, 32) << std::right << std::setw(12) << num(l.median_ms, 4) << std::setw(7)
       << num(100 * l.share, 1) << "%" << std::setw(7) << num(100 * cum, 1) << "%\n";
  }
  if (n < p.layers.size()) {
    double rest = 0;
    for (size_t i = n; i < p.layers.size(); ++i) rest += p.layers[i].median_ms;
    os << "... " << p.layers.size() - n << " more layers: " << num(rest, 4) << " ms ("
       << num(p.layers_ms > 0 ? 100 * rest / p.layers_ms : 0, 1) << "%)\n";
  }
  os << "sum of layer medians: " << num(p.layers_ms, 4) << " ms; end to end (median of " << p.iterations
     << " ordinary runs): " << num(p.end_to_end_ms, 4) << " ms; difference "
     << num(p.end_to_end_ms - p.layers_ms, 4) << " ms (time between the nodes: launches, host work)\n";
}

void add_layer_json(nlohmann::ordered_json& j, const kiln::LayerProfile& p) {
  j["device"] = p.device;
  j["method"] = p.method;
  j["note"] = p.profile_note;
  j["iterations"] = p.iterations;
  j["profile"] = p.profile;  // the optimization profile the inputs selected: the tactics listed are its own
  j["layers_ms"] = p.layers_ms;
  j["end_to_end_ms"] = p.end_to_end_ms;
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const kiln::LayerTime& l : p.layers)
    list.push_back({{"index", l.index},
                    {"name", l.name},
                    {"op", l.op},
                    {"dtype", l.dtype},
                    {"tactic", l.tactic},
                    {"median_ms", l.median_ms},
                    {"share", l.share}});
  j["layers"] = list;
}

std::string layer_svg(const kiln::LayerProfile& p, int top, const std::string& title) {
  const size_t n = shown(p, top);
  const int row = 20, label_w = 420, bar_w = 420, value_w = 160, head = 48, foot = 28;
  const int width = label_w + bar_w + value_w + 20;
  const int height = head + static_cast<int>(n) * row + foot;
  double max_ms = 0;
  for (size_t i = 0; i < n; ++i) max_ms = std::max(max_ms, p.layers[i].median_ms);
  std::ostringstream os;
  os << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
     << "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" << width << "\" height=\"" << height
     << "\" viewBox=\"0 0 " << width << " " << height << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
     << "<rect x=\"0\" y=\"0\" width=\"" << width << "\" height=\"" << height << "\" fill=\"#ffffff\"/>\n"
     << "<text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">" << xml_escape(title) << "</text>\n"
     << "<text x=\"10\" y=\"38\" fill=\"#555555\">top " << n << " of " << p.layers.size() << " layers, median of "
     << p.iterations << " runs (" << xml_escape(p.method) << ", " << xml_escape(p.device) << "); sum "
     << num(p.layers_ms, 3) << " ms, end to end " << num(p.end_to_end_ms, 3) << " ms</text>\n";
  for (size_t i = 0; i < n; ++i) {
    const kiln::LayerTime& l = p.layers[i];
    const int y = head + static_cast<int>(i) * row;
    const double w = max_ms > 0 ? bar_w * l.median_ms / max_ms : 0;
    const std::string label = fit(l.name, 36) + " (" + l.op + ", " + fit(l.tactic, 20) + ")";
    os << "<text x=\"" << label_w - 6 << "\" y=\"" << y + 14 << "\" text-anchor=\"end\">" << xml_escape(label)
       << "</text>\n"
       << "<rect x=\"" << label_w << "\" y=\"" << y + 3 << "\" width=\"" << num(std::max(w, 0.5), 1)
       << "\" height=\"" << row - 6 << "\" fill=\"#4c72b0\"><title>" << xml_escape(l.name + ": " + l.tactic)
       << "</title></rect>\n"
       << "<text x=\"" << label_w + static_cast<int>(w) + 6 << "\" y=\"" << y + 14 << "\">" << num(l.median_ms, 4)
       << " ms (" << num(100 * l.share, 1) << "%)</text>\n";
  }
  os << "</svg>\n";
  return os.str();
}

}  // namespace kiln_cli
