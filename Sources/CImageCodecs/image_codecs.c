// libpng / libjpeg-turbo wrappers. Both libraries signal errors with longjmp, which must never
// unwind through Swift frames, so every setjmp lives here and errors come back as status codes.
//
// Variables changed after setjmp and used after the longjmp are either `volatile` or live in
// heap/library-owned memory reached through a pointer that itself does not change.

#include "image_codecs.h"

#include <png.h>
#include <stdio.h>
#include <jpeglib.h>
#include <jerror.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// Refuse images whose decoded pixels would exceed 1 GiB: a corrupt header must not make us
// attempt a huge allocation.
#define SL_MAX_PIXEL_BYTES ((size_t)1 << 30)

static void sl_set_message(char *message, const char *text) {
    if (message == NULL) return;
    snprintf(message, SL_CODEC_MESSAGE_SIZE, "%s", text);
}

void sl_codec_free(void *buffer) { free(buffer); }

// MARK: - PNG

typedef struct {
    const unsigned char *data;
    size_t size;
    size_t position;
    int truncated;
    char *message;
} sl_png_reader;

typedef struct {
    unsigned char *data;
    size_t size;
    size_t capacity;
    int out_of_memory;
    char *message;
} sl_png_writer;

// Shared by reader and writer: the error pointer is the `message` buffer.
static void sl_png_error(png_structp png, png_const_charp text) {
    char *message = (char *)png_get_error_ptr(png);
    sl_set_message(message, text);
    png_longjmp(png, 1);
}

// libpng warnings (bad ancillary CRCs, odd chunks) are not failures; keep stderr quiet.
static void sl_png_warning(png_structp png, png_const_charp text) {
    (void)png;
    (void)text;
}

static void sl_png_read(png_structp png, png_bytep out, size_t length) {
    sl_png_reader *reader = (sl_png_reader *)png_get_io_ptr(png);
    if (reader->size - reader->position < length) {
        reader->truncated = 1;
        png_error(png, "unexpected end of data");
    }
    memcpy(out, reader->data + reader->position, length);
    reader->position += length;
}

int sl_png_decode(const unsigned char *data, size_t size,
                  unsigned char **out_pixels, int *out_width, int *out_height, int *out_channels,
                  char *message) {
    *out_pixels = NULL;
    *out_width = *out_height = *out_channels = 0;
    sl_set_message(message, "");
    if (size < 8 || png_sig_cmp(data, 0, 8) != 0) {
        sl_set_message(message, "missing PNG signature");
        return SL_CODEC_NOT_FORMAT;
    }

    sl_png_reader *reader = calloc(1, sizeof(sl_png_reader));
    if (reader == NULL) return SL_CODEC_NO_MEMORY;
    reader->data = data;
    reader->size = size;
    reader->message = message;

    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, message, sl_png_error, sl_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (png == NULL || info == NULL) {
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        free(reader);
        sl_set_message(message, "out of memory creating libpng reader");
        return SL_CODEC_NO_MEMORY;
    }

    unsigned char *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    volatile int status = SL_CODEC_CORRUPT;
    if (setjmp(png_jmpbuf(png))) {
        free(pixels);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        int result = reader->truncated ? SL_CODEC_TRUNCATED : status;
        free(reader);
        return result;
    }

    png_set_read_fn(png, reader, sl_png_read);
    png_read_info(png, info);

    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0;
    png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, NULL, NULL, NULL);
    int has_trns = png_get_valid(png, info, PNG_INFO_tRNS) != 0;

    // 16-bit samples keep their high byte, as Pillow's "RGB;16B"-style unpackers do.
    if (bit_depth == 16) png_set_strip_16(png);
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (has_trns) png_set_tRNS_to_alpha(png);
    // Grey with alpha has no 2-channel Image layout: widen to RGBA.
    if (color_type == PNG_COLOR_TYPE_GRAY_ALPHA || (color_type == PNG_COLOR_TYPE_GRAY && has_trns)) {
        png_set_gray_to_rgb(png);
    }
    png_set_interlace_handling(png);
    png_read_update_info(png, info);

    int channels = png_get_channels(png, info);
    size_t row_bytes = png_get_rowbytes(png, info);
    if ((channels != 1 && channels != 3 && channels != 4) || row_bytes != (size_t)width * (size_t)channels) {
        status = SL_CODEC_UNSUPPORTED;
        png_error(png, "unexpected decoded pixel layout");
    }
    if (width == 0 || height == 0 || (size_t)height > SL_MAX_PIXEL_BYTES / row_bytes) {
        status = SL_CODEC_NO_MEMORY;
        png_error(png, "image dimensions too large");
    }

    pixels = malloc(row_bytes * height);
    rows = malloc(sizeof(png_bytep) * height);
    if (pixels == NULL || rows == NULL) {
        status = SL_CODEC_NO_MEMORY;
        png_error(png, "out of memory for pixels");
    }
    for (png_uint_32 y = 0; y < height; y++) rows[y] = pixels + (size_t)y * row_bytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);

    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    free(reader);
    *out_pixels = pixels;
    *out_width = (int)width;
    *out_height = (int)height;
    *out_channels = channels;
    return SL_CODEC_OK;
}

static void sl_png_write(png_structp png, png_bytep in, size_t length) {
    sl_png_writer *writer = (sl_png_writer *)png_get_io_ptr(png);
    if (writer->capacity - writer->size < length) {
        size_t capacity = writer->capacity ? writer->capacity : 4096;
        while (capacity - writer->size < length) {
            if (capacity > SIZE_MAX / 2) {
                writer->out_of_memory = 1;
                png_error(png, "PNG output too large");
            }
            capacity *= 2;
        }
        unsigned char *grown = realloc(writer->data, capacity);
        if (grown == NULL) {
            writer->out_of_memory = 1;
            png_error(png, "out of memory for PNG output");
        }
        writer->data = grown;
        writer->capacity = capacity;
    }
    memcpy(writer->data + writer->size, in, length);
    writer->size += length;
}

static void sl_png_flush(png_structp png) { (void)png; }

int sl_png_encode(const unsigned char *pixels, int width, int height, int channels,
                  unsigned char **out_data, size_t *out_size, char *message) {
    *out_data = NULL;
    *out_size = 0;
    sl_set_message(message, "");
    int color_type;
    switch (channels) {
    case 1: color_type = PNG_COLOR_TYPE_GRAY; break;
    case 3: color_type = PNG_COLOR_TYPE_RGB; break;
    case 4: color_type = PNG_COLOR_TYPE_RGB_ALPHA; break;
    default:
        sl_set_message(message, "PNG encoding needs 1, 3 or 4 channels");
        return SL_CODEC_BAD_ARGUMENT;
    }
    if (width <= 0 || height <= 0) {
        sl_set_message(message, "PNG encoding needs a non-empty image");
        return SL_CODEC_BAD_ARGUMENT;
    }

    sl_png_writer *writer = calloc(1, sizeof(sl_png_writer));
    if (writer == NULL) return SL_CODEC_NO_MEMORY;
    writer->message = message;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, message, sl_png_error, sl_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (png == NULL || info == NULL) {
        png_destroy_write_struct(png ? &png : NULL, NULL);
        free(writer);
        sl_set_message(message, "out of memory creating libpng writer");
        return SL_CODEC_NO_MEMORY;
    }

    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        free(rows);
        png_destroy_write_struct(&png, &info);
        int result = writer->out_of_memory ? SL_CODEC_NO_MEMORY : SL_CODEC_CORRUPT;
        free(writer->data);
        free(writer);
        return result;
    }

    png_set_write_fn(png, writer, sl_png_write, sl_png_flush);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, color_type,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    // Fixed zlib level and no tIME/tEXt chunks: identical pixels always give identical bytes.
    png_set_compression_level(png, 6);
    png_write_info(png, info);

    size_t row_bytes = (size_t)width * (size_t)channels;
    rows = malloc(sizeof(png_bytep) * (size_t)height);
    if (rows == NULL) {
        writer->out_of_memory = 1;
        png_error(png, "out of memory for row pointers");
    }
    for (int y = 0; y < height; y++) rows[y] = (png_bytep)(pixels + (size_t)y * row_bytes);
    png_write_image(png, rows);
    png_write_end(png, NULL);

    free(rows);
    png_destroy_write_struct(&png, &info);
    *out_data = writer->data;
    *out_size = writer->size;
    free(writer);
    return SL_CODEC_OK;
}

// MARK: - JPEG

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char *message;
    int truncated;
} sl_jpeg_error_mgr;

static void sl_jpeg_error_exit(j_common_ptr cinfo) {
    sl_jpeg_error_mgr *err = (sl_jpeg_error_mgr *)cinfo->err;
    char text[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, text);
    sl_set_message(err->message, text);
    longjmp(err->jump, 1);
}

// Premature end of data is only a warning to libjpeg (it pads with grey); Storyloom treats a
// truncated file as an error. Other warnings (extraneous bytes, etc.) are tolerated, as in Pillow.
static void sl_jpeg_emit_message(j_common_ptr cinfo, int level) {
    if (level >= 0) return;
    sl_jpeg_error_mgr *err = (sl_jpeg_error_mgr *)cinfo->err;
    if (cinfo->err->msg_code == JWRN_JPEG_EOF) {
        err->truncated = 1;
        char text[JMSG_LENGTH_MAX];
        (*cinfo->err->format_message)(cinfo, text);
        sl_set_message(err->message, text);
        longjmp(err->jump, 1);
    }
    cinfo->err->num_warnings++;
}

static void sl_jpeg_output_message(j_common_ptr cinfo) { (void)cinfo; }

static void sl_jpeg_install_errors(sl_jpeg_error_mgr *err, char *message) {
    jpeg_std_error(&err->pub);
    err->pub.error_exit = sl_jpeg_error_exit;
    err->pub.emit_message = sl_jpeg_emit_message;
    err->pub.output_message = sl_jpeg_output_message;
    err->message = message;
    err->truncated = 0;
}

int sl_jpeg_decode(const unsigned char *data, size_t size,
                   unsigned char **out_pixels, int *out_width, int *out_height, int *out_channels,
                   char *message) {
    *out_pixels = NULL;
    *out_width = *out_height = *out_channels = 0;
    sl_set_message(message, "");
    if (size < 3 || data[0] != 0xFF || data[1] != 0xD8 || data[2] != 0xFF) {
        sl_set_message(message, "missing JPEG SOI marker");
        return SL_CODEC_NOT_FORMAT;
    }

    struct jpeg_decompress_struct cinfo;
    sl_jpeg_error_mgr err;
    cinfo.err = jpeg_std_error(&err.pub);
    sl_jpeg_install_errors(&err, message);
    unsigned char *volatile pixels = NULL;
    volatile int status = SL_CODEC_CORRUPT;
    if (setjmp(err.jump)) {
        free(pixels);
        jpeg_destroy_decompress(&cinfo);
        return err.truncated ? SL_CODEC_TRUNCATED : status;
    }

    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);

    int channels;
    switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
        cinfo.out_color_space = JCS_GRAYSCALE;
        channels = 1;
        break;
    case JCS_CMYK:
    case JCS_YCCK:
        status = SL_CODEC_UNSUPPORTED;
        sl_set_message(message, "CMYK/YCCK JPEG is not supported");
        longjmp(err.jump, 1);
    default:
        cinfo.out_color_space = JCS_RGB;
        channels = 3;
        break;
    }
    jpeg_start_decompress(&cinfo);
    if ((int)cinfo.output_components != channels) {
        status = SL_CODEC_UNSUPPORTED;
        sl_set_message(message, "unexpected decoded component count");
        longjmp(err.jump, 1);
    }
    size_t row_bytes = (size_t)cinfo.output_width * (size_t)channels;
    if (row_bytes == 0 || cinfo.output_height == 0 || (size_t)cinfo.output_height > SL_MAX_PIXEL_BYTES / row_bytes) {
        status = SL_CODEC_NO_MEMORY;
        sl_set_message(message, "image dimensions too large");
        longjmp(err.jump, 1);
    }
    pixels = malloc(row_bytes * cinfo.output_height);
    if (pixels == NULL) {
        status = SL_CODEC_NO_MEMORY;
        sl_set_message(message, "out of memory for pixels");
        longjmp(err.jump, 1);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = pixels + (size_t)cinfo.output_scanline * row_bytes;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    // Every scanline is in; a missing EOI or trailing bytes after it do not matter, so skip
    // jpeg_finish_decompress (which would read on to the end marker) and just release.
    *out_width = (int)cinfo.output_width;
    *out_height = (int)cinfo.output_height;
    *out_channels = channels;
    jpeg_destroy_decompress(&cinfo);
    *out_pixels = pixels;
    return SL_CODEC_OK;
}

int sl_jpeg_encode(const unsigned char *pixels, int width, int height, int channels, int quality,
                   unsigned char **out_data, size_t *out_size, char *message) {
    *out_data = NULL;
    *out_size = 0;
    sl_set_message(message, "");
    if (channels != 1 && channels != 3) {
        sl_set_message(message, "JPEG encoding needs 1 or 3 channels");
        return SL_CODEC_BAD_ARGUMENT;
    }
    if (width <= 0 || height <= 0 || width > JPEG_MAX_DIMENSION || height > JPEG_MAX_DIMENSION) {
        sl_set_message(message, "JPEG encoding needs 1...65500 pixels per side");
        return SL_CODEC_BAD_ARGUMENT;
    }
    if (quality < 1 || quality > 100) {
        sl_set_message(message, "JPEG quality must be 1...100");
        return SL_CODEC_BAD_ARGUMENT;
    }

    struct jpeg_compress_struct cinfo;
    sl_jpeg_error_mgr err;
    cinfo.err = jpeg_std_error(&err.pub);
    sl_jpeg_install_errors(&err, message);
    // libjpeg owns and grows this buffer through the pointer we hand it; we free it.
    unsigned char *buffer = NULL;
    unsigned long buffer_size = 0;
    if (setjmp(err.jump)) {
        jpeg_destroy_compress(&cinfo);
        free(buffer);
        return SL_CODEC_CORRUPT;
    }

    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, &buffer, &buffer_size);
    cinfo.image_width = (JDIMENSION)width;
    cinfo.image_height = (JDIMENSION)height;
    cinfo.input_components = channels;
    cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    size_t row_bytes = (size_t)width * (size_t)channels;
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)cinfo.next_scanline * row_bytes);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    *out_data = buffer;
    *out_size = (size_t)buffer_size;
    return SL_CODEC_OK;
}
