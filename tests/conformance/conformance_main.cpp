// kiln_conformance: runs the ONNX backend node tests table-driven against kiln's CPU engine.
//
//   kiln_conformance --data DIR [--skips F] [--floor F] [--tolerances F] [--json F] [--doc F] [--write-doc F]
//                    [--filter S] [--verbose] [--no-fork] [--timeout S] [--suggest-skips] [--dump DIR]
//
// For every test folder under DIR (gen_node_tests.py writes them): tests whose ops kiln's registry does not all claim
// are skipped ("op not claimed"); the others run, each in a child process (a crash or hang is a failure of that test,
// not of the runner). Exit status 1 when a claimed test that does not pass is missing from --skips, or when fewer
// tests pass than --floor says. Skip-listed tests that now pass are reported so the list can be pruned.
// See tests/conformance/README.md.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "ir/op_registry.h"
#include "kiln/kiln.h"
#include "node_test.h"
#include "report.h"

namespace fs = std::filesystem;
using namespace kiln::conformance;

namespace {

struct Options {
  std::string data, skips, floor, tolerances, json, doc, write_doc, filter, dump;
  bool verbose = false, fork = true, suggest = false;
  int timeout_s = 20;
  long memory_mb = 4096;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "kiln_conformance: " << why << "\n"
            << "usage: kiln_conformance --data DIR [--skips FILE] [--floor FILE] [--tolerances FILE] [--json FILE]\n"
            << "         [--doc FILE] [--write-doc FILE] [--filter SUBSTRING] [--verbose] [--no-fork] [--timeout S]\n"
            << "         [--suggest-skips] [--dump DIR]\n";
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--data")
      o.data = value();
    else if (a == "--skips")
      o.skips = value();
    else if (a == "--floor")
      o.floor = value();
    else if (a == "--tolerances")
      o.tolerances = value();
    else if (a == "--json")
      o.json = value();
    else if (a == "--doc")
      o.doc = value();
    else if (a == "--write-doc")
      o.write_doc = value();
    else if (a == "--filter")
      o.filter = value();
    else if (a == "--timeout") {
      std::string v = value();
      char* end = nullptr;
      long t = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || t < 1 || t > 3600) usage("--timeout needs seconds (1..3600), got " + v);
      o.timeout_s = static_cast<int>(t);
    } else if (a == "--verbose" || a == "-v")
      o.verbose = true;
    else if (a == "--no-fork")
      o.fork = false;
    else if (a == "--suggest-skips")
      o.suggest = true;
    else if (a == "--dump")
      o.dump = value();
    else
      usage("unknown argument " + a);
  }
  if (o.data.empty()) usage("--data is required");
  return o;
}

std::string signal_text(int sig) {
  const char* d = strsignal(sig);
  return "signal " + std::to_string(sig) + " (" + (d ? d : "?") + ")";
}

// Runs one test in a child process: a crash, an abort or a hang fails that test only.
Result run_isolated(const TestInfo& t, const kiln::Tolerance& tol, const Options& o) {
  if (!o.fork) return run_test(t, tol, o.dump);
  int fd[2];
  if (pipe(fd) != 0) return {Status::Fail, "pipe() failed"};
  std::cout.flush();
  std::cerr.flush();
  pid_t pid = fork();
  if (pid < 0) {
    close(fd[0]);
    close(fd[1]);
    return {Status::Fail, "fork() failed"};
  }
  if (pid == 0) {
    close(fd[0]);
    alarm(static_cast<unsigned>(o.timeout_s));
    rlimit lim{};
    lim.rlim_cur = lim.rlim_max = static_cast<rlim_t>(o.memory_mb) << 20;
    setrlimit(RLIMIT_AS, &lim);
    std::string s = encode_result(run_test(t, tol, o.dump));
    size_t off = 0;
    while (off < s.size()) {
      ssize_t w = write(fd[1], s.data() + off, s.size() - off);
      if (w <= 0) break;
      off += static_cast<size_t>(w);
    }
    close(fd[1]);
    _exit(0);
  }
  close(fd[1]);
  std::string s;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd[0], buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
  close(fd[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  if (WIFSIGNALED(st)) {
    int sig = WTERMSIG(st);
    if (sig == SIGALRM) return {Status::Fail, "timed out after " + std::to_string(o.timeout_s) + " s"};
    return {Status::Fail, "crashed: " + signal_text(sig)};
  }
  if (WIFEXITED(st) && WEXITSTATUS(st) != 0 && s.empty())
    return {Status::Fail, "test process exited with status " + std::to_string(WEXITSTATUS(st))};
  return decode_result(s);
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

bool write_file(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp.conformance";
  {
    std::ofstream f(tmp, std::ios::binary);
    f << text;
    if (!f) return false;
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  return !ec;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  kiln::set_log_level(kiln::LogLevel::Error);
  kiln::ir::register_all_ops();
  std::map<std::string, std::string> skips;
  std::map<std::string, ToleranceOverride> tols;
  int floor = -1;
  try {
    if (!o.skips.empty()) skips = read_skips(o.skips);
    if (!o.tolerances.empty()) tols = read_tolerances(o.tolerances);
    if (!o.floor.empty()) floor = read_floor(o.floor);
  } catch (const kiln::Error& e) {
    std::cerr << "kiln_conformance: " << e.what() << "\n";
    return 2;
  }

  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& de : fs::directory_iterator(o.data, ec))
    if (de.is_directory() && fs::exists(de.path() / "model.onnx")) names.push_back(de.path().filename().string());
  if (ec || names.empty()) {
    std::cerr << "kiln_conformance: no node tests (folders with model.onnx) in " << o.data
              << (ec ? ": " + ec.message() : "") << "\n";
    return 2;
  }
  std::sort(names.begin(), names.end());

  // Scan every test first: expanded variants take their main op from the test they expand.
  std::vector<Record> records;
  std::map<std::string, size_t> index;
  for (const auto& n : names) {
    if (!o.filter.empty() && n.find(o.filter) == std::string::npos) continue;
    Record r;
    r.info = scan_test(n, (fs::path(o.data) / n).string());
    index[n] = records.size();
    records.push_back(std::move(r));
  }
  for (auto& r : records) {
    if (!r.info.expanded) continue;
    TestInfo base = scan_test(r.info.base, (fs::path(o.data) / r.info.base).string());
    if (base.error.empty() && !base.op.empty()) {
      r.info.op = base.op;
      r.info.domain = base.domain;
    }
  }

  const kiln::Tolerance node_tol = kiln::tolerance_for("node-test");
  for (auto& r : records) {
    const TestInfo& t = r.info;
    r.listed = skips.count(t.name) != 0;
    if (!t.error.empty())
      r.result = {Status::Fail, t.error};
    else if (!t.claimed())
      r.result = {Status::Skip, "op not claimed: " + join(t.unclaimed)};
    else if (!t.type_skip.empty())
      r.result = {Status::Skip, t.type_skip};
    else {
      auto ov = tols.find(t.name);
      r.result = run_isolated(t, ov == tols.end() ? node_tol : ov->second.tol, o);
    }
    if (o.verbose)
      std::cout << status_name(r.result.status) << "  " << t.name << "  [" << t.op << ", " << t.dtype << "]"
                << (r.result.reason.empty() ? "" : "  " + r.result.reason) << (r.listed ? "  (skip-listed)" : "")
                << std::endl;
  }

  // Verdicts: failed = claimed, not passing and not in skips.txt (these fail the run).
  int passed = 0, unexpected = 0, skipped = 0;
  std::vector<const Record*> failures, prunable;
  for (const auto& r : records) {
    if (r.result.status == Status::Pass) {
      ++passed;
      if (r.listed) prunable.push_back(&r);
    } else if (r.info.claimed() && !r.listed) {
      ++unexpected;
      failures.push_back(&r);
    } else {
      ++skipped;
    }
  }
  std::vector<std::string> stale;
  if (o.filter.empty())
    for (const auto& [name, why] : skips) {
      auto it = index.find(name);
      if (it == index.end())
        stale.push_back(name + " (no such test)");
      else if (!records[it->second].info.claimed())
        stale.push_back(name + " (not claimed: its ops are not registered)");
    }

  for (const Record* r : failures)
    std::cout << "FAIL (not in skips.txt) " << r->info.name << " [" << r->info.op << ", " << r->info.dtype
              << "]: " << (r->result.status == Status::Skip ? "skipped: " : "") << r->result.reason << "\n";
  if (!failures.empty())
    std::cout << "  -> fix kiln, or add each to " << (o.skips.empty() ? "skips.txt" : o.skips)
              << " as `test_name  # reason`\n";
  if (o.suggest) {
    // Only the by-design type skips get a ready line; failures need a person to say what is wrong.
    std::cout << "suggested skips.txt lines for unlisted type skips:\n";
    for (const Record* r : failures)
      if (r->result.status == Status::Skip)
        std::cout << r->info.name << "  # " << type_skip_reason(r->info.type_skip) << "\n";
  }
  for (const Record* r : prunable)
    std::cout << "NOW PASSES (prune from skips.txt) " << r->info.name << "  # was: " << skips[r->info.name] << "\n";
  for (const auto& s : stale) std::cout << "STALE skips.txt entry " << s << "\n";

  std::string origin = data_origin(o.data);
  Schemas schemas = read_schemas(o.data);
  if (!o.json.empty() && !write_file(o.json, results_json(records, origin, schemas))) {
    std::cerr << "kiln_conformance: cannot write " << o.json << "\n";
    return 2;
  }
  for (const auto& path : {o.doc, o.write_doc})
    if (!path.empty() && !write_file(path, operators_markdown(records, origin, schemas))) {
      std::cerr << "kiln_conformance: cannot write " << path << "\n";
      return 2;
    }

  Tally t = tally(records);
  std::cout << "claimed-op node tests: " << t.claimed << " (" << t.unclaimed << " more not claimed: ops kiln does not "
            << "register); " << t.typed << " skipped for a type kiln lacks; of the " << t.run << " run, " << t.passed
            << " pass: " << std::fixed << std::setprecision(1) << (t.run ? 100.0 * t.passed / t.run : 0.0)
            << "% (target >= 95%); of all claimed: " << (t.claimed ? 100.0 * t.passed / t.claimed : 0.0) << "%\n";
  bool ok = unexpected == 0;
  if (floor >= 0 && o.filter.empty()) {
    std::cout << "floor: " << floor << " passes required";
    if (passed < floor) {
      std::cout << " -- BELOW THE FLOOR by " << floor - passed;
      ok = false;
    } else if (passed > floor && o.filter.empty()) {
      std::cout << " (the floor can be raised to " << passed << " in " << o.floor << ")";
    }
    std::cout << "\n";
  }
  std::cout << "conformance: " << passed << " passed, " << unexpected << " failed, " << skipped << " skipped"
            << std::endl;
  return ok ? 0 : 1;
}
