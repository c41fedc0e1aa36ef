#include "report_check.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <vector>

#include "enlace/disclosure.h"

namespace enlace::hub {

namespace {

using nlohmann::json;

constexpr size_t kMaxTextBytes = 256;   // dimension names, categories, labels
constexpr size_t kMaxTitleBytes = 512;  // the title

// The members a report may have. Anything else is refused: the hub stores
// and serves the body as it came, so an unknown member would be an
// unchecked channel past the small-cell check.
const std::set<std::string, std::less<>> kTopLevel = {
    "version", "k", "title", "from", "to", "generated_at", "dims", "cells", "margins", "total"};
// No "why": telling primary from complementary suppression would show which
// hidden counts are the small ones.
const std::set<std::string, std::less<>> kEntryMembers = {"index", "value", "suppressed"};
const std::set<std::string, std::less<>> kDimMembers = {"name", "categories", "labels"};

ReportVerdict Bad(std::string error) { return {400, std::move(error), {}, {}}; }
// 422: publishing it would put a count below k, or one that must stay hidden,
// on the hub.
ReportVerdict Unsafe(std::string error) { return {422, std::move(error), {}, {}}; }

// First pass: well-formed, not too deep, no object with a key twice. (A
// parser keeping the last of two "value" members would check one number
// and serve the other to readers that keep the first.)
class Shape {
 public:
  explicit Shape(size_t max_depth) : max_depth_(max_depth) {}
  const std::string& error() const { return error_; }

  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(json::number_integer_t) { return true; }
  bool number_unsigned(json::number_unsigned_t) { return true; }
  bool number_float(json::number_float_t, const json::string_t&) { return true; }
  bool string(json::string_t&) { return true; }
  bool binary(json::binary_t&) { return true; }
  bool start_object(std::size_t) {
    keys_.emplace_back();
    return Enter();
  }
  bool key(json::string_t& k) {
    if (!keys_.back().insert(k).second) {
      error_ = "the report has the key \"" + k + "\" twice in one object";
      return false;
    }
    return true;
  }
  bool end_object() {
    keys_.pop_back();
    --depth_;
    return true;
  }
  bool start_array(std::size_t) { return Enter(); }
  bool end_array() {
    --depth_;
    return true;
  }
  // The position only: the parser's message quotes the input, which need
  // not be UTF-8.
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception&) {
    error_ = "the report is not well-formed JSON (at byte " + std::to_string(position) + ")";
    return false;
  }

 private:
  bool Enter() {
    if (++depth_ > max_depth_) {
      error_ = "the report nests deeper than a report can";
      return false;
    }
    return true;
  }
  size_t max_depth_;
  size_t depth_ = 0;
  std::vector<std::set<std::string>> keys_;
  std::string error_;
};

bool IsDate(const std::string& s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  return true;
}

// An optional string member; "" when absent.
bool OptionalText(const json& j, const char* name, size_t max, std::string& out,
                  std::string& error) {
  const auto it = j.find(name);
  if (it == j.end()) return true;
  if (!it->is_string() || it->get_ref<const std::string&>().size() > max) {
    error = std::string("the report's \"") + name + "\" must be a text of at most " +
            std::to_string(max) + " bytes";
    return false;
  }
  out = it->get<std::string>();
  return true;
}

struct Dim {
  std::string name;
  std::vector<std::string> categories;
};

using disclosure::kAll;

// One listed cell or margin: its index (kAll for "all") and its value,
// nullopt when suppressed.
struct Listed {
  std::vector<size_t> index;
  std::optional<uint64_t> value;
};

// "cell [0,2] (entity=01, type=Sexual)", "margin [0,all] (entity=01, all)"
// or "the total".
std::string Describe(const std::vector<Dim>& dims, const std::vector<size_t>& index) {
  std::string at = "[";
  std::string names = "(";
  size_t all = 0;
  for (size_t i = 0; i < index.size(); ++i) {
    if (i > 0) {
      at += ",";
      names += ", ";
    }
    if (index[i] == kAll) {
      at += "all";
      names += "all";
      ++all;
    } else {
      at += std::to_string(index[i]);
      names += dims[i].name + "=" + dims[i].categories[index[i]];
    }
  }
  if (all == index.size()) return "the total";
  return std::string(all == 0 ? "cell " : "margin ") + at + "] " + names + ")";
}

// Checks one published entry's value against k: an integer that is 0 or
// >= k, or null with "suppressed": true; sets `value` (nullopt when
// suppressed). `name` names it in errors.
ReportVerdict CheckValue(const json& entry, const std::string& name, uint32_t k,
                         std::optional<uint64_t>& value) {
  bool suppressed = false;
  if (const auto s = entry.find("suppressed"); s != entry.end()) {
    if (!s->is_boolean()) return Bad(name + ": \"suppressed\" must be true or false");
    suppressed = s->get<bool>();
  }
  const auto v = entry.find("value");
  if (v == entry.end()) return Bad(name + " has no \"value\" (a number, or null when suppressed)");
  if (v->is_null()) {
    if (!suppressed) return Bad(name + " has a null value but is not marked \"suppressed\": true");
    value.reset();
    return {};
  }
  if (suppressed) {
    return Unsafe(name +
                  " is marked suppressed but carries a value; a suppressed value must be "
                  "null, or it is published");
  }
  if (v->is_number_unsigned()) {
    const uint64_t n = v->get<uint64_t>();
    if (n != 0 && n < k) {
      // The value itself stays out of the message: it would reach the log.
      return Unsafe(name + " is below k = " + std::to_string(k) +
                    "; it must be suppressed before the report is published");
    }
    value = n;
    return {};
  }
  if (v->is_number_integer()) return Bad(name + " has a negative value");
  return Bad(name + " has a value that is not a whole number");
}

// Checks a list of cells (`margins` false) or margins and appends them to
// `out`. Every index lists one position per dimension, in range; a margin
// has "all" (null) in every place but one (the one-way margins; a report of
// one dimension has none); no index appears twice.
ReportVerdict CheckEntries(const json& list, bool margins, const std::vector<Dim>& dims, uint32_t k,
                           const ReportLimits& limits, std::vector<Listed>& out) {
  const char* what = margins ? "margin" : "cell";
  const std::string plural = margins ? "margins" : "cells";
  if (!list.is_array()) return Bad("the report's \"" + plural + "\" must be a list");
  if (list.size() > limits.max_cells) {
    return Bad("the report has more than " + std::to_string(limits.max_cells) + " " + plural);
  }
  if (margins && dims.size() == 1 && !list.empty()) {
    return Bad("a report of one dimension has no margins: the sum of its cells is the total");
  }
  std::set<std::vector<size_t>> seen;
  for (const auto& entry : list) {
    if (!entry.is_object())
      return Bad("every one of the report's " + plural + " must be an object");
    for (const auto& [key, value] : entry.items()) {
      if (!kEntryMembers.contains(key)) {
        return Bad("a " + std::string(what) + " has the unknown member \"" + key + "\"");
      }
    }
    const auto index = entry.find("index");
    if (index == entry.end() || !index->is_array() || index->size() != dims.size()) {
      return Bad("every " + std::string(what) +
                 " needs an \"index\" with one position per dimension (" +
                 std::to_string(dims.size()) + ")");
    }
    Listed listed;
    size_t all = 0;
    for (size_t i = 0; i < dims.size(); ++i) {
      const json& p = (*index)[i];
      if (p.is_null() && margins) {
        ++all;
        listed.index.push_back(kAll);
        continue;
      }
      if (!p.is_number_unsigned() || p.get<uint64_t>() >= dims[i].categories.size()) {
        return Bad("a " + std::string(what) + " index is out of range for dimension \"" +
                   dims[i].name + "\"");
      }
      listed.index.push_back(static_cast<size_t>(p.get<uint64_t>()));
    }
    if (margins && all == 0) return Bad("a margin's index needs null (all) in at least one place");
    if (margins && all + 1 != dims.size()) {
      return Bad(
          "a margin's index needs null (all) in every place but one: a report publishes "
          "the total of each category of each dimension, and no other sums");
    }
    const std::string name = Describe(dims, listed.index);
    if (!seen.insert(listed.index).second) return Bad(name + " is listed twice");
    ReportVerdict v = CheckValue(entry, name, k, listed.value);
    if (!v.ok()) return v;
    out.push_back(std::move(listed));
  }
  return {};
}

// The report as one table: every cell, every margin and the total listed
// (`cells`, `margins` and `total` are checked one by one already), then the
// disclosure check of enlace/disclosure.h: no suppressed entry may be worked
// out from the published ones, exactly (the rank test) or by the bounds
// (every hidden count is at least 1), and the published counts must add up.
ReportVerdict CheckTable(const std::vector<Dim>& dims, const std::vector<Listed>& cells,
                         const std::vector<Listed>& margins, std::optional<uint64_t> total,
                         disclosure::LinkedTable& table) {
  std::vector<size_t> sizes;
  for (const Dim& d : dims) sizes.push_back(d.categories.size());
  const disclosure::Layout layout = disclosure::MakeLayout(sizes);
  if (cells.size() != layout.num_cells) {
    return Bad("the report lists " + std::to_string(cells.size()) + " of its " +
               std::to_string(layout.num_cells) +
               " cells; a report lists every cell once, a suppressed one as null");
  }
  if (margins.size() != layout.num_margins) {
    return Bad("the report lists " + std::to_string(margins.size()) + " of its " +
               std::to_string(layout.num_margins) +
               " margins; a report lists the total of each category of each dimension once");
  }
  disclosure::PublishedValues values(layout.num_entries());
  for (const Listed& c : cells) values[layout.CellId(c.index)] = c.value;
  for (const Listed& m : margins) {
    for (size_t k = 0; k < dims.size(); ++k) {
      if (m.index[k] != kAll) values[layout.MarginId(k, m.index[k])] = m.value;
    }
  }
  values[layout.total_id()] = total;
  table.values = values;

  const Result<disclosure::Finding> finding = disclosure::CheckPublished(layout, values);
  if (!finding.ok()) {
    return Bad("the hub could not check the report's suppression (" + finding.status().message() +
               ")");
  }
  const uint32_t e = finding->entry;
  const std::string name = Describe(dims, layout.index[e]);
  const std::string suppressed = "the suppressed " + (e == layout.total_id() ? "total" : name);
  constexpr const char* kHideMore =
      "; hide more entries with it (complementary suppression, docs/REPORTS.md)";
  switch (finding->kind) {
    case disclosure::Finding::Kind::kSafe:
      return {};
    case disclosure::Finding::Kind::kDetermined:
      return Unsafe(suppressed +
                    " can be worked out exactly from the published cells, margins and total" +
                    kHideMore);
    case disclosure::Finding::Kind::kPinned:
      return Unsafe(suppressed +
                    " has only one possible value, given the published counts and that every "
                    "hidden count is at least 1" +
                    kHideMore);
    case disclosure::Finding::Kind::kInconsistent:
      return Bad("the published counts of " + name +
                 " do not add up (every hidden count is at least 1)");
  }
  return Bad("the report could not be checked");
}

}  // namespace

ReportVerdict CheckReport(std::string_view body, const ReportLimits& limits) {
  try {
    if (body.size() > limits.max_bytes) {
      return Bad("the report is larger than " + std::to_string(limits.max_bytes / 1024) + " KiB");
    }
    Shape shape(limits.max_depth);
    if (!json::sax_parse(body.begin(), body.end(), &shape)) {
      return Bad(shape.error().empty() ? "the report is not well-formed JSON" : shape.error());
    }
    const json j = json::parse(body.begin(), body.end(), nullptr, false);
    if (!j.is_object()) return Bad("the report must be a JSON object");
    for (const auto& [key, value] : j.items()) {
      if (!kTopLevel.contains(key)) return Bad("the report has the unknown member \"" + key + "\"");
    }

    const auto version = j.find("version");
    if (version == j.end() || !version->is_number_unsigned() || version->get<uint64_t>() != 1) {
      return Bad("the report's \"version\" must be 1 (the only report format this hub knows)");
    }
    const auto kj = j.find("k");
    if (kj == j.end() || !kj->is_number_integer()) {
      return Bad("the report's \"k\" must be a whole number");
    }
    if (!kj->is_number_unsigned() || kj->get<uint64_t>() < limits.min_k) {
      return Unsafe("the report's k (" + kj->dump() + ") is below this hub's minimum of " +
                    std::to_string(limits.min_k));
    }
    if (kj->get<uint64_t>() > std::numeric_limits<uint32_t>::max()) {
      return Bad("the report's \"k\" is too large");
    }
    ReportVerdict out;
    out.meta.k = static_cast<uint32_t>(kj->get<uint64_t>());
    std::string error, generated_at;
    if (!OptionalText(j, "title", kMaxTitleBytes, out.meta.title, error) ||
        !OptionalText(j, "from", 10, out.meta.from, error) ||
        !OptionalText(j, "to", 10, out.meta.to, error) ||
        !OptionalText(j, "generated_at", 64, generated_at, error)) {
      return Bad(error);
    }
    for (const std::string* d : {&out.meta.from, &out.meta.to}) {
      if (!d->empty() && !IsDate(*d)) {
        return Bad("the report's \"from\" and \"to\" must be dates YYYY-MM-DD, or empty");
      }
    }

    const auto dims_j = j.find("dims");
    if (dims_j == j.end() || !dims_j->is_array() || dims_j->empty()) {
      return Bad("the report needs \"dims\", a list of its dimensions");
    }
    if (dims_j->size() > limits.max_dims) {
      return Bad("the report has " + std::to_string(dims_j->size()) + " dimensions; at most " +
                 std::to_string(limits.max_dims) + " are allowed");
    }
    std::vector<Dim> dims;
    size_t cell_count = 1;
    for (const auto& d : *dims_j) {
      if (!d.is_object()) return Bad("every dimension must be an object");
      for (const auto& [key, value] : d.items()) {
        if (!kDimMembers.contains(key)) {
          return Bad("a dimension has the unknown member \"" + key + "\"");
        }
      }
      Dim dim;
      const auto name = d.find("name");
      if (name == d.end() || !name->is_string() || name->get_ref<const std::string&>().empty() ||
          name->get_ref<const std::string&>().size() > kMaxTextBytes) {
        return Bad("every dimension needs a \"name\"");
      }
      dim.name = name->get<std::string>();
      const auto cats = d.find("categories");
      if (cats == d.end() || !cats->is_array() || cats->size() > limits.max_cells) {
        return Bad("dimension \"" + dim.name + "\" needs a list of \"categories\"");
      }
      if (cats->empty()) {
        return Bad("dimension \"" + dim.name + "\" has no categories: nothing to report");
      }
      for (const auto& c : *cats) {
        if (!c.is_string() || c.get_ref<const std::string&>().size() > kMaxTextBytes) {
          return Bad("dimension \"" + dim.name + "\" has a category that is not a short text");
        }
        dim.categories.push_back(c.get<std::string>());
      }
      if (const auto labels = d.find("labels"); labels != d.end()) {
        if (!labels->is_array() || labels->size() != cats->size()) {
          return Bad("dimension \"" + dim.name + "\" needs one label per category");
        }
        for (const auto& l : *labels) {
          if (!l.is_string() || l.get_ref<const std::string&>().size() > kMaxTextBytes) {
            return Bad("dimension \"" + dim.name + "\" has a label that is not a short text");
          }
        }
      }
      if (dim.categories.size() > limits.max_cells / cell_count) {
        return Bad("the report has more than " + std::to_string(limits.max_cells) + " cells");
      }
      cell_count *= dim.categories.size();
      dims.push_back(std::move(dim));
    }

    const auto cells = j.find("cells");
    if (cells == j.end()) return Bad("the report has no \"cells\"");
    std::vector<Listed> cell_list, margin_list;
    ReportVerdict v = CheckEntries(*cells, false, dims, out.meta.k, limits, cell_list);
    if (!v.ok()) return v;
    if (const auto margins = j.find("margins"); margins != j.end()) {
      v = CheckEntries(*margins, true, dims, out.meta.k, limits, margin_list);
      if (!v.ok()) return v;
    }
    const auto total = j.find("total");
    if (total == j.end())
      return Bad("the report has no \"total\" (a number, or null when suppressed)");
    // The total stands alone: null means withheld.
    const json entry = {{"value", *total}, {"suppressed", total->is_null()}};
    std::optional<uint64_t> total_value;
    v = CheckValue(entry, "the total", out.meta.k, total_value);
    if (!v.ok()) return v;
    v = CheckTable(dims, cell_list, margin_list, total_value, out.table);
    if (!v.ok()) return v;
    out.table.k = out.meta.k;
    for (Dim& d : dims) {
      out.table.dim_names.push_back(std::move(d.name));
      out.table.categories.push_back(std::move(d.categories));
    }
    return out;
  } catch (const std::exception&) {
    return Bad("the report could not be read");
  }
}

namespace {

// "cell [0,2] (gender=F, age_band=9--17)" of a linked table.
std::string DescribeEntry(const disclosure::LinkedTable& t, uint32_t entry) {
  std::vector<size_t> sizes;
  std::vector<Dim> dims;
  for (size_t d = 0; d < t.dim_names.size(); ++d) {
    sizes.push_back(t.categories[d].size());
    dims.push_back({t.dim_names[d], t.categories[d]});
  }
  const disclosure::Layout layout = disclosure::MakeLayout(sizes);
  return Describe(dims, layout.index[entry]);
}

std::string MonthText(int year, int month) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02d", year, month);
  return buf;
}

}  // namespace

std::string UtcDate(uint64_t ms) {
  // Days since 1970-01-01 to a civil date (H. Hinnant's days_from_civil inverse).
  int64_t z = static_cast<int64_t>(ms / 86400000) + 719468;
  const int64_t era = z / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t d = doy - (153 * mp + 2) / 5 + 1;
  const int64_t m = mp < 10 ? mp + 3 : mp - 9;
  const int64_t y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", static_cast<int>(y), static_cast<int>(m),
                static_cast<int>(d));
  return buf;
}

ReportVerdict AuditAcrossPublications(ReportVerdict checked, std::string_view today,
                                      const std::vector<PublishedReport>& earlier,
                                      const disclosure::AuditLimits& limits) {
  const Result<disclosure::Period> period =
      disclosure::LatticePeriod(checked.meta.from, checked.meta.to);
  if (!period.ok()) {
    return Unsafe(period.status().message() +
                  ", so that no two publications differ by a few days (docs/REPORTS.md)");
  }
  if (!disclosure::PeriodEnded(*period, today)) {
    return Unsafe("the report's period ends on " + disclosure::PeriodEnd(*period) +
                  "; a period is published only once it is over, from the next day on");
  }
  checked.table.period = *period;
  checked.table.label = "this report";
  std::vector<disclosure::LinkedTable> tables;
  ReportLimits read;
  read.min_k = 2;
  for (const PublishedReport& r : earlier) {
    ReportVerdict v = CheckReport(r.body, read);
    if (!v.ok()) return Bad("the hub could not read its stored report " + r.id);
    const Result<disclosure::Period> p = disclosure::LatticePeriod(v.meta.from, v.meta.to);
    if (!p.ok() || p->year != period->year) continue;  // not linked (docs/REPORTS.md)
    v.table.period = *p;
    v.table.label = "report " + r.id;
    tables.push_back(std::move(v.table));
  }
  tables.push_back(checked.table);
  const Result<disclosure::AuditFinding> f = disclosure::AuditLinked(tables, limits);
  if (!f.ok()) return Bad("the report cannot be audited: " + f.status().message());
  uint32_t k = 2;
  for (const disclosure::LinkedTable& t : tables) k = std::max(k, t.k);
  const std::string year = std::to_string(period->year);
  const std::string with = "together with the team's reports published for " + year + ", ";
  constexpr const char* kHideMore =
      "; hide more entries (enlace report --publish does this and explains it), or publish "
      "other dimensions";
  using Kind = disclosure::AuditFinding::Kind;
  const disclosure::CountRef& c = f->count;
  std::string what;
  if (c.table != disclosure::kDerived) {
    what = "the suppressed " + DescribeEntry(tables[c.table], c.entry) + " of " +
           tables[c.table].label;
  } else {
    what = "the number of people";
    for (size_t i = 0; i < c.where.size(); ++i) {
      what += (i == 0 ? " with " : ", ") + c.where[i].first + "=" + c.where[i].second;
    }
    what += " in " + MonthText(period->year, c.first) +
            (c.last != c.first ? " to " + MonthText(period->year, c.last) : "");
  }
  switch (f->kind) {
    case Kind::kSafe:
      return checked;
    case Kind::kInconsistent:
      return Unsafe(
          "the report's counts contradict the team's reports published for " + year +
          " (a record was added or changed after an overlapping period was published); a "
          "published table is final, and one that differs from it for the same months would "
          "show the difference: publish later periods instead");
    case Kind::kPinned:
      return Unsafe(with + what + " has only one possible value" + kHideMore);
    case Kind::kSmall:
      return Unsafe(with + what + " can be proven to lie between 1 and " + std::to_string(k - 1) +
                    kHideMore);
    case Kind::kTooLarge:
      return Unsafe(
          "the hub cannot audit the report together with the team's reports published "
          "for " +
          year + ": " + f->detail + "; publish fewer combinations of dimensions for the year");
  }
  return Bad("the report could not be audited");
}

}  // namespace enlace::hub
