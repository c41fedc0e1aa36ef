// Running the real binaries from tests: a command with its exit code and
// output, and a hub process on 127.0.0.1 port 0. The doctest side of
// child_process.h: what cannot start fails the current test.
#ifndef ENLACE_TESTS_SUPPORT_PROCESS_H_
#define ENLACE_TESTS_SUPPORT_PROCESS_H_

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "child_process.h"

namespace enlace::testing {

// Runs argv[0] with `argv`, extra environment `env` (added to ours), and
// `input` on stdin. Waits at most `timeout_s` seconds, then kills it.
RunResult Run(const std::vector<std::string>& argv,
              const std::map<std::string, std::string>& env = {}, const std::string& input = "",
              int timeout_s = 120);

// A running enlace-hub.
class HubProcess {
 public:
  // Starts `hub_bin serve --data data_dir --listen listen [extra...]` and waits
  // for its "listening on" line.
  HubProcess(const std::string& hub_bin, const std::string& data_dir,
             const std::string& listen = "127.0.0.1:0", const std::vector<std::string>& extra = {});
  ~HubProcess();
  HubProcess(const HubProcess&) = delete;
  HubProcess& operator=(const HubProcess&) = delete;

  const std::string& url() const { return url_; }
  int port() const { return port_; }
  const std::string& pin() const { return pin_; }
  // The process id (-1 once stopped).
  pid_t pid() const { return pid_; }
  // Sends SIGTERM and waits; returns the exit code.
  int Stop();
  // Sends SIGKILL and waits.
  void Kill();
  std::string Log() const;

 private:
  pid_t pid_ = -1;
  std::string url_, pin_, log_path_;
  int port_ = 0;
};

// Sends raw bytes to 127.0.0.1:port and returns whatever comes back before
// the peer closes or `timeout_ms` passes (raw_http.h's TryExchange, failing
// the test when the connection is refused).
std::string RawExchange(int port, const std::string& bytes, int timeout_ms = 3000);

}  // namespace enlace::testing

#endif  // ENLACE_TESTS_SUPPORT_PROCESS_H_
