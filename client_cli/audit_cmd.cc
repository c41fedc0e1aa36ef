#include "audit_cmd.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "enlace/audit.h"
#include "enlace/sync.h"
#include "enlace/wire.h"
#include "i18n_cli.h"

namespace enlace::cli {
namespace {

using i18n::Format;
using nlohmann::json;

std::string KindLabel(AuditKind kind) {
  switch (kind) {
    case AuditKind::kPut:
      return C_("write kind", "put");
    case AuditKind::kDelete:
      return C_("write kind", "delete");
    case AuditKind::kRestore:
      return C_("write kind", "restore");
    case AuditKind::kErase:
      return C_("write kind", "erase");
  }
  return AuditKindName(kind);
}

std::string Pad(const std::string& s, size_t width) {
  std::string out = s;
  const size_t shown = DisplayWidth(s);
  if (shown < width) out.append(width - shown, ' ');
  return out;
}

json EntryToJson(const AuditEntry& e) {
  json j;
  if (e.decoded) {
    j["device"] = e.dot.device.ToHex();
    j["counter"] = e.dot.counter;
    j["time"] = FormatIsoUtc(e.hlc.physical_ms());
    j["hlc"] = e.hlc.value;
    j["kind"] = AuditKindName(e.kind);
  } else {
    j["device"] = nullptr;
    j["counter"] = nullptr;
    j["time"] = nullptr;
    j["hlc"] = nullptr;
    j["kind"] = nullptr;
  }
  j["name"] = e.device_name.empty() ? json(nullptr) : json(e.device_name);
  json fields = json::object();
  json conflicts = json::array();
  json resolves = json::array();
  for (const auto& f : e.fields) {
    fields[f.name] = e.erased ? json(nullptr) : ValueToJson(f.value);
    if (f.conflict) conflicts.push_back(f.name);
    if (f.resolved) resolves.push_back(f.name);
  }
  j["fields"] = std::move(fields);
  j["conflicts"] = std::move(conflicts);
  j["resolves"] = std::move(resolves);
  j["existence_conflict"] = e.existence_conflict;
  j["existence_resolved"] = e.existence_resolved;
  j["erased"] = e.erased;
  j["verified"] = e.verified();
  if (!e.verified()) j["error"] = e.verification.message();
  return j;
}

// One row of the table: the write's columns on its first row only.
struct Row {
  std::string time, device, kind, change, note, result;
};

std::vector<Row> EntryRows(const AuditEntry& e) {
  Row first;
  if (e.decoded) {
    first.time = FormatIsoUtc(e.hlc.physical_ms());
    first.device = e.device_name.empty() ? ShortHex(e.dot.device)
                                         : e.device_name + " (" + ShortHex(e.dot.device) + ")";
    first.kind = KindLabel(e.kind);
  } else {
    first.time = "?";
    first.device = "?";
    first.kind = "?";
  }
  first.result =
      e.verified() ? _("verified") : Format(_("FAILED: {0}"), {e.verification.message()});
  std::vector<Row> rows;
  std::vector<std::pair<std::string, std::string>> changes;  // (field=value, note)
  for (const auto& f : e.fields) {
    std::string note;
    if (f.conflict) note = _("conflict: concurrent with another value");
    if (f.resolved) note += (note.empty() ? "" : "; ") + std::string(_("resolves a conflict"));
    changes.emplace_back(
        e.erased ? Format(_("{0} (erased)"), {f.name}) : f.name + "=" + DisplayValue(f.value),
        note);
  }
  if (e.existence_conflict) {
    changes.emplace_back("", _("deleted on one device, edited on another"));
  }
  if (e.existence_resolved) changes.emplace_back("", _("settles a delete conflict"));
  if (changes.empty()) changes.emplace_back("", "");
  for (size_t i = 0; i < changes.size(); ++i) {
    Row r = i == 0 ? first : Row{};
    r.change = changes[i].first;
    r.note = changes[i].second;
    rows.push_back(std::move(r));
  }
  return rows;
}

std::string RenderTable(const std::vector<AuditEntry>& entries) {
  std::vector<Row> rows;
  rows.push_back(Row{_("TIME"), _("DEVICE"), _("KIND"), _("CHANGE"), _("NOTE"), _("RESULT")});
  for (const auto& e : entries) {
    for (auto& r : EntryRows(e)) rows.push_back(std::move(r));
  }
  size_t w[5] = {0, 0, 0, 0, 0};
  for (const auto& r : rows) {
    w[0] = std::max(w[0], DisplayWidth(r.time));
    w[1] = std::max(w[1], DisplayWidth(r.device));
    w[2] = std::max(w[2], DisplayWidth(r.kind));
    w[3] = std::max(w[3], DisplayWidth(r.change));
    w[4] = std::max(w[4], DisplayWidth(r.note));
  }
  std::ostringstream os;
  for (const auto& r : rows) {
    std::string line = Pad(r.time, w[0]) + "  " + Pad(r.device, w[1]) + "  " + Pad(r.kind, w[2]) +
                       "  " + Pad(r.change, w[3]) + "  " + Pad(r.note, w[4]) + "  " + r.result;
    while (!line.empty() && line.back() == ' ') line.pop_back();
    os << line << "\n";
  }
  return os.str();
}

}  // namespace

CliStatus RunAudit(Context& ctx, const AuditArgs& args) {
  if (Status s = ValidateName(args.collection, "collection"); !s.ok()) {
    return CliStatus::Usage(s.message());
  }
  if (!LooksLikeRecordId(args.id)) {
    return CliStatus::Usage(Format(_("\"{0}\" is not a record id (32 hex characters)"), {args.id}));
  }
  auto id = RecordId::FromHex(args.id);
  if (!id.ok()) return CliStatus::Usage(id.status().message());
  Device dev;
  CLI_RETURN_IF_ERROR(OpenDevice(ctx, dev));

  std::vector<Bytes> writes;
  AuditOrder order = AuditOrder::kAsGiven;
  if (args.offline) {
    auto stored = dev.replica->StoredWrites();
    if (!stored.ok()) return Local(stored.status());
    for (auto& bytes : *stored) {
      auto w = Write::Decode(bytes);
      if (w.ok() && w->collection == args.collection && w->record == *id) {
        writes.push_back(std::move(bytes));
      }
    }
    order = AuditOrder::kByClock;
    ctx.output->Note(
        _("offline: only the writes stored on this device; the history may be partial "
          "(writes whose values were superseded are purged from devices)"));
  } else {
    HubTarget hub{dev.config.hub_url, dev.config.tls_pin};
    Exchanged ex;
    CLI_RETURN_IF_ERROR(RequestFromHub(
        ctx, *dev.replica, hub,
        [&] { return BuildHistoryRequest(*dev.replica, args.collection, *id); }, args.max_attempts,
        _("the hub refused the history: {0}"), ex));
    auto history = DecodeHistoryResponse(ex.response.body);
    if (!history.ok()) return CliStatus::From(ErrorSource::kHub, history.status());
    writes = std::move(history->writes);
  }

  auto entries = AuditRecord(*dev.replica, args.collection, *id, writes, order);
  if (!entries.ok()) return Local(entries.status());
  const auto failed = static_cast<size_t>(std::count_if(
      entries->begin(), entries->end(), [](const AuditEntry& e) { return !e.verified(); }));

  if (ctx.output->json()) {
    json list = json::array();
    for (const auto& e : *entries) list.push_back(EntryToJson(e));
    ctx.output->Json({{"collection", args.collection},
                      {"id", id->ToHex()},
                      {"source", args.offline ? "local" : "hub"},
                      {"partial", args.offline},
                      {"writes", std::move(list)},
                      {"verified", entries->size() - failed},
                      {"failed", failed}});
  } else if (!entries->empty()) {
    ctx.output->out() << RenderTable(*entries);
  }
  if (entries->empty()) {
    return {kExitData, args.offline ? Format(_("this device stores no write of {0} {1}"),
                                             {args.collection, id->ToHex()})
                                    : Format(_("the hub holds no write of {0} {1}"),
                                             {args.collection, id->ToHex()})};
  }
  if (failed > 0) {
    // With --json the document above says it all.
    if (ctx.output->json()) return {kExitData, ""};
    return {kExitData, Format(_("{0} of {1} writes failed verification: do not trust them"),
                              {std::to_string(failed), std::to_string(entries->size())})};
  }
  return CliStatus::Ok();
}

}  // namespace enlace::cli
