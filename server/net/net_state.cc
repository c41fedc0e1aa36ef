#include "net/net_state.h"

#include <cstdio>
#include <utility>
#include <vector>

namespace enlace::hub::internal {
namespace {

void AppendJsonString(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof(escaped), "\\u%04x", static_cast<unsigned>(c));
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

}  // namespace

SessionBase::~SessionBase() { state_.Remove(this); }

NetState::NetState(Handler& handler, ServerOptions options)
    : handler_(handler), options_(std::move(options)) {}

bool NetState::BeginStop() {
  if (stopping_.exchange(true, std::memory_order_acq_rel)) return false;
  // Collected under the lock, called and released outside it: releasing the
  // last reference runs ~SessionBase, which takes the lock.
  std::vector<std::shared_ptr<SessionBase>> open;
  {
    std::lock_guard<std::mutex> lock(mu_);
    open.reserve(sessions_.size());
    for (const auto& entry : sessions_) {
      if (auto session = entry.second.lock()) open.push_back(std::move(session));
    }
  }
  for (const auto& session : open) session->CloseIfIdle();
  return true;
}

size_t NetState::connections() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sessions_.size();
}

void NetState::Add(const std::shared_ptr<SessionBase>& session) {
  std::lock_guard<std::mutex> lock(mu_);
  sessions_.emplace(session.get(), session);
}

void NetState::Remove(const SessionBase* session) {
  std::lock_guard<std::mutex> lock(mu_);
  sessions_.erase(session);
}

void NetState::Log(std::string_view event, std::string_view remote, std::string_view detail) const {
  if (!options_.log) return;
  try {
    std::string line = "{\"event\":";
    AppendJsonString(line, "net." + std::string(event));
    if (!remote.empty()) {
      line += ",\"remote\":";
      AppendJsonString(line, remote);
    }
    if (!detail.empty()) {
      line += ",\"detail\":";
      AppendJsonString(line, detail);
    }
    line += '}';
    options_.log(line);
  } catch (...) {
    // A failing logger must not take a connection, or the server, down.
  }
}

}  // namespace enlace::hub::internal
