// How much a decoder accepts from the network: every length and count in a
// wire message (enlace/wire.h) or a trust document (enlace/registry.h) is
// checked against these before anything is allocated.
#ifndef ENLACE_LIMITS_H_
#define ENLACE_LIMITS_H_

#include <cstddef>

namespace enlace {

struct WireLimits {
  size_t max_writes = 10000;  // writes in one request or response
  size_t max_write_bytes = (1 << 20) + 16384;
  size_t max_batch_bytes = 16 << 20;  // one message's write list, decompressed
  size_t max_members = 10000;
  size_t max_text_bytes = 256;            // names, tokens
  size_t max_envelope_bytes = 64 * 1024;  // invite envelopes
  size_t max_documents = 4096;            // registries, admissions, key grants in one message
  size_t max_document_bytes = 4 << 20;    // one encoded registry (10,000 members fit)
};

}  // namespace enlace

#endif  // ENLACE_LIMITS_H_
