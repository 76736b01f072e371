#ifndef STORYLOOM_IMAGE_CODECS_H
#define STORYLOOM_IMAGE_CODECS_H

// PNG (libpng) and JPEG (libjpeg-turbo) encode/decode behind plain status codes.
//
// Both libraries report errors by longjmp. Every setjmp lives in image_codecs.c, so callers
// (Swift) only ever see a return code and a NUL-terminated message; no longjmp crosses into them.
// Buffers returned through `out_*` pointers are malloc'd and must be released with
// sl_codec_free().

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Status codes returned by every sl_* codec function.
typedef enum {
    SL_CODEC_OK = 0,
    SL_CODEC_NOT_FORMAT = 1,    ///< signature/magic bytes are not this format
    SL_CODEC_TRUNCATED = 2,     ///< data ended before the image was complete
    SL_CODEC_CORRUPT = 3,       ///< the library rejected the data (message says why)
    SL_CODEC_UNSUPPORTED = 4,   ///< valid file, but a variant this shim does not decode
    SL_CODEC_NO_MEMORY = 5,     ///< allocation failed or the image is implausibly large
    SL_CODEC_BAD_ARGUMENT = 6   ///< invalid geometry/parameters passed to an encoder
} sl_codec_status;

/// Size of the message buffer callers must pass (bytes, including the NUL).
#define SL_CODEC_MESSAGE_SIZE 256

/// Decodes a PNG to 8-bit interleaved pixels: grey -> 1 channel, RGB/palette -> 3,
/// anything with alpha (grey+alpha, RGBA, tRNS) -> 4. 16-bit samples keep their high byte.
int sl_png_decode(const unsigned char *data, size_t size,
                  unsigned char **out_pixels, int *out_width, int *out_height, int *out_channels,
                  char *message);

/// Encodes 8-bit interleaved pixels (channels 1, 3 or 4) as PNG at a fixed compression level,
/// with no time or text chunks, so equal pixels give equal bytes.
int sl_png_encode(const unsigned char *pixels, int width, int height, int channels,
                  unsigned char **out_data, size_t *out_size, char *message);

/// Decodes a baseline/progressive JPEG: greyscale -> 1 channel, colour -> 3 (RGB).
int sl_jpeg_decode(const unsigned char *data, size_t size,
                   unsigned char **out_pixels, int *out_width, int *out_height, int *out_channels,
                   char *message);

/// Encodes 8-bit interleaved pixels (channels 1 or 3) as baseline JPEG at `quality` (1...100).
int sl_jpeg_encode(const unsigned char *pixels, int width, int height, int channels, int quality,
                   unsigned char **out_data, size_t *out_size, char *message);

/// Releases a buffer returned by any sl_* function.
void sl_codec_free(void *buffer);

#ifdef __cplusplus
}
#endif

#endif
