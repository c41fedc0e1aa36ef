#include "child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "temp_dir.h"

extern char** environ;

namespace enlace::testing {

namespace {

std::vector<char*> CStrings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

std::vector<std::string> ChildEnvironment(const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> all;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv(*e);
    const auto eq = kv.find('=');
    if (eq != std::string::npos) all[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  // English messages (the tests assert them) unless `extra` picks a language.
  for (const char* name : {"LANGUAGE", "LC_ALL", "LC_MESSAGES"}) all.erase(name);
  all["LANG"] = "C";
  for (const auto& [k, v] : extra) all[k] = v;
  std::vector<std::string> out;
  for (const auto& [k, v] : all) out.push_back(k + "=" + v);
  return out;
}

std::vector<std::string> InheritedEnvironment() {
  std::vector<std::string> out;
  for (char** e = environ; *e != nullptr; ++e) out.emplace_back(*e);
  return out;
}

Result<pid_t> SpawnChild(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                         const ChildStream& in, const ChildStream& out, const ChildStream& err) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  const ChildStream* streams[] = {&in, &out, &err};
  for (int target = 0; target < 3; ++target) {
    const ChildStream& s = *streams[target];
    if (s.fd >= 0) {
      posix_spawn_file_actions_adddup2(&fa, s.fd, target);
    } else if (!s.path.empty()) {
      posix_spawn_file_actions_addopen(&fa, target, s.path.c_str(), s.flags, 0600);
    }
  }
  std::vector<std::string> args = argv;
  std::vector<std::string> envs = env;
  auto cargs = CStrings(args);
  auto cenv = CStrings(envs);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, args[0].c_str(), &fa, nullptr, cargs.data(), cenv.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return Status::Unavailable("cannot start " + args[0] + ": " + std::strerror(rc));
  return pid;
}

int WaitChild(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

int StopChild(pid_t pid, int signal) {
  kill(pid, signal);
  return WaitChild(pid);
}

std::string ReadToEnd(int fd) {
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  return text;
}

RunResult CollectChild(pid_t pid, int out_fd, int err_fd, int timeout_s) {
  RunResult r;
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  int open_fds = 2;
  while (open_fds > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) {
      kill(pid, SIGKILL);
      break;
    }
    if (poll(fds, 2, static_cast<int>(left)) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      const ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {  // EOF, or EIO once a terminal's last user left
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) close(f.fd);
  }
  r.exit_code = WaitChild(pid);
  return r;
}

Result<RunResult> RunChild(const std::vector<std::string>& argv,
                           const std::map<std::string, std::string>& env, const std::string& input,
                           int timeout_s) {
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    const std::string why = std::strerror(errno);
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) {
      if (fd >= 0) close(fd);
    }
    return Status::IoError("pipe: " + why);
  }
  auto pid = SpawnChild(argv, ChildEnvironment(env), ChildStream::Fd(in[0]),
                        ChildStream::Fd(out[1]), ChildStream::Fd(err[1]));
  close(in[0]);
  close(out[1]);
  close(err[1]);
  if (!pid.ok()) {
    for (int fd : {in[1], out[0], err[0]}) close(fd);
    return pid.status();
  }
  if (!input.empty()) {
    (void)!write(in[1], input.data(), input.size());
  }
  close(in[1]);
  return CollectChild(*pid, out[0], err[0], timeout_s);
}

Result<StartedHub> StartHub(const std::string& hub_bin, const std::string& data_dir,
                            const std::string& listen, const std::vector<std::string>& extra) {
  const std::string out_path = data_dir + ".out";
  const std::string log_path = data_dir + ".log";
  std::vector<std::string> args = {hub_bin, "serve", "--data", data_dir, "--listen", listen};
  args.insert(args.end(), extra.begin(), extra.end());
  auto pid = SpawnChild(args, InheritedEnvironment(), ChildStream{},
                        ChildStream::File(out_path, O_WRONLY | O_CREAT | O_TRUNC),
                        ChildStream::File(log_path, O_WRONLY | O_CREAT | O_APPEND));
  if (!pid.ok()) return pid.status();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::string line;
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(out_path);
    std::getline(in, line);
    if (line.find("listening on ") != std::string::npos) break;
    int status = 0;
    if (waitpid(*pid, &status, WNOHANG) == *pid) {
      return Status::Unavailable("the hub exited: " + ReadFile(log_path));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const auto at = line.find("listening on ");
  if (at == std::string::npos) {
    StopChild(*pid, SIGKILL);
    return Status::Unavailable("the hub did not start: " + ReadFile(log_path));
  }
  StartedHub hub;
  hub.pid = *pid;
  std::istringstream words(line.substr(at + 13));
  std::string word;
  words >> hub.url;
  while (words >> word) {
    if (word == "pin") words >> hub.pin;
  }
  hub.port = std::stoi(hub.url.substr(hub.url.rfind(':') + 1));
  return hub;
}

}  // namespace enlace::testing
