// An attacker with a linear-programming solver (GLPK, like the audit it
// attacks, but written apart from it: its unknowns are the true people of
// a test's microdata, by month and every attribute, over the whole domain
// of each attribute), for the tests of reports published together
// (docs/REPORTS.md, "Publications audited together"). Given every report
// a team published (the JSON bodies), it proves what it can about the
// people: a count provably in 1..k-1, or a hidden entry pinned to one value
// that no report publishes.
#ifndef ENLACE_TESTS_SUPPORT_LP_ATTACKER_H_
#define ENLACE_TESTS_SUPPORT_LP_ATTACKER_H_

#include <cstdint>
#include <string>
#include <vector>

namespace enlace::testing {

// People of one year: each has a month (1..12) and one category of every
// attribute; `domain` lists every category an attribute can have.
struct Microdata {
  int year = 2025;
  std::vector<std::string> attributes;
  std::vector<std::vector<std::string>> domain;
  struct Person {
    int month = 1;
    std::vector<size_t> category;  // per attribute, an index into domain
  };
  std::vector<Person> people;
};

// The report rows of the people of months first..last by `dims` (attribute
// names, or "month" for "YYYY-MM"), one row per person, for report::Tabulate.
std::vector<std::vector<std::string>> RowsOf(const Microdata& data, int first, int last,
                                             const std::vector<std::string>& dims);

// "YYYY-MM-DD" of the first day of month `first` and the last of `last`.
std::string FromDate(int year, int first);
std::string ToDate(int year, int last);

// What the attacker proves from `reports` (the JSON bodies): one line per
// finding, empty when every count stays protected. The counts attacked:
// every hidden entry of every report (pinned to one value, unless some
// report publishes that very count, or proven in 1..k-1), and the people of
// each month by each attribute's category, of each month in all, and of
// each month and combination of all attributes (proven in 1..k-1).
// Requires (REQUIRE) that the true data fits every report.
std::vector<std::string> LpAttack(const Microdata& data, const std::vector<std::string>& reports,
                                  uint32_t k);

}  // namespace enlace::testing

#endif  // ENLACE_TESTS_SUPPORT_LP_ATTACKER_H_
