#include "enlace/csv.h"

#include <algorithm>

namespace enlace {

CsvReader::CsvReader(std::string_view text) : text_(text) {
  if (text_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;
  const size_t end = text_.find('\n', pos_);
  const std::string_view header =
      text_.substr(pos_, end == std::string_view::npos ? end : end - pos_);
  if (std::count(header.begin(), header.end(), ';') >
      std::count(header.begin(), header.end(), ',')) {
    delimiter_ = ';';
  }
}

Result<bool> CsvReader::Next(std::vector<std::string>& fields) {
  fields.clear();
  // Blank lines between records are skipped.
  while (pos_ < text_.size() && (text_[pos_] == '\n' || text_[pos_] == '\r')) {
    if (text_[pos_] == '\n') ++current_line_;
    ++pos_;
  }
  if (pos_ >= text_.size()) return false;
  record_line_ = current_line_;
  std::string field;
  bool quoted = false;      // inside quotes
  bool was_quoted = false;  // this field had quotes (text after them is an error)
  while (true) {
    if (pos_ >= text_.size()) {
      if (quoted) {
        return Status::InvalidArgument("line " + std::to_string(record_line_) +
                                       ": a quoted field is never closed");
      }
      fields.push_back(std::move(field));
      return true;
    }
    const char c = text_[pos_++];
    if (quoted) {
      if (c == '"') {
        if (pos_ < text_.size() && text_[pos_] == '"') {
          field.push_back('"');
          ++pos_;
        } else {
          quoted = false;
        }
      } else {
        if (c == '\n') ++current_line_;
        field.push_back(c);
      }
      continue;
    }
    if (c == delimiter_) {
      fields.push_back(std::move(field));
      field.clear();
      was_quoted = false;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && pos_ < text_.size() && text_[pos_] == '\n') ++pos_;
      ++current_line_;
      fields.push_back(std::move(field));
      return true;
    } else if (c == '"' && field.empty() && !was_quoted) {
      quoted = true;
      was_quoted = true;
    } else if (was_quoted) {
      return Status::InvalidArgument("line " + std::to_string(current_line_) +
                                     ": text after a closing quote");
    } else {
      field.push_back(c);
    }
  }
}

std::string CsvField(std::string_view value) {
  std::string text(value);
  if (!text.empty() && (text[0] == '=' || text[0] == '+' || text[0] == '-' || text[0] == '@' ||
                        text[0] == '\t' || text[0] == '\r')) {
    // A negative number is data, not a formula.
    const bool number = text[0] == '-' && text.size() > 1 &&
                        text.find_first_not_of("0123456789.", 1) == std::string::npos;
    if (!number) text.insert(text.begin(), '\'');
  }
  if (text.find_first_of(",;\"\r\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string CsvLine(const std::vector<std::string>& fields) {
  std::string line;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) line.push_back(',');
    line += CsvField(fields[i]);
  }
  line += "\r\n";
  return line;
}

}  // namespace enlace
