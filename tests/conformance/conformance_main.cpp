// kiln_conformance: runs the ONNX backend node tests table-driven against kiln's engine (CPU or CUDA).
//
//   kiln_conformance --data DIR [--target cpu|cuda|cuda:N] [--jobs N] [--skips F ...] [--floor F] [--tolerances F]
//                    [--json F] [--doc F] [--write-doc F] [--filter S] [--verbose] [--no-fork] [--timeout S]
//                    [--slow S] [--progress N] [--tests-per-process N] [--suggest-skips] [--dump DIR]
//
// For every test folder under DIR (gen_node_tests.py writes them): tests whose ops kiln's registry does not all claim
// are skipped ("op not claimed"); the others run in worker processes (a crash or hang is a failure of that test,
// not of the runner), --jobs of them at a time: one test per process on the CPU, up to --tests-per-process (256) on
// CUDA so that CUDA initialization is paid once per worker, not per test. A "progress:" line every --progress tests,
// a "slow:" line naming a test that runs over --slow seconds; --timeout kills it. Exit status 1 when a claimed test that does not pass is missing from
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
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
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
  int slow_s = 10;              // a test running longer is named ("slow: ...") while it runs
  int progress = 100;           // a "progress:" line every N finished tests (0: none)
  int tests_per_process = 0;    // tests a worker process runs before a fresh one (0: 1 on the CPU, 256 on CUDA)
  int jobs = 1;
  long memory_mb = 4096;  // address-space cap of a CPU test's child (none on CUDA: the driver maps far more)
  RunTarget where;
};

constexpr int kSkipExit = 77;  // ctest SKIP_RETURN_CODE of conformance_cuda

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "kiln_conformance: " << why << "\n"
            << "usage: kiln_conformance --data DIR [--target cpu|cuda|cuda:N] [--jobs N] [--skips FILE ...]\n"
            << "         [--floor FILE] [--tolerances FILE] [--json FILE] [--doc FILE] [--write-doc FILE]\n"
            << "         [--filter SUBSTRING] [--verbose] [--no-fork] [--timeout S] [--slow S] [--progress N]\n"
            << "         [--tests-per-process N] [--suggest-skips] [--dump DIR]\n";
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
    } else if (a == "--slow" || a == "--progress" || a == "--tests-per-process") {
      std::string v = value();
      char* end = nullptr;
      long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n < 0 || n > 1000000) usage(a + " needs a count, got " + v);
      (a == "--slow" ? o.slow_s : a == "--progress" ? o.progress : o.tests_per_process) = static_cast<int>(n);
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

// ---- worker processes ------------------------------------------------------------------------------------------
// Tests run in forked worker processes, --jobs at a time, so that a crash, an abort or a hang fails that test only.
// A worker reads test indices from its command pipe ("I\n") and answers each with a framed result ("LEN\n" then
// LEN bytes of encode_result). It exits after `per_worker` tests and after any test that does not pass (the next
// test gets a fresh process, never one a failure may have left in a bad state); the runner starts workers as
// needed. On the CPU a worker runs one test (a fork is cheap, and each test gets its own address-space cap); on
// CUDA a worker runs many: a process pays for its CUDA context, module loading and cuBLASLt / cuDNN handles once,
// not once per test. The runner enforces the time limit (kills the worker), names tests that are slow, and prints
// progress.

struct Worker {
  pid_t pid = -1;
  int cmd = -1;           // write end: test indices
  int res = -1;           // read end: framed results
  long record = -1;       // test in flight, -1 when idle
  double started = 0;     // when it started (monotonic seconds)
  bool warned = false;    // named as slow already
  int done = 0;           // tests this process ran
  std::string buf;        // result bytes read so far
};

double now_s() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

bool write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t w = write(fd, s.data() + off, s.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    off += static_cast<size_t>(w);
  }
  return true;
}

// The worker's loop (in the child; never returns).
[[noreturn]] void worker_main(int cmd, int res, const std::vector<Record>& records,
                              const std::function<kiln::Tolerance(const TestInfo&)>& tol_of, const Options& o,
                              int per_worker) {
  if (o.where.target == kiln::Target::Cpu) {
    rlimit lim{};
    lim.rlim_cur = lim.rlim_max = static_cast<rlim_t>(o.memory_mb) << 20;
    setrlimit(RLIMIT_AS, &lim);
  }
  std::string line;
  for (int n = 0; n < per_worker; ++n) {
    line.clear();
    char c = 0;
    for (;;) {
      ssize_t r = read(cmd, &c, 1);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) _exit(0);  // the runner closed the pipe
      if (c == '\n') break;
      line += c;
    }
    const size_t i = std::strtoul(line.c_str(), nullptr, 10);
    if (i >= records.size()) _exit(3);
    const TestInfo& t = records[i].info;
    const Result r = run_test(t, tol_of(t), o.dump, o.where);
    const std::string e = encode_result(r);
    if (!write_all(res, std::to_string(e.size()) + "\n" + e)) _exit(4);
    if (r.status != Status::Pass) break;
  }
  _exit(0);
}

// Starts a worker; false when fork / pipe failed.
bool start_worker(Worker& w, const std::vector<Record>& records,
                  const std::function<kiln::Tolerance(const TestInfo&)>& tol_of, const Options& o, int per_worker,
                  const std::vector<Worker>& all) {
  int cmd[2], res[2];
  if (pipe(cmd) != 0) return false;
  if (pipe(res) != 0) {
    close(cmd[0]);
    close(cmd[1]);
    return false;
  }
  std::cout.flush();
  std::cerr.flush();
  pid_t pid = fork();
  if (pid < 0) {
    for (int fd : {cmd[0], cmd[1], res[0], res[1]}) close(fd);
    return false;
  }
  if (pid == 0) {
    close(cmd[1]);
    close(res[0]);
    for (const Worker& x : all)  // the other workers' pipes: their EOF must not wait for this process
      for (int fd : {x.cmd, x.res})
        if (fd >= 0) close(fd);
    worker_main(cmd[0], res[1], records, tol_of, o, per_worker);
  }
  close(cmd[0]);
  close(res[1]);
  w = Worker{};
  w.pid = pid;
  w.cmd = cmd[1];
  w.res = res[0];
  return true;
}

// Ends a worker: closes its pipes, kills it when asked, reaps it; returns its wait status.
int stop_worker(Worker& w, bool kill_it) {
  if (kill_it) kill(w.pid, SIGKILL);
  if (w.cmd >= 0) close(w.cmd);
  if (w.res >= 0) close(w.res);
  int st = 0;
  while (waitpid(w.pid, &st, 0) < 0 && errno == EINTR) {
  }
  w = Worker{};
  return st;
}

// Lets a worker that exits by itself go (after a failure or its last test): closes its pipes; reaped later.
void retire_worker(Worker& w, std::vector<pid_t>& exiting) {
  if (w.cmd >= 0) close(w.cmd);
  if (w.res >= 0) close(w.res);
  exiting.push_back(w.pid);
  w = Worker{};
}

void reap(std::vector<pid_t>& exiting, bool wait) {
  for (size_t k = exiting.size(); k-- > 0;) {
    int st = 0;
    pid_t r = waitpid(exiting[k], &st, wait ? 0 : WNOHANG);
    while (r < 0 && errno == EINTR) r = waitpid(exiting[k], &st, wait ? 0 : WNOHANG);
    if (r != 0) exiting.erase(exiting.begin() + static_cast<std::ptrdiff_t>(k));
  }
}

// Why a worker that ended while running a test gave no result.
Result lost_result(int st) {
  if (WIFSIGNALED(st)) return {Status::Fail, "crashed: " + signal_text(WTERMSIG(st))};
  if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
    return {Status::Fail, "test process exited with status " + std::to_string(WEXITSTATUS(st))};
  return {Status::Fail, "test process wrote no result"};
}

// Runs records[i] for every i in `todo`: in this process with --no-fork, else in worker processes, o.jobs at a time.
void run_tests(std::vector<Record>& records, const std::vector<size_t>& todo,
               const std::map<std::string, ToleranceOverride>& tols, const kiln::Tolerance& node_tol,
               const Options& o) {
  const std::function<kiln::Tolerance(const TestInfo&)> tol_of = [&](const TestInfo& t) {
    auto ov = tols.find(t.name);
    return ov == tols.end() ? node_tol : ov->second.tol;
  };
  const double t0 = now_s();
  size_t finished = 0, passed = 0, shown = 0;
  auto progress = [&](bool last) {
    if (o.progress <= 0 || finished == shown || (!last && finished % static_cast<size_t>(o.progress) != 0)) return;
    shown = finished;
    std::cout << "progress: " << finished << "/" << todo.size() << " run, " << passed << " passed, " << std::fixed
              << std::setprecision(1) << now_s() - t0 << " s" << std::endl;
  };
  auto record_result = [&](size_t i, Result r) {
    if (r.status == Status::Pass) ++passed;
    records[i].result = std::move(r);
    ++finished;
    progress(false);
  };
  if (o.progress > 0)
    std::cout << "progress: running " << todo.size() << " tests on " << o.where.str() << ", "
              << (o.fork ? std::to_string(o.jobs) + " at a time" : std::string("in this process")) << std::endl;
  if (!o.fork) {
    for (size_t i : todo) {
      const double t = now_s();
      Result r = run_test(records[i].info, tol_of(records[i].info), o.dump, o.where);
      if (now_s() - t > o.slow_s)
        std::cout << "slow: " << records[i].info.name << " took " << std::fixed << std::setprecision(1) << now_s() - t
                  << " s" << std::endl;
      record_result(i, std::move(r));
    }
    progress(true);
    return;
  }
  const int per_worker =
      o.tests_per_process > 0 ? o.tests_per_process : o.where.target == kiln::Target::Cuda ? 256 : 1;
  std::signal(SIGPIPE, SIG_IGN);  // a worker that died: its command pipe's write fails instead
  std::vector<Worker> workers(static_cast<size_t>(o.jobs));
  std::vector<pid_t> exiting;
  size_t next = 0;
  for (;;) {
    reap(exiting, false);
    // Hand out tests to idle workers (starting processes where needed).
    for (Worker& w : workers) {
      if (next >= todo.size()) break;
      if (w.record >= 0) continue;
      if (w.pid < 0 && !start_worker(w, records, tol_of, o, per_worker, workers)) {
        record_result(todo[next++], {Status::Fail, "fork() or pipe() failed"});
        continue;
      }
      const size_t i = todo[next++];
      if (!write_all(w.cmd, std::to_string(i) + "\n")) {  // the idle worker had exited: start another
        stop_worker(w, false);
        if (!start_worker(w, records, tol_of, o, per_worker, workers) || !write_all(w.cmd, std::to_string(i) + "\n")) {
          if (w.pid >= 0) stop_worker(w, true);
          record_result(i, {Status::Fail, "fork() or pipe() failed"});
          continue;
        }
      }
      w.record = static_cast<long>(i);
      w.started = now_s();
      w.warned = false;
      ++w.done;
    }
    bool busy = false;
    for (const Worker& w : workers) busy |= w.record >= 0;
    if (!busy && next >= todo.size()) break;

    std::vector<pollfd> fds;
    std::vector<Worker*> polled;
    for (Worker& w : workers)
      if (w.pid >= 0) {
        fds.push_back({w.res, POLLIN, 0});
        polled.push_back(&w);
      }
    if (poll(fds.data(), fds.size(), 250) < 0 && errno != EINTR) {
      std::cerr << "kiln_conformance: poll: " << std::strerror(errno) << "\n";
      std::exit(2);
    }
    for (size_t k = 0; k < polled.size(); ++k) {
      Worker& w = *polled[k];
      if (fds[k].revents == 0) continue;
      char buf[4096];
      ssize_t n = read(w.res, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n > 0) {
        w.buf.append(buf, static_cast<size_t>(n));
        const size_t nl = w.buf.find('\n');
        if (nl == std::string::npos) continue;
        const size_t len = std::strtoul(w.buf.c_str(), nullptr, 10);
        if (w.buf.size() < nl + 1 + len) continue;
        const std::string payload = w.buf.substr(nl + 1, len);
        w.buf.erase(0, nl + 1 + len);
        Result r = decode_result(payload);
        const bool last = r.status != Status::Pass || w.done >= per_worker;  // the worker exits after it
        if (w.record >= 0) record_result(static_cast<size_t>(w.record), std::move(r));
        w.record = -1;
        if (last) retire_worker(w, exiting);
        continue;
      }
      // EOF: the worker ended (by design after a failure or per_worker tests, or it crashed mid-test).
      const long rec = w.record;
      const int st = stop_worker(w, false);
      if (rec >= 0) record_result(static_cast<size_t>(rec), lost_result(st));
    }
    // Time limits: name slow tests, kill those over the limit.
    const double t = now_s();
    for (Worker& w : workers) {
      if (w.record < 0) continue;
      const TestInfo& info = records[static_cast<size_t>(w.record)].info;
      if (!w.warned && t - w.started > o.slow_s) {
        w.warned = true;
        std::cout << "slow: " << info.name << " has run " << std::fixed << std::setprecision(0) << t - w.started
                  << " s (limit " << o.timeout_s << " s)" << std::endl;
      }
      if (t - w.started > o.timeout_s) {
        const long rec = w.record;
        stop_worker(w, true);
        record_result(static_cast<size_t>(rec), {Status::Fail, "timed out after " + std::to_string(o.timeout_s) + " s"});
      }
    }
  }
  for (Worker& w : workers)
    if (w.pid >= 0) stop_worker(w, false);  // idle: closing its command pipe ends it
  reap(exiting, true);
  progress(true);
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
  // Each worker loads only the kernels its tests launch (the default from CUDA 12.2; older drivers load them all).
  setenv("CUDA_MODULE_LOADING", "LAZY", 0);
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
