import CImageCodecs
import Foundation

/// PNG decoding and encoding through libpng.
///
/// Decoding accepts every standard PNG variant: 1/2/4/8/16-bit grey, grey+alpha, RGB, RGBA,
/// palette and `tRNS` transparency, interlaced or not. Output is 8-bit: grey -> 1 channel,
/// RGB/palette -> 3, anything with alpha (including grey+alpha and `tRNS`) -> 4 (RGBA).
/// 16-bit samples keep their high byte, as Pillow does.
public enum PNGCodec {
    /// Decodes PNG bytes. `source` names the data in error messages (typically the file path).
    public static func decode(_ data: Data, source: String = "<memory>") throws -> Image {
        try CodecCall.decode(data, source: source, format: "PNG", library: "libpng", decoder: sl_png_decode)
    }

    /// Encodes an image of 1, 3 or 4 channels as 8-bit PNG. The bytes are deterministic:
    /// fixed zlib level 6, default adaptive filtering, no time or text chunks.
    public static func encode(_ image: Image) throws -> Data {
        try CodecCall.encode(image, format: "PNG", library: "libpng") { pixels, out, size, message in
            sl_png_encode(pixels, Int32(image.width), Int32(image.height), Int32(image.channels), out, size, message)
        }
    }
}

/// The shared plumbing between Swift and the C shim: buffers in, status code and message out.
enum CodecCall {
    typealias Decoder = (
        UnsafePointer<UInt8>?, Int,
        UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?,
        UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<Int32>?,
        UnsafeMutablePointer<CChar>?
    ) -> Int32

    static func decode(_ data: Data, source: String, format: String, library: String,
                       decoder: Decoder) throws -> Image {
        var message = [CChar](repeating: 0, count: Int(SL_CODEC_MESSAGE_SIZE))
        var output: UnsafeMutablePointer<UInt8>?
        var width: Int32 = 0, height: Int32 = 0, channels: Int32 = 0
        let status = data.withUnsafeBytes { raw -> Int32 in
            let base = raw.bindMemory(to: UInt8.self).baseAddress
            // An empty Data has no base address; hand C a valid pointer and a zero length.
            var empty: UInt8 = 0
            return withUnsafePointer(to: &empty) { emptyPointer in
                decoder(base ?? emptyPointer, raw.count, &output, &width, &height, &channels, &message)
            }
        }
        defer { sl_codec_free(output) }
        let detail = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard status == Int32(SL_CODEC_OK.rawValue), let output else {
            throw error(status: status, detail: detail, source: source, format: format, library: library)
        }
        let count = Int(width) * Int(height) * Int(channels)
        let pixels = [UInt8](UnsafeBufferPointer(start: output, count: count))
        return Image(width: Int(width), height: Int(height), channels: Int(channels), pixels: pixels)
    }

    static func encode(
        _ image: Image, format: String, library: String,
        call: (UnsafePointer<UInt8>, UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>,
               UnsafeMutablePointer<Int>, UnsafeMutablePointer<CChar>) -> Int32
    ) throws -> Data {
        guard image.width > 0, image.height > 0 else {
            throw ImageError(source: "<memory>", kind: .invalidArgument,
                             message: "cannot encode an empty \(image.width)x\(image.height) image as \(format)")
        }
        var message = [CChar](repeating: 0, count: Int(SL_CODEC_MESSAGE_SIZE))
        var output: UnsafeMutablePointer<UInt8>?
        var size = 0
        let status = image.pixels.withUnsafeBufferPointer { pixels -> Int32 in
            message.withUnsafeMutableBufferPointer { messageBuffer in
                // Non-empty image, so the buffer has a base address.
                call(pixels.baseAddress!, &output, &size, messageBuffer.baseAddress!)
            }
        }
        defer { sl_codec_free(output) }
        let detail = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard status == Int32(SL_CODEC_OK.rawValue), let output else {
            throw error(status: status, detail: detail, source: "<memory>", format: format, library: library,
                        encoding: true)
        }
        return Data(bytes: output, count: size)
    }

    static func error(status: Int32, detail: String, source: String, format: String, library: String,
                      encoding: Bool = false) -> ImageError {
        let suffix = detail.isEmpty ? "" : " (\(library): \(detail))"
        switch UInt32(bitPattern: status) {
        case SL_CODEC_NOT_FORMAT.rawValue:
            return ImageError(source: source, kind: .notAnImage, message: "not a \(format) file\(suffix)")
        case SL_CODEC_TRUNCATED.rawValue:
            return ImageError(source: source, kind: .truncated, message: "truncated \(format) data\(suffix)")
        case SL_CODEC_UNSUPPORTED.rawValue:
            return ImageError(source: source, kind: .unsupported, message: "unsupported \(format) variant\(suffix)")
        case SL_CODEC_NO_MEMORY.rawValue:
            return ImageError(source: source, kind: .tooLarge, message: "\(format) image too large\(suffix)")
        case SL_CODEC_BAD_ARGUMENT.rawValue:
            return ImageError(source: source, kind: .invalidArgument, message: "cannot encode as \(format)\(suffix)")
        default:
            let verb = encoding ? "\(format) encoding failed" : "corrupt \(format) data"
            return ImageError(source: source, kind: .corrupt, message: "\(verb)\(suffix)")
        }
    }
}
