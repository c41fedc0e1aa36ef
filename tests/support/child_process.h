// Child processes for the tests and the benchmarks, without doctest
// (enlace_test_support_core): starting a program with its standard streams
// where they should go, collecting what it prints, and starting a real
// enlace-hub on 127.0.0.1. Failures come back as a Status; process.h turns
// them into test failures, bench_util.h into a message and exit.
#ifndef ENLACE_TESTS_SUPPORT_CHILD_PROCESS_H_
#define ENLACE_TESTS_SUPPORT_CHILD_PROCESS_H_

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "enlace/status.h"

namespace enlace::testing {

struct RunResult {
  int exit_code = -1;  // 128 + signal when killed
  std::string out;
  std::string err;
};

// Our environment plus `extra`, in English (the tests assert the binaries'
// messages) unless `extra` picks a language: without LANGUAGE, LC_ALL and
// LC_MESSAGES, and with LANG=C.
std::vector<std::string> ChildEnvironment(const std::map<std::string, std::string>& extra = {});
// Our environment as it is.
std::vector<std::string> InheritedEnvironment();

// Where a child's standard stream goes: a descriptor of ours (dup'ed), or a
// file opened with `flags`.
struct ChildStream {
  int fd = -1;
  std::string path;
  int flags = 0;

  static ChildStream Fd(int fd) { return {fd, "", 0}; }
  static ChildStream File(const std::string& path, int flags) { return {-1, path, flags}; }
  static ChildStream Null(int flags) { return File("/dev/null", flags); }
};

// Starts argv[0] with `argv` and `env` ("NAME=value" each) and the three
// streams (stdin, stdout, stderr).
Result<pid_t> SpawnChild(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                         const ChildStream& in, const ChildStream& out, const ChildStream& err);

// Waits for `pid` to end: its exit code, 128 + signal when killed, -1 when
// neither.
int WaitChild(pid_t pid);
// Sends `signal` to `pid`, then waits for it as WaitChild.
int StopChild(pid_t pid, int signal);

// Everything `fd` gives until its end.
std::string ReadToEnd(int fd);

// Reads `out_fd` and `err_fd` (closing each) until both end, kills `pid`
// (SIGKILL) if that takes more than `timeout_s` seconds, and waits for it.
RunResult CollectChild(pid_t pid, int out_fd, int err_fd, int timeout_s);

// Runs argv[0] with `argv`, ChildEnvironment(`env`), and `input` on stdin.
// Waits at most `timeout_s` seconds, then kills it.
Result<RunResult> RunChild(const std::vector<std::string>& argv,
                           const std::map<std::string, std::string>& env = {},
                           const std::string& input = "", int timeout_s = 120);

// A started enlace-hub.
struct StartedHub {
  pid_t pid = -1;
  std::string url;
  std::string pin;  // "" without TLS
  int port = 0;
};

// Starts `hub_bin serve --data data_dir --listen listen [extra...]` with our
// environment, stdout to data_dir.out and stderr appended to data_dir.log,
// and waits up to 20 s for its "listening on" line. A hub that did not get
// there is stopped; the error holds its log.
Result<StartedHub> StartHub(const std::string& hub_bin, const std::string& data_dir,
                            const std::string& listen, const std::vector<std::string>& extra);

}  // namespace enlace::testing

#endif  // ENLACE_TESTS_SUPPORT_CHILD_PROCESS_H_
