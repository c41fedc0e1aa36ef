#include "output.h"

#include <algorithm>
#include <ctime>
#include <ostream>
#include <sstream>
#include <tuple>

#include "enlace/write.h"
#include "i18n_cli.h"

namespace enlace::cli {

namespace {

using i18n::Format;
using nlohmann::json;

std::string Pad(std::string_view s, size_t width) {
  std::string out(s);
  const size_t shown = DisplayWidth(s);
  if (shown < width) out.append(width - shown, ' ');
  return out;
}

// The sibling shown for a field: the one whose value is the shown value and
// whose (hlc, device) is highest, as the core picks it.
const SiblingValue* ShownSibling(const std::vector<SiblingValue>& siblings,
                                 std::string_view shown) {
  const SiblingValue* best = nullptr;
  for (const auto& s : siblings) {
    if (s.value != shown) continue;
    if (best == nullptr || std::tie(s.hlc, s.dot.device) > std::tie(best->hlc, best->dot.device)) {
      best = &s;
    }
  }
  return best;
}

std::string ExistenceWord(std::string_view canonical) {
  return canonical == "true" ? C_("existence", "deleted") : C_("existence", "kept");
}

// Sibling lines under a field: "  * value   who   when   (shown)".
void RenderSiblings(std::ostringstream& os, const std::vector<SiblingValue>& siblings,
                    std::string_view shown, const MemberNames& names, std::string_view indent,
                    bool existence) {
  const SiblingValue* shown_sibling = ShownSibling(siblings, shown);
  size_t value_width = 0, who_width = 0;
  for (const auto& s : siblings) {
    value_width = std::max(
        value_width, DisplayWidth(existence ? ExistenceWord(s.value) : DisplayValue(s.value)));
    who_width = std::max(who_width, DisplayWidth(WhoWrote(s.dot.device, names)));
  }
  for (const auto& s : siblings) {
    const bool is_shown = &s == shown_sibling;
    os << indent << (is_shown ? "* " : "  ")
       << Pad(existence ? ExistenceWord(s.value) : DisplayValue(s.value), value_width) << "  "
       << Pad(WhoWrote(s.dot.device, names), who_width) << "  " << FormatIsoUtc(s.hlc.physical_ms())
       << (is_shown ? std::string("  ") + _("(shown)") : std::string()) << "\n";
  }
}

}  // namespace

// ---- Output ------------------------------------------------------------------------------------

void Output::Json(const nlohmann::json& doc) {
  out_ << doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

void Output::Line(std::string_view text) { out_ << text << "\n"; }

void Output::Result(const nlohmann::json& doc, std::string_view text) {
  if (json_) {
    Json(doc);
  } else {
    Line(text);
  }
}

void Output::Warn(std::string_view text) {
  err_ << "enlace: " << Format(_("warning: {0}"), {text}) << "\n";
}

void Output::Note(std::string_view text) { err_ << "enlace: " << text << "\n"; }

void Output::Error(std::string_view message, int exit_code) {
  err_ << "enlace: " << message << "\n";
  if (json_) {
    const nlohmann::json doc = {{"error", message}, {"code", exit_code}};
    out_ << doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  }
}

// ---- values ------------------------------------------------------------------------------------

std::string FormatIsoUtc(uint64_t unix_ms) {
  const auto seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  if (gmtime_r(&seconds, &tm) == nullptr) return std::to_string(unix_ms) + " ms";
  char buf[32];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(buf, n);
}

std::string ShortHex(const DeviceId& device) { return device.ToHex().substr(0, 8); }

size_t DisplayWidth(std::string_view utf8) {
  size_t n = 0;
  for (const char c : utf8) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;  // not a continuation byte
  }
  return n;
}

nlohmann::json ValueToJson(std::string_view canonical) {
  json j = json::parse(canonical, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return json(std::string(canonical));
  return j;
}

std::string DisplayValue(std::string_view canonical) {
  const json j = ValueToJson(canonical);
  if (!j.is_string()) return j.dump(-1, ' ', false, json::error_handler_t::replace);
  const std::string& s = j.get_ref<const std::string&>();
  const bool has_control =
      std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; });
  const bool reads_back_as_text =
      !s.empty() && json::parse(s, nullptr, false).is_discarded() && !has_control;
  return reads_back_as_text ? s : j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string WhoWrote(const DeviceId& device, const MemberNames& names) {
  const auto it = names.find(device);
  if (it == names.end() || it->second.empty()) return ShortHex(device);
  return it->second + " (" + ShortHex(device) + ")";
}

// ---- JSON documents ----------------------------------------------------------------------------

json RecordToJson(const Record& record) {
  json fields = json::object();
  json conflicts = json::object();
  for (const auto& [name, fv] : record.fields) {
    fields[name] = ValueToJson(fv.value);
    if (fv.conflict()) {
      json values = json::array();
      for (const auto& s : fv.siblings) values.push_back(ValueToJson(s.value));
      conflicts[name] = std::move(values);
    }
  }
  return json{{"id", record.id.ToHex()},     {"collection", record.collection},
              {"fields", std::move(fields)}, {"conflicts", std::move(conflicts)},
              {"deleted", record.deleted},   {"delete_conflict", record.delete_conflict}};
}

json ConflictToJson(const Conflict& conflict, const MemberNames& names) {
  json values = json::array();
  json siblings = json::array();
  for (const auto& s : conflict.siblings) {
    values.push_back(ValueToJson(s.value));
    json sib = {{"value", ValueToJson(s.value)},
                {"device", s.dot.device.ToHex()},
                {"time", FormatIsoUtc(s.hlc.physical_ms())}};
    const auto it = names.find(s.dot.device);
    if (it != names.end()) sib["name"] = it->second;
    siblings.push_back(std::move(sib));
  }
  return json{{"collection", conflict.collection},
              {"id", conflict.id.ToHex()},
              {"field", conflict.field},
              {"values", std::move(values)},
              {"shown", ValueToJson(conflict.shown)},
              {"siblings", std::move(siblings)}};
}

// ---- human text --------------------------------------------------------------------------------

std::string RenderRecord(const Record& record, const MemberNames& names) {
  std::ostringstream os;
  os << record.collection << " " << record.id.ToHex();
  if (record.delete_conflict) {
    os << "  (" << _("deleted on one device, edited on another") << ")";
  } else if (record.deleted) {
    os << "  " << _("(deleted)");
  }
  os << "\n";
  size_t width = 0;
  for (const auto& [name, fv] : record.fields) width = std::max(width, DisplayWidth(name));
  size_t conflicts = 0;
  for (const auto& [name, fv] : record.fields) {
    os << "  " << Pad(name, width) << "  " << DisplayValue(fv.value);
    if (fv.conflict()) {
      ++conflicts;
      os << "   " << Format(_("[conflict: {0} values]"), {std::to_string(fv.siblings.size())})
         << "\n";
      RenderSiblings(os, fv.siblings, fv.value, names, std::string(width + 4, ' '), false);
    } else {
      os << "\n";
    }
  }
  if (record.fields.empty()) os << "  " << _("(no fields)") << "\n";
  if (record.delete_conflict) {
    // No value is "shown" here: the record stays listed until someone decides.
    os << "  " << _("existence:") << "\n";
    RenderSiblings(os, record.existence, "", names, "    ", true);
  }
  const std::string id = record.id.ToHex();
  if (conflicts > 0) {
    os << Format(_("To settle a conflict: enlace resolve {0} {1} FIELD VALUE"),
                 {record.collection, id})
       << "\n";
  }
  if (record.delete_conflict) {
    os << Format(_("To settle the delete: enlace resolve {0} {1} '{2}' true   (delete), or false "
                   "(keep)"),
                 {record.collection, id, kDeletedField})
       << "\n";
  } else if (record.deleted) {
    os << Format(_("To bring it back: enlace restore {0} {1}"), {record.collection, id}) << "\n";
  }
  return os.str();
}

std::string RenderRecordLine(const Record& record) {
  std::ostringstream os;
  os << record.id.ToHex();
  std::vector<std::string> conflicted;
  for (const auto& [name, fv] : record.fields) {
    os << "  " << name << "=" << DisplayValue(fv.value);
    if (fv.conflict()) conflicted.push_back(name);
  }
  if (record.delete_conflict) conflicted.push_back(_("deleted/edited"));
  if (!conflicted.empty()) {
    std::string list;
    for (const auto& c : conflicted) list += (list.empty() ? "" : " ") + c;
    os << "  " << Format(_("[conflict: {0}]"), {list});
  }
  os << "\n";
  return os.str();
}

std::string RenderConflict(const Conflict& conflict, const MemberNames& names) {
  std::ostringstream os;
  const std::string id = conflict.id.ToHex();
  const bool existence = conflict.field == kDeletedField;
  os << conflict.collection << " " << id << "  "
     << (existence ? std::string(_("deleted on one device, edited on another")) : conflict.field)
     << "\n";
  RenderSiblings(os, conflict.siblings, existence ? "" : conflict.shown, names, "  ", existence);
  if (existence) {
    os << "  "
       << Format(_("settle: enlace resolve {0} {1} '{2}' true   (delete), or false (keep)"),
                 {conflict.collection, id, kDeletedField})
       << "\n";
  } else {
    os << "  "
       << Format(_("settle: enlace resolve {0} {1} {2} VALUE"),
                 {conflict.collection, id, conflict.field})
       << "\n";
  }
  return os.str();
}

}  // namespace enlace::cli
