// The renderers of enlace/report.h: text, CSV, JSON (and its parser), SVG.
// None of them ever sees a suppressed count: a Published holds none.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "casework/report_internal.h"
#include "enlace/report.h"

namespace enlace::report {
namespace {

using internal::Layout;

constexpr std::string_view kTotal = "Total";  // the same word in Spanish and English

const std::string& Label(const Dimension& d, size_t c) {
  return c < d.labels.size() && !d.labels[c].empty() ? d.labels[c] : d.categories[c];
}

std::string Hidden(uint32_t k) { return "<" + std::to_string(k); }

std::string ValueText(const Cell& c, uint32_t k) {
  return c.suppressed ? Hidden(k) : std::to_string(c.value);
}

// The entry at `index`: a cell, a one-way margin or the total.
const Cell& At(const Published& p, const Layout& l, const std::vector<size_t>& index) {
  const size_t alls = static_cast<size_t>(std::count(index.begin(), index.end(), kAll));
  if (alls == index.size()) return p.total;
  if (alls == 0) return p.cells[l.CellId(index)];
  // A one-way margin: exactly one position is not kAll.
  const size_t k = static_cast<size_t>(
      std::find_if(index.begin(), index.end(), [](size_t i) { return i != kAll; }) - index.begin());
  return p.margins[l.MarginId(k, index[k]) - l.num_cells];
}

// Display width of UTF-8 text: one column per code point.
size_t Width(std::string_view s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// At most `max` code points of `s`, with "…" when cut.
std::string Truncate(const std::string& s, size_t max) {
  if (Width(s) <= max) return s;
  size_t points = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 && points++ == max - 1) break;
  }
  return s.substr(0, i) + "…";
}

// A grid of text rendered with aligned columns: the first column left
// aligned, the others right aligned, two spaces apart.
std::string Grid(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], Width(row[c]));
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      const std::string pad(widths[c] - Width(row[c]), ' ');
      if (c > 0) line += "  ";
      line += c == 0 ? row[c] + pad : pad + row[c];
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

// A two-way matrix of dims (r, c) with the other coordinates from `fixed`;
// `totals` adds the total column and row (only 2 dimensions publish them).
std::string Matrix(const Published& p, const Layout& l, size_t r, size_t c,
                   std::vector<size_t> fixed, bool totals) {
  const Dimension& dr = p.table.dims[r];
  const Dimension& dc = p.table.dims[c];
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header{dr.name + " \\ " + dc.name};
  for (size_t j = 0; j < dc.categories.size(); ++j) header.push_back(Label(dc, j));
  if (totals) header.emplace_back(kTotal);
  rows.push_back(std::move(header));
  for (size_t i = 0; i <= dr.categories.size(); ++i) {
    const bool total_row = i == dr.categories.size();
    if (total_row && !totals) break;
    std::vector<std::string> row{total_row ? std::string(kTotal) : Label(dr, i)};
    for (size_t j = 0; j <= dc.categories.size(); ++j) {
      const bool total_col = j == dc.categories.size();
      if (total_col && !totals) break;
      fixed[r] = total_row ? kAll : i;
      fixed[c] = total_col ? kAll : j;
      row.push_back(ValueText(At(p, l, fixed), p.k));
    }
    rows.push_back(std::move(row));
  }
  return Grid(rows);
}

// The list of one dimension's categories with the margin (or, for 1
// dimension, the cells) and the total.
std::string List(const Published& p, const Layout& l, size_t dim) {
  const Dimension& d = p.table.dims[dim];
  std::vector<std::vector<std::string>> rows{{d.name, "n"}};
  std::vector<size_t> index(p.table.dims.size(), kAll);
  for (size_t c = 0; c < d.categories.size(); ++c) {
    index[dim] = c;
    rows.push_back({Label(d, c), ValueText(At(p, l, index), p.k)});
  }
  rows.push_back({std::string(kTotal), ValueText(p.total, p.k)});
  return Grid(rows);
}

std::string Heading(const Published& p, std::string_view title) {
  std::string out;
  if (!title.empty()) out += std::string(title) + "\n";
  if (!p.from.empty() || !p.to.empty()) out += p.from + " – " + p.to + "\n";
  if (!out.empty()) out += "\n";
  return out;
}

// ---------------------------------------------------------------------------
// CSV.

std::string CsvEscape(std::string_view v) {
  std::string s(v);
  if (!s.empty() && std::string_view("=+-@\t\r").find(s[0]) != std::string_view::npos) {
    s.insert(s.begin(), '\'');
  }
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + "\"";
}

// ---------------------------------------------------------------------------
// SVG.

std::string Xml(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // Control characters are not allowed in XML 1.0.
        if (static_cast<unsigned char>(c) >= 0x20 || c == '\t' || c == '\n') out += c;
    }
  }
  return out;
}

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// Okabe-Ito colours (readable with colour blindness); evenly spaced hues
// beyond eight series.
std::string Colour(size_t i, size_t n) {
  static const char* kPalette[] = {"#0072B2", "#E69F00", "#009E73", "#CC79A7",
                                   "#56B4E9", "#D55E00", "#F0E442", "#000000"};
  if (n <= 8) return kPalette[i];
  const double h = 360.0 * static_cast<double>(i) / static_cast<double>(n), s = 0.6, l = 0.45;
  const double c = (1 - std::fabs(2 * l - 1)) * s,
               x = c * (1 - std::fabs(std::fmod(h / 60, 2) - 1));
  double r = 0, g = 0, b = 0;
  if (h < 60)
    r = c, g = x;
  else if (h < 120)
    r = x, g = c;
  else if (h < 180)
    g = c, b = x;
  else if (h < 240)
    g = x, b = c;
  else if (h < 300)
    r = x, b = c;
  else
    r = c, b = x;
  const double m = l - c / 2;
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02X%02X%02X", static_cast<unsigned>((r + m) * 255),
                static_cast<unsigned>((g + m) * 255), static_cast<unsigned>((b + m) * 255));
  return buf;
}

// A "nice" tick step (1, 2 or 5 times a power of ten) for about 5 ticks.
uint64_t TickStep(uint64_t max) {
  uint64_t step = 1;
  for (;;) {
    for (uint64_t m : {1, 2, 5}) {
      if (max / (step * m) <= 5) return step * m;
    }
    step *= 10;
  }
}

struct Panel {
  std::string subtitle;
  std::vector<std::string> groups;             // x labels
  std::vector<std::vector<const Cell*>> bars;  // per group, per series
};

}  // namespace

std::string RenderText(const Published& p) {
  const Layout l = internal::MakeLayout(internal::Sizes(p.table.dims));
  std::string out = Heading(p, p.title);
  const size_t d = p.table.dims.size();
  if (d == 1) {
    out += List(p, l, 0);
  } else if (d == 2) {
    out += Matrix(p, l, 0, 1, {0, 0}, true);
  } else {
    const Dimension& d0 = p.table.dims[0];
    for (size_t a = 0; a < d0.categories.size(); ++a) {
      out += d0.name + ": " + Label(d0, a) + "  (" + std::string(kTotal) + " " +
             ValueText(At(p, l, {a, kAll, kAll}), p.k) + ")\n";
      out += Matrix(p, l, 1, 2, {a, 0, 0}, false) + "\n";
    }
    for (size_t k = 0; k < d; ++k) out += List(p, l, k) + (k + 1 < d ? "\n" : "");
  }
  return out;
}

std::string RenderCsv(const Published& p) {
  const auto line = [](const std::vector<std::string>& fields) {
    std::string s;
    for (size_t i = 0; i < fields.size(); ++i) s += (i ? "," : "") + CsvEscape(fields[i]);
    return s + "\r\n";
  };
  std::vector<std::string> header;
  for (const Dimension& d : p.table.dims) header.push_back(d.name);
  header.emplace_back("count");
  header.emplace_back("suppressed");
  std::string out = line(header);
  auto row = [&](const Cell& c) {
    std::vector<std::string> fields;
    for (size_t k = 0; k < c.index.size(); ++k) {
      fields.push_back(c.index[k] == kAll ? std::string(kTotal)
                                          : Label(p.table.dims[k], c.index[k]));
    }
    fields.push_back(ValueText(c, p.k));
    fields.emplace_back(c.suppressed ? "true" : "false");
    out += line(fields);
  };
  for (const Cell& c : p.cells) row(c);
  for (const Cell& c : p.margins) row(c);
  row(p.total);
  return out;
}

std::string RenderJson(const Published& p) {
  using nlohmann::ordered_json;
  ordered_json j;
  j["version"] = 1;
  j["k"] = p.k;
  j["title"] = p.title;
  j["from"] = p.from;
  j["to"] = p.to;
  j["generated_at"] = p.generated_at;
  ordered_json dims = ordered_json::array();
  for (const Dimension& d : p.table.dims) {
    ordered_json labels = ordered_json::array();
    for (size_t c = 0; c < d.categories.size(); ++c) labels.push_back(Label(d, c));
    dims.push_back({{"name", d.name}, {"categories", d.categories}, {"labels", labels}});
  }
  j["dims"] = std::move(dims);
  const auto entry = [](const Cell& c) {
    ordered_json index = ordered_json::array();
    for (size_t i : c.index) index.push_back(i == kAll ? ordered_json(nullptr) : ordered_json(i));
    ordered_json e;
    e["index"] = std::move(index);
    e["value"] = c.suppressed ? ordered_json(nullptr) : ordered_json(c.value);
    e["suppressed"] = c.suppressed;
    return e;
  };
  ordered_json cells = ordered_json::array(), margins = ordered_json::array();
  for (const Cell& c : p.cells) cells.push_back(entry(c));
  for (const Cell& c : p.margins) margins.push_back(entry(c));
  j["cells"] = std::move(cells);
  j["margins"] = std::move(margins);
  j["total"] = p.total.suppressed ? ordered_json(nullptr) : ordered_json(p.total.value);
  // Labels may hold any UTF-8; invalid sequences are replaced, not thrown.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

namespace {

using nlohmann::json;

Status Bad(const std::string& what) {
  return Status::InvalidArgument("the report is not valid: " + what);
}

Status CheckMembers(const json& object, std::initializer_list<std::string_view> allowed,
                    const std::string& where) {
  for (const auto& [key, value] : object.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return Bad(where + " has the unknown member \"" + key + "\"");
    }
  }
  return Status::Ok();
}

Status OptionalText(const json& j, const char* name, std::string& out) {
  const auto it = j.find(name);
  if (it == j.end()) return Status::Ok();
  if (!it->is_string()) return Bad(std::string("\"") + name + "\" must be a text");
  out = it->get<std::string>();
  return Status::Ok();
}

std::string Describe(const std::vector<size_t>& index) {
  std::string s = "[";
  for (size_t i = 0; i < index.size(); ++i) {
    s += (i ? "," : "") + (index[i] == kAll ? std::string("all") : std::to_string(index[i]));
  }
  return s + "]";
}

// Reads a value (an unsigned integer, or null for a suppressed entry).
Status ReadValue(const json& v, const std::string& name, uint32_t k, Cell& cell) {
  if (v.is_null()) {
    cell.suppressed = true;
    cell.value = 0;
    return Status::Ok();
  }
  if (!v.is_number_unsigned()) return Bad(name + " must be a whole number >= 0 or null");
  cell.value = v.get<uint64_t>();
  if (cell.value != 0 && cell.value < k) {
    return Bad(name + " is published below k = " + std::to_string(k));
  }
  return Status::Ok();
}

Result<Cell> ReadEntry(const json& e, const std::vector<Dimension>& dims, bool margin, uint32_t k) {
  const std::string what = margin ? "a margin" : "a cell";
  if (!e.is_object()) return Bad(what + " is not an object");
  ENLACE_RETURN_IF_ERROR(CheckMembers(e, {"index", "value", "suppressed", "why"}, what));
  const auto index = e.find("index");
  if (index == e.end() || !index->is_array() || index->size() != dims.size()) {
    return Bad(what + " needs an index with one position per dimension");
  }
  Cell cell;
  size_t alls = 0;
  for (size_t i = 0; i < dims.size(); ++i) {
    const json& x = (*index)[i];
    if (x.is_null()) {
      cell.index.push_back(kAll);
      ++alls;
    } else if (x.is_number_unsigned() && x.get<uint64_t>() < dims[i].categories.size()) {
      cell.index.push_back(x.get<size_t>());
    } else {
      return Bad(what + " has an index out of range for dimension \"" + dims[i].name + "\"");
    }
  }
  const std::string name = (margin ? "margin " : "cell ") + Describe(cell.index);
  if (margin ? alls != dims.size() - 1 : alls != 0) {
    return Bad(name + " is not a " + (margin ? "one-way margin" : "cell"));
  }
  const auto value = e.find("value");
  if (value == e.end()) return Bad(name + " has no value");
  ENLACE_RETURN_IF_ERROR(ReadValue(*value, name, k, cell));
  if (const auto s = e.find("suppressed"); s != e.end()) {
    if (!s->is_boolean() || s->get<bool>() != cell.suppressed) {
      return Bad(name + ": \"suppressed\" must be true exactly when the value is null");
    }
  }
  return cell;
}

Result<Published> Parse(std::string_view text) {
  const json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Bad("it is not well-formed JSON");
  if (!j.is_object()) return Bad("it is not a JSON object");
  ENLACE_RETURN_IF_ERROR(CheckMembers(
      j,
      {"version", "k", "title", "from", "to", "generated_at", "dims", "cells", "margins", "total"},
      "the report"));
  const auto version = j.find("version");
  if (version == j.end() || !version->is_number_unsigned() || version->get<uint64_t>() != 1) {
    return Bad("\"version\" must be 1");
  }
  Published p;
  const auto k = j.find("k");
  if (k == j.end() || !k->is_number_unsigned() || k->get<uint64_t>() < 2 ||
      k->get<uint64_t>() > UINT32_MAX) {
    return Bad("\"k\" must be a whole number >= 2");
  }
  p.k = k->get<uint32_t>();
  ENLACE_RETURN_IF_ERROR(OptionalText(j, "title", p.title));
  ENLACE_RETURN_IF_ERROR(OptionalText(j, "from", p.from));
  ENLACE_RETURN_IF_ERROR(OptionalText(j, "to", p.to));
  ENLACE_RETURN_IF_ERROR(OptionalText(j, "generated_at", p.generated_at));

  const auto dims = j.find("dims");
  if (dims == j.end() || !dims->is_array() || dims->empty() || dims->size() > kMaxDims) {
    return Bad("\"dims\" must list 1 to 3 dimensions");
  }
  size_t num_cells = 1;
  for (const json& d : *dims) {
    if (!d.is_object()) return Bad("a dimension is not an object");
    ENLACE_RETURN_IF_ERROR(CheckMembers(d, {"name", "categories", "labels"}, "a dimension"));
    Dimension dim;
    const auto name = d.find("name");
    if (name == d.end() || !name->is_string() || name->get_ref<const std::string&>().empty()) {
      return Bad("a dimension has no name");
    }
    dim.name = name->get<std::string>();
    const auto cats = d.find("categories");
    if (cats == d.end() || !cats->is_array() || cats->empty() || cats->size() > kMaxCells) {
      return Bad("dimension \"" + dim.name + "\" needs its list of categories");
    }
    for (const json& c : *cats) {
      if (!c.is_string())
        return Bad("dimension \"" + dim.name + "\" has a category that is not text");
      dim.categories.push_back(c.get<std::string>());
    }
    if (std::set<std::string>(dim.categories.begin(), dim.categories.end()).size() !=
        dim.categories.size()) {
      return Bad("dimension \"" + dim.name + "\" lists a category twice");
    }
    if (const auto labels = d.find("labels"); labels != d.end()) {
      if (!labels->is_array() || labels->size() != cats->size()) {
        return Bad("dimension \"" + dim.name + "\" needs one label per category");
      }
      for (const json& x : *labels) {
        if (!x.is_string())
          return Bad("dimension \"" + dim.name + "\" has a label that is not text");
        dim.labels.push_back(x.get<std::string>());
      }
    } else {
      dim.labels = dim.categories;
    }
    if (num_cells > kMaxCells / dim.categories.size()) {
      return Bad("it has more than " + std::to_string(kMaxCells) + " cells");
    }
    num_cells *= dim.categories.size();
    p.table.dims.push_back(std::move(dim));
  }
  const Layout l = internal::MakeLayout(internal::Sizes(p.table.dims));

  // Entries by id; each must appear exactly once.
  std::vector<std::optional<Cell>> entries(l.num_entries());
  const auto read_list = [&](const char* member, bool margin) -> Status {
    const auto list = j.find(member);
    if (list == j.end()) {
      if (margin && l.num_margins == 0) return Status::Ok();
      return Bad(std::string("\"") + member + "\" is missing");
    }
    if (!list->is_array()) return Bad(std::string("\"") + member + "\" must be a list");
    for (const json& e : *list) {
      ENLACE_ASSIGN_OR_RETURN(Cell cell, ReadEntry(e, p.table.dims, margin, p.k));
      if (margin && l.num_margins == 0) return Bad("a table of one dimension has no margins");
      size_t id = 0;
      if (margin) {
        for (size_t x = 0; x < cell.index.size(); ++x) {
          if (cell.index[x] != kAll) id = l.MarginId(x, cell.index[x]);
        }
      } else {
        id = l.CellId(cell.index);
      }
      if (entries[id]) return Bad(Describe(cell.index) + " is listed twice");
      entries[id] = std::move(cell);
    }
    return Status::Ok();
  };
  ENLACE_RETURN_IF_ERROR(read_list("cells", false));
  ENLACE_RETURN_IF_ERROR(read_list("margins", true));
  const auto total = j.find("total");
  if (total == j.end()) return Bad("\"total\" is missing");
  Cell t;
  t.index.assign(p.table.dims.size(), kAll);
  ENLACE_RETURN_IF_ERROR(ReadValue(*total, "the total", p.k, t));
  entries[l.total_id()] = std::move(t);
  for (uint32_t e = 0; e < l.num_entries(); ++e) {
    if (!entries[e]) return Bad("entry " + Describe(l.index[e]) + " is missing");
  }

  // The published sums must add up: an aggregate is the sum of its cells,
  // and every suppressed cell counts at least 1.
  for (size_t a = 0; a < l.agg_cells.size(); ++a) {
    const Cell& agg = *entries[l.num_cells + a];
    if (agg.suppressed) continue;
    uint64_t known = 0, hidden = 0;
    for (uint32_t c : l.agg_cells[a]) {
      if (entries[c]->suppressed) {
        ++hidden;
      } else {
        known += entries[c]->value;
      }
    }
    if (hidden == 0 ? agg.value != known : agg.value < known + hidden) {
      return Bad("the published cells of " + Describe(agg.index) + " do not add up to it");
    }
  }
  if (l.sizes.size() >= 2 && !entries[l.total_id()]->suppressed) {
    for (size_t k2 = 0; k2 < l.sizes.size(); ++k2) {
      uint64_t sum = 0;
      bool all_published = true;
      for (size_t c = 0; c < l.sizes[k2]; ++c) {
        const Cell& m = *entries[l.MarginId(k2, c)];
        all_published = all_published && !m.suppressed;
        sum += m.value;
      }
      if (all_published && sum != entries[l.total_id()]->value) {
        return Bad("the totals of dimension \"" + p.table.dims[k2].name +
                   "\" do not add up to the total");
      }
    }
  }

  for (uint32_t e = 0; e < l.num_entries(); ++e) {
    if (e < l.num_cells) {
      p.cells.push_back(std::move(*entries[e]));
    } else if (e < l.total_id()) {
      p.margins.push_back(std::move(*entries[e]));
    } else {
      p.total = std::move(*entries[e]);
    }
  }
  ENLACE_ASSIGN_OR_RETURN(const std::vector<bool> determined, internal::DeterminedEntries(p));
  for (uint32_t e = 0; e < l.num_entries(); ++e) {
    if (determined[e]) {
      return Bad("the suppressed entry " + Describe(l.index[e]) +
                 " can be recomputed exactly from the published ones");
    }
  }
  return p;
}

}  // namespace

Result<Published> ParseJson(std::string_view json) {
  try {
    return Parse(json);
  } catch (const std::exception&) {
    return Bad("it could not be read");
  }
}

std::string RenderSvg(const Published& p, std::string_view title_in) {
  const Layout l = internal::MakeLayout(internal::Sizes(p.table.dims));
  const std::string title(title_in.empty() ? std::string_view(p.title) : title_in);
  const auto& dims = p.table.dims;
  const size_t d = dims.size();

  // Panels: 1 dimension -> one panel, one series; 2 -> one panel, series =
  // the second dimension; 3 -> one panel per category of the first.
  std::vector<Panel> panels;
  const Dimension* series_dim = d == 1 ? nullptr : &dims[d - 1];
  const size_t series = series_dim ? series_dim->categories.size() : 1;
  const size_t group_dim = d == 1 ? 0 : d - 2;
  const size_t panel_count = d == 3 ? dims[0].categories.size() : 1;
  for (size_t a = 0; a < panel_count; ++a) {
    Panel panel;
    if (d == 3) panel.subtitle = dims[0].name + ": " + Label(dims[0], a);
    for (size_t g = 0; g < dims[group_dim].categories.size(); ++g) {
      panel.groups.push_back(Label(dims[group_dim], g));
      std::vector<const Cell*> bars;
      for (size_t s = 0; s < series; ++s) {
        std::vector<size_t> index;
        if (d == 3) index.push_back(a);
        index.push_back(g);
        if (d >= 2) index.push_back(s);
        bars.push_back(&p.cells[l.CellId(index)]);
      }
      panel.bars.push_back(std::move(bars));
    }
    panels.push_back(std::move(panel));
  }

  uint64_t max_value = p.k;
  for (const Cell& c : p.cells) max_value = std::max(max_value, c.value);
  const uint64_t step = TickStep(max_value);
  const uint64_t top = (max_value + step - 1) / step * step;

  // Geometry.
  // Bars narrow with many series and many groups, keeping the plot under
  // about 2400 px where it can (32 federal entities x 8 types still fits).
  const size_t groups = dims[group_dim].categories.size();
  const double bar_gap = 2, group_gap = series == 1 ? 10 : 18;
  const double fit =
      (2400.0 / static_cast<double>(groups) - group_gap) / static_cast<double>(series) - bar_gap;
  const double bar = std::clamp(
      std::min(series == 1 ? 28.0 : 220.0 / static_cast<double>(series), fit), 4.0, 28.0);
  double group_w = static_cast<double>(series) * (bar + bar_gap) - bar_gap + group_gap;
  const double left = 100, right = 24, plot_h = 240, label_h = 96, subtitle_h = d == 3 ? 24 : 0;
  const double plot_w = std::max(360.0, static_cast<double>(groups) * group_w);
  // Few groups: widen them so the bars spread over the plot, centred.
  const double bars_w = group_w - group_gap;
  group_w = plot_w / static_cast<double>(groups);
  const double width = left + plot_w + right;

  // Legend: one swatch per series (2 and 3 dimensions) and the hatched
  // suppressed swatch, wrapped to the width.
  std::string legend;
  const bool period = !p.from.empty() || !p.to.empty();
  double legend_y = (title.empty() ? 0 : 26) + (period ? 18 : 0) + 24;
  {
    double x = left;
    auto item = [&](const std::string& fill, const std::string& text) {
      const double w = 18 + 7.0 * static_cast<double>(Width(text)) + 16;
      if (x + w > width - right && x > left) {
        x = left;
        legend_y += 18;
      }
      legend += "<rect x=\"" + Num(x) + "\" y=\"" + Num(legend_y - 10) +
                "\" width=\"12\" height=\"12\" fill=\"" + fill + "\" stroke=\"#666\"/>";
      legend +=
          "<text x=\"" + Num(x + 18) + "\" y=\"" + Num(legend_y) + "\">" + Xml(text) + "</text>\n";
      x += w;
    };
    if (series_dim) {
      for (size_t s = 0; s < series; ++s) item(Colour(s, series), Label(*series_dim, s));
    }
    item("url(#hatch)", Hidden(p.k));
  }
  const double panels_top = legend_y + 24;
  const double panel_h = subtitle_h + plot_h + label_h;
  const double height = panels_top + static_cast<double>(panels.size()) * panel_h + 8;

  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + Num(width) + "\" height=\"" +
         Num(height) + "\" viewBox=\"0 0 " + Num(width) + " " + Num(height) +
         "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  out += "<title>" + Xml(title.empty() ? dims[0].name : title) + "</title>\n";
  out +=
      "<defs><pattern id=\"hatch\" patternUnits=\"userSpaceOnUse\" width=\"6\" height=\"6\" "
      "patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#e0e0e0\"/>"
      "<line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#888888\" stroke-width=\"2\"/>"
      "</pattern></defs>\n";
  out += "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n";
  if (!title.empty()) {
    out += "<text x=\"" + Num(left) + "\" y=\"24\" font-size=\"16\" font-weight=\"bold\">" +
           Xml(title) + "</text>\n";
  }
  if (period) {
    out += "<text x=\"" + Num(left) + "\" y=\"" + (title.empty() ? "24" : "44") +
           "\" fill=\"#444\">" + Xml(p.from + " – " + p.to) + "</text>\n";
  }
  out += legend;

  for (size_t pi = 0; pi < panels.size(); ++pi) {
    const Panel& panel = panels[pi];
    const double y0 = panels_top + static_cast<double>(pi) * panel_h + subtitle_h;  // plot top
    const double base = y0 + plot_h;
    const auto y_of = [&](uint64_t v) {
      return base - plot_h * static_cast<double>(v) / static_cast<double>(top);
    };
    out += "<g>\n";
    if (!panel.subtitle.empty()) {
      out += "<text x=\"" + Num(left) + "\" y=\"" + Num(y0 - 8) + "\" font-weight=\"bold\">" +
             Xml(panel.subtitle) + "</text>\n";
    }
    // Value axis: grid lines and ticks.
    for (uint64_t v = 0; v <= top; v += step) {
      const double y = y_of(v);
      out += "<line x1=\"" + Num(left) + "\" y1=\"" + Num(y) + "\" x2=\"" + Num(left + plot_w) +
             "\" y2=\"" + Num(y) + "\" stroke=\"#e6e6e6\"/>";
      out += "<line x1=\"" + Num(left - 5) + "\" y1=\"" + Num(y) + "\" x2=\"" + Num(left) +
             "\" y2=\"" + Num(y) + "\" stroke=\"#333\"/>";
      out += "<text x=\"" + Num(left - 8) + "\" y=\"" + Num(y + 4) + "\" text-anchor=\"end\">" +
             std::to_string(v) + "</text>\n";
    }
    out += "<line x1=\"" + Num(left) + "\" y1=\"" + Num(y0) + "\" x2=\"" + Num(left) + "\" y2=\"" +
           Num(base) + "\" stroke=\"#333\"/>\n";
    // Bars.
    for (size_t g = 0; g < panel.groups.size(); ++g) {
      const double gx = left + (group_w - bars_w) / 2 + static_cast<double>(g) * group_w;
      for (size_t s = 0; s < series; ++s) {
        const Cell& c = *panel.bars[g][s];
        const double x = gx + static_cast<double>(s) * (bar + bar_gap);
        const std::string what = (series_dim ? Label(*series_dim, s) + ", " : std::string()) +
                                 panel.groups[g] + ": " + ValueText(c, p.k);
        if (c.suppressed) {
          const double h = std::max(8.0, plot_h * 0.05);
          out += "<rect x=\"" + Num(x) + "\" y=\"" + Num(base - h) + "\" width=\"" + Num(bar) +
                 "\" height=\"" + Num(h) + "\" fill=\"url(#hatch)\" stroke=\"#888888\"><title>" +
                 Xml(what) + "</title></rect>";
          out += "<text x=\"" + Num(x + bar / 2) + "\" y=\"" + Num(base - h - 4) +
                 "\" text-anchor=\"middle\" font-size=\"9\" fill=\"#555\">" + Xml(Hidden(p.k)) +
                 "</text>\n";
        } else if (c.value == 0) {
          out += "<text x=\"" + Num(x + bar / 2) + "\" y=\"" + Num(base - 3) +
                 "\" text-anchor=\"middle\" font-size=\"9\" fill=\"#555\">0</text>\n";
        } else {
          const double y = y_of(c.value);
          out += "<rect x=\"" + Num(x) + "\" y=\"" + Num(y) + "\" width=\"" + Num(bar) +
                 "\" height=\"" + Num(base - y) + "\" fill=\"" + Colour(s, series) + "\"><title>" +
                 Xml(what) + "</title></rect>";
          if (series == 1) {
            out += "<text x=\"" + Num(x + bar / 2) + "\" y=\"" + Num(y - 4) +
                   "\" text-anchor=\"middle\" font-size=\"10\">" + std::to_string(c.value) +
                   "</text>";
          }
          out += "\n";
        }
      }
      // The group's label, turned so long names fit.
      const double lx = gx + bars_w / 2;
      out += "<text x=\"" + Num(lx) + "\" y=\"" + Num(base + 14) +
             "\" text-anchor=\"end\" transform=\"rotate(-35 " + Num(lx) + " " + Num(base + 14) +
             ")\">" + Xml(Truncate(panel.groups[g], 20)) + "</text>\n";
    }
    out += "<line x1=\"" + Num(left) + "\" y1=\"" + Num(base) + "\" x2=\"" + Num(left + plot_w) +
           "\" y2=\"" + Num(base) + "\" stroke=\"#333\"/>\n";
    out += "</g>\n";
  }
  out += "</svg>\n";
  return out;
}

}  // namespace enlace::report
