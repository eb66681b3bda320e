// Plan file framing: preamble, header, checks, checksum and weights blob (docs/plan-format.md).
#include "plan/plan.h"

#include <cstring>
#include <new>
#include <sstream>

#include "kiln/version.h"
#include "plan/plan_body.h"
#include "plan/plan_codec.h"
#include "util/error.h"
#include "util/sha256.h"

namespace kiln::plan {

namespace plan_file_detail {

constexpr size_t kMinFileSize = kPreambleSize + kChecksumSize;

uint64_t align_up(uint64_t v) { return (v + kWeightAlignment - 1) / kWeightAlignment * kWeightAlignment; }

// Raw 32-byte SHA-256 of [data, data + n).
std::string sha256_raw(const char* data, size_t n) {
  std::string hex = util::sha256_hex(data, n);
  std::string raw(hex.size() / 2, '\0');
  auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<char>(nibble(hex[2 * i]) * 16 + nibble(hex[2 * i + 1]));
  return raw;
}

std::string to_hex(const char* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s.push_back(digits[static_cast<uint8_t>(p[i]) >> 4]);
    s.push_back(digits[static_cast<uint8_t>(p[i]) & 15]);
  }
  return s;
}

// The first bytes of a file as a printable string ("\x89PNG...").
std::string printable(const char* p, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(p[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
      s.push_back(static_cast<char>(c));
    } else {
      static const char* digits = "0123456789abcdef";
      s += "\\x";
      s.push_back(digits[c >> 4]);
      s.push_back(digits[c & 15]);
    }
  }
  return s;
}

[[noreturn]] void truncated(const std::string& origin, size_t have, uint64_t want, const char* note) {
  KILN_THROW(Integrity, "kiln plan '" << origin << "' is truncated: " << have << " bytes, expected at least " << want
                                      << note);
}

// Magic, format version, preamble and header; Integrity / PlanMismatch as documented.
Header parse_front(const char* data, size_t size, const std::string& origin) {
  size_t m = size < sizeof(kMagic) ? size : sizeof(kMagic);
  if (std::memcmp(data, kMagic, m) != 0)
    KILN_THROW(PlanMismatch, "not a kiln plan: magic \"" << printable(data, m) << "\" at the start of '" << origin
                                                         << "', expected \"KILNPLAN\"");
  if (size < 12) truncated(origin, size, kMinFileSize, " (the file ends inside the preamble)");
  Header h;
  h.format_version = codec::load_u32(data + 8);
  if (h.format_version < kOldestFormatVersion || h.format_version > kFormatVersion)
    KILN_THROW(PlanMismatch, "kiln plan '" << origin << "' has format version " << h.format_version
                                           << ", this kiln reads " << kOldestFormatVersion << " to " << kFormatVersion
                                           << "; rebuild the plan");
  if (size < kPreambleSize) truncated(origin, size, kMinFileSize, " (the file ends inside the preamble)");
  uint64_t header_len = codec::load_u32(data + 12);
  h.file_size = codec::load_u64(data + 16);
  if (size - kPreambleSize < header_len)
    truncated(origin, size, kPreambleSize + header_len + kChecksumSize, " (the file ends inside the header)");
  codec::Reader r(data + kPreambleSize, static_cast<size_t>(header_len), kPreambleSize, origin, "header");
  h.kiln_version = r.str("kiln version");
  h.build_id = r.str("build id");
  h.target = r.str("target");
  h.precision = r.str("precision");
  r.expect_end();
  return h;
}

void check_header(const Header& h, const std::string& origin, const ReadOptions& opts) {
  if (opts.check_build_id && h.build_id != kiln::build_id())
    KILN_THROW(PlanMismatch, "kiln plan '" << origin << "' was built by kiln " << h.kiln_version << " (build id "
                                           << h.build_id << "), this is kiln " << kiln::version() << " (build id "
                                           << kiln::build_id() << "); rebuild the plan");
  if (!target_supported(h.target))
    KILN_THROW(PlanMismatch, "kiln plan '" << origin << "' targets '" << h.target << "', which this kiln build ("
                                           << kiln::build_id() << ") cannot run; it supports: cpu"
                                           << (kiln::built_with_cuda() ? ", cuda:sm_XX" : ""));
}

std::shared_ptr<detail::EngineImpl> read_plan(const char* data, size_t size, std::shared_ptr<const void> owner,
                                              const std::string& origin, const ReadOptions& opts) {
  Header h = parse_front(data, size, origin);
  check_header(h, origin, opts);

  // Whole-file checks: recorded size, then the checksum.
  if (size < h.file_size) truncated(origin, size, h.file_size, " (the size recorded in its header)");
  if (size > h.file_size)
    KILN_THROW(Integrity, "kiln plan '" << origin << "' has " << (size - h.file_size)
                                        << " unexpected bytes after its recorded size of " << h.file_size);
  size_t header_end = kPreambleSize + codec::load_u32(data + 12);
  if (size < header_end + kChecksumSize)
    truncated(origin, size, header_end + kChecksumSize, " (no room for the checksum)");
  size_t body_end = size - kChecksumSize;
  if (opts.verify_checksum) {
    std::string want = sha256_raw(data, body_end);
    if (std::memcmp(want.data(), data + body_end, kChecksumSize) != 0)
      KILN_THROW(Integrity, "kiln plan '" << origin << "': checksum mismatch: file stores sha256 "
                                          << to_hex(data + body_end, kChecksumSize) << ", contents hash to "
                                          << to_hex(want.data(), want.size()) << " (corrupt or modified file)");
  }

  // Body: section lengths, metadata, padding, weights blob.
  codec::Reader r(data + header_end, body_end - header_end, header_end, origin, "body");
  uint64_t meta_len = r.u64("metadata length");
  uint64_t blob_offset = r.u64("weights offset");
  uint64_t blob_size = r.u64("weights size");
  if (meta_len > r.remaining())
    r.fail("metadata length " + std::to_string(meta_len) + " exceeds the " + std::to_string(r.remaining()) +
           " bytes left");
  size_t meta_start = r.offset();
  const char* meta = r.raw(static_cast<size_t>(meta_len), "metadata");
  uint64_t meta_end = meta_start + meta_len;
  if (blob_offset != align_up(meta_end) || blob_offset > body_end || blob_size != body_end - blob_offset)
    r.fail("weights blob at [" + std::to_string(blob_offset) + ", +" + std::to_string(blob_size) +
           ") does not follow the metadata (ends at " + std::to_string(meta_end) + ") up to the checksum at " +
           std::to_string(body_end));
  for (uint64_t i = meta_end; i < blob_offset; ++i)
    if (data[i] != 0) r.fail("non-zero padding before the weights blob");

  body::Blob blob;
  blob.data = data + blob_offset;
  blob.size = blob_size;
  blob.file_offset = static_cast<size_t>(blob_offset);
  blob.owner = std::move(owner);

  auto e = std::make_shared<detail::EngineImpl>();
  e->target = h.target;
  e->precision = h.precision;
  e->kiln_version = h.kiln_version;
  e->build_id = h.build_id;
  codec::Reader mr(meta, static_cast<size_t>(meta_len), meta_start, origin, "metadata");
  body::read_engine_body(mr, blob, *e, h.format_version);
  return e;
}

}  // namespace plan_file_detail

bool target_supported(const std::string& target) {
  if (target == "cpu") return true;
  return kiln::built_with_cuda() && target.rfind("cuda:sm_", 0) == 0 && target.size() > 8;
}

std::string serialize(const detail::EngineImpl& e, uint32_t format_version) {
  namespace d = plan_file_detail;
  if (format_version < kOldestFormatVersion || format_version > kFormatVersion)
    KILN_THROW(InvalidArgument, "plan format version " << format_version << ": this kiln writes "
                                                       << kOldestFormatVersion << " to " << kFormatVersion);
  codec::Writer head;
  head.str(e.kiln_version.empty() ? std::string(kiln::version()) : e.kiln_version);
  head.str(e.build_id.empty() ? std::string(kiln::build_id()) : e.build_id);
  head.str(e.target);
  head.str(e.precision);

  codec::Writer meta;
  body::TensorSink sink;
  body::write_engine_body(meta, e, sink, format_version);

  codec::Writer w;
  uint64_t meta_start = kPreambleSize + head.size() + 3 * 8;
  uint64_t blob_offset = d::align_up(meta_start + meta.size());
  uint64_t file_size = blob_offset + sink.blob_size + kChecksumSize;
  w.bytes().reserve(static_cast<size_t>(file_size));
  w.raw(kMagic, sizeof(kMagic));
  w.u32(format_version);
  w.count(head.size(), "header bytes");
  w.u64(file_size);
  w.raw(head.bytes().data(), head.size());
  w.u64(meta.size());
  w.u64(blob_offset);
  w.u64(sink.blob_size);
  w.raw(meta.bytes().data(), meta.size());
  for (size_t i = 0; i < sink.tensors.size(); ++i) {
    w.bytes().resize(static_cast<size_t>(blob_offset + sink.offsets[i]), '\0');
    w.raw(sink.tensors[i].data(), sink.tensors[i].nbytes());
  }
  w.bytes().resize(static_cast<size_t>(blob_offset + sink.blob_size), '\0');
  std::string sum = d::sha256_raw(w.bytes().data(), w.size());
  w.raw(sum.data(), sum.size());
  return std::move(w.bytes());
}

std::shared_ptr<detail::EngineImpl> deserialize(const std::string& bytes, const std::string& origin) {
  // One 64-byte aligned copy, so the weight views are aligned in memory as they are in the file.
  size_t n = bytes.size() == 0 ? 1 : bytes.size();
  void* p = ::operator new(n, std::align_val_t(kWeightAlignment), std::nothrow);
  if (!p) KILN_THROW(OutOfMemory, "cannot allocate " << bytes.size() << " bytes to load kiln plan '" << origin << "'");
  std::shared_ptr<const void> owner(p, [](void* q) { ::operator delete(q, std::align_val_t(kWeightAlignment)); });
  if (!bytes.empty()) std::memcpy(p, bytes.data(), bytes.size());
  return plan_file_detail::read_plan(static_cast<const char*>(p), bytes.size(), std::move(owner), origin,
                                     ReadOptions{});
}

std::shared_ptr<detail::EngineImpl> deserialize(std::shared_ptr<const std::string> bytes, const std::string& origin,
                                                const ReadOptions& opts) {
  if (!bytes) KILN_THROW(InvalidArgument, "kiln plan '" << origin << "': no bytes");
  const char* data = bytes->data();
  size_t size = bytes->size();
  return plan_file_detail::read_plan(data, size, std::shared_ptr<const void>(bytes, data), origin, opts);
}

Header read_header(const std::string& bytes, const std::string& origin) {
  return plan_file_detail::parse_front(bytes.data(), bytes.size(), origin);
}

}  // namespace kiln::plan
