#include "backend/python_json.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "util/error.h"

namespace kiln::backend::pyjson {
namespace pyjson_impl {

void append_u16_escape(std::string& out, unsigned v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "\\u%04x", v & 0xffffu);
  out += buf;
}

// Decodes one UTF-8 sequence at s[i]; returns the code point and advances i. Invalid bytes decode as
// U+DC80..U+DCFF (Python's surrogateescape, which is how a str holding such a path would look).
unsigned decode_utf8(const std::string& s, size_t& i) {
  auto byte = [&](size_t k) { return static_cast<unsigned>(static_cast<unsigned char>(s[k])); };
  const unsigned c = byte(i);
  if (c < 0x80) {
    ++i;
    return c;
  }
  const size_t extra = (c >= 0xc2 && c <= 0xdf) ? 1 : (c >= 0xe0 && c <= 0xef) ? 2 : (c >= 0xf0 && c <= 0xf4) ? 3 : 0;
  unsigned cp = c & (extra == 1 ? 0x1fu : extra == 2 ? 0x0fu : 0x07u);
  bool ok = extra != 0 && i + extra < s.size();
  for (size_t k = 1; ok && k <= extra; ++k) {
    if (i + k >= s.size() || (byte(i + k) & 0xc0u) != 0x80u) ok = false;
    else cp = (cp << 6) | (byte(i + k) & 0x3fu);
  }
  // Overlong forms, code points past U+10FFFF and UTF-16 surrogates are not valid UTF-8.
  if (ok && ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
             (cp >= 0xd800 && cp <= 0xdfff)))
    ok = false;
  if (!ok) {
    ++i;
    return 0xdc00u | c;
  }
  i += extra + 1;
  return cp;
}

void dump_string(std::string& out, const std::string& s) {
  out += '"';
  for (size_t i = 0; i < s.size();) {
    unsigned cp = decode_utf8(s, i);
    switch (cp) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      default: break;
    }
    if (cp >= 0x20 && cp < 0x7f) {
      out += static_cast<char>(cp);
    } else if (cp < 0x10000) {
      append_u16_escape(out, cp);
    } else {
      unsigned v = cp - 0x10000;
      append_u16_escape(out, 0xd800u | (v >> 10));
      append_u16_escape(out, 0xdc00u | (v & 0x3ffu));
    }
  }
  out += '"';
}

void newline(std::string& out, int indent, int level) {
  out += '\n';
  out.append(static_cast<size_t>(indent) * static_cast<size_t>(level), ' ');
}

void dump(std::string& out, const Json& j, int indent, int level) {
  switch (j.type()) {
    case Json::value_t::null: out += "null"; return;
    case Json::value_t::boolean: out += j.get<bool>() ? "true" : "false"; return;
    case Json::value_t::number_integer: out += std::to_string(j.get<int64_t>()); return;
    case Json::value_t::number_unsigned: out += std::to_string(j.get<uint64_t>()); return;
    case Json::value_t::number_float: {
      double v = j.get<double>();
      if (std::isnan(v)) out += "NaN";
      else if (std::isinf(v)) out += v > 0 ? "Infinity" : "-Infinity";
      else out += repr_float(v);
      return;
    }
    case Json::value_t::string: dump_string(out, j.get_ref<const std::string&>()); return;
    case Json::value_t::array: {
      if (j.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      bool first = true;
      for (const auto& e : j) {
        if (!first) out += indent < 0 ? ", " : ",";
        first = false;
        if (indent >= 0) newline(out, indent, level + 1);
        dump(out, e, indent, level + 1);
      }
      if (indent >= 0) newline(out, indent, level);
      out += ']';
      return;
    }
    case Json::value_t::object: {
      if (j.empty()) {
        out += "{}";
        return;
      }
      out += '{';
      bool first = true;
      for (const auto& [k, v] : j.items()) {
        if (!first) out += indent < 0 ? ", " : ",";
        first = false;
        if (indent >= 0) newline(out, indent, level + 1);
        dump_string(out, k);
        out += ": ";
        dump(out, v, indent, level + 1);
      }
      if (indent >= 0) newline(out, indent, level);
      out += '}';
      return;
    }
    default: KILN_THROW(InvalidArgument, "value of JSON type '" << j.type_name() << "' cannot be serialized");
  }
}

}  // namespace pyjson_impl

std::string dumps(const Json& value, int indent) {
  std::string out;
  pyjson_impl::dump(out, value, indent, 0);
  return out;
}

Json parse(const std::string& text, const std::string& what) {
  try {
    return Json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    KILN_THROW(InvalidArgument, what << ": not valid JSON: " << e.what());
  }
}

std::string repr_str(const std::string& s) {
  char q = (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) ? '"' : '\'';
  std::string out(1, q);
  for (unsigned char c : s) {
    if (c == '\\' || c == static_cast<unsigned char>(q)) {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += q;
  return out;
}

std::string repr_float(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  // Shortest round-trip digits in scientific form, e.g. "-1.2345e+02", then Python's layout: fixed notation for
  // exponents -4..15 (always with a fractional part), scientific with a two-digit exponent otherwise.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  bool neg = !sci.empty() && sci[0] == '-';
  if (neg) sci.erase(0, 1);
  size_t epos = sci.find('e');
  std::string mant = sci.substr(0, epos);
  int exp = std::stoi(sci.substr(epos + 1));
  std::string digits;
  for (char c : mant)
    if (c != '.') digits += c;
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  std::string out = neg ? "-" : "";
  if (exp >= -4 && exp < 16) {
    if (exp >= 0) {
      size_t int_len = static_cast<size_t>(exp) + 1;
      std::string ip = digits.substr(0, std::min(int_len, digits.size()));
      if (ip.size() < int_len) ip.append(int_len - ip.size(), '0');
      std::string fp = digits.size() > int_len ? digits.substr(int_len) : "0";
      out += ip;
      out += '.';
      out += fp;
    } else {
      out += "0.";
      out.append(static_cast<size_t>(-exp - 1), '0');
      out += digits;
    }
  } else {
    out += digits[0];
    if (digits.size() > 1) {
      out += '.';
      out.append(digits, 1, std::string::npos);
    }
    char eb[16];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    out += eb;
  }
  return out;
}

}  // namespace kiln::backend::pyjson
