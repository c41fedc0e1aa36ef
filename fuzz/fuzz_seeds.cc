// Writes the seed corpora of schema_fuzz, report_fuzz, hub_request_fuzz and
// wire_fuzz: a few valid inputs of each kind, one file each, under
// <root>/schema, <root>/report, <root>/hub_request and <root>/wire.
//   fuzz_seeds fuzz/corpus
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "device_setup.h"
#include "enlace/replica.h"
#include "enlace/report.h"
#include "enlace/sync.h"
#include "enlace/team.h"
#include "enlace/wire.h"
#include "fuzz_team.h"
#include "fuzz_util.h"
#include "temp_dir.h"

namespace enlace::fuzz {
namespace {

int failures = 0;

void Save(const std::string& dir, const std::string& name, std::string_view bytes) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/" + name, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void Save(const std::string& dir, const std::string& name, const Bytes& bytes) {
  Save(dir, name, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

bool Check(const Status& s, const char* what) {
  if (s.ok()) return true;
  std::fprintf(stderr, "fuzz_seeds: %s: %s\n", what, s.ToString().c_str());
  ++failures;
  return false;
}

template <typename T>
bool Check(const Result<T>& r, const char* what) {
  return Check(r.status(), what);
}

void SchemaSeeds(const std::string& dir) {
  Save(dir, "overlay",
       R"({ "base": "enlace-htcds", "version": 2, "name": "Tlaxcala",
  "codelists": {
    "EncounterKind": [ {"code": "Market", "label": "Market", "labels": {"es": "Mercado"}},
                       {"code": "Street", "labels": {"es": "Vía pública"}} ],
    "TlaxcalaShelter": [ {"code": "CasaA", "label": "Casa A"} ] },
  "collections": [
    { "name": "encounters", "fields": [
        {"name": "tlx_Shelter", "type": "code", "codelist": "TlaxcalaShelter",
         "label": "Shelter", "labels": {"es": "Albergue"}},
        {"name": "enc_Kind", "labels": {"es": "Modalidad"}} ] },
    { "name": "trainings", "label": "Training", "title_field": "trn_Topic",
      "fields": [ {"name": "trn_Topic", "type": "string", "label": "Topic", "required": true} ] } ] })");
  Save(
      dir, "pack",
      R"({"pack":"mini","version":1,"codelists":{"Color":[{"code":"Red","label":"Red"},)"
      R"({"code":"09","label":"Nine","labels":{"es":"Nueve"}}]},"collections":[{"name":"things",)"
      R"("label":"Thing","title_field":"a","fields":[{"name":"a","type":"string","label":"A",)"
      R"("max_length":5},{"name":"n","type":"integer","label":"N","min":0,"max":9,"default":"1"},)"
      R"({"name":"c","type":"codes","codelist":"Color","label":"C","required":true},)"
      R"({"name":"r","type":"ref","collection":"things","label":"R"},)"
      R"({"name":"d","type":"date","label":"D"},{"name":"x","type":"number","label":"X"},)"
      R"({"name":"b","type":"boolean","label":"B"},{"name":"s","type":"strings","label":"S"}]}]})");
  Save(
      dir, "validate-case",
      R"({"collection":"cases","creating":true,"fields":{"cas_Status":"FollowUp",)"
      R"("cas_Title":"x","cas_OpenedDate":"2024-02-29","cas_Person":"0123456789abcdef0123456789abcdef"}})");
  Save(dir, "validate-person",
       R"({"collection":"persons","creating":false,"fields":{"prs_Citizenship":["MX","GT"],)"
       R"("prs_FirstName":null}})");
  Save(dir, "text-date", "12/03/2020");
  Save(dir, "text-bool", "sí");
  Save(dir, "text-codes", "MX; gt|Guatemala");
  Save(dir, "text-number", "-12.5e3");
}

void ReportSeeds(const std::string& dir) {
  using report::Dimension;
  auto save = [&](const std::string& name, std::vector<Dimension> dims,
                  const std::vector<std::vector<std::string>>& rows) {
    auto table = report::Tabulate(std::move(dims), rows);
    if (!Check(table, "tabulate")) return;
    auto published = report::Suppress(*table);
    if (!Check(published, "suppress")) return;
    published->title = "Personas \"atendidas\", <2025>";
    published->from = "2025-01-01";
    published->to = "2025-12-31";
    published->generated_at = "2026-01-02T03:04:05Z";
    Save(dir, name, report::RenderJson(*published));
  };
  std::vector<std::vector<std::string>> one, two, three;
  const char* entities[] = {"07", "29", "09"};
  const char* sexes[] = {"F", "M"};
  for (int i = 0; i < 120; ++i) {
    one.push_back({entities[i % 3]});
    two.push_back({entities[i % 3], sexes[(i / 3) % 2]});
    three.push_back({entities[i % 3], sexes[(i / 7) % 2], i % 5 == 0 ? "labour" : "sexual"});
  }
  one.push_back({"=cmd"});  // a small cell, and a formula-like label
  save("one-dim", {{"federal_entity", {}, {}}}, one);
  save(
      "two-dims",
      {{"federal_entity", {"07", "29", "09"}, {"Chiapas", "Tlaxcala", "CDMX"}}, {"gender", {}, {}}},
      two);
  save("three-dims", {{"federal_entity", {}, {}}, {"gender", {}, {}}, {"exploitation", {}, {}}},
       three);
}

// hub_request_fuzz inputs: mode byte, endpoint byte, then per mode.
void HubSeeds(const std::string& dir, const std::vector<std::pair<std::string, Bytes>>& bodies) {
  auto input = [](uint8_t mode, uint8_t endpoint, std::string_view rest) {
    std::string s;
    s.push_back(static_cast<char>(mode));
    s.push_back(static_cast<char>(endpoint));
    s += rest;
    return s;
  };
  Save(dir, "health", input(0, 7, ""));
  Save(dir, "metrics", input(0, 8, "accept: text/plain\n\n"));
  Save(dir, "unsigned-sync-bad-headers",
       input(0, 0, "x-enlace-device: 00\nx-enlace-time: 1\nx-enlace-nonce: zz\n\nENLC"));
  Save(dir, "signed-list-reports", input(1, 5, ""));
  Save(dir, "signed-get-report", input(2, 6, ""));
  Save(dir, "signed-get-report-id", input(1, 9, "0123456789abcdef0123456789abcdef\n"));
  Save(dir, "viewer-list-reports", input(3, 5, "\n"));
  Save(dir, "viewer-fuzzed-path", input(3, 10, "/v1/reports/../x?y=1\n\n"));
  Save(dir, "spoiled-signature", input(1 + 5, 5, ""));
  Save(dir, "stale-time", input(2 + 10, 0, ""));
  Save(dir, "publish-report",
       input(1, 4,
             R"({"version":1,"k":11,"title":"t","from":"","to":"","generated_at":"",)"
             R"("dims":[{"name":"sex","categories":["F","M"],"labels":["F","M"]}],)"
             R"("cells":[{"index":[0],"value":20,"suppressed":false},)"
             R"({"index":[1],"value":15,"suppressed":false}],"margins":[],"total":35})"));
  // Structured sync: cursor, members version, size, size shift, count, picks.
  Save(dir, "sync-pool", std::string("\x04\x00\x00\x10\x0c\x03\x00\x01\x02", 9));
  Save(dir, "sync-flipped", std::string("\x04\x05\x01\xff\x0f\x02\x81\x10\x03", 9));
  const uint8_t endpoints[] = {0, 1, 2, 3};  // sync, teams, invites, join
  for (size_t i = 0; i < bodies.size(); ++i) {
    const std::string body(reinterpret_cast<const char*>(bodies[i].second.data()),
                           bodies[i].second.size());
    Save(dir, "signed-" + bodies[i].first, input(2, endpoints[i % 4], body));
    Save(dir, "coord-" + bodies[i].first, input(1, endpoints[i % 4], body));
  }
}

void WireSeeds(const std::string& dir, Replica& coord, Replica& field,
               std::vector<std::pair<std::string, Bytes>>& bodies) {
  Member m;
  m.device = field.device_id();
  m.name = "ana";
  m.signing_key = field.public_keys().signing;
  m.encryption_key = field.public_keys().encryption;
  Member c = m;
  c.device = coord.device_id();
  c.name = "coordinadora";
  c.role = Role::kCoordinator;

  auto pending = field.PendingWrites(SIZE_MAX);
  if (!Check(pending, "pending")) return;
  std::vector<Bytes> writes;
  for (auto& [counter, bytes] : *pending) writes.push_back(bytes);

  SyncRequest sreq;
  sreq.cursor = 3;
  sreq.members_version = 2;
  sreq.writes = writes;
  SyncRequest empty_req;
  SyncResponse sresp;
  sresp.hub_time_ms = kClockMs;
  sresp.acked_up_to = 2;
  sresp.next_cursor = 9;
  sresp.more = true;
  sresp.trust.version = 4;
  sresp.trust.registries = {Bytes(120, 0x11)};
  sresp.trust.admissions = {Bytes(200, 0x12)};
  sresp.needs_keys = {c.device};
  sresp.writes = writes;
  for (size_t i = 0; i < writes.size(); ++i) sresp.seqs.push_back(10 + i);
  RegisterTeamRequest reg;
  reg.team = coord.team();
  reg.team_name = "Tlaxcala";
  reg.bootstrap_token = "tok-123";
  reg.device_name = "coord";
  reg.signing_key = c.signing_key;
  reg.encryption_key = c.encryption_key;
  CreateInviteRequest inv;
  inv.invite_id.fill(7);
  inv.verifier.fill(9);
  inv.expires_ms = kClockMs + 1000;
  inv.envelope = Bytes(80, 0x5a);
  JoinRequest join;
  join.invite_id.fill(7);
  join.verifier.fill(9);
  join.device_name = "beto";
  join.signing_key = m.signing_key;
  JoinResponse jresp;
  jresp.team = coord.team();
  jresp.envelope = Bytes(80, 0x33);
  jresp.trust.version = 1;
  jresp.trust.registries = {Bytes(120, 0x11)};
  MembersResponse mresp;
  mresp.trust.version = 1;
  mresp.trust.registries = {Bytes(120, 0x11)};

  bodies = {{"sync-request", Encode(sreq)},
            {"register-team", Encode(reg)},
            {"create-invite", Encode(inv)},
            {"join-request", Encode(join)},
            {"sync-request-empty", Encode(empty_req)}};
  for (const auto& [name, b] : bodies) Save(dir, name, b);
  Save(dir, "sync-response", Encode(sresp));
  Save(dir, "join-response", Encode(jresp));
  Save(dir, "members-response", Encode(mresp));
  Save(dir, "members-response-empty", Encode(MembersResponse{}));

  Save(dir, "publish-answer",
       EncodePublishReportAnswer({"0123456789abcdef0123456789abcdef", kClockMs}));
  ReportListing listing;
  listing.id = "0123456789abcdef0123456789abcdef";
  listing.title = "Víctimas 2025";
  listing.from = "2025-01-01";
  listing.to = "2025-12-31";
  listing.k = 11;
  listing.published_at_ms = kClockMs;
  listing.publisher = coord.device_id();
  Save(dir, "report-list", EncodeReportList({listing, listing}));

  auto invite = PrepareInvite(coord, "https://hub.example.org:8443", "sha256//AAAA", Role::kField,
                              3600 * 1000);
  if (Check(invite, "invite")) Save(dir, "invite-code", invite->code);
  auto invite2 = PrepareInvite(coord, "http://10.0.0.2", "", Role::kCoordinator, 60 * 1000);
  if (Check(invite2, "invite")) Save(dir, "invite-code-coordinator", invite2->code);

  Save(dir, "po",
       "# Spanish\nmsgid \"\"\nmsgstr \"Content-Type: text/plain; charset=UTF-8\\n\"\n\n"
       "#: cli.cc:12\n#, fuzzy, c-format\nmsgctxt \"field:cases.cas_Status\"\nmsgid \"Status\"\n"
       "msgstr \"Estado\"\n\nmsgid \"one \\\"case\\\"\\n\"\nmsgid_plural \"%d cases\"\n"
       "msgstr[0] \"un caso\"\nmsgstr[1] \"%d casos\"\n\n#~ msgid \"old\"\n#~ msgstr \"viejo\"\n"
       "msgid \"long\"\nmsgstr \"\"\n\"line one\\t\"\n\"line two\\\\\"\n");
  Save(dir, "csv-comma",
       "\xEF\xBB\xBFid,name,note\r\n1,\"Ana \"\"A\"\"\",\"two\nlines\"\r\n2,,\r\n");
  Save(dir, "csv-semicolon", "prs_FirstName;prs_Age;prs_Citizenship\nJosé;30;\"MX,GT\"\n;;\n");
}

int Run(const std::string& root) {
  const testing::TempDir tmp(testing::TempDir::Under{"/tmp", "enlace-seeds-"});
  auto coord = Replica::Create(FuzzOptions(tmp.File("coord")), kPassphrase);
  auto field = Replica::Create(FuzzOptions(tmp.File("field")), kPassphrase);
  if (!Check(coord, "create") || !Check(field, "create")) return 1;
  if (!Check(testing::TryFormTeam(**coord, {field->get()}), "form the team")) return 1;
  for (int i = 0; i < 2; ++i) {
    Check((*field)->Put("cases", FixedRecord(i), {{"status", "\"Active\""}}), "put");
  }
  std::vector<std::pair<std::string, Bytes>> bodies;
  SchemaSeeds(root + "/schema");
  ReportSeeds(root + "/report");
  WireSeeds(root + "/wire", **coord, **field, bodies);
  HubSeeds(root + "/hub_request", bodies);
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace enlace::fuzz

int main(int argc, char** argv) {
  return enlace::fuzz::SeedsMain(argc, argv, "fuzz_seeds <corpus root, e.g. fuzz/corpus>",
                                 enlace::fuzz::Run);
}
