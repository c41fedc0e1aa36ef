// Shared by sync_bench and hub_load: a real enlace-hub child process on
// 127.0.0.1 port 0, a small libcurl transport that counts requests and bytes
// on the wire, temporary folders, and peak-memory readings. Folders and
// processes come from the test-support library (tests/support/temp_dir.h,
// child_process.h). Bench-only code: failures end the process with a
// message (Die), nothing is retried.
#ifndef ENLACE_BENCH_BENCH_UTIL_H_
#define ENLACE_BENCH_BENCH_UTIL_H_

#include <sys/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "enlace/status.h"
#include "enlace/sync.h"
#include "temp_dir.h"

// The hub the benchmarks start; their --hub overrides it.
#ifndef ENLACE_HUB_BIN
#define ENLACE_HUB_BIN "enlace-hub"
#endif

namespace enlace::bench {

// The passphrase of every device the benchmarks create.
inline constexpr char kPassphrase[] = "una frase larga de prueba";

[[noreturn]] void Die(const std::string& what);
void Check(const Status& s, const std::string& what);
template <typename T>
T Take(Result<T> r, const std::string& what) {
  if (!r.ok()) Die(what + ": " + r.status().ToString());
  return std::move(r).value();
}

double NowSeconds();  // steady clock

// A fresh folder under $ENLACE_BENCH_TMP (else the system temp folder),
// removed with its contents on destruction.
class TempDir : public testing::TempDir {
 public:
  TempDir() : testing::TempDir(Under{testing::TempRoot("ENLACE_BENCH_TMP"), "enlace-bench-"}) {}
};

// Runs argv and returns its stdout; dies unless it exits 0.
std::string RunOrDie(const std::vector<std::string>& argv);

// `hub_bin serve --data data_dir --listen 127.0.0.1:0 --quiet [extra]`.
class HubProcess {
 public:
  HubProcess(const std::string& hub_bin, const std::string& data_dir,
             const std::vector<std::string>& extra = {});
  ~HubProcess();  // SIGTERM, then waits
  HubProcess(const HubProcess&) = delete;
  HubProcess& operator=(const HubProcess&) = delete;
  const std::string& url() const { return url_; }
  pid_t pid() const { return pid_; }
  // VmHWM and VmRSS of the hub from /proc/PID/status, in bytes.
  uint64_t PeakRss() const;
  uint64_t Rss() const;

 private:
  pid_t pid_ = -1;
  std::string url_;
};

// This process's peak RSS (getrusage), in bytes.
uint64_t SelfPeakRss();
// CPU time (user + system) of this process, and of another one from
// /proc/PID/stat, in seconds.
double SelfCpuSeconds();
double ProcessCpuSeconds(pid_t pid);
// A /proc/PID/status field in bytes ("VmHWM", "VmRSS"); 0 if unreadable.
uint64_t ProcStatusBytes(pid_t pid, const char* field);

struct WireCounters {
  uint64_t requests = 0;
  uint64_t bytes_up = 0;    // request line, headers and body, as sent
  uint64_t bytes_down = 0;  // status line, headers and body, as received
};

struct Response {
  long status = 0;
  Bytes body;
  std::string hub_time;      // x-enlace-hub-time
  double seconds = 0;        // wall time of the exchange
  long new_connections = 0;  // connections libcurl opened for it (0: one was reused)
};

// One libcurl easy handle (keep-alive), plain HTTP. Not thread-safe: one per
// thread. With `count_bytes`, a debug callback adds every header and body
// byte sent and received to counters(). With `local_address` (an IPv4
// address, e.g. "127.0.1.7": Linux routes all of 127.0.0.0/8 to loopback),
// connections come from that address, so that many clients on one machine
// look like many devices to the hub's per-address limits.
class HttpClient {
 public:
  explicit HttpClient(bool count_bytes, std::string local_address = "");
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;
  // Transport errors come back as kUnavailable. With `new_connection`, on a
  // connection of its own (as a device's `enlace sync`, a new process,
  // has), which later requests reuse; the previous one is closed.
  Result<Response> Send(const std::string& base_url, const OutgoingRequest& request,
                        bool new_connection = false);
  const WireCounters& counters() const { return counters_; }
  void ResetCounters() { counters_ = {}; }

 private:
  void* curl_ = nullptr;
  bool count_bytes_;
  std::string interface_;  // CURLOPT_INTERFACE, "" for any
  WireCounters counters_;
};

// curl_global_init; call once in main before any thread starts.
void InitCurl();

// Sends `request` and requires HTTP 200 (else dies with the hub's reason).
Response SendOk(HttpClient& http, const std::string& base_url, const OutgoingRequest& request,
                const std::string& what);

// Machine facts for the report: nproc, CPU model, RAM, load average.
struct MachineInfo {
  unsigned cpus = 0;
  std::string cpu_model;
  uint64_t ram_bytes = 0;
  std::string load_average;  // the first three fields of /proc/loadavg
  std::string kernel;
};
MachineInfo ReadMachineInfo();
// The same as the "machine" object of a report (the load average at start).
nlohmann::json MachineJson(const MachineInfo& m);

// "1.23 MB" style text.
std::string Mb(uint64_t bytes);

}  // namespace enlace::bench

#endif  // ENLACE_BENCH_BENCH_UTIL_H_
