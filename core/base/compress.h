// zstd compression with bounded decompression: the wire carries write values
// compressed before they are encrypted, and sync batches compressed as a
// whole (docs/PROTOCOL.md §4).
#ifndef ENLACE_CORE_BASE_COMPRESS_H_
#define ENLACE_CORE_BASE_COMPRESS_H_

#include "base/bytes.h"
#include "enlace/status.h"

namespace enlace::internal {

// One zstd frame holding `input` (its size recorded in the frame header).
Bytes Compress(ByteView input, int level = 1);

// Decompresses one frame that must expand to exactly `expected_size` bytes,
// which the caller has already checked against its own limit: nothing larger
// is ever allocated. kCorruption for anything else.
Result<Bytes> Decompress(ByteView frame, size_t expected_size);

}  // namespace enlace::internal

#endif  // ENLACE_CORE_BASE_COMPRESS_H_
