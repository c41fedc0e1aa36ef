#include "bench_util.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "child_process.h"

namespace enlace::bench {

namespace {
// The hub this process started, stopped by Die so no child outlives a failure.
pid_t g_hub_pid = -1;
pid_t g_owner_pid = -1;  // the process that started it (not a forked device)
}  // namespace

void Die(const std::string& what) {
  std::fprintf(stderr, "bench: %s\n", what.c_str());
  if (g_hub_pid > 0 && getpid() == g_owner_pid) testing::StopChild(g_hub_pid, SIGTERM);
  std::exit(1);
}

void Check(const Status& s, const std::string& what) {
  if (!s.ok()) Die(what + ": " + s.ToString());
}

double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// ---- folders and processes ------------------------------------------------------------

std::string RunOrDie(const std::vector<std::string>& argv) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) Die("pipe");
  const pid_t pid =
      Take(testing::SpawnChild(argv, testing::InheritedEnvironment(), testing::ChildStream{},
                               testing::ChildStream::Fd(out[1]), testing::ChildStream{}),
           "run " + argv[0]);
  close(out[1]);
  std::string text = testing::ReadToEnd(out[0]);
  close(out[0]);
  if (testing::WaitChild(pid) != 0) Die(argv[0] + " failed");
  return text;
}

HubProcess::HubProcess(const std::string& hub_bin, const std::string& data_dir,
                       const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"--quiet"};
  args.insert(args.end(), extra.begin(), extra.end());
  const testing::StartedHub hub =
      Take(testing::StartHub(hub_bin, data_dir, "127.0.0.1:0", args), "start the hub " + hub_bin);
  pid_ = hub.pid;
  url_ = hub.url;
  g_hub_pid = pid_;
  g_owner_pid = getpid();
}

HubProcess::~HubProcess() {
  if (pid_ <= 0) return;
  if (g_hub_pid == pid_) g_hub_pid = -1;
  testing::StopChild(pid_, SIGTERM);
}

uint64_t HubProcess::PeakRss() const { return ProcStatusBytes(pid_, "VmHWM"); }
uint64_t HubProcess::Rss() const { return ProcStatusBytes(pid_, "VmRSS"); }

uint64_t SelfPeakRss() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<uint64_t>(ru.ru_maxrss) * 1024;
}

double SelfCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double ProcessCpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  std::getline(in, text);
  // Fields after the command name (which may hold spaces): state is field 3,
  // utime and stime are fields 14 and 15.
  const auto close_paren = text.rfind(')');
  if (close_paren == std::string::npos) return 0;
  std::istringstream rest(text.substr(close_paren + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::strtod(field.c_str(), nullptr);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

uint64_t ProcStatusBytes(pid_t pid, const char* field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  const std::string prefix = std::string(field) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) {
      return std::strtoull(line.c_str() + prefix.size(), nullptr, 10) * 1024;  // kB
    }
  }
  return 0;
}

// ---- HTTP ---------------------------------------------------------------------------------

void InitCurl() {
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) Die("curl_global_init");
}

namespace {

struct Sink {
  Bytes body;
  std::string hub_time;
};

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* sink = static_cast<Sink*>(user);
  sink->body.insert(sink->body.end(), reinterpret_cast<uint8_t*>(data),
                    reinterpret_cast<uint8_t*>(data) + size * n);
  return size * n;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* sink = static_cast<Sink*>(user);
  std::string line(data, size * n);
  static constexpr char kName[] = "x-enlace-hub-time:";
  if (line.size() > sizeof kName - 1 && strncasecmp(line.c_str(), kName, sizeof kName - 1) == 0) {
    std::string v = line.substr(sizeof kName - 1);
    while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) v.pop_back();
    while (!v.empty() && v.front() == ' ') v.erase(v.begin());
    sink->hub_time = v;
  }
  return size * n;
}

int OnDebug(CURL*, curl_infotype type, char*, size_t size, void* user) {
  auto* c = static_cast<WireCounters*>(user);
  switch (type) {
    case CURLINFO_HEADER_OUT:
    case CURLINFO_DATA_OUT:
      c->bytes_up += size;
      break;
    case CURLINFO_HEADER_IN:
    case CURLINFO_DATA_IN:
      c->bytes_down += size;
      break;
    default:
      break;
  }
  return 0;
}

}  // namespace

HttpClient::HttpClient(bool count_bytes, std::string local_address)
    : count_bytes_(count_bytes), interface_(local_address.empty() ? "" : "host!" + local_address) {
  curl_ = curl_easy_init();
  if (curl_ == nullptr) Die("curl_easy_init");
}

HttpClient::~HttpClient() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

Result<Response> HttpClient::Send(const std::string& base_url, const OutgoingRequest& request,
                                  bool new_connection) {
  CURL* c = static_cast<CURL*>(curl_);
  curl_easy_reset(c);  // keeps the live connection
  curl_slist* headers = nullptr;
  for (const auto& [name, value] : request.headers) {
    headers = curl_slist_append(headers, (name + ": " + value).c_str());
  }
  headers = curl_slist_append(headers, "Content-Type: application/octet-stream");
  headers = curl_slist_append(headers, "Expect:");
  const std::string url = base_url + request.path;
  Sink sink;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  if (request.method == "GET") {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  if (!interface_.empty()) curl_easy_setopt(c, CURLOPT_INTERFACE, interface_.c_str());
  if (new_connection) {
    curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(c, CURLOPT_MAXCONNECTS, 1L);  // the previous connection closes
  }
  curl_easy_setopt(c, CURLOPT_USERAGENT, "enlace-bench");
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 120000L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &sink);
  if (count_bytes_) {
    curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, OnDebug);
    curl_easy_setopt(c, CURLOPT_DEBUGDATA, &counters_);
    curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
  }
  const double start = NowSeconds();
  const CURLcode rc = curl_easy_perform(c);
  const double seconds = NowSeconds() - start;
  curl_slist_free_all(headers);
  ++counters_.requests;
  if (rc != CURLE_OK) return Status::Unavailable(curl_easy_strerror(rc));
  Response r;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &r.new_connections);
  r.body = std::move(sink.body);
  r.hub_time = std::move(sink.hub_time);
  r.seconds = seconds;
  return r;
}

Response SendOk(HttpClient& http, const std::string& base_url, const OutgoingRequest& request,
                const std::string& what) {
  Response r = Take(http.Send(base_url, request), what);
  if (r.status != 200) {
    const std::string_view body(reinterpret_cast<const char*>(r.body.data()), r.body.size());
    Die(what + ": " + StatusFromHubResponse(static_cast<int>(r.status), body).ToString());
  }
  return r;
}

// ---- machine ------------------------------------------------------------------------------

MachineInfo ReadMachineInfo() {
  MachineInfo m;
  m.cpus = std::thread::hardware_concurrency();
  std::ifstream cpu("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpu, line)) {
    if (line.rfind("model name", 0) == 0) {
      m.cpu_model = line.substr(line.find(':') + 2);
      break;
    }
  }
  std::ifstream mem("/proc/meminfo");
  while (std::getline(mem, line)) {
    if (line.rfind("MemTotal:", 0) == 0) {
      m.ram_bytes = std::strtoull(line.c_str() + 9, nullptr, 10) * 1024;
      break;
    }
  }
  std::ifstream load("/proc/loadavg");
  std::string a, b, c;
  load >> a >> b >> c;
  m.load_average = a + " " + b + " " + c;
  utsname u{};
  if (uname(&u) == 0) m.kernel = std::string(u.sysname) + " " + u.release;
  return m;
}

nlohmann::json MachineJson(const MachineInfo& m) {
  return {{"cpus", m.cpus},
          {"cpu_model", m.cpu_model},
          {"ram_bytes", m.ram_bytes},
          {"kernel", m.kernel},
          {"load_average_start", m.load_average}};
}

std::string Mb(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(bytes) / 1e6);
  return buf;
}

}  // namespace enlace::bench
