// kiln — command-line front end: argument parsing, dispatch, and errors -> exit codes.
//   0 success, 1 unexpected internal error, 2 usage error, kiln::exit_code(code) for a kiln::Error
//   (docs/errors.md).
#include <cstdio>
#include <exception>
#include <string>

#include "common.h"

namespace {

std::string version_text() {
  return std::string("kiln ") + kiln::version() + " (build " + kiln::build_id() +
         (kiln::built_with_cuda() ? ", with CUDA)" : ", CPU only)");
}

void set_verbosity(int verbose, bool quiet) {
  if (quiet)
    kiln::set_log_level(kiln::LogLevel::Error);
  else if (verbose >= 3)
    kiln::set_log_level(kiln::LogLevel::Trace);
  else if (verbose == 2)
    kiln::set_log_level(kiln::LogLevel::Debug);
  else if (verbose == 1)
    kiln::set_log_level(kiln::LogLevel::Info);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kiln: build, run, benchmark and inspect kiln engine plans", "kiln"};
  app.set_version_flag("--version", version_text(), "Print the kiln version and build id");
  app.require_subcommand(1);
  app.fallthrough();  // -v / -q are accepted after the subcommand too
  int verbose = 0;
  bool quiet = false;
  app.add_flag("-v,--verbose", verbose, "More log output on stderr (-v info, -vv debug, -vvv trace)");
  app.add_flag("-q,--quiet", quiet, "Only log errors");
  app.footer("Exit codes: 0 ok, 1 internal error, 2 usage error, 10+ kiln errors (see docs/errors.md).");

  std::vector<kiln_cli::Command> commands = {kiln_cli::register_build(app), kiln_cli::register_run(app),
                                             kiln_cli::register_bench(app), kiln_cli::register_inspect(app),
                                             kiln_cli::register_devices(app)};
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);  // prints help / version / the usage error
    return rc == 0 ? 0 : 2;
  }
  set_verbosity(verbose, quiet);

  try {
    for (auto& c : commands)
      if (c.app->parsed()) return c.run();
    std::fprintf(stderr, "kiln: error: no command given (try kiln --help)\n");
    return 2;
  } catch (const kiln::Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "kiln: error: %s: %s\n", kiln::error_code_name(e.code()), e.what());
    return kiln::exit_code(e.code());
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "kiln: error: internal: %s\n", e.what());
    return 1;
  }
}
