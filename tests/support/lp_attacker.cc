#include "lp_attacker.h"

#include <doctest/doctest.h>
#include <glpk.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

namespace enlace::testing {

namespace {

using nlohmann::json;

int DaysIn(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[month - 1];
}

std::string MonthCode(int year, int month) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02d", year, month);
  return buf;
}

// The unknowns: month (0..11) x every combination of the attributes.
struct Space {
  const Microdata& data;
  size_t combos = 1;
  explicit Space(const Microdata& d) : data(d) {
    for (const auto& dom : d.domain) combos *= dom.size();
  }
  size_t size() const { return 12 * combos; }
  size_t Var(int month, const std::vector<size_t>& cats) const {
    size_t c = 0;
    for (size_t a = 0; a < cats.size(); ++a) c = c * data.domain[a].size() + cats[a];
    return static_cast<size_t>(month - 1) * combos + c;
  }
  int MonthOf(size_t v) const { return static_cast<int>(v / combos) + 1; }
  size_t CategoryOf(size_t v, size_t attr) const {
    size_t c = v % combos;
    for (size_t a = data.domain.size(); a-- > attr + 1;) c /= data.domain[a].size();
    return c % data.domain[attr].size();
  }
};

struct Relation {
  std::vector<size_t> vars;  // sorted
  std::optional<uint64_t> value;
  std::string what;
};

int ParseMonthOf(const std::string& date) { return std::stoi(date.substr(5, 2)); }

// The relations of one report: every entry, and a zero for every category
// of a dimension the report does not list (nobody had it).
void Relations(const Space& space, const json& r, std::vector<Relation>& out) {
  const int first = ParseMonthOf(r.at("from").get<std::string>());
  const int last = ParseMonthOf(r.at("to").get<std::string>());
  const json& dims = r.at("dims");
  struct Dim {
    int attr = -1;            // -1: months
    std::vector<size_t> cat;  // per listed category: attribute category or month
  };
  std::vector<Dim> ds;
  for (const json& d : dims) {
    Dim dim;
    const std::string name = d.at("name").get<std::string>();
    const auto& attrs = space.data.attributes;
    const auto it = std::find(attrs.begin(), attrs.end(), name);
    if (it != attrs.end()) dim.attr = static_cast<int>(it - attrs.begin());
    REQUIRE_MESSAGE((dim.attr >= 0 || name == "month"), "unknown dimension ", name);
    for (const json& c : d.at("categories")) {
      const std::string code = c.get<std::string>();
      if (dim.attr < 0) {
        dim.cat.push_back(static_cast<size_t>(std::stoi(code.substr(5, 2))));
      } else {
        const auto& dom = space.data.domain[static_cast<size_t>(dim.attr)];
        const auto ci = std::find(dom.begin(), dom.end(), code);
        REQUIRE(ci != dom.end());
        dim.cat.push_back(static_cast<size_t>(ci - dom.begin()));
      }
    }
    ds.push_back(std::move(dim));
  }
  // Whether unknown v matches index (a listed category per dimension, or
  // null for all) within the report's period.
  auto matches = [&](size_t v, const json& index) {
    const int month = space.MonthOf(v);
    if (month < first || month > last) return false;
    for (size_t d = 0; d < ds.size(); ++d) {
      if (index[d].is_null()) continue;
      const size_t c = ds[d].cat[index[d].get<size_t>()];
      if (ds[d].attr < 0 ? static_cast<size_t>(month) != c
                         : space.CategoryOf(v, static_cast<size_t>(ds[d].attr)) != c) {
        return false;
      }
    }
    return true;
  };
  auto add = [&](const json& index, const json& value, const std::string& what) {
    Relation rel;
    for (size_t v = 0; v < space.size(); ++v) {
      if (matches(v, index)) rel.vars.push_back(v);
    }
    if (!value.is_null()) rel.value = value.get<uint64_t>();
    rel.what = what;
    out.push_back(std::move(rel));
  };
  const std::string title = r.value("title", "") + " " + r.at("from").get<std::string>();
  for (const json& c : r.at("cells"))
    add(c.at("index"), c.at("value"), title + " cell " + c.at("index").dump());
  for (const json& m : r.value("margins", json::array())) {
    add(m.at("index"), m.at("value"), title + " margin " + m.at("index").dump());
  }
  add(json(std::vector<std::nullptr_t>(ds.size(), nullptr)), r.at("total"), title + " total");
  // Categories not listed: nobody.
  for (size_t d = 0; d < ds.size(); ++d) {
    Relation zero;
    zero.value = 0;
    zero.what = title + " unlisted categories of " + dims[d].at("name").get<std::string>();
    for (size_t v = 0; v < space.size(); ++v) {
      const int month = space.MonthOf(v);
      if (month < first || month > last) continue;
      const size_t c = ds[d].attr < 0 ? static_cast<size_t>(month)
                                      : space.CategoryOf(v, static_cast<size_t>(ds[d].attr));
      if (std::find(ds[d].cat.begin(), ds[d].cat.end(), c) == ds[d].cat.end()) {
        zero.vars.push_back(v);
      }
    }
    if (!zero.vars.empty()) out.push_back(std::move(zero));
  }
}

class Lp {
 public:
  Lp(size_t cols, const std::vector<Relation>& rels) : cols_(cols) {
    glp_term_out(GLP_OFF);
    lp_ = glp_create_prob();
    glp_add_cols(lp_, static_cast<int>(cols));
    for (size_t c = 1; c <= cols; ++c) {
      glp_set_col_kind(lp_, static_cast<int>(c), GLP_IV);
      glp_set_col_bnds(lp_, static_cast<int>(c), GLP_LO, 0, 0);
    }
    glp_add_rows(lp_, static_cast<int>(rels.size()));
    for (size_t r = 0; r < rels.size(); ++r) {
      std::vector<int> ind{0};
      std::vector<double> val{0};
      for (size_t v : rels[r].vars) {
        ind.push_back(static_cast<int>(v) + 1);
        val.push_back(1);
      }
      glp_set_mat_row(lp_, static_cast<int>(r) + 1, static_cast<int>(rels[r].vars.size()),
                      ind.data(), val.data());
      const double b = rels[r].value ? static_cast<double>(*rels[r].value) : 1.0;
      glp_set_row_bnds(lp_, static_cast<int>(r) + 1, rels[r].value ? GLP_FX : GLP_LO, b, b);
    }
  }
  ~Lp() { glp_delete_prob(lp_); }
  Lp(const Lp&) = delete;
  Lp& operator=(const Lp&) = delete;

  // The integer optimum of the sum of `vars`; nullopt when unbounded.
  std::optional<uint64_t> Optimize(const std::vector<size_t>& vars, bool maximize) {
    for (size_t c = 1; c <= cols_; ++c) glp_set_obj_coef(lp_, static_cast<int>(c), 0);
    for (size_t v : vars) glp_set_obj_coef(lp_, static_cast<int>(v) + 1, 1);
    glp_set_obj_dir(lp_, maximize ? GLP_MAX : GLP_MIN);
    glp_iocp parm;
    glp_init_iocp(&parm);
    parm.presolve = GLP_ON;
    parm.msg_lev = GLP_MSG_OFF;
    const int rc = glp_intopt(lp_, &parm);
    if (rc == GLP_ENODFS) return std::nullopt;  // unbounded relaxation
    REQUIRE_MESSAGE(rc == 0, "glp_intopt failed: ", rc);
    REQUIRE(glp_mip_status(lp_) == GLP_OPT);
    return static_cast<uint64_t>(std::llround(glp_mip_obj_val(lp_)));
  }

 private:
  glp_prob* lp_;
  size_t cols_;
};

}  // namespace

std::vector<std::vector<std::string>> RowsOf(const Microdata& data, int first, int last,
                                             const std::vector<std::string>& dims) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& p : data.people) {
    if (p.month < first || p.month > last) continue;
    std::vector<std::string> row;
    for (const std::string& d : dims) {
      if (d == "month") {
        row.push_back(MonthCode(data.year, p.month));
        continue;
      }
      const auto it = std::find(data.attributes.begin(), data.attributes.end(), d);
      const size_t a = static_cast<size_t>(it - data.attributes.begin());
      row.push_back(data.domain[a][p.category[a]]);
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string FromDate(int year, int first) { return MonthCode(year, first) + "-01"; }
std::string ToDate(int year, int last) {
  return MonthCode(year, last) + "-" + std::to_string(DaysIn(year, last));
}

std::vector<std::string> LpAttack(const Microdata& data, const std::vector<std::string>& reports,
                                  uint32_t k) {
  const Space space(data);
  std::vector<Relation> rels;
  for (const std::string& body : reports) Relations(space, json::parse(body), rels);
  // The truth fits.
  std::vector<uint64_t> truth(space.size(), 0);
  for (const auto& p : data.people) ++truth[space.Var(p.month, p.category)];
  for (const Relation& r : rels) {
    uint64_t sum = 0;
    for (size_t v : r.vars) sum += truth[v];
    if (r.value) {
      REQUIRE_MESSAGE(sum == *r.value, "the data does not fit ", r.what);
    } else {
      REQUIRE_MESSAGE(sum >= 1, "a hidden entry is empty: ", r.what);
    }
  }
  std::set<std::vector<size_t>> published;
  for (const Relation& r : rels) {
    if (r.value) published.insert(r.vars);
  }
  Lp lp(space.size(), rels);
  std::vector<std::string> found;
  std::set<std::vector<size_t>> done;
  auto attack = [&](const std::vector<size_t>& vars, bool hidden, const std::string& what) {
    if (vars.empty() || published.contains(vars) || !done.insert(vars).second) return;
    const std::optional<uint64_t> hi = lp.Optimize(vars, true);
    const std::optional<uint64_t> lo = lp.Optimize(vars, false);
    REQUIRE(lo);
    if (hidden && hi && *hi == *lo) {
      found.push_back(what + " is exactly " + std::to_string(*lo));
    } else if (*lo >= 1 && hi && *hi <= k - 1) {
      found.push_back(what + " is between " + std::to_string(*lo) + " and " + std::to_string(*hi));
    }
  };
  for (const Relation& r : rels) {
    if (!r.value && r.what.find("unlisted") == std::string::npos) attack(r.vars, true, r.what);
  }
  for (int first = 1; first <= 12; ++first) {
    for (int last = first; last <= 12; ++last) {
      std::vector<size_t> run;
      for (size_t v = 0; v < space.size(); ++v) {
        if (space.MonthOf(v) >= first && space.MonthOf(v) <= last) run.push_back(v);
      }
      const std::string months = "months " + std::to_string(first) + "-" + std::to_string(last);
      attack(run, false, "the people of " + months);
      for (size_t a = 0; a < data.attributes.size(); ++a) {
        for (size_t c = 0; c < data.domain[a].size(); ++c) {
          std::vector<size_t> vars;
          for (size_t v : run) {
            if (space.CategoryOf(v, a) == c) vars.push_back(v);
          }
          attack(
              vars, false,
              "the people of " + months + " with " + data.attributes[a] + "=" + data.domain[a][c]);
        }
      }
    }
  }
  for (int m = 1; m <= 12; ++m) {
    std::vector<size_t> month_vars;
    for (size_t v = 0; v < space.size(); ++v) {
      if (space.MonthOf(v) == m) month_vars.push_back(v);
    }
    for (size_t v : month_vars) {
      std::string combo;
      for (size_t a = 0; a < data.attributes.size(); ++a) {
        combo += " " + data.attributes[a] + "=" + data.domain[a][space.CategoryOf(v, a)];
      }
      attack({v}, false, "the people of month " + std::to_string(m) + " with" + combo);
    }
  }
  return found;
}

}  // namespace enlace::testing
