// Guided capture: walks a person through the fields of a schema collection
// on a terminal (numbered choices from the code lists, defaults, help on
// "?"), or turns FIELD=VALUE words into values for scripts. Every answer is
// validated as it is given; nothing is written here.
#ifndef ENLACE_CLIENT_CLI_CAPTURE_H_
#define ENLACE_CLIENT_CLI_CAPTURE_H_

#include <iosfwd>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "enlace/replica.h"
#include "enlace/schema.h"
#include "enlace/status.h"

namespace enlace::cli {

// Questions and answers on a terminal (or any pair of streams, for tests).
class Prompter {
 public:
  Prompter(std::istream& in, std::ostream& out) : in_(in), out_(out) {}
  // Prints `question` and reads one line (trimmed); nullopt at end of input.
  std::optional<std::string> Ask(std::string_view question);
  std::ostream& out() { return out_; }

 private:
  std::istream& in_;
  std::ostream& out_;
};

// FIELD=VALUE words (--set) by field name, values as typed.
using TextValues = std::map<std::string, std::string>;

struct CaptureOptions {
  std::string language = "en";
  // Fields filled by the command itself (a case's person, an event's case):
  // never asked.
  std::set<std::string> fixed;
  // When set, fields not given in `typed` are asked on this prompter.
  Prompter* prompter = nullptr;
  // Only these fields are asked (all when empty).
  std::set<std::string> only;
  // Values proposed by the command (today's date, this device's name): shown
  // as the default of their question, and used when nothing else is given.
  Fields suggested;
};

// The values of one record of `collection`: `typed` converted by field type
// (casework::ValueFromText), then, with a prompter, every other field asked in
// the pack's order, then the defaults; the whole validated as a new record
// when `creating`. kInvalidArgument naming the field for a bad or unknown
// value; nullopt when the person ends the input (Ctrl-D) or says no at the
// end (nothing is to be written).
Result<std::optional<Fields>> CaptureRecord(const SchemaPack& pack, const CollectionDef& collection,
                                            const TextValues& typed, Fields fixed_values,
                                            bool creating, const CaptureOptions& options);

// Splits "FIELD=VALUE" words; kInvalidArgument for a word without '=' or a
// field given twice.
Result<TextValues> ParseTextAssignments(const std::vector<std::string>& words);

// Prints a record for people: "Label: value" lines in the pack's order
// (identifying fields included; this is the device's own data), conflicts
// marked.
void PrintRecord(std::ostream& out, const SchemaPack& pack, const CollectionDef& collection,
                 const Record& record, std::string_view language);

}  // namespace enlace::cli

#endif  // ENLACE_CLIENT_CLI_CAPTURE_H_
