// Writes the seed corpus of write_decode_fuzz: a few valid encoded writes of
// every kind, on the fixed records of fuzz_team.h, one file each.
//   write_seeds <output folder>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "device_setup.h"
#include "enlace/replica.h"
#include "enlace/team.h"
#include "fuzz_team.h"
#include "fuzz_util.h"
#include "temp_dir.h"

namespace enlace::fuzz {
namespace {

int Run(const std::string& out_dir) {
  const testing::TempDir tmp(testing::TempDir::Under{"/tmp", "enlace-seeds-"});
  int rc = 0;
  auto fail = [&](const Status& s) {
    std::fprintf(stderr, "write_seeds: %s\n", s.ToString().c_str());
    rc = 1;
  };
  auto a = Replica::Create(FuzzOptions(tmp.File("a")), kPassphrase);
  auto b = Replica::Create(FuzzOptions(tmp.File("b")), kPassphrase);
  if (!a.ok() || !b.ok()) return 1;
  Replica& ra = **a;
  Replica& rb = **b;
  if (!testing::TryFormTeam(ra, {&rb}).ok()) return 1;

  std::filesystem::create_directories(out_dir);
  auto save = [&](Replica& r, const std::string& name) {
    auto pending = r.PendingWrites(SIZE_MAX);
    if (!pending.ok()) return fail(pending.status());
    if (pending->empty()) return fail(Status::Internal("no write for " + name));
    const Bytes& bytes = pending->back().second;
    std::ofstream(out_dir + "/" + name, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
    // b sees a's writes, so b's edits carry a causal context.
    if (&r == &ra && !rb.ApplyRemote(bytes).ok()) fail(Status::Internal("apply " + name));
  };
  auto check = [&](const Status& s) {
    if (!s.ok()) fail(s);
  };
  check(ra.Put("cases", FixedRecord(0), {{"status", "\"Active\""}, {"age", "30"}}).status());
  save(ra, "put-new");
  check(rb.Put("cases", FixedRecord(0), {{"status", "\"FollowUp\""}}).status());
  save(rb, "put-edit-with-context");
  check(ra.Put("cases", FixedRecord(2), {{"nationality", "[\"MX\",\"GT\"]"}, {"note", "null"}})
            .status());
  save(ra, "put-array-null");
  check(ra.Delete("cases", FixedRecord(2)));
  save(ra, "delete");
  check(ra.Restore("cases", FixedRecord(2)));
  save(ra, "restore");
  check(ra.Erase("cases", FixedRecord(2)));
  save(ra, "erase");
  check(rb.Put("encounters", FixedRecord(3), {{"place", "\"Tapachula\""}}).status());
  save(rb, "put-other-collection");
  return rc;
}

}  // namespace
}  // namespace enlace::fuzz

int main(int argc, char** argv) {
  return enlace::fuzz::SeedsMain(argc, argv, "write_seeds <output folder>", enlace::fuzz::Run);
}
