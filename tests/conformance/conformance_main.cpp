// kiln_conformance: runs the ONNX backend node tests table-driven against kiln's engine (CPU or CUDA).
//
//   kiln_conformance --data DIR [--target cpu|cuda|cuda:N] [--jobs N] [--skips F ...] [--floor F] [--tolerances F]
//                    [--json F] [--doc F] [--write-doc F] [--filter S] [--verbose] [--no-fork] [--timeout S]
//                    [--suggest-skips] [--dump DIR]
//
// For every test folder under DIR (gen_node_tests.py writes them): tests whose ops kiln's registry does not all claim
// are skipped ("op not claimed"); the others run, each in a child process (a crash or hang is a failure of that test,
// not of the runner), --jobs of them at a time. Exit status 1 when a claimed test that does not pass is missing from
// the --skips files, or when fewer tests pass than --floor says. Skip-listed tests that now pass are reported so the
// list can be pruned. With --target cuda and no CUDA device (or a kiln built without CUDA) the run prints
// "skipped: ..." and exits 77. See tests/conformance/README.md.
#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
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
  std::string data, floor, tolerances, json, doc, write_doc, filter, dump;
  std::vector<std::string> skips;  // --skips, repeatable: the lists are merged
  bool verbose = false, fork = true, suggest = false;
  int timeout_s = 20;
  int jobs = 1;
  long memory_mb = 4096;  // address-space cap of a CPU test's child (none on CUDA: the driver maps far more)
  RunTarget where;
};

constexpr int kSkipExit = 77;  // ctest SKIP_RETURN_CODE of conformance_cuda

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "kiln_conformance: " << why << "\n"
            << "usage: kiln_conformance --data DIR [--target cpu|cuda|cuda:N] [--jobs N] [--skips FILE ...]\n"
            << "         [--floor FILE] [--tolerances FILE] [--json FILE] [--doc FILE] [--write-doc FILE]\n"
            << "         [--filter SUBSTRING] [--verbose] [--no-fork] [--timeout S] [--suggest-skips] [--dump DIR]\n";
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
      o.skips.push_back(value());
    else if (a == "--target") {
      std::string v = value();
      if (v == "cpu") {
        o.where = RunTarget{};
      } else {
        std::string n = v == "cuda" ? "0" : v.rfind("cuda:", 0) == 0 ? v.substr(5) : "";
        char* end = nullptr;
        long d = std::strtol(n.c_str(), &end, 10);
        if (n.empty() || *end != '\0' || d < 0 || d > 1024) usage("--target needs cpu, cuda or cuda:N, got " + v);
        o.where = RunTarget{kiln::Target::Cuda, static_cast<int>(d)};
      }
    } else if (a == "--jobs" || a == "-j") {
      std::string v = value();
      char* end = nullptr;
      long j = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || j < 1 || j > 256) usage("--jobs needs 1..256, got " + v);
      o.jobs = static_cast<int>(j);
    } else if (a == "--floor")
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

// Starts one test in a child process (a crash, an abort or a hang fails that test only); the child writes its
// encoded Result to the pipe whose read end is returned in *fd. Returns the pid, -1 when fork/pipe failed.
pid_t start_child(const TestInfo& t, const kiln::Tolerance& tol, const Options& o, int* fd_out) {
  int fd[2];
  if (pipe(fd) != 0) return -1;
  std::cout.flush();
  std::cerr.flush();
  pid_t pid = fork();
  if (pid < 0) {
    close(fd[0]);
    close(fd[1]);
    return -1;
  }
  if (pid == 0) {
    close(fd[0]);
    alarm(static_cast<unsigned>(o.timeout_s));
    if (o.where.target == kiln::Target::Cpu) {
      rlimit lim{};
      lim.rlim_cur = lim.rlim_max = static_cast<rlim_t>(o.memory_mb) << 20;
      setrlimit(RLIMIT_AS, &lim);
    }
    std::string s = encode_result(run_test(t, tol, o.dump, o.where));
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
  *fd_out = fd[0];
  return pid;
}

// Reaps a child whose pipe reached EOF and turns its exit and output into the test's result.
Result finish_child(pid_t pid, const std::string& s, const Options& o) {
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(st)) {
    int sig = WTERMSIG(st);
    if (sig == SIGALRM) return {Status::Fail, "timed out after " + std::to_string(o.timeout_s) + " s"};
    return {Status::Fail, "crashed: " + signal_text(sig)};
  }
  if (WIFEXITED(st) && WEXITSTATUS(st) != 0 && s.empty())
    return {Status::Fail, "test process exited with status " + std::to_string(WEXITSTATUS(st))};
  return decode_result(s);
}

// Runs records[i] for every i in `todo`: in this process with --no-fork, else in child processes, o.jobs at a time.
void run_tests(std::vector<Record>& records, const std::vector<size_t>& todo,
               const std::map<std::string, ToleranceOverride>& tols, const kiln::Tolerance& node_tol,
               const Options& o) {
  auto tol_of = [&](const TestInfo& t) {
    auto ov = tols.find(t.name);
    return ov == tols.end() ? node_tol : ov->second.tol;
  };
  if (!o.fork) {
    for (size_t i : todo) records[i].result = run_test(records[i].info, tol_of(records[i].info), o.dump, o.where);
    return;
  }
  struct Running {
    pid_t pid;
    int fd;
    size_t record;
    std::string out;
  };
  std::vector<Running> running;
  size_t next = 0;
  while (next < todo.size() || !running.empty()) {
    while (running.size() < static_cast<size_t>(o.jobs) && next < todo.size()) {
      size_t i = todo[next++];
      int fd = -1;
      pid_t pid = start_child(records[i].info, tol_of(records[i].info), o, &fd);
      if (pid < 0)
        records[i].result = {Status::Fail, "fork() or pipe() failed"};
      else
        running.push_back({pid, fd, i, {}});
    }
    if (running.empty()) continue;
    std::vector<pollfd> fds;
    for (const auto& r : running) fds.push_back({r.fd, POLLIN, 0});
    if (poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      std::cerr << "kiln_conformance: poll: " << std::strerror(errno) << "\n";
      std::exit(2);
    }
    for (size_t k = running.size(); k-- > 0;) {
      if (fds[k].revents == 0) continue;
      char buf[4096];
      ssize_t n = read(running[k].fd, buf, sizeof buf);
      if (n > 0) {
        running[k].out.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      close(running[k].fd);
      records[running[k].record].result = finish_child(running[k].pid, running[k].out, o);
      running.erase(running.begin() + static_cast<std::ptrdiff_t>(k));
    }
  }
}

// Number of CUDA devices, asked in a child process so that this process never initializes CUDA (a CUDA context
// does not survive fork(), and every test runs in a forked child).
int probe_cuda_devices(const Options& o) {
  if (!kiln::built_with_cuda()) return 0;
  if (!o.fork) return kiln::cuda_device_count();
  std::cout.flush();
  pid_t pid = fork();
  if (pid < 0) return 0;
  if (pid == 0) _exit(std::min(kiln::cuda_device_count(), 100));
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 0;
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
  if (o.where.target == kiln::Target::Cuda) {
    // A machine without a GPU skips the CUDA run (exit 77, ctest SKIP_RETURN_CODE) instead of failing it.
    if (!kiln::built_with_cuda()) {
      std::cout << "skipped: this kiln was built without CUDA (--target " << o.where.str() << ")" << std::endl;
      return kSkipExit;
    }
    const int n = probe_cuda_devices(o);
    if (n == 0) {
      std::cout << "skipped: no CUDA device (--target " << o.where.str() << ")" << std::endl;
      return kSkipExit;
    }
    if (o.where.device >= n) {
      std::cerr << "kiln_conformance: --target " << o.where.str() << ": only " << n << " CUDA device(s)\n";
      return 2;
    }
  }
  try {
    for (const auto& f : o.skips)
      for (const auto& [name, why] : read_skips(f))
        if (!skips.emplace(name, why).second) {
          std::cerr << "kiln_conformance: " << name << " is listed in more than one --skips file (" << f << ")\n";
          return 2;
        }
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
  std::vector<size_t> todo;
  for (size_t i = 0; i < records.size(); ++i) {
    Record& r = records[i];
    const TestInfo& t = r.info;
    r.listed = skips.count(t.name) != 0;
    if (!t.error.empty())
      r.result = {Status::Fail, t.error};
    else if (!t.claimed())
      r.result = {Status::Skip, "op not claimed: " + join(t.unclaimed)};
    else if (!t.type_skip.empty())
      r.result = {Status::Skip, t.type_skip};
    else
      todo.push_back(i);
  }
  run_tests(records, todo, tols, node_tol, o);
  for (const auto& r : records) {
    const TestInfo& t = r.info;
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
    std::cout << "  -> fix kiln, or add each to " << (o.skips.empty() ? "skips.txt" : o.skips.back())
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
  if (!o.json.empty()) {
    nlohmann::ordered_json j = nlohmann::ordered_json::parse(results_json(records, origin, schemas));
    j["target"] = o.where.str();
    if (!write_file(o.json, j.dump(1) + "\n")) {
      std::cerr << "kiln_conformance: cannot write " << o.json << "\n";
      return 2;
    }
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
  std::cout << "target: " << o.where.str() << "\n";
  std::cout << "conformance: " << passed << " passed, " << unexpected << " failed, " << skipped << " skipped"
            << std::endl;
  return ok ? 0 : 1;
}
