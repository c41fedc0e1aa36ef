// CSV as spreadsheets write it (RFC 4180): the import reader and the export
// writer.
#ifndef ENLACE_CSV_H_
#define ENLACE_CSV_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "enlace/status.h"

namespace enlace {

// Reads one record at a time from CSV text: quoted fields with "" escapes and
// embedded newlines, CRLF or LF line ends, a UTF-8 byte-order mark skipped.
// The delimiter is ',' unless the header line holds more ';' than ',' (Excel
// in Spanish-speaking locales writes ';').
class CsvReader {
 public:
  explicit CsvReader(std::string_view text);

  // The next record into `fields`; false at the end. kInvalidArgument (with
  // the line number) for an unterminated quote or text after a closing quote.
  Result<bool> Next(std::vector<std::string>& fields);

  // The line on which the record last returned by Next() started (1-based).
  size_t line() const { return record_line_; }
  char delimiter() const { return delimiter_; }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  size_t current_line_ = 1;
  size_t record_line_ = 0;
  char delimiter_ = ',';
};

// One CSV field, quoted when needed. A text a spreadsheet would run as a
// formula (starting with = + - @, tab or carriage return) is prefixed with a
// single quote, so an exported file cannot execute anything when opened.
std::string CsvField(std::string_view value);
// A whole line (fields joined with ',' and "\r\n" at the end).
std::string CsvLine(const std::vector<std::string>& fields);

}  // namespace enlace

#endif  // ENLACE_CSV_H_
