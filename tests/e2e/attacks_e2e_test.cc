// Attacks on a team's trust with the real binaries (issue 14): a hostile
// member, a rogue coordinator, or a moment alone with a locked device. Each
// test is an attack that succeeded before its defence.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "cli_fixture.h"

namespace enlace::testing {
namespace {

using nlohmann::json;

// ---- 9: roles come from the verified registry only -----------------------------------------

TEST_CASE("a field device that edits its config to coordinator gets no coordinator's rights") {
  Office office;
  CliDevice ana = office.Join("ana");
  ana.Ok({"case", "new", "--no-prompt", "--set", "prs_FirstName=Maria", "--set",
          "prs_Gender=Feminine"});
  const std::string config_path = ana.home + "/config.json";
  json config = json::parse(ReadFile(config_path));
  REQUIRE(config["role"] == "field");
  config["role"] = "coordinator";
  WriteFile(config_path, config.dump());

  const RunResult exported = ana.Run({"export", "--format", "csv", "--collection", "persons",
                                      "--include-identifying", "--output", ana.home + "/p.csv"});
  CHECK(exported.exit_code == 5);
  CHECK(exported.err.find("coordinators only") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(ana.home + "/p.csv"));

  const RunResult published = ana.Run({"report", "--by", "gender", "--publish"});
  CHECK(published.exit_code == 5);
  CHECK(published.err.find("only a coordinator") != std::string::npos);

  // status shows the role the registry gives, whatever the file says.
  CHECK(ana.Json({"status"})["role"] == "field");
  CHECK(office.coord.Json({"status"})["role"] == "coordinator");
}

// ---- 6: a documented way to re-read the hub's log -------------------------------------------

TEST_CASE("enlace sync --full reads the hub's whole log again and loses nothing") {
  Office office;
  CliDevice ana = office.Join("ana");
  ana.Ok({"case", "new", "--no-prompt", "--set", "prs_FirstName=Maria", "--set",
          "prs_Gender=Feminine"});
  ana.Sync();
  const json first = office.coord.Sync();
  CHECK(first["received"].get<int>() >= 1);
  // A plain sync has nothing left to read; --full reads every write again,
  // recognises them and changes nothing.
  const json plain = office.coord.Sync();
  CHECK(plain["received"] == 0);
  CHECK(plain["ignored"] == 0);
  const json full = office.coord.Json({"sync", "--full"});
  CHECK(full["received"] == 0);
  CHECK(full["ignored"].get<int>() >= first["received"].get<int>());
  CHECK(full["parked"] == 0);
  CHECK(full["refetch_pending"] == 0);
  CHECK(office.coord.Run({"list", "persons"}).out.find("Maria") != std::string::npos);
}

}  // namespace
}  // namespace enlace::testing
