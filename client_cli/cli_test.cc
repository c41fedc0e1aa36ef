// Tests of the enlace CLI: its pure helpers, the retry and hub-clock policy
// against a scripted HTTP client, and the built binary on bad command lines
// and locked or missing homes. The full flows against a real hub are in
// tests/e2e.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "config.h"
#include "enlace/i18n.h"
#include "enlace/replica.h"
#include "enlace/sync.h"
#include "enlace/team.h"
#include "output.h"
#include "passphrase.h"
#include "transport.h"

extern char** environ;

namespace enlace::cli {
namespace {

using nlohmann::json;

const std::string kCli = ENLACE_CLI_BIN;
// The CLI as a release builds it: main.cc without ENLACE_TEST_HOOKS.
const std::string kReleaseCli = ENLACE_RELEASE_CLI_BIN;
// Every passphrase a test gives a new device meets CheckNewPassphrase.
const std::string kPassphrase = "una frase de prueba para la libreta";

// The in-process tests assert English messages, whatever this machine's locale.
[[maybe_unused]] const bool kEnglish = (i18n::SetLanguage("en"), true);

bool IsLocaleVariable(std::string_view entry) {
  for (std::string_view name : {"LANGUAGE=", "LC_ALL=", "LC_MESSAGES=", "LANG="}) {
    if (entry.rfind(name, 0) == 0) return true;
  }
  return false;
}

// ---- fixtures ----------------------------------------------------------------------------

class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("ENLACE_TEST_TMP");
    std::filesystem::path root = base != nullptr && *base != '\0'
                                     ? std::filesystem::path(base)
                                     : std::filesystem::temp_directory_path();
    std::filesystem::create_directories(root);
    std::string tmpl = (root / "enlace-cli-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct RunResult {
  int exit_code = -1;
  std::string out, err;
};

// Runs the enlace binary with `args`, stdin from /dev/null, the ENLACE_*
// variables of this process removed and `env` added. The locale variables
// (LANGUAGE, LC_ALL, LC_MESSAGES, LANG) of this process are removed too and
// LANG=C set, so messages are English unless `env` sets one of them.
RunResult RunCli(const std::vector<std::string>& args,
                 const std::map<std::string, std::string>& env = {},
                 const std::string& binary = kCli) {
  TempDir io;
  const std::string out_path = io.File("out"), err_path = io.File("err");
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view entry(*e);
    if (entry.rfind("ENLACE_", 0) != 0 && !IsLocaleVariable(entry)) env_strings.emplace_back(entry);
  }
  bool locale_given = false;
  for (const auto& [k, v] : env) {
    env_strings.push_back(k + "=" + v);
    locale_given = locale_given || IsLocaleVariable(k + "=");
  }
  if (!locale_given) env_strings.emplace_back("LANG=C");
  std::vector<std::string> argv_strings = {binary};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv, envp;
  for (auto& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);

  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const int in = ::open("/dev/null", O_RDONLY);
    const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || out < 0 || err < 0) ::_exit(127);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  RunResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = Slurp(out_path);
  r.err = Slurp(err_path);
  return r;
}

// A device home made with the core API directly (the cheapest KDF), with a
// config pointing at `hub_url`.
void MakeHome(const std::string& home, const std::string& hub_url = "http://127.0.0.1:9") {
  ReplicaOptions o;
  o.dir = home;
  o.kdf = KdfCost::Minimum();
  auto r = Replica::Create(o, kPassphrase);
  REQUIRE(r.ok());
  REQUIRE(CreateTeam(**r).ok());
  REQUIRE(SaveConfig(home, Config{hub_url, "", "Tlaxcala", "ana", "field"}).ok());
}

// A loopback port nobody listens on.
int ClosedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// An HttpClient that plays back scripted answers and records requests.
class ScriptedClient final : public HttpClient {
 public:
  std::deque<Result<HttpResponse>> answers;
  std::vector<OutgoingRequest> requests;
  Result<HttpResponse> Send(const HubTarget&, const OutgoingRequest& request) override {
    requests.push_back(request);
    REQUIRE_FALSE(answers.empty());
    Result<HttpResponse> next = std::move(answers.front());
    answers.pop_front();
    return next;
  }
};

HttpResponse Answer(long status, std::string body = "", std::string hub_time = "") {
  HttpResponse r;
  r.status = status;
  r.body.assign(body.begin(), body.end());
  r.hub_time = std::move(hub_time);
  return r;
}

struct ExchangeFixture {
  TempDir dir;
  std::ostringstream out, err;
  Output output{false, out, err};
  ScriptedClient http;
  std::vector<uint64_t> sleeps;
  Context ctx;
  std::unique_ptr<Replica> replica;
  int built = 0;

  ExchangeFixture() {
    ReplicaOptions o;
    o.dir = dir.File("home");
    o.kdf = KdfCost::Minimum();
    auto r = Replica::Create(o, kPassphrase);
    REQUIRE(r.ok());
    replica = std::move(r).value();
    ctx.output = &output;
    ctx.http = &http;
    ctx.retry = RetryPolicy{6, 100, 8000};
    ctx.sleep_ms = [this](uint64_t ms) { sleeps.push_back(ms); };
    ctx.unit_random = [] { return 0.0; };
  }
  CliStatus Exchange(int max_attempts, Exchanged& ex) {
    return ExchangeWithHub(
        ctx, *replica, HubTarget{"http://hub.test:8443", ""},
        [this]() -> Result<OutgoingRequest> {
          OutgoingRequest r;
          r.method = "POST";
          r.path = "/v1/sync";
          r.headers = {{"x-enlace-nonce", std::to_string(++built)}};
          return r;
        },
        max_attempts, ex);
  }
};

// ---- values and arguments ------------------------------------------------------------

TEST_CASE("values parse as JSON when they can, and as plain text otherwise") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"Active", "\"Active\""},
      {"17", "17"},
      {"-3.5", "-3.5"},
      {"true", "true"},
      {"false", "false"},
      {"null", "null"},
      {"\"017\"", "\"017\""},
      {"0123", "\"0123\""},  // not JSON (leading zero): a phone-like text stays text
      {"[\"a\", 2]", "[\"a\",2]"},
      {"", "\"\""},
      {"Guadalupe Xochitl", "\"Guadalupe Xochitl\""},
      {"llamó dos veces", "\"llamó dos veces\""},
      {"1e999", "\"1e999\""},  // not a finite number
      {"[1,", "\"[1,\""},
  };
  for (const auto& entry : cases) {
    const auto& typed = entry.first;  // clang 14 cannot capture a binding in INFO
    const auto& canonical = entry.second;
    INFO("typed: ", typed);
    auto v = ParseValue(typed);
    REQUIRE(v.ok());
    CHECK(*v == canonical);
  }
  CHECK_FALSE(ParseValue("{\"a\": 1}").ok());
  CHECK_FALSE(ParseValue("\xff\xfe").ok());
}

TEST_CASE("values are displayed so that typing them back gives the same value") {
  CHECK(DisplayValue("\"Active\"") == "Active");
  CHECK(DisplayValue("\"17\"") == "\"17\"");
  CHECK(DisplayValue("17") == "17");
  CHECK(DisplayValue("\"true\"") == "\"true\"");
  CHECK(DisplayValue("\"\"") == "\"\"");
  CHECK(DisplayValue("[1,\"a\"]") == "[1,\"a\"]");
  CHECK(DisplayValue("\"two\\nlines\"") == "\"two\\nlines\"");
  for (const std::string canonical : {"\"Active\"", "\"17\"", "17", "\"true\"", "[1,\"a\"]"}) {
    CHECK(*ParseValue(DisplayValue(canonical)) == canonical);
  }
}

TEST_CASE("a second put argument is an id only when it is 32 hex characters without '='") {
  CHECK(LooksLikeRecordId("0123456789abcdef0123456789abcdef"));
  CHECK(LooksLikeRecordId("0123456789ABCDEF0123456789ABCDEF"));
  CHECK_FALSE(LooksLikeRecordId("0123456789abcdef0123456789abcde"));
  CHECK_FALSE(LooksLikeRecordId("0123456789abcdef0123456789abcdeg"));
  CHECK_FALSE(LooksLikeRecordId("a=23456789abcdef0123456789abcdef"));
  CHECK_FALSE(LooksLikeRecordId("cas_Status=Active"));

  auto with_id = ParsePutArguments({"0123456789abcdef0123456789abcdef", "cas_Status=FollowUp"});
  REQUIRE(with_id.ok());
  REQUIRE(with_id->id.has_value());
  CHECK(with_id->id->ToHex() == "0123456789abcdef0123456789abcdef");
  CHECK(with_id->fields.at("cas_Status") == "\"FollowUp\"");

  auto without =
      ParsePutArguments({"prs_Gender=Feminine", "vic_AgeWhenTrafficked=16", "prs_Alias=a=b"});
  REQUIRE(without.ok());
  CHECK_FALSE(without->id.has_value());
  CHECK(without->fields.at("vic_AgeWhenTrafficked") == "16");
  CHECK(without->fields.at("prs_Alias") == "\"a=b\"");  // split at the first '='

  CHECK_FALSE(ParsePutArguments({}).ok());
  CHECK_FALSE(ParsePutArguments({"0123456789abcdef0123456789abcdef"}).ok());
  CHECK_FALSE(ParsePutArguments({"cas_Status"}).ok());
  CHECK_FALSE(ParsePutArguments({"=Active"}).ok());
  CHECK_FALSE(ParsePutArguments({"bad name=1"}).ok());
  CHECK_FALSE(ParsePutArguments({"$deleted=true"}).ok());
  CHECK_FALSE(ParsePutArguments({"vic_AgeWhenTrafficked=1", "vic_AgeWhenTrafficked=2"}).ok());
}

TEST_CASE("invite durations accept s, m, h, d between a minute and 30 days") {
  CHECK(*ParseDuration("72h") == 72ull * 3600 * 1000);
  CHECK(*ParseDuration("90m") == 90ull * 60 * 1000);
  CHECK(*ParseDuration("7d") == 7ull * 24 * 3600 * 1000);
  CHECK(*ParseDuration("60s") == 60ull * 1000);
  CHECK_FALSE(ParseDuration("59s").ok());
  CHECK_FALSE(ParseDuration("31d").ok());
  CHECK_FALSE(ParseDuration("72").ok());
  CHECK_FALSE(ParseDuration("h").ok());
  CHECK_FALSE(ParseDuration("-1h").ok());
  CHECK_FALSE(ParseDuration("99999999999h").ok());
}

TEST_CASE("ENLACE_KDF picks the passphrase cost; unknown values are refused") {
  for (const bool test_hooks : {false, true}) {
    CAPTURE(test_hooks);
    CHECK(KdfFromEnv(nullptr, test_hooks)->memlimit == KdfCost::Interactive().memlimit);
    CHECK(KdfFromEnv("", test_hooks)->memlimit == KdfCost::Interactive().memlimit);
    CHECK(KdfFromEnv("interactive", test_hooks)->memlimit == KdfCost::Interactive().memlimit);
    CHECK(KdfFromEnv("moderate", test_hooks)->memlimit == KdfCost::Moderate().memlimit);
    CHECK(KdfFromEnv("weak", test_hooks).status().code() == StatusCode::kInvalidArgument);
  }
  CHECK(KdfFromEnv("min", /*allow_minimum=*/true)->memlimit == KdfCost::Minimum().memlimit);
  const auto refused = KdfFromEnv("min", /*allow_minimum=*/false);
  CHECK(refused.status().code() == StatusCode::kInvalidArgument);
  CHECK(refused.status().message().find("for tests only") != std::string::npos);
}

// A file holding a bootstrap token (init never takes one in argv).
std::string TokenFile(const TempDir& dir) {
  const std::string path = dir.File("token.txt");
  std::ofstream(path) << "bt-x\n";
  return path;
}

TEST_CASE("a release build refuses ENLACE_KDF=min with exit 1 and makes nothing") {
  TempDir dir;
  const std::string home = dir.File("home");
  const std::string url = "http://127.0.0.1:" + std::to_string(ClosedPort());
  const std::vector<std::string> init = {"--home", home, "init",         "--hub",        url,
                                         "--team", "T",  "--token-file", TokenFile(dir), "--name",
                                         "c"};
  std::map<std::string, std::string> env = {
      {"ENLACE_PASSPHRASE", kPassphrase}, {"ENLACE_KDF", "min"}, {"ENLACE_RETRY_BASE_MS", "1"}};
  RunResult r = RunCli(init, env, kReleaseCli);
  INFO("stderr: ", r.err);
  CHECK(r.exit_code == kExitUsage);
  CHECK(r.err.find("ENLACE_KDF=min is for tests only") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(home));

  // Also for a device that is already there, and in Spanish.
  MakeHome(home);
  env["LANG"] = "es_MX.UTF-8";
  r = RunCli({"--home", home, "list", "cases"}, env, kReleaseCli);
  CHECK(r.exit_code == kExitUsage);
  CHECK(r.err.find("ENLACE_KDF=min es solo para pruebas") != std::string::npos);

  // The default and moderate costs work in a release build.
  env.erase("ENLACE_KDF");
  r = RunCli({"--home", home, "list", "cases"}, env, kReleaseCli);
  CHECK(r.exit_code == 0);
  // The build the tests run (ENLACE_TEST_HOOKS) takes min.
  r = RunCli({"--home", home, "list", "cases"},
             {{"ENLACE_PASSPHRASE", kPassphrase}, {"ENLACE_KDF", "min"}});
  CHECK(r.exit_code == 0);
}

TEST_CASE("help names the passphrase rule and the costs ENLACE_KDF takes") {
  const RunResult r = RunCli({"--help"}, {}, kReleaseCli);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("four or more words, 16 characters") != std::string::npos);
  CHECK(r.out.find("(default) or moderate; builds for tests also take min") != std::string::npos);
}

// ---- strength of a new passphrase ---------------------------------------------------------

TEST_CASE("a new passphrase needs 16 characters and 50 bits as zxcvbn counts them") {
  for (const char* weak :
       {"482915", "123456", "password1", "passwordpassword1234", "qwertyuiopasdfghjkl",
        "1111111111111111", "abcdefghijklmnopqrst", "monkey dragon master shadow",
        "correct horse battery", "enlace enlace enlace enlace"}) {
    CAPTURE(weak);
    const Status s = CheckNewPassphrase(weak, {});
    CHECK(s.code() == StatusCode::kInvalidArgument);
    CHECK(s.message().find("four or more words") != std::string::npos);
  }
  CHECK(CheckNewPassphrase("482915", {}).message().find("too short: 6 characters") !=
        std::string::npos);
  CHECK(CheckNewPassphrase("passwordpassword1234", {}).message().find("common words") !=
        std::string::npos);
  CHECK(CheckNewPassphrase("1qaz2wsx3edc4rfv5tgb", {}).message().find("keyboard") !=
        std::string::npos);
  // Accents are one character each.
  CHECK(CheckNewPassphrase("ñandú ñandú ñan", {}).message().find("15 characters") !=
        std::string::npos);
  // The team's and device's names count as guessable.
  CHECK(CheckNewPassphrase("coordinadora Huamantla", {}).ok());
  const Status named = CheckNewPassphrase("coordinadora Huamantla", {"Huamantla", "coordinadora"});
  CHECK(named.code() == StatusCode::kInvalidArgument);
  CHECK(named.message().find("the team's or this device's name") != std::string::npos);

  for (const char* strong : {"una frase de prueba para la libreta", "correct horse battery staple",
                             "maleta verde cruza el puente", "mi gato come pescado",
                             "demo passphrase, not for real use"}) {
    CAPTURE(strong);
    CHECK(CheckNewPassphrase(strong, {"Tlaxcala", "ana"}).ok());
    CHECK(PassphraseEntropyBits(strong, {}) >= kMinPassphraseBits);
  }
}

TEST_CASE("init refuses a weak passphrase with exit 1, says why, and makes nothing") {
  TempDir dir;
  const std::string home = dir.File("home");
  const std::string url = "http://127.0.0.1:" + std::to_string(ClosedPort());
  const std::vector<std::string> init = {"--home", home, "init",         "--hub",        url,
                                         "--team", "T",  "--token-file", TokenFile(dir), "--name",
                                         "c"};
  for (const std::string weak : {"482915", "password1", "monkey dragon master shadow"}) {
    CAPTURE(weak);
    RunResult r = RunCli(init, {{"ENLACE_PASSPHRASE", weak}, {"ENLACE_KDF", "min"}});
    CHECK(r.exit_code == kExitUsage);
    CHECK(r.err.find("four or more words") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(home));
    // From a file too; in Spanish.
    std::ofstream(dir.File("pass")) << weak << "\n";
    r = RunCli({"--home", home, "--passphrase-file", dir.File("pass"), "init", "--hub", url,
                "--team", "T", "--token-file", TokenFile(dir)},
               {{"ENLACE_KDF", "min"}, {"LANG", "es_MX.UTF-8"}});
    CHECK(r.exit_code == kExitUsage);
    CHECK(r.err.find("cuatro palabras o más") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(home));
  }
  // A duress passphrase is held to the same rule.
  RunResult r = RunCli({"--home", home, "init", "--duress", "--hub", url, "--team", "T",
                        "--token-file", TokenFile(dir)},
                       {{"ENLACE_PASSPHRASE", kPassphrase},
                        {"ENLACE_DURESS_PASSPHRASE", "password1"},
                        {"ENLACE_KDF", "min"}});
  CHECK(r.exit_code == kExitUsage);
  CHECK(r.err.find("too short") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(home));
  // A strong one passes the check: init goes on to the hub, which is not there (exit 3).
  r = RunCli(
      init,
      {{"ENLACE_PASSPHRASE", kPassphrase}, {"ENLACE_KDF", "min"}, {"ENLACE_RETRY_BASE_MS", "1"}});
  CHECK(r.exit_code == kExitUnreachable);
}

TEST_CASE("passphrase change and duress refuse a weak passphrase and keep the old one") {
  TempDir dir;
  const std::string home = dir.File("home");
  MakeHome(home);
  const std::map<std::string, std::string> env = {{"ENLACE_PASSPHRASE", kPassphrase},
                                                  {"ENLACE_KDF", "min"}};
  for (const std::string weak : {"482915", "password1", "Tlaxcala Tlaxcala ana"}) {
    CAPTURE(weak);
    auto with = env;
    with["ENLACE_NEW_PASSPHRASE"] = weak;
    RunResult r = RunCli({"--home", home, "passphrase", "change"}, with);
    CHECK(r.exit_code == kExitUsage);
    CHECK(r.err.find("four or more words") != std::string::npos);
    with.erase("ENLACE_NEW_PASSPHRASE");
    with["ENLACE_DURESS_PASSPHRASE"] = weak;
    r = RunCli({"--home", home, "passphrase", "duress"}, with);
    CHECK(r.exit_code == kExitUsage);
    CHECK(r.err.find("four or more words") != std::string::npos);
  }
  CHECK(RunCli({"--home", home, "list", "cases"}, env).exit_code == 0);  // still the old one

  const std::string strong = "otra frase bastante larga de campo";
  auto with = env;
  with["ENLACE_NEW_PASSPHRASE"] = strong;
  RunResult r = RunCli({"--home", home, "passphrase", "change"}, with);
  INFO("stderr: ", r.err);
  CHECK(r.exit_code == 0);
  CHECK(RunCli({"--home", home, "list", "cases"}, env).exit_code == kExitLocked);
  CHECK(RunCli({"--home", home, "list", "cases"},
               {{"ENLACE_PASSPHRASE", strong}, {"ENLACE_KDF", "min"}})
            .exit_code == 0);
}

// ---- exit codes ------------------------------------------------------------------------

TEST_CASE("one table maps errors to exit codes by where they arose") {
  using SC = StatusCode;
  CHECK(ExitCodeFor(ErrorSource::kUsage, SC::kInvalidArgument) == kExitUsage);
  CHECK(ExitCodeFor(ErrorSource::kLocal, SC::kWrongPassphrase) == kExitLocked);
  for (SC c : {SC::kInvalidArgument, SC::kNotFound, SC::kCorruption, SC::kDecryptFailed,
               SC::kFailedPrecondition, SC::kResourceExhausted, SC::kIoError}) {
    CHECK(ExitCodeFor(ErrorSource::kLocal, c) == kExitData);
  }
  // The hub's 400, 401, 403, 404, 409, 413 are rejections; 5xx, after every
  // retry, is "unreachable".
  for (int http : {400, 401, 403, 404, 409, 413}) {
    CHECK(ExitCodeFor(ErrorSource::kHub, StatusFromHubResponse(http, "").code()) == kExitRejected);
  }
  CHECK(ExitCodeFor(ErrorSource::kHub, StatusFromHubResponse(503, "").code()) == kExitUnreachable);
  CHECK(ExitCodeFor(ErrorSource::kNetwork, SC::kUnavailable) == kExitUnreachable);
  CHECK(ExitCodeFor(ErrorSource::kNetwork, SC::kPermissionDenied) == kExitRejected);
  CHECK(ExitCodeFor(ErrorSource::kNetwork, SC::kUnauthenticated) == kExitRejected);
  CHECK(ExitCodeFor(ErrorSource::kLocal, SC::kOk) == kExitOk);
}

// ---- config, home, passphrase -------------------------------------------------------------

TEST_CASE("the config file round-trips and a damaged one is reported, not guessed") {
  TempDir dir;
  CHECK(LoadConfig(dir.path()).status().code() == StatusCode::kNotFound);
  const Config c{"https://hub.example.org:8443", "sha256//abc=", "Tlaxcala", "ana", "field"};
  REQUIRE(SaveConfig(dir.path(), c).ok());
  auto back = LoadConfig(dir.path());
  REQUIRE(back.ok());
  CHECK(*back == c);
  CHECK((std::filesystem::status(ConfigPath(dir.path())).permissions() &
         std::filesystem::perms::others_read) == std::filesystem::perms::none);
  CHECK_FALSE(std::filesystem::exists(ConfigPath(dir.path()) + ".tmp"));

  std::ofstream(ConfigPath(dir.path())) << "{ not json";
  CHECK(LoadConfig(dir.path()).status().code() == StatusCode::kCorruption);
  std::ofstream(ConfigPath(dir.path())) << R"({"hub_url": 7})";
  CHECK(LoadConfig(dir.path()).status().code() == StatusCode::kCorruption);
}

TEST_CASE("the default home follows XDG_DATA_HOME, then HOME") {
  CHECK(DefaultHome("/data", "/home/ana") == "/data/enlace");
  CHECK(DefaultHome(nullptr, "/home/ana") == "/home/ana/.local/share/enlace");
  CHECK(DefaultHome("relative", "/home/ana") == "/home/ana/.local/share/enlace");
  CHECK(DefaultHome("", "/home/ana") == "/home/ana/.local/share/enlace");
  CHECK(DefaultHome(nullptr, nullptr).empty());
}

TEST_CASE("the passphrase comes from the file first, then the environment, never a guess") {
  TempDir dir;
  const std::string file = dir.File("pass");
  std::ofstream(file) << "from the file\r\nsecond line\n";
  auto p = ObtainPassphrase({file, "from env", -1}, PassphrasePurpose::kUnlock);
  REQUIRE(p.ok());
  CHECK(p->view() == "from the file");
  p = ObtainPassphrase({"", "from env", -1}, PassphrasePurpose::kCreate);
  REQUIRE(p.ok());
  CHECK(p->view() == "from env");
  // No file, no variable, no terminal: nothing to unlock with.
  CHECK(ObtainPassphrase({"", nullptr, -1}, PassphrasePurpose::kUnlock).status().code() ==
        StatusCode::kNotFound);
  CHECK(ObtainPassphrase({"", "", -1}, PassphrasePurpose::kUnlock).status().code() ==
        StatusCode::kNotFound);
  std::ofstream(file) << "\nsecret on line two\n";
  CHECK_FALSE(ObtainPassphrase({file, nullptr, -1}, PassphrasePurpose::kUnlock).ok());
  CHECK_FALSE(ObtainPassphrase({dir.File("missing"), "x", -1}, PassphrasePurpose::kUnlock).ok());
  CHECK(FirstLine("abc\r\ndef") == "abc");
  CHECK(FirstLine("abc") == "abc");
  CHECK(Passphrase("same").Equals(Passphrase("same")));
  CHECK_FALSE(Passphrase("same").Equals(Passphrase("samE")));
}

// ---- transport policy ----------------------------------------------------------------------

TEST_CASE("retry delays grow exponentially to the cap, with half of each delay jittered") {
  const RetryPolicy p{6, 250, 8000};
  CHECK(BackoffMs(p, 1, 0.0) == 125);
  CHECK(BackoffMs(p, 1, 0.999) <= 250);
  CHECK(BackoffMs(p, 2, 0.0) == 250);
  CHECK(BackoffMs(p, 3, 0.0) == 500);
  CHECK(BackoffMs(p, 6, 0.0) == 4000);
  CHECK(BackoffMs(p, 7, 0.0) == 4000);     // 8000 capped, half fixed
  CHECK(BackoffMs(p, 40, 0.999) <= 8000);  // no overflow far out
  CHECK(BackoffMs(p, 40, 0.999) >= 7990);
  CHECK(IsRetryableHttpStatus(503));
  CHECK(IsRetryableHttpStatus(429));
  CHECK_FALSE(IsRetryableHttpStatus(401));
  CHECK_FALSE(IsRetryableHttpStatus(200));
}

TEST_CASE("hub URLs must be http(s) with a host and nothing that hides where they go") {
  CHECK(ValidateHubUrl("https://hub.example.org:8443").ok());
  CHECK(ValidateHubUrl("http://127.0.0.1:8080/enlace").ok());
  CHECK_FALSE(ValidateHubUrl("ftp://hub").ok());
  CHECK_FALSE(ValidateHubUrl("hub.example.org").ok());
  CHECK_FALSE(ValidateHubUrl("https://").ok());
  CHECK_FALSE(ValidateHubUrl("https://user:pw@hub").ok());
  CHECK_FALSE(ValidateHubUrl("https://hub/?x=1").ok());
  CHECK(NormaliseHubUrl("https://hub:1//") == "https://hub:1");
}

TEST_CASE("the curl client refuses a pin with a plain-http URL before connecting") {
  CurlGlobal curl;
  auto client = NewCurlHttpClient();
  OutgoingRequest r;
  r.method = "POST";
  r.path = "/v1/sync";
  auto sent = client->Send(HubTarget{"http://127.0.0.1:9", "sha256//abc="}, r);
  REQUIRE_FALSE(sent.ok());
  CHECK(sent.status().code() == StatusCode::kInvalidArgument);
  sent = client->Send(HubTarget{"http://127.0.0.1:" + std::to_string(ClosedPort()), ""}, r);
  REQUIRE_FALSE(sent.ok());
  CHECK(sent.status().code() == StatusCode::kUnavailable);
}

TEST_CASE("a flaky hub is retried with growing delays and fresh requests") {
  ExchangeFixture f;
  f.http.answers.push_back(Status::Unavailable("Connection reset by peer"));
  f.http.answers.push_back(Answer(503, R"({"error":"busy"})"));
  f.http.answers.push_back(Answer(429));
  f.http.answers.push_back(Answer(200, "body"));
  Exchanged ex;
  REQUIRE(f.Exchange(6, ex).ok());
  CHECK(ex.attempts == 4);
  CHECK(ex.response.status == 200);
  CHECK(f.sleeps == std::vector<uint64_t>{50, 100, 200});
  // Every attempt was built (and so signed) afresh: no replayed nonce.
  REQUIRE(f.http.requests.size() == 4);
  CHECK(f.http.requests[0].headers != f.http.requests[1].headers);
}

TEST_CASE("a hub that never answers gives exit 3 naming the URL, the attempts and the error") {
  ExchangeFixture f;
  for (int i = 0; i < 3; ++i) {
    f.http.answers.push_back(Status::Unavailable("Failed to connect to hub.test port 8443"));
  }
  Exchanged ex;
  const CliStatus s = f.Exchange(3, ex);
  CHECK(s.exit_code() == kExitUnreachable);
  CHECK(s.message() ==
        "hub unreachable at http://hub.test:8443 after 3 attempts: Failed to connect to "
        "hub.test port 8443");
  CHECK(f.sleeps.size() == 2);
}

TEST_CASE("a pin mismatch is never retried and is a rejection") {
  ExchangeFixture f;
  f.http.answers.push_back(
      Status::PermissionDenied("the hub's TLS key does not match the pinned key (sha256//x)"));
  Exchanged ex;
  const CliStatus s = f.Exchange(6, ex);
  CHECK(s.exit_code() == kExitRejected);
  CHECK(s.message().find("pinned key") != std::string::npos);
  CHECK(f.http.requests.size() == 1);
  CHECK(f.sleeps.empty());
}

TEST_CASE("a request refused for its time is retried once, after following the hub's clock") {
  ExchangeFixture f;
  const uint64_t hub_now = SystemWallClockMs() + 20 * 60 * 1000;  // the device is 20 min behind
  const std::string hub_time = std::to_string(hub_now);
  const std::string refusal =
      R"({"error":"request time is 1200 s off the hub's clock; check the device's time"})";
  f.http.answers.push_back(Answer(401, refusal, hub_time));
  f.http.answers.push_back(Answer(401, refusal, hub_time));
  Exchanged ex;
  REQUIRE(f.Exchange(6, ex).ok());
  CHECK(ex.response.status == 401);  // the second refusal is the answer: once only
  CHECK(f.http.requests.size() == 2);
  CHECK(f.sleeps.empty());
  const int64_t offset = f.replica->clock().wall_clock_offset_ms();
  CHECK(offset > 19 * 60 * 1000);
  CHECK(offset < 21 * 60 * 1000);
  // The warning, in plain words, once.
  const std::string err = f.err.str();
  CHECK(err.find("this device's clock is 20 minutes behind the hub; enlace is using the hub's "
                 "time") != std::string::npos);
  CHECK(err.find("clock is", err.find("clock is") + 1) == std::string::npos);
}

TEST_CASE("clock warnings say how far and which way, and stay quiet within a minute") {
  CHECK(ClockWarning(0).empty());
  CHECK(ClockWarning(60 * 1000).empty());
  CHECK(ClockWarning(-59 * 1000).empty());
  CHECK(ClockWarning(3 * 60 * 1000) ==
        "this device's clock is 3 minutes behind the hub; enlace is using the hub's time");
  CHECK(ClockWarning(-90 * 60 * 1000) ==
        "this device's clock is 90 minutes ahead of the hub; enlace is using the hub's time");
}

// ---- the binary ----------------------------------------------------------------------------

TEST_CASE("bad command lines exit 1 with a message") {
  TempDir dir;
  const std::map<std::string, std::string> env = {{"ENLACE_PASSPHRASE", kPassphrase}};
  const std::string home = dir.File("home");
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"frobnicate"}, "unknown command"},
      {{"--home", home, "put", "cases"}, "FIELDS"},
      {{"--home", home, "put", "cases", "cas_Status"}, "FIELD=VALUE"},
      {{"--home", home, "put", "cases", "cas_Title={\"a\":1}"}, "object"},
      {{"--home", home, "get", "cases", "not-an-id"}, "not a record id"},
      {{"--home", home, "get", "cases"}, "ID"},
      {{"--home", home, "resolve", "cases", "0123456789abcdef0123456789abcdef", "$deleted",
        "maybe"},
       "true"},
      {{"--home", home, "invite", "--role", "boss"}, "boss"},
      {{"--home", home, "sync", "--max-attempts", "0"}, "max-attempts"},
      {{"--home", home, "init", "--hub", "hub.example.org", "--team", "T", "--token-file",
        "/dev/null"},
       "https://"},
      {{"--home", home, "init", "--hub", "http://h:1", "--team", "T", "--token-file", "/dev/null",
        "--pin", "sha256//abcdefgh="},
       "https"},
      {{"--home", home, "join", "not-a-code"}, "invite code"},
  };
  for (const auto& c : cases) {
    const RunResult r = RunCli(c.args, env);
    INFO("args: ", json(c.args).dump(), " stderr: ", r.err);
    CHECK(r.exit_code == kExitUsage);
    CHECK(r.err.find(c.message) != std::string::npos);
  }
  CHECK_FALSE(std::filesystem::exists(home));  // nothing was created on the way
}

TEST_CASE("help is available for every command and exits 0") {
  for (const std::string cmd : {"init", "invite", "join", "put", "get", "list", "delete", "restore",
                                "conflicts", "resolve", "sync", "status"}) {
    const RunResult r = RunCli({cmd, "--help"});
    INFO(cmd);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("Example") != std::string::npos);
  }
}

TEST_CASE("commands on a home that was never set up say how to set it up") {
  TempDir dir;
  const std::string home = dir.File("nothing-here");
  const RunResult r = RunCli({"--home", home, "get", "cases", "0123456789abcdef0123456789abcdef"},
                             {{"ENLACE_PASSPHRASE", kPassphrase}});
  CHECK(r.exit_code == kExitUsage);
  CHECK(r.err.find("not initialised, run enlace init or enlace join") != std::string::npos);

  const RunResult j = RunCli({"--home", home, "--json", "status"});
  CHECK(j.exit_code == kExitUsage);
  const json doc = json::parse(j.out);
  CHECK(doc["code"] == kExitUsage);
  CHECK(doc["error"].get<std::string>().find("not initialised") != std::string::npos);
}

TEST_CASE("a wrong or missing passphrase exits 2 and leaves the device as it was") {
  TempDir dir;
  const std::string home = dir.File("home");
  MakeHome(home);
  const std::string vault_before = Slurp(VaultPath(home));

  RunResult r = RunCli({"--home", home, "list", "cases"}, {{"ENLACE_PASSPHRASE", "wrong"}});
  CHECK(r.exit_code == kExitLocked);
  CHECK(r.err.find("passphrase") != std::string::npos);

  r = RunCli({"--home", home, "--json", "list", "cases"});  // no source, stdin not a terminal
  CHECK(r.exit_code == kExitLocked);
  CHECK(json::parse(r.out)["code"] == kExitLocked);
  CHECK(r.err.find("ENLACE_PASSPHRASE") != std::string::npos);

  r = RunCli({"--home", home, "--passphrase-file", dir.File("missing"), "list", "cases"},
             {{"ENLACE_PASSPHRASE", kPassphrase}});
  CHECK(r.exit_code == kExitLocked);  // the file, when given, is the source
  CHECK(Slurp(VaultPath(home)) == vault_before);

  std::ofstream(dir.File("pass")) << kPassphrase << "\n";
  r = RunCli({"--home", home, "--passphrase-file", dir.File("pass"), "list", "cases"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "no records in cases\n");
}

TEST_CASE("records written offline read back as JSON values, and data errors exit 5") {
  TempDir dir;
  const std::string home = dir.File("home");
  MakeHome(home);
  const std::map<std::string, std::string> env = {{"ENLACE_PASSPHRASE", kPassphrase}};
  // A code as text, an integer, strings that look like numbers, an array of
  // codes and a text with accents and spaces.
  RunResult r =
      RunCli({"--home", home, "--json", "put", "persons", "prs_Gender=Feminine",
              "vic_AgeWhenTrafficked=16", "prs_MobilePhone=\"0246\"", "prs_IdentityNumber=\"17\"",
              "prs_Citizenship=[\"MX\",\"GT\"]", "prs_MailingCity=Tlaxcala de Xicohténcatl"},
             env);
  INFO("stderr: ", r.err);
  REQUIRE(r.exit_code == 0);
  const std::string id = json::parse(r.out)["id"];
  CHECK(LooksLikeRecordId(id));

  r = RunCli({"--home", home, "put", "persons", id, "vic_AgeWhenTrafficked=17"}, env);
  CHECK(r.exit_code == 0);
  r = RunCli({"--home", home, "--json", "get", "persons", id}, env);
  REQUIRE(r.exit_code == 0);
  const json rec = json::parse(r.out);
  CHECK(rec["id"] == id);
  CHECK(rec["collection"] == "persons");
  CHECK(rec["fields"]["prs_Gender"] == "Feminine");
  CHECK(rec["fields"]["vic_AgeWhenTrafficked"] == 17);
  CHECK(rec["fields"]["prs_MobilePhone"] == "0246");
  CHECK(rec["fields"]["prs_IdentityNumber"] == "17");
  CHECK(rec["fields"]["prs_Citizenship"] == json::array({"MX", "GT"}));
  CHECK(rec["fields"]["prs_MailingCity"] == "Tlaxcala de Xicohténcatl");
  CHECK(rec["conflicts"].empty());
  CHECK(rec["deleted"] == false);
  CHECK(rec["delete_conflict"] == false);

  r = RunCli({"--home", home, "--json", "list", "persons"}, env);
  REQUIRE(r.exit_code == 0);
  CHECK(json::parse(r.out) == json::array({rec}));

  // The names line up after the widest, vic_AgeWhenTrafficked (21 characters).
  r = RunCli({"--home", home, "get", "persons", id}, env);
  CHECK(r.exit_code == 0);
  INFO("stdout: ", r.out);
  CHECK(r.out.find("  prs_Gender             Feminine\n") != std::string::npos);
  CHECK(r.out.find("  prs_MobilePhone        0246\n") != std::string::npos);  // reads back as text
  CHECK(r.out.find("  prs_IdentityNumber     \"17\"\n") !=
        std::string::npos);  // would read back as 17
  CHECK(r.out.find("  vic_AgeWhenTrafficked  17\n") != std::string::npos);

  // A case, created with its default status, and edited.
  r = RunCli({"--home", home, "--json", "put", "cases", "cas_Title=Tenancingo",
              "cas_CaseComment=llamó dos veces"},
             env);
  REQUIRE(r.exit_code == 0);
  const std::string case_id = json::parse(r.out)["id"];
  r = RunCli({"--home", home, "--json", "get", "cases", case_id}, env);
  REQUIRE(r.exit_code == 0);
  CHECK(json::parse(r.out)["fields"]["cas_Status"] == "Active");
  r = RunCli({"--home", home, "put", "cases", case_id, "cas_Status=FollowUp", "cas_Person=" + id},
             env);
  CHECK(r.exit_code == 0);
  r = RunCli({"--home", home, "--json", "get", "cases", case_id}, env);
  REQUIRE(r.exit_code == 0);
  const json case_rec = json::parse(r.out);
  CHECK(case_rec["fields"]["cas_Status"] == "FollowUp");
  CHECK(case_rec["fields"]["cas_Title"] == "Tenancingo");
  CHECK(case_rec["fields"]["cas_CaseComment"] == "llamó dos veces");
  CHECK(case_rec["fields"]["cas_Person"] == id);

  r = RunCli({"--home", home, "get", "cases", "0123456789abcdef0123456789abcdef"}, env);
  CHECK(r.exit_code == kExitData);
  r = RunCli({"--home", home, "delete", "cases", case_id}, env);
  CHECK(r.exit_code == 0);
  r = RunCli({"--home", home, "put", "cases", case_id, "cas_Status=Closed"}, env);
  CHECK(r.exit_code == kExitData);  // editing a deleted record
  CHECK(r.err.find("enlace restore") != std::string::npos);
  r = RunCli({"--home", home, "restore", "cases", case_id}, env);
  CHECK(r.exit_code == 0);
  r = RunCli({"--home", home, "--json", "conflicts"}, env);
  CHECK(r.exit_code == 0);
  CHECK(json::parse(r.out) == json::array());

  r = RunCli({"--home", home, "--json", "status"}, env);
  REQUIRE(r.exit_code == 0);
  const json status = json::parse(r.out);
  CHECK(status["pending"].get<int>() >= 1);
  CHECK(status["last_sync"].is_null());
  CHECK(status["hub"] == "http://127.0.0.1:9");
  CHECK(status["clock_offset_ms"] == 0);
  r = RunCli({"--home", home, "status"}, env);
  CHECK(r.out.find("last sync      never") != std::string::npos);
}

TEST_CASE("a put the schema refuses exits 5, names the field and writes nothing") {
  TempDir dir;
  const std::string home = dir.File("home");
  MakeHome(home);
  const std::map<std::string, std::string> env = {{"ENLACE_PASSPHRASE", kPassphrase}};
  RunResult r = RunCli({"--home", home, "--json", "put", "cases", "cas_Title=Apizaco"}, env);
  REQUIRE(r.exit_code == 0);
  const std::string id = json::parse(r.out)["id"];
  auto state = [&] {
    const RunResult s = RunCli({"--home", home, "--json", "status"}, env);
    REQUIRE(s.exit_code == 0);
    const RunResult cases = RunCli({"--home", home, "--json", "list", "cases"}, env);
    REQUIRE(cases.exit_code == 0);
    const RunResult encounters = RunCli({"--home", home, "--json", "list", "encounters"}, env);
    REQUIRE(encounters.exit_code == 0);
    return json{{"pending", json::parse(s.out)["pending"]},
                {"cases", json::parse(cases.out)},
                {"encounters", json::parse(encounters.out)}};
  };
  const json before = state();
  REQUIRE(before["pending"] == 1);

  struct Case {
    std::vector<std::string> put;
    std::string message;  // part of stderr
  };
  const std::vector<Case> cases = {
      // The free-form fields of old: unknown in the schema.
      {{"cases", "status=Active", "age=16", "municipality=Tenancingo"}, "cases.age: unknown field"},
      {{"cases", id, "referral=DIF"}, "cases.referral: unknown field"},
      // A field of another collection.
      {{"cases", "cas_Title=x", "prs_FirstName=Ana"}, "cases.prs_FirstName: unknown field"},
      // A code outside its list, on a new record and on an edit.
      {{"cases", "cas_Status=Open"}, "cases.cas_Status: \"Open\" is not one of Active"},
      {{"cases", id, "cas_Status=Abierto"}, "cases.cas_Status"},
      {{"encounters", "enc_Date=2026-10-02", "enc_Kind=Car"}, "encounters.enc_Kind"},
      // A wrong type, a value out of range, a missing required field, a date
      // that is not a day.
      {{"cases", id, "cas_OpenedDate=2026-02-30"}, "cases.cas_OpenedDate"},
      {{"encounters", "enc_Date=2026-10-02", "enc_Kind=Street", "enc_PeopleReached=-1"},
       "encounters.enc_PeopleReached"},
      {{"encounters", "enc_Place=Apizaco"}, "encounters.enc_Date: is required"},
      {{"cases", id, "cas_Status=null"}, "cases.cas_Status"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"--home", home, "put"};
    args.insert(args.end(), c.put.begin(), c.put.end());
    r = RunCli(args, env);
    INFO("put ", json(c.put).dump(), " stderr: ", r.err);
    CHECK(r.exit_code == kExitData);
    CHECK(r.err.find(c.message) != std::string::npos);
    CHECK(r.out.empty());
  }
  // The same with --json: the error is a JSON document with code 5.
  r = RunCli({"--home", home, "--json", "put", "cases", "cas_Status=Open"}, env);
  CHECK(r.exit_code == kExitData);
  const json doc = json::parse(r.out);
  CHECK(doc["code"] == kExitData);
  CHECK(doc["error"].get<std::string>().find("cas_Status") != std::string::npos);

  CHECK(state() == before);  // nothing was written, nothing waits to be sent
}

TEST_CASE("sync to a hub that is not there exits 3 after the given attempts") {
  TempDir dir;
  const std::string home = dir.File("home");
  const std::string url = "http://127.0.0.1:" + std::to_string(ClosedPort());
  MakeHome(home, url);
  const RunResult r = RunCli({"--home", home, "--json", "sync", "--max-attempts", "3"},
                             {{"ENLACE_PASSPHRASE", kPassphrase}, {"ENLACE_RETRY_BASE_MS", "1"}});
  CHECK(r.exit_code == kExitUnreachable);
  const json doc = json::parse(r.out);
  CHECK(doc["code"] == kExitUnreachable);
  CHECK(doc["error"].get<std::string>().rfind("hub unreachable at " + url + " after 3 attempts: ",
                                              0) == 0);
}

TEST_CASE("init that cannot reach the hub leaves no half-made device behind") {
  TempDir dir;
  const std::string home = dir.File("home");
  const std::string url = "http://127.0.0.1:" + std::to_string(ClosedPort());
  const RunResult r = RunCli(
      {"--home", home, "init", "--hub", url, "--team", "T", "--token-file", TokenFile(dir),
       "--name", "c"},
      {{"ENLACE_PASSPHRASE", kPassphrase}, {"ENLACE_KDF", "min"}, {"ENLACE_RETRY_BASE_MS", "1"}});
  CHECK(r.exit_code == kExitUnreachable);
  CHECK_FALSE(std::filesystem::exists(home));
}

// ---- Spanish and English --------------------------------------------------------------------

// Sets the in-process language for one test and puts English back after it.
class InSpanish {
 public:
  InSpanish() { i18n::SetLanguage("es"); }
  ~InSpanish() { i18n::SetLanguage("en"); }
  InSpanish(const InSpanish&) = delete;
  InSpanish& operator=(const InSpanish&) = delete;
};

TEST_CASE("help is in Spanish under LANG=es_MX.UTF-8 and in English under LANG=C") {
  const RunResult es = RunCli({"--help"}, {{"LANG", "es_MX.UTF-8"}});
  CHECK(es.exit_code == 0);
  INFO(es.out);
  CHECK(es.out.find("Uso: enlace [OPCIONES] COMANDO") != std::string::npos);
  CHECK(es.out.find("Opciones:\n") != std::string::npos);
  CHECK(es.out.find("Comandos:\n") != std::string::npos);
  CHECK(es.out.find("Muestra esta ayuda y termina") != std::string::npos);
  CHECK(es.out.find("frase de acceso") != std::string::npos);
  CHECK(es.out.find("Send this device's new writes") == std::string::npos);

  const RunResult en = RunCli({"--help"}, {{"LANG", "C"}});
  CHECK(en.exit_code == 0);
  CHECK(en.out.find("Usage: enlace [OPTIONS] SUBCOMMAND") != std::string::npos);
  CHECK(en.out.find("Subcommands:\n") != std::string::npos);
  CHECK(en.out.find("Send this device's new writes to the hub") != std::string::npos);
  CHECK(en.out.find("Uso:") == std::string::npos);

  // A command's help, its own -h line included, follows too.
  const RunResult sync = RunCli({"sync", "--help"}, {{"LANG", "es_MX.UTF-8"}});
  CHECK(sync.exit_code == 0);
  CHECK(sync.out.find("Uso: enlace sync [OPCIONES]") != std::string::npos);
  CHECK(sync.out.find("Opciones:\n  -h,--help                   Muestra esta ayuda") !=
        std::string::npos);
  CHECK(sync.out.find("Options:") == std::string::npos);
  CHECK(sync.out.find("Ejemplo:\n  enlace sync") != std::string::npos);
}

TEST_CASE("errors follow the language; JSON keys and exit codes do not") {
  TempDir dir;
  const std::string home = dir.File("nothing-here");
  RunResult r = RunCli({"--home", home, "status"}, {{"LANG", "es_MX.UTF-8"}});
  CHECK(r.exit_code == kExitUsage);
  CHECK(r.err == "enlace: " + home + " no está inicializado, ejecuta enlace init o enlace join\n");

  r = RunCli({"--home", home, "status"}, {{"LANG", "C"}});
  CHECK(r.exit_code == kExitUsage);
  CHECK(r.err == "enlace: " + home + " is not initialised, run enlace init or enlace join\n");

  r = RunCli({"--home", home, "--json", "status"}, {{"LANG", "es_MX.UTF-8"}});
  CHECK(r.exit_code == kExitUsage);
  const json doc = json::parse(r.out);
  CHECK(doc["code"] == kExitUsage);
  CHECK(doc["error"].get<std::string>().find("no está inicializado") != std::string::npos);

  r = RunCli({"frobnicate"}, {{"LANG", "es_MX.UTF-8"}});
  CHECK(r.exit_code == kExitUsage);
  CHECK(r.err.find("comando desconocido \"frobnicate\"; consulta enlace --help") !=
        std::string::npos);
  // CLI11's own explanation stays English; the hint after it is ours.
  r = RunCli({"--home", home, "get", "cases"}, {{"LANG", "es_MX.UTF-8"}});
  CHECK(r.exit_code == kExitUsage);
  CHECK(r.err.find("Ejecuta con --help para más información.") != std::string::npos);
}

TEST_CASE("LANGUAGE, LC_ALL and LC_MESSAGES come before LANG") {
  TempDir dir;
  const std::string home = dir.File("nothing-here");
  const std::string spanish = "no está inicializado";
  const std::vector<std::pair<std::map<std::string, std::string>, bool>> cases = {
      {{{"LANG", "C"}, {"LANGUAGE", "es"}}, true},
      {{{"LANG", "es_MX.UTF-8"}, {"LC_ALL", "C"}}, false},
      {{{"LANG", "C"}, {"LC_MESSAGES", "es_MX.UTF-8"}}, true},
      {{{"LANG", "es_ES.UTF-8"}}, true},
      {{{"LANG", "POSIX"}}, false},
  };
  for (const auto& [env, is_spanish] : cases) {
    std::string shown;
    for (const auto& [k, v] : env) shown += k + "=" + v + " ";
    INFO(shown);
    const RunResult r = RunCli({"--home", home, "status"}, env);
    CHECK((r.err.find(spanish) != std::string::npos) == is_spanish);
  }
}

TEST_CASE("a device's status and records read in Spanish, lined up, with machine values kept") {
  TempDir dir;
  const std::string home = dir.File("home");
  MakeHome(home);
  std::map<std::string, std::string> env = {{"ENLACE_PASSPHRASE", kPassphrase},
                                            {"LANG", "es_MX.UTF-8"}};
  RunResult r = RunCli({"--home", home, "status"}, env);
  REQUIRE(r.exit_code == 0);
  INFO(r.out);
  // The widest label, "última sincronización" (21 characters), sets the column.
  CHECK(r.out.find("cambios sin enviar     0\n") != std::string::npos);
  CHECK(r.out.find("última sincronización  nunca\n") != std::string::npos);
  CHECK(r.out.find("rol                    campo\n") != std::string::npos);

  r = RunCli({"--home", home, "--json", "status"}, env);
  REQUIRE(r.exit_code == 0);
  const json status = json::parse(r.out);
  CHECK(status["role"] == "field");
  CHECK(status["last_sync"].is_null());

  r = RunCli({"--home", home, "list", "cases"}, env);
  CHECK(r.out == "no hay registros en cases\n");
  r = RunCli({"--home", home, "put", "cases", "cas_Status=Active"}, env);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.rfind("creado cases ", 0) == 0);
  const std::string id = r.out.substr(std::string("creado cases ").size(), 32);
  r = RunCli({"--home", home, "delete", "cases", id}, env);
  CHECK(r.out == "borrado cases " + id + " (enlace restore lo recupera)\n");
  r = RunCli({"--home", home, "get", "cases", id}, env);
  CHECK(r.out.find("cases " + id + "  (borrado)\n") == 0);
  CHECK(r.out.find("Para recuperarlo: enlace restore cases " + id) != std::string::npos);

  // Messages of the core's case work (core/src/casework.cc) are Spanish too.
  r = RunCli({"--home", home, "encounter", "log", "--no-prompt", "--set", "enc_Kind=Street",
              "--set", "enc_PeopleReached=muchas"},
             env);
  CHECK(r.exit_code == kExitData);
  CHECK(r.err.find("enc_PeopleReached: \"muchas\" no es un número entero") != std::string::npos);
  r = RunCli({"--home", home, "case", "show", "zz"}, env);
  CHECK(r.exit_code == kExitUsage);
  CHECK(r.err.find("\"zz\" no es un ID de registro") != std::string::npos);

  r = RunCli({"--home", home, "list", "cases"},
             {{"ENLACE_PASSPHRASE", "no es"}, {"LANG", "es_MX.UTF-8"}});
  CHECK(r.exit_code == kExitLocked);
  CHECK(r.err.find("frase de acceso incorrecta") != std::string::npos);
}

TEST_CASE("messages built in process follow SetLanguage, values in the translation's order") {
  {
    InSpanish es;
    CHECK(ClockWarning(3 * 60 * 1000) ==
          "el reloj de este dispositivo va 3 minutos atrasado respecto al hub; enlace usa la "
          "hora del hub");
    CHECK(ClockWarning(-60 * 1000 - 1) ==
          "el reloj de este dispositivo va 1 minuto adelantado respecto al hub; enlace usa la "
          "hora del hub");
    CHECK(ParseDuration("1h0").status().message() ==
          "\"1h0\" no es una duración como 90m, 72h o 7d");
    std::ostringstream out, err;
    Output o(false, out, err);
    o.Warn("x");
    CHECK(err.str() == "enlace: aviso: x\n");
  }
  CHECK(ClockWarning(-60 * 1000 - 1) ==
        "this device's clock is 1 minute ahead of the hub; enlace is using the hub's time");
  CHECK(DisplayWidth("última") == 6);
  CHECK(DisplayWidth("abc") == 3);
}

}  // namespace
}  // namespace enlace::cli
