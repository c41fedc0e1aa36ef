#include "base/compress.h"

#include <zstd.h>

#include <memory>

namespace enlace::internal {

namespace {

// One context per thread, made on first use: a fresh context per call costs
// more than compressing a small write.
ZSTD_CCtx* CompressContext() {
  thread_local std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> ctx(ZSTD_createCCtx(),
                                                                      ZSTD_freeCCtx);
  return ctx.get();
}

ZSTD_DCtx* DecompressContext() {
  thread_local std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> ctx(ZSTD_createDCtx(),
                                                                      ZSTD_freeDCtx);
  return ctx.get();
}

}  // namespace

Bytes Compress(ByteView input, int level) {
  Bytes out(ZSTD_compressBound(input.size()));
  const size_t n = ZSTD_compressCCtx(CompressContext(), out.data(), out.size(), input.data(),
                                     input.size(), level);
  // Cannot fail with a ZSTD_compressBound buffer and a valid level.
  if (ZSTD_isError(n)) return {};
  out.resize(n);
  return out;
}

Result<Bytes> Decompress(ByteView frame, size_t expected_size) {
  const unsigned long long declared = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (declared == ZSTD_CONTENTSIZE_ERROR || declared == ZSTD_CONTENTSIZE_UNKNOWN ||
      declared != expected_size) {
    return Status::Corruption("compressed data does not declare its stated size");
  }
  if (ZSTD_findFrameCompressedSize(frame.data(), frame.size()) != frame.size()) {
    return Status::Corruption("compressed data is not exactly one frame");
  }
  Bytes out(expected_size);
  // The output buffer bounds what is written: a frame that lies about its
  // size fails with dstSize_tooSmall instead of growing anything.
  const size_t n =
      ZSTD_decompressDCtx(DecompressContext(), out.data(), out.size(), frame.data(), frame.size());
  if (ZSTD_isError(n) || n != expected_size) {
    Wipe(out);
    return Status::Corruption("compressed data is damaged");
  }
  return out;
}

}  // namespace enlace::internal
