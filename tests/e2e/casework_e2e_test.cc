// Case work end to end, as a new user would meet it on the demo hub: a case
// captured in Spanish through guided prompts on a terminal (a real
// pseudo-terminal), seen on another device after sync, exported (CSV, JSON,
// CTDC), imported from a spreadsheet, and reported with small cells
// suppressed, as a table and an SVG chart, then published to the hub.
#include <doctest/doctest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli_fixture.h"
#include "enlace/schema.h"

namespace enlace {
namespace {

using nlohmann::json;
using testing::RunResult;

using Device = testing::CliDevice;
using testing::Office;

// Runs the CLI on a pseudo-terminal, typing `answers` (one per line), and
// returns everything it showed and its exit code.
RunResult RunOnTerminal(const Device& device, const std::vector<std::string>& args,
                        const std::vector<std::string>& answers,
                        const std::map<std::string, std::string>& env) {
  int master = -1;
  const pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
  REQUIRE(pid >= 0);
  if (pid == 0) {
    for (const auto& [k, v] : device.Env(env)) ::setenv(k.c_str(), v.c_str(), 1);
    std::vector<std::string> argv = device.Argv(args);
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    ::execv(testing::kCliBin.c_str(), cargv.data());
    ::_exit(127);
  }
  // Answers are typed one by one, each after the program asked (a prompt
  // ends without a newline), as a person would.
  std::string shown;
  size_t next = 0;
  size_t asked_at = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{master, POLLIN, 0};
    const int ready = ::poll(&p, 1, 200);
    if (ready > 0) {
      char buf[4096];
      const ssize_t n = ::read(master, buf, sizeof buf);
      if (n <= 0) break;  // the child closed the terminal
      shown.append(buf, static_cast<size_t>(n));
      continue;
    }
    // Quiet: when the last thing shown is a prompt ("> " or "] "), answer.
    const std::string tail = shown.size() > 2 ? shown.substr(shown.size() - 2) : shown;
    if (shown.size() > asked_at && (tail == "> " || tail == "] ") && next < answers.size()) {
      // "<EOF>" is Ctrl-D at the start of a line: the end of the input.
      const std::string line = answers[next] == "<EOF>" ? "\x04" : answers[next] + "\r";
      ++next;
      REQUIRE(::write(master, line.data(), line.size()) == static_cast<ssize_t>(line.size()));
      asked_at = shown.size() + line.size();
    }
  }
  int status = 0;
  ::kill(pid, SIGKILL);  // no-op when it already ended
  ::waitpid(pid, &status, 0);
  ::close(master);
  RunResult r;
  r.out = shown;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

// The answers to the guided `case new`: a value for some fields, Enter for
// the rest, in the pack's order, and "s" to each "save?".
std::vector<std::string> CaseAnswers(const std::map<std::string, std::string>& person,
                                     const std::map<std::string, std::string>& the_case) {
  const SchemaPack& pack = SchemaPack::Builtin();
  std::vector<std::string> answers;
  for (const auto& [collection, values] :
       std::vector<std::pair<std::string, std::map<std::string, std::string>>>{
           {"persons", person}, {"cases", the_case}}) {
    for (const FieldDef& f : pack.FindCollection(collection)->fields) {
      if (f.name == "cas_Person") continue;  // filled by the command
      auto it = values.find(f.name);
      answers.push_back(it == values.end() ? "" : it->second);
    }
    answers.push_back("s");
  }
  return answers;
}

TEST_CASE("a case captured in Spanish on a terminal reaches the coordinator, exports and reports") {
  Office o;
  Device ana = o.Join("ana");

  const RunResult capture =
      RunOnTerminal(ana, {"case", "new"},
                    CaseAnswers({{"prs_FirstName", "María"},
                                 {"prs_LastName", "López"},
                                 {"prs_Gender", "1"},                   // numbered choice: Femenino
                                 {"prs_Citizenship", "MX, Guatemala"},  // a code and a name
                                 {"vic_TraffickingStatus", "2"},        // Actual
                                 {"vic_AgeWhenTrafficked", "16"},
                                 {"vic_TypeOfExploitation", "2"},  // sexual exploitation
                                 {"vic_MethodsOfControl", "RestrictsMovement"}},
                                {{"cas_Title", "Tenancingo, calle"}}),
                    {{"LANGUAGE", "es_MX"}});
  INFO("terminal: ", capture.out);
  REQUIRE(capture.exit_code == 0);
  // Spanish prompts and labels, and the Spanish confirmation.
  CHECK(capture.out.find("Caso nuevo") != std::string::npos);
  CHECK(capture.out.find("(obligatorio)") != std::string::npos);
  CHECK(capture.out.find("Guardar?") != std::string::npos);
  CHECK(capture.out.find("creado") != std::string::npos);

  ana.Ok({"sync"});
  o.coord.Ok({"sync"});
  const json cases = o.coord.Json({"case", "list"});
  REQUIRE(cases.size() == 1);
  CHECK(cases[0]["cas_Status"] == "Active");
  CHECK(cases[0]["cas_CaseOwner"] == "ana");
  CHECK(cases[0]["person_name"] == "María López");
  const std::string case_id = cases[0]["id"];
  const json shown = o.coord.Json({"case", "show", case_id.substr(0, 8)});
  CHECK(shown["person"]["prs_Citizenship"] == json::array({"MX", "GT"}));
  CHECK(shown["person"]["vic_MethodsOfControl"] == json::array({"RestrictsMovement"}));

  // Search finds her without the accent; status filters.
  CHECK(o.coord.Json({"case", "list", "--search", "lopez"}).size() == 1);
  CHECK(o.coord.Json({"case", "list", "--status", "Closed"}).empty());

  // An event and an outgoing referral, non-interactively.
  o.coord.Ok({"event", "add", case_id.substr(0, 8), "--set", "hte_Type=Exploitation", "--set",
              "hte_Country=MX", "--set", "hte_FederalEntity=29", "--set", "hte_Date=2026-10-02"});
  o.coord.Ok({"referral", "add", case_id.substr(0, 8), "--direction", "out", "--close", "--set",
              "cas_ReferredOrganisation=DIF Tlaxcala"});
  const json after = o.coord.Json({"case", "show", case_id});
  CHECK(after["case"]["cas_Status"] == "ClosedReferred");
  REQUIRE(after["events"].size() == 1);
  CHECK(after["events"][0]["hte_FederalEntity"] == "29");

  // Exports: identifying fields only for a coordinator who asks.
  const RunResult plain = o.coord.Run({"export", "--format", "csv", "--collection", "persons"});
  REQUIRE(plain.exit_code == 0);
  CHECK(plain.out.find("María") == std::string::npos);
  CHECK(plain.out.find("prs_Gender") != std::string::npos);
  CHECK(plain.out.find("Feminine") != std::string::npos);
  const RunResult full = o.coord.Run(
      {"export", "--format", "csv", "--collection", "persons", "--include-identifying"});
  REQUIRE(full.exit_code == 0);
  CHECK(full.out.find("María") != std::string::npos);
  CHECK(ana.Run({"export", "--format", "json", "--include-identifying"}).exit_code == 5);

  const RunResult ctdc = o.coord.Run({"export", "--format", "ctdc"});
  REQUIRE(ctdc.exit_code == 0);
  std::istringstream lines(ctdc.out);
  std::string header, row;
  std::getline(lines, header);
  std::getline(lines, row);
  CHECK(header.find("ageBroad") != std::string::npos);
  // One victim is a group of one: withheld, and said so (k-anonymity of
  // the quasi-identifiers; tests/casework/casework_test.cc has the columns).
  CHECK(row.empty());
  CHECK(ctdc.err.find("1 rows withheld") != std::string::npos);

  // Reports: one victim is a small cell, never shown; the SVG is drawn.
  const std::string svg = o.dir.File("report.svg");
  o.coord.Ok({"report", "--by", "gender", "--format", "svg", "--output", svg});
  const std::string chart = testing::ReadFile(svg);
  CHECK(chart.find("<svg") != std::string::npos);
  CHECK(chart.find("</svg>") != std::string::npos);
  const RunResult table = o.coord.Run({"report", "--by", "gender"});
  REQUIRE(table.exit_code == 0);
  CHECK(table.out.find("<11") != std::string::npos);

  // Publishing: a coordinator may, a field device may not; both can read.
  // Only a closed calendar period is published (docs/REPORTS.md): the
  // event of 2 October is in October 2026, which is over.
  const RunResult open = o.coord.Run({"report", "--by", "gender", "--publish"});
  CHECK(open.exit_code != 0);
  CHECK(open.err.find("closed calendar period") != std::string::npos);
  const std::vector<std::string> october = {"report",     "--by", "federal_entity", "--from",
                                            "2026-10-01", "--to", "2026-10-31",     "--publish"};
  std::vector<std::string> publish = {"--json"};
  publish.insert(publish.end(), october.begin(), october.end());
  const RunResult pub = o.coord.Run(publish);
  INFO("stderr: ", pub.err);
  REQUIRE(pub.exit_code == 0);
  const json published = json::parse(pub.out);
  CHECK(published.contains("published"));
  CHECK(ana.Run(october).exit_code == 5);
  const json listed = ana.Json({"reports"});
  CHECK(listed.dump().find(published["published"].get<std::string>()) != std::string::npos);
}

TEST_CASE("guided capture speaks English without a Spanish locale; Ctrl-D writes nothing") {
  Office o;
  std::vector<std::string> answers;
  for (const FieldDef& f : SchemaPack::Builtin().FindCollection("encounters")->fields) {
    answers.push_back(f.name == "enc_Kind" ? "2" : f.name == "enc_PeopleReached" ? "4" : "");
  }
  answers.push_back("y");
  const RunResult english = RunOnTerminal(o.coord, {"encounter", "log"}, answers, {});
  INFO("terminal: ", english.out);
  REQUIRE(english.exit_code == 0);
  CHECK(english.out.find("New outreach encounter") != std::string::npos);
  CHECK(english.out.find("Save? [Y/n]") != std::string::npos);
  CHECK(english.out.find("encounter ") != std::string::npos);
  const json listed = o.coord.Json({"list", "encounters"});
  REQUIRE(listed.size() == 1);
  CHECK(listed[0]["fields"]["enc_Kind"] == "Shelter");
  CHECK(listed[0]["fields"]["enc_PeopleReached"] == 4);

  // The input ends (Ctrl-D) before the questions do: nothing is written, exit 1.
  const RunResult cancelled = RunOnTerminal(o.coord, {"encounter", "log"}, {"", "<EOF>"}, {});
  CHECK(cancelled.exit_code == 1);
  CHECK(cancelled.out.find("cancelled") != std::string::npos);
  CHECK(o.coord.Json({"list", "encounters"}).size() == 1);
}

TEST_CASE("a coordinator's regional overlay reaches field devices through sync") {
  Office o;
  Device ana = o.Join("ana");
  const std::string overlay = o.dir.File("tlaxcala.json");
  {
    std::ofstream out(overlay);
    out << R"({"base": "enlace-htcds", "version": 1, "name": "Tlaxcala",
      "codelists": {"TlaxcalaShelter": [{"code": "CasaA", "label": "House A",
                                          "labels": {"es": "Casa A"}}]},
      "collections": [{"name": "encounters", "fields": [
        {"name": "tlx_Shelter", "type": "code", "codelist": "TlaxcalaShelter",
         "label": "Shelter", "labels": {"es": "Albergue"}}]}]})";
  }
  // A field device may not publish one; before sync the field is unknown.
  CHECK(ana.Run({"schema", "--publish-overlay", overlay}).exit_code == 5);
  const std::vector<std::string> put = {"encounter",       "log",   "--set",
                                        "enc_Kind=Street", "--set", "tlx_Shelter=CasaA"};
  CHECK(ana.Run(put).exit_code == 1);  // unknown field: a usage error of --set
  o.coord.Ok({"schema", "--publish-overlay", overlay});
  o.coord.Ok({"sync"});
  ana.Ok({"sync"});
  ana.Ok(put);
  CHECK(ana.Json({"schema"})["overlay_version"] == 1);
  const RunResult es = ana.Run({"schema", "encounters"}, {{"LANGUAGE", "es_MX"}});
  CHECK(es.out.find("Albergue") != std::string::npos);
  // An overlay that retypes a base field is refused, nothing published.
  {
    std::ofstream out(overlay);
    out << R"({"base": "enlace-htcds", "version": 2, "collections": [{"name": "persons",
      "fields": [{"name": "vic_AgeWhenTrafficked", "type": "string", "label": "Age"}]}]})";
  }
  const RunResult retype = o.coord.Run({"schema", "--publish-overlay", overlay});
  CHECK(retype.exit_code == 5);
  CHECK(retype.err.find("vic_AgeWhenTrafficked") != std::string::npos);
  CHECK(o.coord.Json({"schema"})["overlay_version"] == 1);
}

TEST_CASE("an import validates every row, reports rejects by line and is idempotent") {
  Office o;
  const std::string csv = o.dir.File("victimas.csv");
  {
    std::ofstream out(csv);
    out << "Folio,Sexo,Edad,Estatus,Explotacion\n";
    for (int i = 0; i < 40; ++i) {
      out << "F" << i << "," << (i % 3 == 0 ? "M" : "F") << "," << (12 + i % 20) << ",Actual,"
          << (i % 2 == 0 ? "Sexual" : "Laboral") << "\n";
    }
    out << "F40,X,15,Actual,Sexual\n";      // unknown gender
    out << "F41,F,quince,Actual,Sexual\n";  // not a number
  }
  const std::string map = o.dir.File("map.json");
  {
    std::ofstream out(map);
    out << R"({"key": "Folio",
      "columns": {"Sexo": "prs_Gender", "Edad": "vic_AgeWhenTrafficked",
                  "Estatus": "vic_TraffickingStatus", "Explotacion": "vic_TypeOfExploitation"},
      "values": {"prs_Gender": {"F": "Feminine", "M": "Masculine"},
                 "vic_TraffickingStatus": {"Actual": "ActualVictimOfTrafficking"},
                 "vic_TypeOfExploitation": {"Sexual": "SexualExploitation",
                                             "Laboral": "ForcedLabour"}}})";
  }
  const RunResult first =
      o.coord.Run({"--json", "import", csv, "--collection", "persons", "--map", map});
  INFO(first.out, first.err);
  CHECK(first.exit_code == 5);  // some rows were rejected
  const json summary = json::parse(first.out);
  CHECK(summary["created"] == 40);
  CHECK(summary["rejected"] == 2);
  const std::string rejects = testing::ReadFile(csv + ".rejected.csv");
  CHECK(rejects.find("\n42,") != std::string::npos);
  CHECK(rejects.find("\n43,") != std::string::npos);
  CHECK(rejects.find("prs_Gender") != std::string::npos);

  const json again = json::parse(
      o.coord.Run({"--json", "import", csv, "--collection", "persons", "--map", map}).out);
  CHECK(again["created"] == 0);
  CHECK(again["unchanged"] == 40);
  CHECK(o.coord.Json({"list", "persons"}).size() == 40);

  // A spreadsheet saved by Excel as plain "CSV" (Windows-1252) is converted.
  const std::string latin = o.dir.File("latin1.csv");
  {
    std::ofstream out(latin, std::ios::binary);
    out << "Folio,prs_FirstName,prs_Gender\r\nL1,Mar\xED"
           "a Pe\xF1"
           "a,Feminine\r\n";
  }
  const RunResult converted =
      o.coord.Run({"import", latin, "--collection", "persons", "--key", "Folio"});
  INFO(converted.err);
  CHECK(converted.exit_code == 0);
  CHECK(converted.err.find("Windows-1252") != std::string::npos);
  const RunResult names = o.coord.Run(
      {"export", "--format", "csv", "--collection", "persons", "--include-identifying"});
  CHECK(names.out.find("Mar\xC3\xAD"
                       "a Pe\xC3\xB1"
                       "a") != std::string::npos);

  // 40 victims by gender: 14 men and 26 women, both published.
  const RunResult report = o.coord.Run({"--json", "report", "--by", "gender", "--format", "json"});
  REQUIRE(report.exit_code == 0);
  const json r = json::parse(report.out);
  CHECK(r["total"] == 40);  // María has no trafficking status: not counted
}

}  // namespace
}  // namespace enlace
