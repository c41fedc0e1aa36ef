// The sync engine without case work: this program links enlace_sync (base,
// crypto, storage, replica, trust, sync) and nothing above it, so it stops
// building when an engine source starts to need case work, and it runs the
// engine end to end: two devices of one team, a write sealed on one, the
// sync request built for it, the write verified and merged on the other.
// Exit 0 when the value arrived intact.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "enlace/replica.h"
#include "enlace/sync.h"
#include "enlace/team.h"

namespace {

int Fail(const char* what, const enlace::Status& s) {
  std::fprintf(stderr, "engine_alone: %s: %s\n", what, s.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(argc > 1 ? argv[1] : fs::temp_directory_path().string()) /
                       ("engine_alone." + std::to_string(::getpid()));
  fs::remove_all(dir);
  auto open = [&](const char* name) {
    enlace::ReplicaOptions o;
    o.dir = (dir / name).string();
    o.kdf = enlace::KdfCost::Minimum();
    return enlace::Replica::Create(o, "correct horse");
  };
  auto a = open("a");
  auto b = open("b");
  if (!a.ok()) return Fail("create a", a.status());
  if (!b.ok()) return Fail("create b", b.status());
  enlace::Replica& ana = **a;
  enlace::Replica& beto = **b;
  if (auto team = enlace::CreateTeam(ana); !team.ok()) return Fail("create team", team.status());
  auto sealed = enlace::SealTeamKeysFor(ana, beto.public_keys().encryption);
  if (!sealed.ok()) return Fail("seal keys", sealed.status());
  if (auto s = enlace::AcceptTeamKeys(beto, *sealed); !s.ok()) return Fail("accept keys", s);
  if (auto s = enlace::TrustDevice(beto, ana.device_id(), ana.public_keys()); !s.ok()) {
    return Fail("trust", s);
  }

  auto id = ana.Put("cases", std::nullopt, {{"status", "\"FollowUp\""}});
  if (!id.ok()) return Fail("put", id.status());
  enlace::SyncSession session(ana);
  auto request = session.NextRequest();
  if (!request.ok()) return Fail("sync request", request.status());
  auto pending = ana.PendingWrites(1 << 20);
  if (!pending.ok() || pending->size() != 1) return Fail("outbox", pending.status());
  auto applied = beto.ApplyRemote(pending->front().second);
  if (!applied.ok()) return Fail("apply", applied.status());
  auto record = beto.Get("cases", *id);
  if (!record.ok()) return Fail("get", record.status());
  const std::string value = record->fields.at("status").value;
  fs::remove_all(dir);
  if (value != "\"FollowUp\"") {
    std::fprintf(stderr, "engine_alone: got %s\n", value.c_str());
    return 1;
  }
  std::puts("engine_alone: the sync engine works without case work");
  return 0;
}
