// The store's trust seal (replica/store.h): one MAC, under a key only the
// unlocked vault holds, over everything in store.db that decides whom this
// device trusts or where its data goes.
#include <algorithm>
#include <array>
#include <string>

#include "base/codec.h"
#include "replica/store.h"

namespace enlace::internal {

namespace {

constexpr char kDigestDomain[] = "enlace trust state v1";
constexpr char kMacDomain[] = "enlace trust seal v1";

// The meta counters that are trust state; every other counter (clock,
// cursor, write counter) changes on ordinary edits and syncs.
constexpr std::string_view kTrustMeta[] = {kMetaMembersVersion, kMetaRegistryVersion,
                                           kMetaTeamFounder};

// Every table the digest reads, in the order it reads them, with the
// columns and order its readers use. A column is read as its readers read
// it (ColumnBlob, ColumnText or ColumnInt), so two stores that read alike
// digest alike.
enum class Col { kBlob, kText, kInt };
struct SealedTable {
  const char* name;
  const char* query;
  std::array<Col, 10> columns;
  size_t n_columns;
};
constexpr SealedTable kSealedTables[] = {
    // The schema itself: a trigger, a view or a changed column default
    // would rewrite trusted rows after the check.
    {"sqlite_master",
     "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master ORDER BY type, name",
     {Col::kText, Col::kText, Col::kText, Col::kText},
     4},
    {"devices",
     "SELECT device, sign_pk, box_pk, name, role, revoked, pending, revoked_ms, revoked_after, "
     "joined_ms FROM devices ORDER BY device",
     {Col::kBlob, Col::kBlob, Col::kBlob, Col::kText, Col::kInt, Col::kInt, Col::kInt, Col::kInt,
      Col::kInt, Col::kInt},
     10},
    {"documents", "SELECT name, value FROM documents ORDER BY name", {Col::kText, Col::kBlob}, 2},
    {"outgoing_key_grants",
     "SELECT recipient, version, encoded FROM outgoing_key_grants ORDER BY recipient, version",
     {Col::kBlob, Col::kInt, Col::kBlob},
     3},
    {"meta",
     "SELECT key, value FROM meta WHERE key IN ('members_version', 'registry_version', "
     "'team_founder') ORDER BY key",
     {Col::kText, Col::kInt},
     2},
    {"sealed_settings",
     "SELECT name, value FROM sealed_settings ORDER BY name",
     {Col::kText, Col::kText},
     2},
};

Status Altered(std::string_view detail) {
  return Status::Corruption(std::string(kSealAlteredMessage) + " (" + std::string(detail) + ")");
}

}  // namespace

bool IsTrustMeta(std::string_view key) {
  return std::find(std::begin(kTrustMeta), std::end(kTrustMeta), key) != std::end(kTrustMeta);
}

std::array<uint8_t, kHashBytes> Store::Seal::Mac(
    uint64_t gen, const std::array<uint8_t, kHashBytes>& state) const {
  Encoder e;
  e.String(kMacDomain);
  e.Raw(options.device.bytes);
  e.U64(gen);
  e.Raw(state);
  return GenericHash(e.Finish(), options.key.view());
}

Result<bool> Store::HasTable(std::string_view name) {
  ENLACE_ASSIGN_OR_RETURN(
      Stmt st,
      db_->Prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?"));
  st.Bind(1, name);
  ENLACE_ASSIGN_OR_RETURN(bool row, st.Step());
  return row && st.ColumnInt(0) == 1;
}

Result<std::array<uint8_t, kHashBytes>> Store::TrustDigest() {
  Encoder e;
  e.String(kDigestDomain);
  for (const SealedTable& table : kSealedTables) {
    e.String(table.name);
    ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare(table.query));
    for (;;) {
      ENLACE_ASSIGN_OR_RETURN(bool more, st.Step());
      if (!more) break;
      e.U8(1);
      for (size_t i = 0; i < table.n_columns; ++i) {
        const int col = static_cast<int>(i);
        switch (table.columns[i]) {
          case Col::kBlob:
            e.Blob(st.ColumnBlob(col));
            break;
          case Col::kText:
            e.String(st.ColumnText(col));
            break;
          case Col::kInt:
            e.U64(static_cast<uint64_t>(st.ColumnInt(col)));
            break;
        }
      }
    }
    e.U8(0);
  }
  return GenericHash(e.Finish());
}

Status Store::CheckSeal() {
  Seal& seal = *seal_;
  const uint64_t vault_generation = seal.options.vault_generation;
  std::optional<std::pair<uint64_t, Bytes>> stored;
  ENLACE_ASSIGN_OR_RETURN(bool has_seal_table, HasTable("trust_seal"));
  if (has_seal_table) {
    ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("SELECT generation, mac FROM trust_seal"));
    ENLACE_ASSIGN_OR_RETURN(bool row, st.Step());
    if (row) {
      const auto mac = st.ColumnBlob(1);
      stored.emplace(static_cast<uint64_t>(st.ColumnInt(0)), Bytes(mac.begin(), mac.end()));
    }
  }
  if (!stored) {
    // Once the vault has recorded a seal, a store without one lost it; a
    // vault that never did belongs to a store from before the seal (or one
    // being created), which is sealed as it is by the first commit.
    if (vault_generation > 0) return Status::Corruption(std::string(kSealMissingMessage));
    seal.present = false;
    trust_dirty_ = true;
    return Status::Ok();
  }
  // Every table the digest reads must be there: dropping one is an edit.
  for (const SealedTable& table : kSealedTables) {
    ENLACE_ASSIGN_OR_RETURN(bool exists, HasTable(table.name));
    if (!exists && std::string_view(table.name) != "sqlite_master") {
      return Altered(std::string("table ") + table.name + " is missing");
    }
  }
  ENLACE_ASSIGN_OR_RETURN(const auto digest, TrustDigest());
  const auto expected = seal.Mac(stored->first, digest);
  if (stored->second.size() != expected.size() || !ConstantTimeEquals(stored->second, expected)) {
    return Altered("seal mismatch");
  }
  if (stored->first < vault_generation) {
    return Status::Corruption(std::string(kSealRolledBackMessage) + " (seal " +
                              std::to_string(stored->first) + ", vault " +
                              std::to_string(vault_generation) + ")");
  }
  seal.present = true;
  seal.generation = stored->first;
  seal.digest = digest;
  // The vault missed the last sealed commit (the process ended between the
  // two writes): it catches up now.
  if (stored->first > vault_generation && seal.options.on_sealed) {
    seal.options.on_sealed(stored->first);
  }
  return Status::Ok();
}

Status Store::SealIfChanged() {
  if (!seal_) return Status::Ok();
  Seal& seal = *seal_;
  seal.pending.reset();
  if (!trust_dirty_) return Status::Ok();
  ENLACE_ASSIGN_OR_RETURN(const auto digest, TrustDigest());
  if (seal.present && ConstantTimeEquals(digest, seal.digest)) {
    trust_dirty_ = false;
    return Status::Ok();
  }
  const uint64_t next = std::max(seal.generation, seal.options.vault_generation) + 1;
  ENLACE_ASSIGN_OR_RETURN(
      Stmt st, db_->Prepare("INSERT INTO trust_seal(id, generation, mac) VALUES(1, ?, ?) "
                            "ON CONFLICT(id) DO UPDATE SET generation = excluded.generation, "
                            "mac = excluded.mac"));
  ENLACE_RETURN_IF_ERROR(st.BindU64(1, next).BindBlob(2, seal.Mac(next, digest)).Exec());
  seal.pending = Seal::Pending{next, digest};
  return Status::Ok();
}

void Store::SealCommitted() {
  if (!seal_ || !seal_->pending) return;
  Seal& seal = *seal_;
  seal.present = true;
  seal.generation = seal.pending->generation;
  seal.digest = seal.pending->digest;
  seal.pending.reset();
  trust_dirty_ = false;
  if (seal.options.on_sealed) seal.options.on_sealed(seal.generation);
}

Status Store::ChangeTrust(const std::function<Status()>& change) {
  trust_dirty_ = true;
  // Inside a transaction the change is sealed when it commits; alone, it
  // gets a transaction of its own so that the seal moves with it.
  if (!seal_ || db_->InTransaction()) return change();
  ENLACE_ASSIGN_OR_RETURN(auto tx, Begin());
  ENLACE_RETURN_IF_ERROR(change());
  return tx->Commit();
}

Result<std::unique_ptr<Transaction>> Store::Begin() {
  if (!seal_) return Transaction::Begin(*db_);
  return Transaction::Begin(
      *db_, CommitHooks{[this] { return SealIfChanged(); }, [this] { SealCommitted(); }});
}

Result<uint64_t> Store::SealGeneration() const {
  return seal_ && seal_->present ? seal_->generation : uint64_t{0};
}

// ---- sealed settings --------------------------------------------------------------------

Result<std::map<std::string, std::string>> Store::SealedSettings() {
  ENLACE_ASSIGN_OR_RETURN(Stmt st, db_->Prepare("SELECT name, value FROM sealed_settings"));
  std::map<std::string, std::string> out;
  for (;;) {
    ENLACE_ASSIGN_OR_RETURN(bool more, st.Step());
    if (!more) break;
    out.emplace(st.ColumnText(0), st.ColumnText(1));
  }
  return out;
}

Status Store::ReplaceSealedSettings(const std::map<std::string, std::string>& settings) {
  return ChangeTrust([&]() -> Status {
    ENLACE_ASSIGN_OR_RETURN(Stmt clear, db_->Prepare("DELETE FROM sealed_settings"));
    ENLACE_RETURN_IF_ERROR(clear.Exec());
    ENLACE_ASSIGN_OR_RETURN(Stmt put,
                            db_->Prepare("INSERT INTO sealed_settings(name, value) VALUES(?, ?)"));
    for (const auto& [name, value] : settings) {
      ENLACE_RETURN_IF_ERROR(put.Bind(1, name).Bind(2, value).Exec());
    }
    return Status::Ok();
  });
}

}  // namespace enlace::internal
