#include "casework_cmds.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "capture.h"
#include "enlace/casework.h"
#include "enlace/csv.h"
#include "enlace/linked.h"
#include "enlace/report.h"
#include "enlace/schema.h"
#include "enlace/sync.h"
#include "enlace/team_schema.h"
#include "enlace/wire.h"
#include "i18n_cli.h"

namespace enlace::cli {
namespace {

using i18n::Format;
using nlohmann::json;

constexpr char kPersons[] = "persons";
constexpr char kCases[] = "cases";
constexpr char kEvents[] = "events";
constexpr char kEncounters[] = "encounters";

// What every case-work command opens: the device and its effective pack.
struct Workbench {
  Device dev;
  const SchemaPack* pack = nullptr;
  std::string language;
};

CliStatus OpenWorkbench(Context& ctx, Workbench& wb) {
  CLI_RETURN_IF_ERROR(OpenDevice(ctx, wb.dev));
  auto pack = TeamSchema(*wb.dev.replica);
  if (!pack.ok()) return Local(pack.status());
  wb.pack = *pack;
  wb.language = std::string(i18n::Language());
  return CliStatus::Ok();
}

const CollectionDef& CollectionOf(const Workbench& wb, const char* name) {
  const CollectionDef* c = wb.pack->FindCollection(name);
  // The built-in pack always has the case-work collections (schema_test).
  if (c == nullptr) std::abort();
  return *c;
}

std::string Today() {
  const auto now = std::chrono::system_clock::now();
  const std::string iso = FormatIsoUtc(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count()));
  return iso.substr(0, 10);
}

std::string Short(const RecordId& id) { return id.ToHex().substr(0, 8); }

// The FIELD=VALUE words of --set that belong to `collection`.
CliStatus SplitTyped(const Workbench& wb, const TextValues& typed,
                     const std::vector<const char*>& collections,
                     std::map<std::string, TextValues>& out) {
  for (const auto& [field, value] : typed) {
    bool placed = false;
    for (const char* c : collections) {
      if (CollectionOf(wb, c).Find(field) != nullptr) {
        out[c][field] = value;
        placed = true;
        break;
      }
    }
    if (!placed) {
      std::string names;
      for (const char* c : collections) names += (names.empty() ? "" : ", ") + std::string(c);
      return CliStatus::Usage(Format(
          _("--set {0}: no such field in {1} (see enlace schema COLLECTION)"), {field, names}));
    }
  }
  return CliStatus::Ok();
}

CaptureOptions OptionsFor(Context& ctx, const Workbench& wb, const CaptureArgs& args,
                          Prompter* prompter) {
  CaptureOptions o;
  o.language = wb.language;
  if (!args.no_prompt && ctx.interactive) o.prompter = prompter;
  return o;
}

CliStatus Cancelled() { return {kExitUsage, _("cancelled; nothing was written")}; }

// Loads every live record of a collection.
CliStatus LoadAll(Workbench& wb, const char* collection, std::vector<Record>& out) {
  auto records = wb.dev.replica->List(collection);
  if (!records.ok()) return Local(records.status());
  out = std::move(records).value();
  return CliStatus::Ok();
}

// The persons, cases and events, for CTDC rows and reports.
CliStatus LoadCaseData(Workbench& wb, casework::CaseData& out) {
  CLI_RETURN_IF_ERROR(LoadAll(wb, kPersons, out.persons));
  CLI_RETURN_IF_ERROR(LoadAll(wb, kCases, out.cases));
  return LoadAll(wb, kEvents, out.events);
}

// The whole file `path`; a usage error `cannot_read` (translated, with the
// path as {0}) when it cannot be opened.
CliStatus ReadInputFile(const std::string& path, const char* cannot_read, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return CliStatus::Usage(Format(cannot_read, {path}));
  std::stringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return CliStatus::Ok();
}

CliStatus FindCase(Workbench& wb, const std::string& ref, std::vector<Record>& cases,
                   RecordId& id) {
  CLI_RETURN_IF_ERROR(LoadAll(wb, kCases, cases));
  auto found = casework::FindByPrefix(cases, ref);
  if (!found.ok()) {
    if (found.status().code() == StatusCode::kInvalidArgument) {
      return CliStatus::Usage(found.status().message());
    }
    return Local(found.status().WithContext(_("no such case")));
  }
  id = *found;
  return CliStatus::Ok();
}

std::string ShownString(const Record& r, const std::string& field) {
  auto it = r.fields.find(field);
  if (it == r.fields.end()) return "";
  return casework::ValueForCell(it->second.value);
}

// Writes `text` to `path` with mode 0600 (also when the file was there and
// wider): exports hold case data.
CliStatus WritePrivateFile(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return {kExitData, Format(_("cannot write {0}: {1}"), {path, std::strerror(errno)})};
  }
  if (::fchmod(fd, 0600) != 0) {
    const int err = errno;
    ::close(fd);
    return {kExitData, Format(_("cannot write {0}: {1}"), {path, std::strerror(err)})};
  }
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      return {kExitData, Format(_("cannot write {0}: {1}"), {path, std::strerror(errno)})};
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    return {kExitData, Format(_("cannot write {0}: {1}"), {path, std::strerror(errno)})};
  }
  return CliStatus::Ok();
}

CliStatus Emit(Context& ctx, const std::string& output, const std::string& text) {
  if (output.empty() || output == "-") {
    ctx.output->out() << text;
    return CliStatus::Ok();
  }
  return WritePrivateFile(output, text);
}

json RecordJson(const Record& r) {
  json j = {{"id", r.id.ToHex()}};
  for (const auto& [name, value] : r.fields) {
    json v = json::parse(value.value, nullptr, false);
    if (!v.is_discarded() && !v.is_null()) j[name] = std::move(v);
  }
  return j;
}

}  // namespace

// ---- schema -----------------------------------------------------------------------------------

CliStatus RunSchema(Context& ctx, const SchemaArgs& args) {
  Workbench wb;
  CLI_RETURN_IF_ERROR(OpenWorkbench(ctx, wb));
  if (!args.overlay_file.empty()) {
    std::string overlay;
    CLI_RETURN_IF_ERROR(ReadInputFile(args.overlay_file, _("cannot read {0}"), overlay));
    if (Status s = PublishOverlay(*wb.dev.replica, overlay); !s.ok()) return Local(s);
    auto pack = TeamSchema(*wb.dev.replica);
    if (!pack.ok()) return Local(pack.status());
    ctx.output->Result({{"overlay_version", (*pack)->overlay_version()}},
                       Format(_("overlay version {0} published; devices get it on their next "
                                "enlace sync"),
                              {std::to_string((*pack)->overlay_version())}));
    return CliStatus::Ok();
  }
  const SchemaPack& pack = *wb.pack;
  if (args.collection.empty()) {
    if (ctx.output->json()) {
      json doc = {{"pack", std::string(pack.name())},
                  {"version", pack.version()},
                  {"overlay_version", pack.overlay_version()},
                  {"collections", json::array()}};
      for (const CollectionDef& c : pack.collections()) {
        doc["collections"].push_back({{"name", c.name}, {"fields", c.fields.size()}});
      }
      ctx.output->Json(doc);
      return CliStatus::Ok();
    }
    ctx.output->Line(Format(_("Schema pack {0}, version {1} ({2})"),
                            {pack.name(), std::to_string(pack.version()), pack.standard()}));
    if (pack.overlay_version() > 0) {
      ctx.output->Line(Format(_("Team overlay {0}, version {1}"),
                              {pack.overlay_team_note(), std::to_string(pack.overlay_version())}));
    }
    if (const std::string problem = OverlayStatus(*wb.dev.replica); !problem.empty()) {
      ctx.output->Warn(problem);
    }
    for (const CollectionDef& c : pack.collections()) {
      ctx.output->Line(
          Format(_("  {0}  {1} ({2} fields)"),
                 {c.name, pack.CollectionLabel(c, wb.language), std::to_string(c.fields.size())}));
    }
    ctx.output->Line(_("See one collection's fields: enlace schema COLLECTION"));
    return CliStatus::Ok();
  }
  const CollectionDef* c = pack.FindCollection(args.collection);
  if (c == nullptr) {
    return CliStatus::Usage(Format(_("no collection {0} in the schema pack"), {args.collection}));
  }
  json fields = json::array();
  for (const FieldDef& f : c->fields) {
    json codes = json::array();
    if (const CodeList* list = pack.FindCodeList(f.codelist)) {
      for (const CodeValue& v : list->values) {
        codes.push_back({{"code", v.code}, {"label", pack.CodeLabel(*list, v, wb.language)}});
      }
    }
    if (ctx.output->json()) {
      fields.push_back({{"name", f.name},
                        {"type", FieldTypeName(f.type)},
                        {"label", pack.FieldLabel(f, wb.language)},
                        {"required", f.required},
                        {"identifying", f.identifying},
                        {"codes", codes}});
      continue;
    }
    std::string flags;
    if (f.required) flags += std::string(" ") + _("required");
    if (f.identifying) flags += std::string(" ") + _("identifying");
    ctx.output->Line(f.name + "  " + FieldTypeName(f.type) + flags + "  — " +
                     pack.FieldLabel(f, wb.language));
    constexpr size_t kShown = 40;
    if (!codes.empty() && codes.size() <= kShown) {
      for (const json& v : codes) {
        ctx.output->Line("      " + v["code"].get<std::string>() + "  " +
                         v["label"].get<std::string>());
      }
    } else if (!codes.empty()) {
      ctx.output->Line(Format(_("      {0} codes of the list {1}; a name is accepted too"),
                              {std::to_string(codes.size()), f.codelist}));
    }
  }
  if (ctx.output->json()) ctx.output->Json({{"collection", c->name}, {"fields", fields}});
  return CliStatus::Ok();
}

// ---- capture ----------------------------------------------------------------------------------

namespace {

// What a capture command works with once RunCapture has opened the device.
struct Capture {
  Capture(Context& c, const CaptureArgs& a) : ctx(c), args(a) {}
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;

  // Prints `text` when the person is asked (a guided capture).
  void Say(const std::string& text) {
    if (options.prompter != nullptr) prompter->out() << text;
  }

  // One record's values (CaptureRecord); exit 1 when the person cancels.
  CliStatus Ask(const char* collection, const TextValues& given, Fields fixed_values, bool creating,
                Fields& out) {
    auto fields = CaptureRecord(*wb.pack, CollectionOf(wb, collection), given,
                                std::move(fixed_values), creating, options);
    if (!fields.ok()) return Local(fields.status());
    if (!*fields) return Cancelled();
    out = std::move(**fields);
    return CliStatus::Ok();
  }

  Context& ctx;
  const CaptureArgs& args;
  Workbench wb;
  RecordId case_id;                                 // the case args.case_ref names, if asked
  TextValues typed;                                 // --set
  std::map<std::string, TextValues> by_collection;  // --set by collection, if asked
  std::optional<Prompter> prompter;
  CaptureOptions options;
};

// What tells the capture commands apart.
struct CaptureSteps {
  bool names_case = false;               // args.case_ref names a case (Capture::case_id)
  std::vector<const char*> collections;  // where --set values go (Capture::by_collection)
  // Asks, writes, and says what was written.
  std::function<CliStatus(Capture&)> capture;
};

// The one flow of the capture commands: --set parsed, the device opened, the
// case found, the --set values sorted by collection, then `steps.capture`.
CliStatus RunCapture(Context& ctx, const CaptureArgs& args, const CaptureSteps& steps) {
  auto typed = ParseTextAssignments(args.set);
  if (!typed.ok()) return CliStatus::Usage(typed.status().message());
  Capture c(ctx, args);
  CLI_RETURN_IF_ERROR(OpenWorkbench(ctx, c.wb));
  if (steps.names_case) {
    std::vector<Record> cases;
    CLI_RETURN_IF_ERROR(FindCase(c.wb, args.case_ref, cases, c.case_id));
  }
  if (!steps.collections.empty()) {
    CLI_RETURN_IF_ERROR(SplitTyped(c.wb, *typed, steps.collections, c.by_collection));
  }
  c.typed = std::move(typed).value();
  c.prompter.emplace(*ctx.input, ctx.output->out());
  c.options = OptionsFor(ctx, c.wb, args, &*c.prompter);
  return steps.capture(c);
}

CliStatus CaptureCase(Capture& c) {
  const SchemaPack& pack = *c.wb.pack;
  const std::string& language = c.wb.language;
  c.Say(std::string(_("New case. Enter skips a question, ? shows help, Ctrl-D cancels.")) +
        "\n\n== " + pack.CollectionLabel(CollectionOf(c.wb, kPersons), language) + " ==\n");
  Fields person;
  CLI_RETURN_IF_ERROR(c.Ask(kPersons, c.by_collection[kPersons], {}, true, person));

  const RecordId person_id = RecordId::Random();
  // Sensible defaults a person would type anyway, shown in [brackets].
  c.options.suggested = {{"cas_OpenedDate", json(Today()).dump()}};
  if (!c.wb.dev.config.device_name.empty()) {
    c.options.suggested["cas_CaseOwner"] = json(c.wb.dev.config.device_name).dump();
  }
  c.options.fixed = {"cas_Person"};
  c.Say("\n== " + pack.CollectionLabel(CollectionOf(c.wb, kCases), language) + " ==\n");
  Fields the_case;
  CLI_RETURN_IF_ERROR(c.Ask(kCases, c.by_collection[kCases],
                            {{"cas_Person", json(person_id.ToHex()).dump()}}, true, the_case));

  Replica& replica = *c.wb.dev.replica;
  RecordId case_id;
  Status written = replica.RunBatch([&]() -> Status {
    ENLACE_RETURN_IF_ERROR(replica.Put(kPersons, person_id, person).status());
    ENLACE_ASSIGN_OR_RETURN(case_id, replica.Put(kCases, std::nullopt, the_case));
    return Status::Ok();
  });
  if (!written.ok()) return Local(written);
  c.ctx.output->Result({{"case", case_id.ToHex()}, {"person", person_id.ToHex()}},
                       Format(_("case {0} created (person {1}); it goes to the hub on the next "
                                "enlace sync"),
                              {case_id.ToHex(), Short(person_id)}));
  return CliStatus::Ok();
}

CliStatus CaptureEncounter(Capture& c) {
  c.options.suggested = {{"enc_Date", json(Today()).dump()}};
  c.Say(std::string(_("New outreach encounter. Enter skips a question, ? shows help, Ctrl-D "
                      "cancels.")) +
        "\n");
  Fields fields;
  CLI_RETURN_IF_ERROR(c.Ask(kEncounters, c.by_collection[kEncounters], {}, true, fields));
  auto id = c.wb.dev.replica->Put(kEncounters, std::nullopt, fields);
  if (!id.ok()) return Local(id.status());
  c.ctx.output->Result({{"encounter", id->ToHex()}},
                       Format(_("encounter {0} logged"), {id->ToHex()}));
  return CliStatus::Ok();
}

CliStatus CaptureEvent(Capture& c) {
  c.options.fixed = {"hte_Case"};
  c.Say(Format(_("New trafficking event of case {0}. Enter skips a question, ? shows help, "
                 "Ctrl-D cancels."),
               {Short(c.case_id)}) +
        "\n");
  Fields fields;
  CLI_RETURN_IF_ERROR(c.Ask(kEvents, c.by_collection[kEvents],
                            {{"hte_Case", json(c.case_id.ToHex()).dump()}}, true, fields));
  auto id = c.wb.dev.replica->Put(kEvents, std::nullopt, fields);
  if (!id.ok()) return Local(id.status());
  c.ctx.output->Result({{"event", id->ToHex()}, {"case", c.case_id.ToHex()}},
                       Format(_("event {0} added to case {1}"), {id->ToHex(), Short(c.case_id)}));
  return CliStatus::Ok();
}

CliStatus CaptureReferral(Capture& c) {
  const std::string& direction = c.args.direction;
  const std::set<std::string> incoming = {"cas_ReferringOrganisation", "cas_IncomingReferralDate",
                                          "cas_ReasonForIncomingReferral",
                                          "cas_IncomingReferralDetails"};
  const std::set<std::string> outgoing = {"cas_ReferredOrganisation", "cas_OutgoingReferralDate",
                                          "cas_ReasonForOutgoingReferral",
                                          "cas_OutgoingReferralDetails"};
  const std::set<std::string>& asked = direction == "in" ? incoming : outgoing;
  TextValues values;
  for (const auto& [field, value] : c.typed) {
    if (!asked.contains(field) && field != "cas_Status") {
      std::string allowed;
      for (const std::string& f : asked) allowed += (allowed.empty() ? "" : ", ") + f;
      return CliStatus::Usage(
          Format(_("--set {0}: a referral {1} sets only {2}"), {field, direction, allowed}));
    }
    values[field] = value;
  }
  const std::string date_field =
      direction == "in" ? "cas_IncomingReferralDate" : "cas_OutgoingReferralDate";
  if (c.args.close) values["cas_Status"] = "ClosedReferred";
  c.options.only = asked;
  c.options.suggested = {{date_field, json(Today()).dump()}};
  c.Say(Format(direction == "in" ? _("Incoming referral of case {0}.")
                                 : _("Outgoing referral of case {0}."),
               {Short(c.case_id)}) +
        "\n");
  Fields fields;
  CLI_RETURN_IF_ERROR(c.Ask(kCases, values, {}, false, fields));
  std::erase_if(fields, [](const auto& kv) { return kv.second == "null"; });
  auto id = c.wb.dev.replica->Put(kCases, c.case_id, fields);
  if (!id.ok()) return Local(id.status());
  c.ctx.output->Result({{"case", c.case_id.ToHex()}, {"direction", direction}},
                       Format(_("referral recorded on case {0}"), {Short(c.case_id)}));
  return CliStatus::Ok();
}

}  // namespace

CliStatus RunCaseNew(Context& ctx, const CaptureArgs& args) {
  return RunCapture(ctx, args, {false, {kPersons, kCases}, CaptureCase});
}

CliStatus RunEncounterLog(Context& ctx, const CaptureArgs& args) {
  return RunCapture(ctx, args, {false, {kEncounters}, CaptureEncounter});
}

CliStatus RunEventAdd(Context& ctx, const CaptureArgs& args) {
  return RunCapture(ctx, args, {true, {kEvents}, CaptureEvent});
}

CliStatus RunReferralAdd(Context& ctx, const CaptureArgs& args) {
  if (args.direction != "in" && args.direction != "out") {
    return CliStatus::Usage(_("--direction must be in (referred to us) or out (we refer)"));
  }
  // The referral's fields are the case's; --set is checked against them there.
  return RunCapture(ctx, args, {true, {}, CaptureReferral});
}

CliStatus RunCaseShow(Context& ctx, const std::string& case_ref) {
  Workbench wb;
  CLI_RETURN_IF_ERROR(OpenWorkbench(ctx, wb));
  std::vector<Record> cases;
  RecordId case_id;
  CLI_RETURN_IF_ERROR(FindCase(wb, case_ref, cases, case_id));
  const Record& the_case =
      *std::find_if(cases.begin(), cases.end(), [&](const Record& r) { return r.id == case_id; });
  std::optional<Record> person;
  const std::string person_hex = ShownString(the_case, "cas_Person");
  if (auto pid = RecordId::FromHex(person_hex); pid.ok()) {
    auto p = wb.dev.replica->Get(kPersons, *pid);
    if (p.ok()) person = std::move(p).value();
  }
  std::vector<Record> events;
  CLI_RETURN_IF_ERROR(LoadAll(wb, kEvents, events));
  std::erase_if(events,
                [&](const Record& e) { return ShownString(e, "hte_Case") != case_id.ToHex(); });
  std::sort(events.begin(), events.end(), [](const Record& a, const Record& b) {
    return ShownString(a, "hte_Date") < ShownString(b, "hte_Date");
  });
  if (ctx.output->json()) {
    json doc = {{"case", RecordJson(the_case)}, {"events", json::array()}};
    if (person) doc["person"] = RecordJson(*person);
    for (const Record& e : events) doc["events"].push_back(RecordJson(e));
    ctx.output->Json(doc);
    return CliStatus::Ok();
  }
  std::ostream& out = ctx.output->out();
  out << Format(_("Case {0}"), {case_id.ToHex()}) << "\n";
  PrintRecord(out, *wb.pack, CollectionOf(wb, kCases), the_case, wb.language);
  if (person) {
    out << "\n"
        << wb.pack->CollectionLabel(CollectionOf(wb, kPersons), wb.language) << " "
        << Short(person->id) << "\n";
    PrintRecord(out, *wb.pack, CollectionOf(wb, kPersons), *person, wb.language);
  }
  out << "\n" << Format(_("Events ({0})"), {std::to_string(events.size())}) << "\n";
  for (const Record& e : events) {
    out << "  " << Short(e.id) << "\n";
    PrintRecord(out, *wb.pack, CollectionOf(wb, kEvents), e, wb.language);
  }
  return CliStatus::Ok();
}

CliStatus RunCaseList(Context& ctx, const CaseListArgs& args) {
  Workbench wb;
  CLI_RETURN_IF_ERROR(OpenWorkbench(ctx, wb));
  const CollectionDef& cases_def = CollectionOf(wb, kCases);
  const CollectionDef& persons_def = CollectionOf(wb, kPersons);
  std::string status_code;
  if (!args.status.empty()) {
    auto code = casework::ValueFromText(*wb.pack, cases_def, *cases_def.Find("cas_Status"),
                                        args.status, {wb.language, false});
    if (!code.ok()) return CliStatus::Usage(code.status().message());
    status_code = json::parse(*code).get<std::string>();
  }
  std::vector<Record> cases, persons, events;
  CLI_RETURN_IF_ERROR(LoadAll(wb, kCases, cases));
  CLI_RETURN_IF_ERROR(LoadAll(wb, kPersons, persons));
  CLI_RETURN_IF_ERROR(LoadAll(wb, kEvents, events));
  std::map<std::string, const Record*> person_by_id;
  for (const Record& p : persons) person_by_id[p.id.ToHex()] = &p;
  std::map<std::string, size_t> event_count;
  for (const Record& e : events) ++event_count[ShownString(e, "hte_Case")];

  json all = json::array();
  std::vector<std::vector<std::string>> rows;
  for (const Record& c : cases) {
    if (!status_code.empty() && ShownString(c, "cas_Status") != status_code) continue;
    auto p = person_by_id.find(ShownString(c, "cas_Person"));
    const Record* person = p == person_by_id.end() ? nullptr : p->second;
    if (!args.search.empty() &&
        !casework::Matches(*wb.pack, cases_def, c, args.search, wb.language) &&
        (person == nullptr ||
         !casework::Matches(*wb.pack, persons_def, *person, args.search, wb.language))) {
      continue;
    }
    std::string name;
    if (person != nullptr) {
      for (const char* f : {"prs_FirstName", "prs_LastName"}) {
        const std::string part = ShownString(*person, f);
        if (!part.empty()) name += (name.empty() ? "" : " ") + part;
      }
      if (name.empty()) name = ShownString(*person, "prs_Alias");
    }
    const FieldDef* status_field = cases_def.Find("cas_Status");
    auto st = c.fields.find("cas_Status");
    const std::string status_text =
        st == c.fields.end()
            ? ""
            : casework::ValueForPeople(*wb.pack, *status_field, st->second.value, wb.language);
    const std::string title = ShownString(c, "cas_Title");
    const std::string opened = ShownString(c, "cas_OpenedDate");
    const size_t n_events = event_count[c.id.ToHex()];
    if (ctx.output->json()) {
      json j = RecordJson(c);
      j["person_name"] = name;
      j["events"] = n_events;
      all.push_back(std::move(j));
    }
    rows.push_back({Short(c.id), status_text, opened, title.empty() ? name : title + " — " + name,
                    std::to_string(n_events)});
  }
  if (ctx.output->json()) {
    ctx.output->Json(all);
    return CliStatus::Ok();
  }
  if (rows.empty()) {
    ctx.output->Line(_("no cases match"));
    return CliStatus::Ok();
  }
  std::vector<std::string> header = {_("ID"), _("STATUS"), _("OPENED"), _("CASE"), _("EVENTS")};
  std::vector<size_t> width(header.size());
  for (size_t i = 0; i < header.size(); ++i) width[i] = DisplayWidth(header[i]);
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], DisplayWidth(r[i]));
  }
  auto line = [&](const std::vector<std::string>& r) {
    std::string s;
    for (size_t i = 0; i < r.size(); ++i) {
      s += r[i];
      if (i + 1 < r.size()) s += std::string(width[i] - DisplayWidth(r[i]) + 2, ' ');
    }
    ctx.output->Line(s);
  };
  line(header);
  for (const auto& r : rows) line(r);
  return CliStatus::Ok();
}

// ---- export -----------------------------------------------------------------------------------

CliStatus RunExport(Context& ctx, const ExportArgs& args) {
  if (args.format != "csv" && args.format != "json" && args.format != "ctdc") {
    return CliStatus::Usage(_("--format must be csv, json or ctdc"));
  }
  Workbench wb;
  CLI_RETURN_IF_ERROR(OpenWorkbench(ctx, wb));
  if (args.include_identifying && !IsVerifiedCoordinator(*wb.dev.replica)) {
    return {kExitData, _("--include-identifying is for coordinators only: names, phones and "
                         "addresses stay on this device")};
  }
  std::vector<const CollectionDef*> collections;
  for (const std::string& name : args.collections) {
    const CollectionDef* c = wb.pack->FindCollection(name);
    if (c == nullptr || IsReservedCollection(name)) {
      return CliStatus::Usage(Format(_("no collection {0} in the schema pack"), {name}));
    }
    collections.push_back(c);
  }
  if (collections.empty() && args.format != "ctdc") {
    for (const CollectionDef& c : wb.pack->collections()) {
      if (!IsReservedCollection(c.name)) collections.push_back(&c);
    }
  }
  if (args.format == "ctdc") {
    casework::CaseData data;
    CLI_RETURN_IF_ERROR(LoadCaseData(wb, data));
    std::string text = CsvLine(casework::CtdcColumns());
    auto rows = casework::CtdcRows(*wb.pack, data);
    const casework::CtdcProtection protection = casework::ProtectCtdcRows(rows, args.k);
    if (protection.unsafe > 0) {
      ctx.output->Note(Format(
          _("{0} rows shared year, gender, age, citizenship and country of exploitation with "
            "fewer than {1} rows: {2} of those values were left blank and {3} rows withheld, so "
            "every such group now has at least {1} rows"),
          {std::to_string(protection.unsafe), std::to_string(args.k),
           std::to_string(protection.generalised), std::to_string(protection.withheld)}));
    }
    for (const auto& row : rows) text += CsvLine(row);
    CLI_RETURN_IF_ERROR(Emit(ctx, args.output, text));
    if (!args.output.empty()) {
      ctx.output->Note(Format(_("{0} victim rows in CTDC columns written to {1}"),
                              {std::to_string(rows.size()), args.output}));
    }
    return CliStatus::Ok();
  }
  if (args.format == "json") {
    std::vector<casework::CollectionRecords> data;
    for (const CollectionDef* c : collections) {
      casework::CollectionRecords cr;
      cr.collection = c;
      CLI_RETURN_IF_ERROR(LoadAll(wb, c->name.c_str(), cr.records));
      data.push_back(std::move(cr));
    }
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now().time_since_epoch());
    CLI_RETURN_IF_ERROR(
        Emit(ctx, args.output,
             casework::ExportJson(*wb.pack, data, args.include_identifying,
                                  FormatIsoUtc(static_cast<uint64_t>(now.count())))));
  } else if (collections.size() == 1) {
    std::vector<Record> records;
    CLI_RETURN_IF_ERROR(LoadAll(wb, collections[0]->name.c_str(), records));
    CLI_RETURN_IF_ERROR(Emit(
        ctx, args.output, casework::ExportCsv(*collections[0], records, args.include_identifying)));
  } else {
    if (args.output.empty() || args.output == "-") {
      return CliStatus::Usage(
          _("CSV of several collections needs --output FOLDER (one file per collection), or "
            "one --collection"));
    }
    std::error_code ec;
    const bool created = std::filesystem::create_directories(args.output, ec);
    if (ec) return {kExitData, Format(_("cannot create {0}: {1}"), {args.output, ec.message()})};
    if (created) ::chmod(args.output.c_str(), 0700);  // a folder of exports: the owner's alone
    for (const CollectionDef* c : collections) {
      std::vector<Record> records;
      CLI_RETURN_IF_ERROR(LoadAll(wb, c->name.c_str(), records));
      CLI_RETURN_IF_ERROR(
          WritePrivateFile((std::filesystem::path(args.output) / (c->name + ".csv")).string(),
                           casework::ExportCsv(*c, records, args.include_identifying)));
    }
  }
  if (!args.output.empty() && args.output != "-") {
    ctx.output->Note(Format(_("exported to {0} (readable by you only; it is not encrypted: "
                              "delete it when done)"),
                            {args.output}));
  }
  if (args.include_identifying) {
    ctx.output->Warn(_("the export holds names and contact details of people at risk"));
  }
  return CliStatus::Ok();
}

// ---- import -----------------------------------------------------------------------------------

namespace {

// A mapping file: which column feeds which field, value translations, the
// key column and fixed values.
struct ImportMapping {
  std::map<std::string, std::string> columns;                        // column -> field
  std::map<std::string, std::map<std::string, std::string>> values;  // field -> text -> text
  std::map<std::string, std::string> fixed;                          // field -> text
  std::string key;
};

CliStatus LoadMapping(const std::string& path, ImportMapping& out) {
  std::string text;
  CLI_RETURN_IF_ERROR(ReadInputFile(path, _("cannot read the mapping {0}"), text));
  json j = json::parse(text, nullptr, false);
  auto bad = [&](const std::string& why) {
    return CliStatus::Usage(Format(_("mapping {0}: {1}"), {path, why}));
  };
  if (j.is_discarded() || !j.is_object()) return bad(_("not a JSON object"));
  for (const auto& [k, v] : j.items()) {
    if (k == "columns" && v.is_object()) {
      for (const auto& [col, field] : v.items()) {
        if (!field.is_string()) return bad(Format(_("columns.{0} must be a field name"), {col}));
        out.columns[col] = field.get<std::string>();
      }
    } else if (k == "values" && v.is_object()) {
      for (const auto& [field, table] : v.items()) {
        if (!table.is_object()) return bad(Format(_("values.{0} must be an object"), {field}));
        for (const auto& [from, to] : table.items()) {
          if (!to.is_string()) return bad(Format(_("values.{0}.{1} must be text"), {field, from}));
          out.values[field][casework::FoldForSearch(from)] = to.get<std::string>();
        }
      }
    } else if (k == "fixed" && v.is_object()) {
      for (const auto& [field, value] : v.items()) {
        out.fixed[field] = value.is_string() ? value.get<std::string>() : value.dump();
      }
    } else if (k == "key" && v.is_string()) {
      out.key = v.get<std::string>();
    } else {
      return bad(Format(_("unknown entry \"{0}\" (columns, values, fixed, key)"), {k}));
    }
  }
  return CliStatus::Ok();
}

// A content hash key: the row's fields and values in canonical order.
std::string ContentKey(const Fields& fields) {
  std::string key;
  for (const auto& [f, v] : fields) key += f + "\x1f" + v + "\x1e";
  return key;
}

class ProgressBar {
 public:
  ProgressBar(std::ostream& err, bool enabled, size_t total)
      : err_(err), enabled_(enabled), total_(total) {}
  void Update(size_t done) {
    if (!enabled_ || total_ == 0) return;
    const size_t percent = done * 100 / total_;
    if (percent == last_ && done != total_) return;
    last_ = percent;
    const size_t filled = percent * 30 / 100;
    err_ << "\r[" << std::string(filled, '#') << std::string(30 - filled, '.') << "] " << percent
         << "% " << done << "/" << total_ << std::flush;
    if (done == total_) err_ << "\n";
  }

 private:
  std::ostream& err_;
  bool enabled_;
  size_t total_;
  size_t last_ = 101;
};

}  // namespace

CliStatus RunImport(Context& ctx, const ImportArgs& args) {
  std::string format = args.format;
  if (format.empty()) {
    const std::string ext = std::filesystem::path(args.file).extension().string();
    format = ext == ".jsonl" || ext == ".ndjson" ? "jsonl" : "csv";
  }
  if (format != "csv" && format != "jsonl") {
    return CliStatus::Usage(_("--format must be csv or jsonl"));
  }
  if (args.batch == 0 || args.batch > 100000) {
    return CliStatus::Usage(_("--batch must be between 1 and 100000"));
  }
  ImportMapping mapping;
  if (!args.map.empty()) CLI_RETURN_IF_ERROR(LoadMapping(args.map, mapping));
  const std::string key_column = args.key.empty() ? mapping.key : args.key;

  std::string text;
  CLI_RETURN_IF_ERROR(ReadInputFile(args.file, _("cannot read {0}"), text));
  if (!casework::IsUtf8(text)) {
    // Excel's plain "CSV" on Windows is Windows-1252, not UTF-8.
    text = casework::Windows1252ToUtf8(text);
    ctx.output->Note(Format(_("{0} is not UTF-8; it was read as Windows-1252 (Excel's \"CSV\"). "
                              "Check accented names in the result, or save as \"CSV UTF-8\"."),
                            {args.file}));
  }

  Workbench wb;
  CLI_RETURN_IF_ERROR(OpenWorkbench(ctx, wb));
  const CollectionDef* collection = wb.pack->FindCollection(args.collection);
  if (collection == nullptr || IsReservedCollection(args.collection)) {
    return CliStatus::Usage(Format(_("no collection {0} in the schema pack"), {args.collection}));
  }
  for (const auto& [column, field] : mapping.columns) {
    if (collection->Find(field) == nullptr) {
      return CliStatus::Usage(Format(_("mapping: column {0} goes to {1}, which {2} does not have"),
                                     {column, field, args.collection}));
    }
  }

  // Rows as (line, column -> text).
  struct Row {
    size_t line;
    std::vector<std::pair<std::string, std::string>> cells;
  };
  std::vector<Row> rows;
  if (format == "csv") {
    CsvReader reader(text);
    std::vector<std::string> header, fields;
    auto first = reader.Next(header);
    if (!first.ok())
      return {kExitData, Format(_("{0}: {1}"), {args.file, first.status().message()})};
    if (!*first) return {kExitData, Format(_("{0} is empty"), {args.file})};
    for (std::string& h : header) {
      const auto a = h.find_first_not_of(" \t");
      h = a == std::string::npos ? "" : h.substr(a, h.find_last_not_of(" \t") - a + 1);
    }
    while (true) {
      auto more = reader.Next(fields);
      if (!more.ok()) {
        return {kExitData, Format(_("{0}: {1}"), {args.file, more.status().message()})};
      }
      if (!*more) break;
      Row row{reader.line(), {}};
      for (size_t i = 0; i < fields.size() && i < header.size(); ++i) {
        row.cells.emplace_back(header[i], fields[i]);
      }
      if (fields.size() > header.size()) {
        row.cells.emplace_back("", "\x01");  // flagged below
      }
      rows.push_back(std::move(row));
    }
  } else {
    std::istringstream lines(text);
    std::string line;
    size_t n = 0;
    while (std::getline(lines, line)) {
      ++n;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      Row row{n, {}};
      json j = json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object()) {
        row.cells.emplace_back("", "\x02");
      } else {
        for (const auto& [k, v] : j.items()) {
          row.cells.emplace_back(k, v.is_string()  ? v.get<std::string>()
                                    : v.is_null()  ? std::string()
                                    : v.is_array() ? casework::ValueForCell(v.dump())
                                                   : v.dump());
        }
      }
      rows.push_back(std::move(row));
    }
  }

  // Validate every row like a capture; the accepted ones keyed for re-runs.
  struct Accepted {
    RecordId id;
    Fields fields;
  };
  std::vector<Accepted> accepted;
  std::string rejects = CsvLine({"line", "reason"});
  size_t rejected = 0;
  std::set<std::string> keys_seen;
  casework::TextOptions text_options;
  text_options.language = wb.language;
  for (const Row& row : rows) {
    std::string reason;
    Fields fields;
    std::string key;
    for (const auto& [column, cell] : row.cells) {
      if (cell == "\x01") {
        reason = _("more values than header columns");
        break;
      }
      if (cell == "\x02") {
        reason = _("not a JSON object");
        break;
      }
      if (!key_column.empty() && column == key_column) key = cell;
      auto mapped = mapping.columns.find(column);
      const std::string field = mapped != mapping.columns.end() ? mapped->second : column;
      const FieldDef* def = collection->Find(field);
      if (def == nullptr) {
        if (mapped == mapping.columns.end() && !mapping.columns.empty()) continue;  // unmapped
        if (column == key_column || column == "id") continue;
        reason = Format(_("unknown column {0} (not a field of {1}; map it with --map)"),
                        {column, args.collection});
        break;
      }
      std::string value_text = cell;
      if (auto vt = mapping.values.find(field); vt != mapping.values.end()) {
        auto hit = vt->second.find(casework::FoldForSearch(cell));
        if (hit != vt->second.end()) value_text = hit->second;
      }
      auto value = casework::ValueFromText(*wb.pack, *collection, *def, value_text, text_options);
      if (!value.ok()) {
        reason = value.status().message();
        break;
      }
      if (*value != "null") fields[field] = *value;
    }
    if (reason.empty()) {
      for (const auto& [field, value_text] : mapping.fixed) {
        const FieldDef* def = collection->Find(field);
        if (def == nullptr) {
          reason = Format(_("mapping: fixed field {0} is not in {1}"), {field, args.collection});
          break;
        }
        auto value = casework::ValueFromText(*wb.pack, *collection, *def, value_text, text_options);
        if (!value.ok()) {
          reason = value.status().message();
          break;
        }
        fields.emplace(field, *value);
      }
    }
    if (reason.empty() && !key_column.empty() && key.empty()) {
      reason = Format(_("the key column {0} is empty"), {key_column});
    }
    if (reason.empty()) {
      wb.pack->FillDefaults(collection->name, fields);
      if (Status s = wb.pack->Validate(collection->name, fields, true); !s.ok()) {
        reason = s.message();
      }
    }
    if (reason.empty()) {
      const std::string stable = key_column.empty() ? "content\x1f" + ContentKey(fields)
                                                    : "key\x1f" + key_column + "\x1f" + key;
      if (!keys_seen.insert(stable).second) {
        reason = key_column.empty() ? _("the same row appears earlier in the file")
                                    : Format(_("key {0} appears earlier in the file"), {key});
      } else {
        auto id = wb.dev.replica->DeriveRecordId(collection->name, stable);
        if (!id.ok()) return Local(id.status());
        accepted.push_back({*id, std::move(fields)});
      }
    }
    if (!reason.empty()) {
      ++rejected;
      rejects += CsvLine({std::to_string(row.line), reason});
    }
  }

  // Write in bounded transactions; records already imported are compared
  // and only changed fields written.
  size_t created = 0, updated = 0, unchanged = 0;
  ProgressBar bar(ctx.output->err(), ctx.progress && !ctx.output->json(), accepted.size());
  for (size_t start = 0; start < accepted.size(); start += args.batch) {
    const size_t end = std::min(accepted.size(), start + args.batch);
    Status s = wb.dev.replica->RunBatch([&]() -> Status {
      for (size_t i = start; i < end; ++i) {
        Accepted& a = accepted[i];
        auto existing = wb.dev.replica->Get(collection->name, a.id, /*include_deleted=*/true);
        if (existing.ok()) {
          Fields changed;
          for (const auto& [f, v] : a.fields) {
            auto it = existing->fields.find(f);
            if (it == existing->fields.end() || it->second.value != v || it->second.conflict()) {
              changed[f] = v;
            }
          }
          if (changed.empty() || existing->deleted) {
            ++unchanged;  // a record deleted since stays deleted
            continue;
          }
          ENLACE_RETURN_IF_ERROR(wb.dev.replica->Put(collection->name, a.id, changed).status());
          ++updated;
        } else if (existing.status().code() == StatusCode::kNotFound) {
          ENLACE_RETURN_IF_ERROR(wb.dev.replica->Put(collection->name, a.id, a.fields).status());
          ++created;
        } else {
          return existing.status();
        }
      }
      return Status::Ok();
    });
    if (!s.ok()) return Local(s);
    bar.Update(end);
  }

  std::string rejects_path;
  if (rejected > 0) {
    rejects_path = args.file + ".rejected.csv";
    CLI_RETURN_IF_ERROR(WritePrivateFile(rejects_path, rejects));
  }
  const int exit_code = rejected > 0 ? kExitData : kExitOk;
  if (ctx.output->json()) {
    // One document, also when rows were refused (then with "error" and "code").
    json summary = {{"rows", rows.size()},  {"created", created},
                    {"updated", updated},   {"unchanged", unchanged},
                    {"rejected", rejected}, {"rejects_file", rejects_path}};
    if (rejected > 0) {
      summary["error"] = Format(_("rows rejected: {0}"), {std::to_string(rejected)});
      summary["code"] = exit_code;
    }
    ctx.output->Json(summary);
    return {exit_code, ""};
  } else {
    ctx.output->Line(
        Format(_("{0} rows: {1} created, {2} updated, {3} already there, {4} "
                 "rejected"),
               {std::to_string(rows.size()), std::to_string(created), std::to_string(updated),
                std::to_string(unchanged), std::to_string(rejected)}));
    if (rejected > 0) {
      ctx.output->Line(
          Format(_("rejected rows, with line number and reason: {0}"), {rejects_path}));
    }
  }
  // Some rows refused is a data error a script should notice.
  if (rejected > 0) {
    return {kExitData, Format(_("rows rejected: {0}"), {std::to_string(rejected)})};
  }
  return CliStatus::Ok();
}

// ---- reports ----------------------------------------------------------------------------------

namespace {
// A report dimension for people.
std::string DimensionLabel(const std::string& dim) {
  if (dim == "federal_entity") return _("federal entity");
  if (dim == "exploitation") return _("type of exploitation");
  if (dim == "gender") return _("gender");
  if (dim == "age_band") return _("age band");
  if (dim == "citizenship") return _("citizenship");
  if (dim == "month") return _("month");
  if (dim == "event_type") return _("event type");
  return dim;
}

// An entry of `p` for people: "gender=Mujer, age band=9--17", "the total".
std::string EntryText(const report::Published& p, uint32_t id) {
  const report::Cell& c = report::EntryOf(p, id);
  std::string out;
  for (size_t d = 0; d < c.index.size(); ++d) {
    if (c.index[d] == report::kAll) continue;
    const report::Dimension& dim = p.table.dims[d];
    out += (out.empty() ? "" : ", ") + DimensionLabel(dim.name) + "=" + dim.labels[c.index[d]];
  }
  return out.empty() ? _("the total") : out;
}

// A count the audit protects, for people.
std::string CountText(const disclosure::CountRef& c,
                      const std::vector<disclosure::LinkedTable>& tables, int year) {
  if (c.table != disclosure::kDerived && c.table < tables.size()) {
    const disclosure::LinkedTable& t = tables[c.table];
    const disclosure::Layout layout = disclosure::MakeLayout([&] {
      std::vector<size_t> sizes;
      for (const auto& cats : t.categories) sizes.push_back(cats.size());
      return sizes;
    }());
    std::string where;
    for (size_t d = 0; d < t.dim_names.size(); ++d) {
      const size_t at = layout.index[c.entry][d];
      if (at == disclosure::kAll) continue;
      where +=
          (where.empty() ? "" : ", ") + DimensionLabel(t.dim_names[d]) + "=" + t.categories[d][at];
    }
    if (where.empty()) where = _("the total");
    return Format(c.table + 1 == tables.size() ? _("the hidden count {0} of this report")
                                               : _("the hidden count {0} of report {1}"),
                  {where, t.label});
  }
  std::string where;
  for (const auto& [dim, category] : c.where) {
    where += (where.empty() ? "" : ", ") + DimensionLabel(dim) + "=" + category;
  }
  char months[32];
  std::snprintf(months, sizeof months, "%04d-%02d", year, c.first);
  std::string period = months;
  if (c.last != c.first) {
    std::snprintf(months, sizeof months, "%04d-%02d", year, c.last);
    period = Format(_("{0} to {1}"), {period, months});
  }
  return where.empty() ? Format(_("the number of people in {0}"), {period})
                       : Format(_("the number of people with {0} in {1}"), {where, period});
}

// Why a count is unsafe, for people.
std::string FindingText(const disclosure::AuditFinding& f,
                        const std::vector<disclosure::LinkedTable>& tables, int year, uint32_t k) {
  const std::string what = CountText(f.count, tables, year);
  if (f.kind == disclosure::AuditFinding::Kind::kPinned) {
    return Format(_("{0} could be worked out exactly"), {what});
  }
  return Format(_("{0} could be proven to lie between 1 and {1}"), {what, std::to_string(k - 1)});
}

// The team's published reports of `year`, as the audit reads them.
CliStatus FetchPublished(Context& ctx, Replica& replica, const HubTarget& hub, int year,
                         int max_attempts, std::vector<disclosure::LinkedTable>& out) {
  Exchanged listed;
  CLI_RETURN_IF_ERROR(ExchangeWithHub(
      ctx, replica, hub, [&] { return BuildListReportsRequest(replica); }, max_attempts, listed));
  if (listed.response.status != 200) {
    return CliStatus::From(ErrorSource::kHub, HubStatus(listed.response));
  }
  auto list =
      DecodeReportList(std::string(listed.response.body.begin(), listed.response.body.end()));
  if (!list.ok()) return CliStatus::From(ErrorSource::kHub, list.status());
  for (const ReportListing& r : *list) {
    auto period = disclosure::LatticePeriod(r.from, r.to);
    if (!period.ok() || period->year != year) continue;
    Exchanged got;
    CLI_RETURN_IF_ERROR(ExchangeWithHub(
        ctx, replica, hub, [&] { return BuildGetReportRequest(replica, r.id); }, max_attempts,
        got));
    if (got.response.status != 200) {
      return CliStatus::From(ErrorSource::kHub, HubStatus(got.response));
    }
    auto parsed =
        report::ParseJson(std::string(got.response.body.begin(), got.response.body.end()));
    if (!parsed.ok()) return CliStatus::From(ErrorSource::kHub, parsed.status());
    auto linked = report::ToLinked(*parsed, r.id);
    if (!linked.ok()) continue;
    out.push_back(std::move(*linked));
  }
  return CliStatus::Ok();
}
}  // namespace

CliStatus RunReport(Context& ctx, const ReportArgs& args) {
  if (args.format != "table" && args.format != "csv" && args.format != "json" &&
      args.format != "svg") {
    return CliStatus::Usage(_("--format must be table, csv, json or svg"));
  }
  if (args.k < 2) return CliStatus::Usage(_("--k must be at least 2"));
  casework::ReportQuery query;
  std::string dim;
  for (char c : args.by + ",") {
    if (c == ',') {
      if (!dim.empty()) query.dims.push_back(dim);
      dim.clear();
    } else if (c != ' ') {
      dim.push_back(c);
    }
  }
  query.from = args.from;
  query.to = args.to;
  Workbench wb;
  CLI_RETURN_IF_ERROR(OpenWorkbench(ctx, wb));
  if (args.publish && !IsVerifiedCoordinator(*wb.dev.replica)) {
    return {kExitData, _("only a coordinator publishes reports to the hub")};
  }
  int year = 0;
  if (args.publish) {
    // The publication lattice (docs/REPORTS.md), before the data is read.
    auto period = disclosure::LatticePeriod(args.from, args.to);
    if (!period.ok()) {
      return CliStatus::Usage(
          _("a published report covers one closed calendar period: a whole month, a quarter "
            "(January-March, April-June, July-September, October-December) or a whole year; "
            "give its first and last day, e.g. --from 2026-01-01 --to 2026-03-31"));
    }
    const auto today = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now().time_since_epoch());
    if (!disclosure::PeriodEnded(
            *period, FormatIsoUtc(static_cast<uint64_t>(today.count())).substr(0, 10))) {
      return CliStatus::Usage(Format(_("the period ends on {0}; it can be published from the "
                                       "next day on, once it is closed"),
                                     {disclosure::PeriodEnd(*period)}));
    }
    year = period->year;
  }
  query.language = wb.language;
  casework::CaseData data;
  CLI_RETURN_IF_ERROR(LoadCaseData(wb, data));
  auto built = casework::BuildReportRows(*wb.pack, data, query);
  if (!built.ok()) return CliStatus::Usage(built.status().message());
  std::vector<report::Dimension> dims;
  for (const auto& d : built->dims) dims.push_back({d.name, d.codes, d.labels});
  auto table = report::Tabulate(std::move(dims), built->rows);
  if (!table.ok()) return Local(table.status());
  auto published = report::Suppress(*table, args.k);
  if (!published.ok()) return Local(published.status());
  if (args.title.empty()) {
    // "Victims by gender and type of exploitation", in the reader's language.
    std::string dims_text;
    for (size_t i = 0; i < query.dims.size(); ++i) {
      const std::string label = DimensionLabel(query.dims[i]);
      if (i == 0) {
        dims_text = label;
      } else if (i + 1 == query.dims.size()) {
        dims_text = Format(_("{0} and {1}"), {dims_text, label});
      } else {
        dims_text += ", " + label;
      }
    }
    published->title =
        Format(built->unit == "events" ? _("Trafficking events by {0}") : _("Victims by {0}"),
               {dims_text});
  } else {
    published->title = args.title;
  }
  published->from = args.from;
  published->to = args.to;
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now().time_since_epoch());
  published->generated_at = FormatIsoUtc(static_cast<uint64_t>(now.count()));

  HubTarget hub{wb.dev.config.hub_url, wb.dev.config.tls_pin};
  if (args.publish) {
    // The audit across publications, against what the team has published
    // for the year; it hides more of this table until the audit passes.
    std::vector<disclosure::LinkedTable> earlier;
    CLI_RETURN_IF_ERROR(
        FetchPublished(ctx, *wb.dev.replica, hub, year, args.max_attempts, earlier));
    auto across = report::SuppressAcross(*published, earlier);
    if (!across.ok()) return Local(across.status());
    std::vector<disclosure::LinkedTable> tables = earlier;
    tables.push_back(*report::ToLinked(*published, ""));
    for (const auto& [id, finding] : across->hidden) {
      ctx.output->Note(Format(_("also hidden: {0}, because together with the reports the team "
                                "has published for {1}, {2}"),
                              {EntryText(*published, id), std::to_string(year),
                               FindingText(finding, tables, year, args.k)}));
    }
    using Kind = disclosure::AuditFinding::Kind;
    const disclosure::AuditFinding& f = across->final;
    if (f.kind == Kind::kInconsistent) {
      return {kExitData,
              Format(_("this report's counts differ from the reports the team has published for "
                       "{0} for the same months (a record was added or changed since): a "
                       "published table is final, and publishing a different one would show the "
                       "difference; publish a later period instead"),
                     {std::to_string(year)})};
    }
    if (f.kind == Kind::kTooLarge) {
      return {kExitData, Format(_("this report cannot be audited together with the reports the "
                                  "team has published for {0} ({1}); publish fewer combinations "
                                  "of dimensions for the year"),
                                {std::to_string(year), f.detail})};
    }
    if (!f.safe()) {
      return {kExitData,
              Format(_("this report cannot be published: {0}, and hiding more of this report "
                       "does not prevent it"),
                     {FindingText(f, tables, year, args.k)})};
    }
  }

  std::string text;
  // For people (table, chart) the dimensions carry their names in the
  // reader's language; CSV and JSON keep the machine names.
  report::Published for_people = *published;
  for (report::Dimension& d : for_people.table.dims) d.name = DimensionLabel(d.name);
  if (args.format == "table") {
    text = report::RenderText(for_people) + "\n" +
           Format(_("<{0}: hidden, either below {0} or so that a small count cannot be worked "
                    "out from the totals."),
                  {std::to_string(args.k)}) +
           "\n";
  } else if (args.format == "csv") {
    text = report::RenderCsv(*published);
  } else if (args.format == "json") {
    text = report::RenderJson(*published) + "\n";
  } else {
    text = report::RenderSvg(for_people, for_people.title);
  }
  if (!ctx.output->json() || args.format == "json")
    CLI_RETURN_IF_ERROR(Emit(ctx, args.output, text));
  if (!args.output.empty() && args.output != "-") {
    ctx.output->Note(Format(_("report written to {0}"), {args.output}));
  }
  if (!args.publish) return CliStatus::Ok();

  const std::string body = report::RenderJson(*published);
  Exchanged exchanged;
  CLI_RETURN_IF_ERROR(ExchangeWithHub(
      ctx, *wb.dev.replica, hub, [&] { return BuildPublishReportRequest(*wb.dev.replica, body); },
      args.max_attempts, exchanged));
  if (exchanged.response.status != 200 && exchanged.response.status != 201) {
    return CliStatus::From(ErrorSource::kHub, HubStatus(exchanged.response));
  }
  const std::string answer_body(exchanged.response.body.begin(), exchanged.response.body.end());
  auto answer = DecodePublishReportAnswer(answer_body);
  if (!answer.ok()) return CliStatus::From(ErrorSource::kHub, answer.status());
  if (ctx.output->json() && args.format != "json") {
    ctx.output->Json({{"published", answer->id}});
  } else {
    ctx.output->Note(Format(_("published on the hub as report {0}"), {answer->id}));
  }
  return CliStatus::Ok();
}

CliStatus RunPublished(Context& ctx, const std::string& id, int max_attempts) {
  Device dev;
  CLI_RETURN_IF_ERROR(OpenDevice(ctx, dev));
  HubTarget hub{dev.config.hub_url, dev.config.tls_pin};
  Exchanged exchanged;
  CLI_RETURN_IF_ERROR(ExchangeWithHub(
      ctx, *dev.replica, hub,
      [&] {
        return id.empty() ? BuildListReportsRequest(*dev.replica)
                          : BuildGetReportRequest(*dev.replica, id);
      },
      max_attempts, exchanged));
  const std::string body(exchanged.response.body.begin(), exchanged.response.body.end());
  if (exchanged.response.status != 200) {
    return CliStatus::From(ErrorSource::kHub, HubStatus(exchanged.response));
  }
  if (!id.empty()) {
    ctx.output->out() << body << "\n";
    return CliStatus::Ok();
  }
  auto list = DecodeReportList(body);
  if (!list.ok()) return CliStatus::From(ErrorSource::kHub, list.status());
  if (ctx.output->json()) {
    ctx.output->out() << body << "\n";
    return CliStatus::Ok();
  }
  if (list->empty()) {
    ctx.output->Line(_("no reports published yet"));
    return CliStatus::Ok();
  }
  for (const auto& r : *list) {
    ctx.output->Line(r.id + "  " + FormatIsoUtc(r.published_at_ms) + "  k=" + std::to_string(r.k) +
                     "  " + r.title);
  }
  return CliStatus::Ok();
}

}  // namespace enlace::cli
