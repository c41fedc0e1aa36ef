// An in-process hub (the real HubHandler and SQLite storage, no sockets) and
// devices that sync with it through an in-memory transport.
#ifndef ENLACE_TESTS_SUPPORT_HUB_FIXTURE_H_
#define ENLACE_TESTS_SUPPORT_HUB_FIXTURE_H_

#include <memory>
#include <string>

#include "enlace/replica.h"
#include "enlace/sync.h"
#include "hub_request.h"
#include "hub_storage.h"
#include "routes.h"
#include "test_util.h"

namespace enlace::testing {

struct HubReply {
  int status = 0;
  std::string body;
  std::string hub_time;
  std::span<const uint8_t> bytes() const {
    return {reinterpret_cast<const uint8_t*>(body.data()), body.size()};
  }
};

class InProcessHub {
 public:
  explicit InProcessHub(const std::string& data_dir, FakeClock* clock = nullptr);
  HubReply Send(const OutgoingRequest& request);
  hub::HttpResponse Raw(const hub::HttpRequest& request) { return handler_->Handle(request); }
  // A fresh bootstrap token.
  std::string NewBootstrapToken();
  hub::HubStorage& storage() { return *storage_; }
  const std::string& data_dir() const { return data_dir_; }

 private:
  std::string data_dir_;
  std::unique_ptr<hub::HubStorage> storage_;
  std::unique_ptr<hub::HubHandler> handler_;
};

// A team on one in-process hub: a coordinator and two field devices, all
// sharing one fake clock.
struct HubTeam;

// Creates a team's first coordinator on `hub` in `dir`.
std::unique_ptr<Replica> InitCoordinator(InProcessHub& hub, const ReplicaOptions& options,
                                         const std::string& team_name = "Tlaxcala");
// Creates a device in `dir` and joins it with an invite from `coordinator`.
std::unique_ptr<Replica> JoinDevice(InProcessHub& hub, Replica& coordinator,
                                    const ReplicaOptions& options, const std::string& name,
                                    Role role = Role::kField);
// Runs `sql` on the SQLite file at `db_path` through its own connection
// (e.g. to alter a hub's stored rows behind its back).
void ExecSql(const std::string& db_path, const std::string& sql);
// Syncs until nothing is left; returns the session's progress.
SyncProgress SyncAll(InProcessHub& hub, Replica& replica, SyncOptions options = {});
// `device`'s next sync request (pushing its pending writes), signed, as the
// hub's handler gets it.
hub::HttpRequest NextSyncRequest(Replica& device);
// (Re)signs `request` as `signer` at `time_ms` with a fresh nonce: the
// signature the sync engine would make for this method, path and body.
void SignRequest(Replica& signer, hub::HttpRequest& request, uint64_t time_ms);
// A POST of `body` to the sync path, signed by `signer` at `time_ms`.
hub::HttpRequest SignedSyncRequest(Replica& signer, const Bytes& body, uint64_t time_ms);
// A sync request from `device` of `t` pushing exactly `writes`.
hub::HttpRequest PushOf(HubTeam& t, Replica& device, std::vector<Bytes> writes);
// `writer`'s next write number, a "cases" record with one field (a new
// one, or `record`), sealed and signed by it in `scope` after `prev`
// there, or a void of that number (a hostile member may name any scope),
// counted as used by `writer`.
Bytes ScopedWrite(Replica& writer, const ScopeId& scope, uint64_t prev, bool as_void = false,
                  const RecordId* record = nullptr);
// The "error" of a hub's JSON answer; "" when it has none.
std::string ErrorOf(const std::string& body);
inline std::string ErrorOf(const hub::HttpResponse& response) { return ErrorOf(response.body); }

struct HubTeam {
  TempDir dir;
  FakeClock clock;
  InProcessHub hub{dir.File("hub"), &clock};
  std::unique_ptr<Replica> coord = InitCoordinator(hub, TestOptions(dir.File("coord"), &clock));
  std::unique_ptr<Replica> a = JoinDevice(hub, *coord, TestOptions(dir.File("a"), &clock), "ana");
  std::unique_ptr<Replica> b = JoinDevice(hub, *coord, TestOptions(dir.File("b"), &clock), "beto");
};

}  // namespace enlace::testing

#endif  // ENLACE_TESTS_SUPPORT_HUB_FIXTURE_H_
