// Encoding helpers shared by the wire messages (wire.cc) and the registry
// documents (registry.cc).
#ifndef ENLACE_CORE_TRUST_DOC_CODEC_H_
#define ENLACE_CORE_TRUST_DOC_CODEC_H_

#include <string>

#include "base/codec.h"
#include "enlace/member.h"

namespace enlace::internal {

inline void PutBool(Encoder& e, bool b) { e.U8(b ? 1 : 0); }
inline Status GetBool(Decoder& d, bool& b, const char* what) {
  uint8_t v = 0;
  ENLACE_RETURN_IF_ERROR(d.U8(v, what));
  if (v > 1) return Status::Corruption(std::string("bad boolean in ") + what);
  b = v == 1;
  return Status::Ok();
}

inline void PutRole(Encoder& e, Role r) { e.U8(static_cast<uint8_t>(r)); }
inline Status GetRole(Decoder& d, Role& r) {
  uint8_t v = 0;
  ENLACE_RETURN_IF_ERROR(d.U8(v, "role"));
  if (v != 1 && v != 2) return Status::Corruption("unknown role");
  r = static_cast<Role>(v);
  return Status::Ok();
}

}  // namespace enlace::internal

#endif  // ENLACE_CORE_TRUST_DOC_CODEC_H_
