#include "process.h"

#include <doctest/doctest.h>
#include <signal.h>

#include "raw_http.h"
#include "temp_dir.h"

namespace enlace::testing {

RunResult Run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
              const std::string& input, int timeout_s) {
  auto r = RunChild(argv, env, input, timeout_s);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return std::move(r).value();
}

HubProcess::HubProcess(const std::string& hub_bin, const std::string& data_dir,
                       const std::string& listen, const std::vector<std::string>& extra)
    : log_path_(data_dir + ".log") {
  auto hub = StartHub(hub_bin, data_dir, listen, extra);
  REQUIRE_MESSAGE(hub.ok(), hub.status().ToString());
  pid_ = hub->pid;
  url_ = hub->url;
  pin_ = hub->pin;
  port_ = hub->port;
}

HubProcess::~HubProcess() {
  if (pid_ > 0) Kill();
}

int HubProcess::Stop() {
  if (pid_ <= 0) return -1;
  const int code = StopChild(pid_, SIGTERM);
  pid_ = -1;
  return code;
}

void HubProcess::Kill() {
  if (pid_ <= 0) return;
  StopChild(pid_, SIGKILL);
  pid_ = -1;
}

std::string HubProcess::Log() const { return ReadFile(log_path_); }

std::string RawExchange(int port, const std::string& bytes, int timeout_ms) {
  auto reply = TryExchange(port, bytes, timeout_ms);
  REQUIRE_MESSAGE(reply.has_value(), "cannot connect to 127.0.0.1:" << port);
  return *reply;
}

}  // namespace enlace::testing
