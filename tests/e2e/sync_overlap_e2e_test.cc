// Exit codes that tell the truth (issue 15 item 4): two `enlace sync` started
// at once on one device. Before, one exited 3 ("the hub did not acknowledge
// the writes it was sent") although the hub had stored everything: it judged
// acknowledgement by the outbox, which the other run had emptied.
#include <doctest/doctest.h>
#include <fcntl.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "child_process.h"
#include "cli_fixture.h"

namespace enlace::testing {
namespace {

using nlohmann::json;

// `rows` encounters in one import, enough for several push batches.
void ImportEncounters(const CliDevice& d, const std::string& path, int rows, int tag) {
  std::ofstream csv(path);
  csv << "enc_Date,enc_Kind,enc_Place,enc_FederalEntity,enc_PeopleReached,enc_Notes\n";
  const std::string filler(300, 'x');
  for (int i = 0; i < rows; ++i) {
    csv << "2026-11-29,Street,Apizaco,29," << (i % 9 + 1) << ",lote " << tag << " fila " << i << " "
        << filler << "\n";
  }
  csv.close();
  d.Ok({"import", path, "--collection", "encounters"});
}

struct Started {
  pid_t pid;
  std::string out, err;
};

Started StartSync(const CliDevice& d, const std::string& tag) {
  Started s{-1, d.home + "/sync-" + tag + ".out", d.home + "/sync-" + tag + ".err"};
  std::vector<std::string> env;
  for (const auto& [k, v] : d.Env()) env.push_back(k + "=" + v);
  for (const auto& e : ChildEnvironment()) env.push_back(e);
  auto pid = SpawnChild(d.Argv({"--json", "sync"}), env, ChildStream::Null(O_RDONLY),
                        ChildStream::File(s.out, O_WRONLY | O_CREAT | O_TRUNC),
                        ChildStream::File(s.err, O_WRONLY | O_CREAT | O_TRUNC));
  REQUIRE(pid.ok());
  s.pid = *pid;
  return s;
}

TEST_CASE("two syncs started at once on one device both tell the truth, and nothing is lost") {
  Office o;
  CliDevice ana = o.Join("ana");
  int total = 0;
  for (int attempt = 0; attempt < 3; ++attempt) {
    CAPTURE(attempt);
    ImportEncounters(ana, ana.home + "/lote.csv", 1200, attempt);
    total += 1200;
    Started a = StartSync(ana, "a");
    Started b = StartSync(ana, "b");
    const int code_a = WaitChild(a.pid);
    const int code_b = WaitChild(b.pid);
    INFO("a: ", code_a, " ", ReadFile(a.err), "\nb: ", code_b, " ", ReadFile(b.err));
    // Each run either did its work (0) or, if the device's store was busy
    // with the other, says so as a local problem; never "the hub did not
    // acknowledge" when it did.
    CHECK(code_a != 3);
    CHECK(code_b != 3);
    CHECK((code_a == 0 || code_b == 0));
    const json status = ana.Json({"status"});
    CHECK(status["pending"] == 0);
  }
  o.coord.Sync();
  CHECK(o.coord.Json({"list", "encounters"}).size() == static_cast<size_t>(total));
}

}  // namespace
}  // namespace enlace::testing
