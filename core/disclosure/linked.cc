// The audit across publications of enlace/linked.h. The counts are whole
// numbers, so the tightest range of a count is an integer program: its
// minimum and maximum over the integer points of the polyhedron "cells >=
// 0, published entries = their value, hidden entries >= 1". GLPK solves
// them (simplex, then branch and bound when the vertex is not integral;
// the relations of count tables are close to totally unimodular, so most
// vertices are). Most counts need no program at all: every solution found
// is kept in a pool, and a count that already takes two values, one of
// them 0 or >= k, in the pool is safe. The linked-table setting is
// tau-ARGUS's (Hundepool et al., Statistical Disclosure Control, 2012,
// 4.4: linked tables audited through their common cells).
#include "enlace/linked.h"

#include <glpk.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <set>

namespace enlace::disclosure {

// ---------------------------------------------------------------------------
// The publication lattice.

namespace {

bool ParseDate(std::string_view s, int& y, int& m, int& d) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  auto num = [&](size_t at, size_t len) {
    int v = 0;
    for (size_t i = at; i < at + len; ++i) v = v * 10 + (s[i] - '0');
    return v;
  };
  y = num(0, 4);
  m = num(5, 2);
  d = num(8, 2);
  return m >= 1 && m <= 12 && d >= 1 && d <= 31;
}

int DaysIn(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[month - 1];
}

std::string Date(int y, int m, int d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", y, m, d);
  return buf;
}

}  // namespace

Result<Period> LatticePeriod(std::string_view from, std::string_view to) {
  const Status rule = Status::InvalidArgument(
      "a published report covers one closed calendar period: a whole month, a whole quarter "
      "(January-March, April-June, July-September, October-December) or a whole year, from its "
      "first day to its last");
  int y1 = 0, m1 = 0, d1 = 0, y2 = 0, m2 = 0, d2 = 0;
  if (!ParseDate(from, y1, m1, d1) || !ParseDate(to, y2, m2, d2)) return rule;
  if (y1 != y2 || d1 != 1 || d2 != DaysIn(y2, m2) || m2 < m1) return rule;
  const int months = m2 - m1 + 1;
  const bool month = months == 1;
  const bool quarter = months == 3 && (m1 - 1) % 3 == 0;
  const bool year = months == 12;
  if (!month && !quarter && !year) return rule;
  return Period{y1, m1, m2};
}

std::string PeriodEnd(const Period& p) { return Date(p.year, p.last, DaysIn(p.year, p.last)); }

bool PeriodEnded(const Period& period, std::string_view today) {
  return std::string_view(PeriodEnd(period)) < today;
}

std::string PopulationOf(const std::vector<std::string>& dim_names) {
  for (const std::string& d : dim_names) {
    if (d == "federal_entity" || d == "event_type") return "events";
  }
  return "persons";
}

// ---------------------------------------------------------------------------
// The audit.

namespace {

using Vars = std::vector<uint32_t>;  // active unknowns, sorted

std::mutex& GlpkMutex() {
  static std::mutex mu;
  return mu;
}

// The finest common cells: segment x one union category per union
// dimension; raw id = segment * combos + combination (the last dimension
// fastest).
struct Space {
  std::vector<int> seg_first, seg_last;  // months
  std::vector<int> seg_of_month = std::vector<int>(13, -1);
  std::vector<std::string> dims;                     // the union, without the month dimension
  std::vector<std::vector<std::string>> categories;  // per union dimension
  std::vector<size_t> stride;
  size_t combos = 1;
  size_t raw = 0;
};

// What a table's entry fixes: per union dimension a category (or -1 for
// all), and the segments it covers.
struct Pattern {
  std::vector<int> fixed;
  std::vector<int> segments;
};

template <typename Fn>
void ForEachRaw(const Space& s, const Pattern& p, Fn fn) {
  std::vector<size_t> free;
  size_t base = 0;
  for (size_t d = 0; d < s.dims.size(); ++d) {
    if (p.fixed[d] < 0) {
      free.push_back(d);
    } else {
      base += static_cast<size_t>(p.fixed[d]) * s.stride[d];
    }
  }
  std::vector<size_t> at(free.size(), 0);
  for (int seg : p.segments) {
    std::fill(at.begin(), at.end(), 0);
    for (;;) {
      size_t combo = base;
      for (size_t i = 0; i < free.size(); ++i) combo += at[i] * s.stride[free[i]];
      fn(static_cast<size_t>(seg) * s.combos + combo);
      size_t i = free.size();
      while (i-- > 0) {
        if (++at[i] < s.categories[free[i]].size()) break;
        at[i] = 0;
      }
      if (i == static_cast<size_t>(-1)) break;
    }
  }
}

// A table placed in the space.
struct Placed {
  const LinkedTable* table = nullptr;
  size_t input = 0;  // its index in the audit's input
  Layout layout;
  int month_dim = -1;                 // its dimension of months, if any
  std::vector<int> union_of;          // per table dimension: its union dimension (-1: month)
  std::vector<std::vector<int>> cat;  // per table dimension, per category: union category
  std::vector<int> month_segment;     // per category of the month dimension: its segment
  std::vector<int> segments;          // the segments of its period
};

AuditFinding Finding(AuditFinding::Kind kind, std::string detail = "") {
  AuditFinding f;
  f.kind = kind;
  f.detail = std::move(detail);
  return f;
}

bool ParseMonth(const std::string& s, int year, int& month) {
  if (s.size() != 7 || s[4] != '-') return false;
  int y = 0, m = 0;
  for (size_t i : {0, 1, 2, 3}) {
    if (s[i] < '0' || s[i] > '9') return false;
    y = y * 10 + (s[i] - '0');
  }
  for (size_t i : {5, 6}) {
    if (s[i] < '0' || s[i] > '9') return false;
    m = m * 10 + (s[i] - '0');
  }
  month = m;
  return y == year && m >= 1 && m <= 12;
}

// A count to protect.
struct Count {
  Vars vars;
  CountRef ref;
  bool hidden = false;  // an entry nobody publishes: must take two values
};

// The integer programs over one space. Owns the GLPK problem.
class Solver {
 public:
  Solver(size_t cols, const std::vector<std::pair<Vars, std::optional<uint64_t>>>& rows,
         const AuditLimits& limits)
      : cols_(cols), limits_(limits) {
    lp_ = glp_create_prob();
    glp_add_cols(lp_, static_cast<int>(cols));
    for (size_t c = 1; c <= cols; ++c) {
      glp_set_col_kind(lp_, static_cast<int>(c), GLP_IV);
      glp_set_col_bnds(lp_, static_cast<int>(c), GLP_LO, 0.0, 0.0);
    }
    if (!rows.empty()) glp_add_rows(lp_, static_cast<int>(rows.size()));
    std::vector<int> ind;
    std::vector<double> val;
    for (size_t r = 0; r < rows.size(); ++r) {
      const auto& [vars, value] = rows[r];
      ind.assign(1, 0);
      val.assign(1, 0.0);
      for (uint32_t v : vars) {
        ind.push_back(static_cast<int>(v) + 1);
        val.push_back(1.0);
      }
      const int row = static_cast<int>(r) + 1;
      glp_set_mat_row(lp_, row, static_cast<int>(vars.size()), ind.data(), val.data());
      if (value) {
        glp_set_row_bnds(lp_, row, GLP_FX, static_cast<double>(*value),
                         static_cast<double>(*value));
      } else {
        glp_set_row_bnds(lp_, row, GLP_LO, 1.0, 0.0);
      }
    }
    glp_init_smcp(&smcp_);
    smcp_.msg_lev = GLP_MSG_OFF;
    smcp_.presolve = GLP_OFF;
    smcp_.tm_lim = limits.solve_time_ms;
    glp_init_iocp(&iocp_);
    iocp_.msg_lev = GLP_MSG_OFF;
    iocp_.presolve = GLP_OFF;
    iocp_.tm_lim = limits.solve_time_ms;
  }
  ~Solver() { glp_delete_prob(lp_); }
  Solver(const Solver&) = delete;
  Solver& operator=(const Solver&) = delete;

  enum class Outcome { kValue, kUnbounded, kInfeasible, kGaveUp };
  struct Answer {
    Outcome outcome = Outcome::kGaveUp;
    uint64_t value = 0;
  };

  // The minimum (or maximum) of the sum of `vars` over whole numbers.
  Answer Optimize(const Vars& vars, bool maximize) {
    if (++solves_ > limits_.max_solves) return {};
    // One audit's programs share a time budget: a publication cannot hold
    // the hub for longer, whatever its tables.
    const auto spent = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::steady_clock::now() - started_)
                           .count();
    const int64_t left = int64_t{limits_.total_time_ms} - spent;
    if (left <= 0) return {};
    smcp_.tm_lim = static_cast<int>(std::min<int64_t>(limits_.solve_time_ms, left));
    iocp_.tm_lim = smcp_.tm_lim;
    for (uint32_t v : objective_) glp_set_obj_coef(lp_, static_cast<int>(v) + 1, 0.0);
    objective_ = vars;
    for (uint32_t v : objective_) glp_set_obj_coef(lp_, static_cast<int>(v) + 1, 1.0);
    glp_set_obj_dir(lp_, maximize ? GLP_MAX : GLP_MIN);
    if (!basis_ok_) glp_adv_basis(lp_, 0);
    int rc = glp_simplex(lp_, &smcp_);
    if (rc != 0 && rc != GLP_ETMLIM) {
      // A bad basis or numerical trouble: once more from a fresh basis.
      glp_adv_basis(lp_, 0);
      rc = glp_simplex(lp_, &smcp_);
    }
    basis_ok_ = rc == 0;
    if (rc != 0) return {};
    const int status = glp_get_status(lp_);
    if (status == GLP_NOFEAS) return {Outcome::kInfeasible, 0};
    if (status == GLP_UNBND) return {Outcome::kUnbounded, 0};
    if (status != GLP_OPT) return {};
    bool integral = true;
    for (size_t c = 1; c <= cols_ && integral; ++c) {
      const double x = glp_get_col_prim(lp_, static_cast<int>(c));
      integral = std::fabs(x - std::round(x)) < 1e-7;
    }
    std::vector<uint64_t> point(cols_);
    if (integral) {
      for (size_t c = 1; c <= cols_; ++c) point[c - 1] = Round(glp_get_col_prim(lp_, int(c)));
    } else {
      const int mrc = glp_intopt(lp_, &iocp_);
      if (mrc != 0) return {};
      const int ms = glp_mip_status(lp_);
      if (ms == GLP_NOFEAS) return {Outcome::kInfeasible, 0};
      if (ms != GLP_OPT) return {};
      for (size_t c = 1; c <= cols_; ++c) point[c - 1] = Round(glp_mip_col_val(lp_, int(c)));
    }
    uint64_t value = 0;
    for (uint32_t v : vars) value += point[v];
    Keep(std::move(point));
    return {Outcome::kValue, value};
  }

  // The values `vars` takes in the solutions found so far: min and max.
  std::pair<uint64_t, uint64_t> PoolRange(const Vars& vars) const {
    uint64_t lo = kUnbounded, hi = 0;
    for (const auto& point : pool_) {
      uint64_t v = 0;
      for (uint32_t x : vars) v += point[x];
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    return {lo, hi};
  }
  bool pool_empty() const { return pool_.empty(); }
  size_t solves() const { return solves_; }

 private:
  static uint64_t Round(double x) { return x <= 0 ? 0 : static_cast<uint64_t>(std::llround(x)); }
  void Keep(std::vector<uint64_t> point) {
    constexpr size_t kPool = 48;
    if (pool_.size() == kPool) pool_.erase(pool_.begin() + 1);  // keep the first
    pool_.push_back(std::move(point));
  }

  glp_prob* lp_ = nullptr;
  size_t cols_;
  const AuditLimits& limits_;
  glp_smcp smcp_;
  glp_iocp iocp_;
  Vars objective_;
  bool basis_ok_ = false;
  size_t solves_ = 0;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::vector<std::vector<uint64_t>> pool_;
};

class Audit {
 public:
  Audit(const std::vector<LinkedTable>& tables, const AuditLimits& limits)
      : input_(tables), limits_(limits) {}

  Result<AuditFinding> Run() {
    ENLACE_RETURN_IF_ERROR(Select());
    if (placed_.size() > limits_.max_tables) {
      return Finding(AuditFinding::Kind::kTooLarge, std::to_string(placed_.size()) +
                                                        " tables of one year and population; the "
                                                        "audit takes at most " +
                                                        std::to_string(limits_.max_tables));
    }
    ENLACE_RETURN_IF_ERROR(MakeSpace());
    if (space_.raw > limits_.max_raw_cells) return TooManyCells(space_.raw);
    ENLACE_RETURN_IF_ERROR(Place());
    FixZeros();
    if (active_count_ > limits_.max_cells) return TooManyCells(active_count_);
    EntryVars();
    if (std::optional<AuditFinding> f = Rows()) return *f;
    // Nobody in any cell: nothing to find (every entry was checked empty).
    if (active_count_ == 0) return Finding(AuditFinding::Kind::kSafe);
    CollectCounts();
    if (counts_.size() > limits_.max_counts) {
      return Finding(AuditFinding::Kind::kTooLarge,
                     std::to_string(counts_.size()) +
                         " counts to protect; the audit takes at most " +
                         std::to_string(limits_.max_counts));
    }
    return Solve();
  }

 private:
  AuditFinding TooManyCells(size_t n) const {
    return Finding(AuditFinding::Kind::kTooLarge, "the tables of the year together need " +
                                                      std::to_string(n) +
                                                      " common cells; the audit takes at most " +
                                                      std::to_string(limits_.max_cells));
  }

  // The tables of the last one's year and population, the last one first
  // among equals in the order of findings.
  Status Select() {
    if (input_.empty()) return Status::InvalidArgument("no table to audit");
    const LinkedTable& last = input_.back();
    const std::string population = PopulationOf(last.dim_names);
    for (size_t i = 0; i < input_.size(); ++i) {
      const LinkedTable& t = input_[i];
      if (t.period.year != last.period.year || PopulationOf(t.dim_names) != population) continue;
      if (t.dim_names.empty() || t.dim_names.size() != t.categories.size() || t.period.first < 1 ||
          t.period.last > 12 || t.period.first > t.period.last) {
        return Status::InvalidArgument("table " + t.label + " is malformed");
      }
      std::vector<size_t> sizes;
      for (const auto& c : t.categories) {
        if (c.empty())
          return Status::InvalidArgument("table " + t.label + " has an empty dimension");
        sizes.push_back(c.size());
      }
      Placed p;
      p.table = &t;
      p.input = i;
      p.layout = MakeLayout(sizes);
      if (t.values.size() != p.layout.num_entries()) {
        return Status::InvalidArgument("table " + t.label + " has the wrong number of entries");
      }
      placed_.push_back(std::move(p));
    }
    return Status::Ok();
  }

  Status MakeSpace() {
    std::set<int> bounds = {1, 13};
    for (Placed& p : placed_) {
      const LinkedTable& t = *p.table;
      bounds.insert(t.period.first);
      bounds.insert(t.period.last + 1);
      for (size_t d = 0; d < t.dim_names.size(); ++d) {
        if (t.dim_names[d] != kMonthDimension) continue;
        p.month_dim = static_cast<int>(d);
        for (int m = t.period.first; m <= t.period.last + 1; ++m) bounds.insert(m);
      }
    }
    const std::vector<int> b(bounds.begin(), bounds.end());
    for (size_t i = 0; i + 1 < b.size(); ++i) {
      for (int m = b[i]; m < b[i + 1]; ++m) space_.seg_of_month[m] = static_cast<int>(i);
      space_.seg_first.push_back(b[i]);
      space_.seg_last.push_back(b[i + 1] - 1);
    }
    std::map<std::string, size_t> dim_at;
    std::vector<std::map<std::string, size_t>> cat_at;
    for (Placed& p : placed_) {
      const LinkedTable& t = *p.table;
      p.union_of.assign(t.dim_names.size(), -1);
      p.cat.resize(t.dim_names.size());
      for (size_t d = 0; d < t.dim_names.size(); ++d) {
        if (static_cast<int>(d) == p.month_dim) continue;
        auto [it, added] = dim_at.try_emplace(t.dim_names[d], space_.dims.size());
        if (added) {
          space_.dims.push_back(t.dim_names[d]);
          space_.categories.emplace_back();
          cat_at.emplace_back();
        }
        p.union_of[d] = static_cast<int>(it->second);
        for (const std::string& c : t.categories[d]) {
          auto [ci, cadded] =
              cat_at[it->second].try_emplace(c, space_.categories[it->second].size());
          if (cadded) space_.categories[it->second].push_back(c);
          p.cat[d].push_back(static_cast<int>(ci->second));
        }
      }
    }
    space_.stride.assign(space_.dims.size(), 1);
    for (size_t d = space_.dims.size(); d-- > 0;) {
      space_.stride[d] = space_.combos;
      const size_t n = space_.categories[d].size();
      if (space_.combos > limits_.max_raw_cells / n) {
        space_.combos = limits_.max_raw_cells + 1;
        space_.raw = space_.combos;
        return Status::Ok();
      }
      space_.combos *= n;
    }
    const size_t segs = space_.seg_first.size();
    space_.raw = space_.combos > limits_.max_raw_cells / segs ? limits_.max_raw_cells + 1
                                                              : space_.combos * segs;
    return Status::Ok();
  }

  Status Place() {
    for (Placed& p : placed_) {
      const LinkedTable& t = *p.table;
      for (int m = t.period.first; m <= t.period.last; ++m) {
        const int s = space_.seg_of_month[m];
        if (p.segments.empty() || p.segments.back() != s) p.segments.push_back(s);
      }
      if (p.month_dim >= 0) {
        std::set<int> seen;
        for (const std::string& c : t.categories[static_cast<size_t>(p.month_dim)]) {
          int month = 0;
          if (!ParseMonth(c, t.period.year, month) || month < t.period.first ||
              month > t.period.last || !seen.insert(month).second) {
            return Status::InvalidArgument("table " + t.label + ": the month \"" + c +
                                           "\" is not a month (YYYY-MM) of its period");
          }
          p.month_segment.push_back(space_.seg_of_month[month]);
        }
      }
    }
    return Status::Ok();
  }

  Pattern PatternOf(const Placed& p, const std::vector<size_t>& index) const {
    Pattern pat;
    pat.fixed.assign(space_.dims.size(), -1);
    pat.segments = p.segments;
    for (size_t d = 0; d < index.size(); ++d) {
      if (index[d] == kAll) continue;
      if (static_cast<int>(d) == p.month_dim) {
        pat.segments = {p.month_segment[index[d]]};
      } else {
        pat.fixed[static_cast<size_t>(p.union_of[d])] = p.cat[d][index[d]];
      }
    }
    return pat;
  }

  // Unknowns nobody can be in: a category a table of the segment does not
  // list, a month a table with the month dimension does not list, and the
  // cells of a published zero.
  void FixZeros() {
    std::vector<bool> zero(space_.raw, false);
    for (const Placed& p : placed_) {
      const LinkedTable& t = *p.table;
      for (size_t d = 0; d < t.dim_names.size(); ++d) {
        if (static_cast<int>(d) == p.month_dim) {
          for (int s : p.segments) {
            if (std::find(p.month_segment.begin(), p.month_segment.end(), s) ==
                p.month_segment.end()) {
              Pattern pat{std::vector<int>(space_.dims.size(), -1), {s}};
              ForEachRaw(space_, pat, [&](size_t r) { zero[r] = true; });
            }
          }
          continue;
        }
        const size_t u = static_cast<size_t>(p.union_of[d]);
        for (size_t c = 0; c < space_.categories[u].size(); ++c) {
          if (std::find(p.cat[d].begin(), p.cat[d].end(), static_cast<int>(c)) != p.cat[d].end()) {
            continue;
          }
          Pattern pat{std::vector<int>(space_.dims.size(), -1), p.segments};
          pat.fixed[u] = static_cast<int>(c);
          ForEachRaw(space_, pat, [&](size_t r) { zero[r] = true; });
        }
      }
      for (uint32_t e = 0; e < p.layout.num_entries(); ++e) {
        if (t.values[e] && *t.values[e] == 0) {
          ForEachRaw(space_, PatternOf(p, p.layout.index[e]), [&](size_t r) { zero[r] = true; });
        }
      }
    }
    active_.assign(space_.raw, -1);
    for (size_t r = 0; r < space_.raw; ++r) {
      if (!zero[r]) active_[r] = static_cast<int32_t>(active_count_++);
    }
    raw_of_.resize(active_count_);
    for (size_t r = 0; r < space_.raw; ++r) {
      if (active_[r] >= 0) raw_of_[static_cast<size_t>(active_[r])] = r;
    }
  }

  Vars VarsOf(const Pattern& pat) const {
    Vars v;
    ForEachRaw(space_, pat, [&](size_t r) {
      if (active_[r] >= 0) v.push_back(static_cast<uint32_t>(active_[r]));
    });
    std::sort(v.begin(), v.end());
    return v;
  }

  void EntryVars() {
    entry_vars_.resize(placed_.size());
    for (size_t i = 0; i < placed_.size(); ++i) {
      const Placed& p = placed_[i];
      for (uint32_t e = 0; e < p.layout.num_entries(); ++e) {
        entry_vars_[i].push_back(VarsOf(PatternOf(p, p.layout.index[e])));
        if (p.table->values[e]) published_by_[entry_vars_[i].back()].insert(i);
      }
    }
  }

  // The relations, one per distinct set of cells; nullopt, or a finding
  // when they contradict each other on their face.
  std::optional<AuditFinding> Rows() {
    std::map<Vars, std::optional<uint64_t>> rows;
    for (size_t i = 0; i < placed_.size(); ++i) {
      const LinkedTable& t = *placed_[i].table;
      for (uint32_t e = 0; e < placed_[i].layout.num_entries(); ++e) {
        const Vars& v = entry_vars_[i][e];
        const std::optional<uint64_t>& value = t.values[e];
        if (v.empty()) {
          if (!value || *value != 0) return Inconsistent();
          continue;
        }
        auto [it, added] = rows.try_emplace(v, value);
        if (added) continue;
        if (value && it->second && *value != *it->second) return Inconsistent();
        if (value) it->second = value;
      }
    }
    rows_.assign(rows.begin(), rows.end());
    return std::nullopt;
  }

  AuditFinding Inconsistent() const {
    AuditFinding f = Finding(AuditFinding::Kind::kInconsistent);
    f.count.table = placed_.back().input;
    return f;
  }

  CountRef RefOf(const Pattern& pat) const {
    CountRef ref;
    for (size_t d = 0; d < space_.dims.size(); ++d) {
      if (pat.fixed[d] >= 0) {
        ref.where.emplace_back(space_.dims[d],
                               space_.categories[d][static_cast<size_t>(pat.fixed[d])]);
      }
    }
    ref.first = space_.seg_first[static_cast<size_t>(pat.segments.front())];
    ref.last = space_.seg_last[static_cast<size_t>(pat.segments.back())];
    return ref;
  }

  void Add(Vars vars, CountRef ref, bool hidden, std::set<Vars>& seen) {
    if (vars.empty() || !seen.insert(vars).second) return;
    counts_.push_back({std::move(vars), std::move(ref), hidden});
  }

  void CollectCounts() {
    std::set<Vars> seen;
    // Hidden entries: the new table's first.
    for (size_t n = 0; n < placed_.size(); ++n) {
      const size_t i = n == 0 ? placed_.size() - 1 : n - 1;
      const Placed& p = placed_[i];
      for (uint32_t e = 0; e < p.layout.num_entries(); ++e) {
        if (p.table->values[e]) continue;
        const Vars& v = entry_vars_[i][e];
        const auto pub = published_by_.find(v);
        const bool elsewhere =
            pub != published_by_.end() &&
            std::any_of(pub->second.begin(), pub->second.end(), [i](size_t by) { return by != i; });
        if (elsewhere) continue;
        CountRef ref;
        ref.table = p.input;
        ref.entry = e;
        ref.first = p.table->period.first;
        ref.last = p.table->period.last;
        Add(v, std::move(ref), true, seen);
      }
    }
    for (const auto& [v, by] : published_by_) seen.insert(v);
    // Each table's entries restricted to every run of consecutive segments
    // of its period.
    for (const Placed& p : placed_) {
      std::vector<size_t> sizes;
      std::vector<size_t> dims;  // the table's dimensions other than months
      for (size_t d = 0; d < p.table->dim_names.size(); ++d) {
        if (static_cast<int>(d) == p.month_dim) continue;
        dims.push_back(d);
        sizes.push_back(p.table->categories[d].size());
      }
      const Layout sub = MakeLayout(sizes.empty() ? std::vector<size_t>{1} : sizes);
      for (size_t from = 0; from < p.segments.size(); ++from) {
        for (size_t to = from; to < p.segments.size(); ++to) {
          const std::vector<int> run(p.segments.begin() + static_cast<std::ptrdiff_t>(from),
                                     p.segments.begin() + static_cast<std::ptrdiff_t>(to + 1));
          for (uint32_t e = 0; e < sub.num_entries(); ++e) {
            if (sizes.empty() && e != sub.total_id()) continue;
            Pattern pat{std::vector<int>(space_.dims.size(), -1), run};
            for (size_t j = 0; j < dims.size(); ++j) {
              if (sub.index[e][j] == kAll) continue;
              pat.fixed[static_cast<size_t>(p.union_of[dims[j]])] = p.cat[dims[j]][sub.index[e][j]];
            }
            Add(VarsOf(pat), RefOf(pat), false, seen);
          }
        }
      }
    }
    // The finest cells.
    for (uint32_t a = 0; a < active_count_; ++a) {
      const size_t r = raw_of_[a];
      Pattern pat{std::vector<int>(space_.dims.size(), -1), {static_cast<int>(r / space_.combos)}};
      size_t combo = r % space_.combos;
      for (size_t d = 0; d < space_.dims.size(); ++d) {
        pat.fixed[d] = static_cast<int>(combo / space_.stride[d]);
        combo %= space_.stride[d];
      }
      Add({a}, RefOf(pat), false, seen);
    }
  }

  Result<AuditFinding> Solve() {
    std::lock_guard lock(GlpkMutex());
    Result<AuditFinding> found = SolveLocked();
    // GLPK keeps an environment per thread (allocated at its first call);
    // the hub's pool threads would keep it, and leak it at their exit.
    glp_free_env();
    return found;
  }

  Result<AuditFinding> SolveLocked() {
    glp_term_out(GLP_OFF);
    const uint32_t k = [&] {
      uint32_t m = 2;
      for (const Placed& p : placed_) m = std::max(m, p.table->k);
      return m;
    }();
    Solver solver(active_count_, rows_, limits_);
    // A first point, and one with as many empty cells as the tables allow.
    Vars all(active_count_);
    for (uint32_t a = 0; a < active_count_; ++a) all[a] = a;
    const Solver::Answer first = solver.Optimize(all, false);
    if (first.outcome == Solver::Outcome::kInfeasible) return Inconsistent();
    if (first.outcome != Solver::Outcome::kValue) return GaveUp(solver);
    for (const Count& c : counts_) {
      // Plain variables: lambdas may not capture structured bindings (clang 14).
      const auto range = solver.PoolRange(c.vars);
      uint64_t lo = range.first, hi = range.second;
      auto small_ok = [&] { return lo == 0 || hi >= k; };
      auto two_ok = [&] { return !c.hidden || hi > lo; };
      if (small_ok() && two_ok()) continue;
      if (!small_ok() || !two_ok()) {
        const Solver::Answer up = solver.Optimize(c.vars, true);
        if (up.outcome == Solver::Outcome::kUnbounded) {
          hi = kUnbounded;
        } else if (up.outcome == Solver::Outcome::kValue) {
          hi = up.value;
        } else if (up.outcome == Solver::Outcome::kInfeasible) {
          return Inconsistent();
        } else {
          return GaveUp(solver);
        }
      }
      if (!small_ok() || !two_ok()) {
        const Solver::Answer down = solver.Optimize(c.vars, false);
        if (down.outcome != Solver::Outcome::kValue) return GaveUp(solver);
        lo = down.value;
      }
      if (small_ok() && two_ok()) continue;
      AuditFinding f = Finding(two_ok() ? AuditFinding::Kind::kSmall : AuditFinding::Kind::kPinned);
      f.count = c.ref;
      f.low = lo;
      f.high = hi;
      f.related = Related(c.vars);
      return f;
    }
    return Finding(AuditFinding::Kind::kSafe);
  }

  AuditFinding GaveUp(const Solver& solver) const {
    return Finding(AuditFinding::Kind::kTooLarge,
                   "the audit stopped after " + std::to_string(solver.solves()) +
                       " integer programs (or its time budget) without a proof either way");
  }

  // Published nonzero entries of the new table that share a cell with `vars`.
  std::vector<uint32_t> Related(const Vars& vars) const {
    std::vector<uint32_t> out;
    const size_t i = placed_.size() - 1;
    if (placed_[i].input != input_.size() - 1) return out;
    const LinkedTable& t = *placed_[i].table;
    for (uint32_t e = 0; e < placed_[i].layout.num_entries(); ++e) {
      if (!t.values[e] || *t.values[e] == 0) continue;
      const Vars& ev = entry_vars_[i][e];
      std::vector<uint32_t> common;
      std::set_intersection(ev.begin(), ev.end(), vars.begin(), vars.end(),
                            std::back_inserter(common));
      if (!common.empty()) out.push_back(e);
    }
    return out;
  }

  const std::vector<LinkedTable>& input_;
  const AuditLimits& limits_;
  std::vector<Placed> placed_;
  Space space_;
  std::vector<int32_t> active_;  // per raw cell: its unknown, or -1 (zero)
  std::vector<size_t> raw_of_;
  size_t active_count_ = 0;
  std::vector<std::vector<Vars>> entry_vars_;  // per placed table, per entry
  std::map<Vars, std::set<size_t>> published_by_;
  std::vector<std::pair<Vars, std::optional<uint64_t>>> rows_;
  std::vector<Count> counts_;
};

}  // namespace

Result<AuditFinding> AuditLinked(const std::vector<LinkedTable>& tables,
                                 const AuditLimits& limits) {
  Audit audit(tables, limits);
  return audit.Run();
}

Result<SecondaryResult> SuppressUntilSafe(std::vector<LinkedTable> tables,
                                          const AuditLimits& limits) {
  SecondaryResult out;
  if (tables.empty()) return Status::InvalidArgument("no table to audit");
  for (;;) {
    ENLACE_ASSIGN_OR_RETURN(AuditFinding f, AuditLinked(tables, limits));
    const bool fixable =
        f.kind == AuditFinding::Kind::kPinned || f.kind == AuditFinding::Kind::kSmall;
    PublishedValues& values = tables.back().values;
    std::optional<uint32_t> pick;
    if (fixable) {
      for (uint32_t e : f.related) {
        if (!pick || *values[e] < *values[*pick]) pick = e;
      }
    }
    if (!pick) {
      out.final = std::move(f);
      return out;
    }
    values[*pick].reset();
    out.hidden.emplace_back(*pick, std::move(f));
  }
}

}  // namespace enlace::disclosure
