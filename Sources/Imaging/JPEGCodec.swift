import CImageCodecs
import Foundation

/// JPEG decoding and encoding through libjpeg-turbo.
///
/// Decoding gives 1 channel for greyscale JPEGs and 3 (RGB) for colour ones, with libjpeg's
/// default (accurate integer IDCT, fancy upsampling) settings, as Pillow uses. A file that ends
/// before its last scanline is an error, not a grey-padded image. CMYK/YCCK JPEGs are rejected
/// as unsupported.
public enum JPEGCodec {
    /// Decodes JPEG bytes. `source` names the data in error messages (typically the file path).
    public static func decode(_ data: Data, source: String = "<memory>") throws -> Image {
        try CodecCall.decode(data, source: source, format: "JPEG", library: "libjpeg", decoder: sl_jpeg_decode)
    }

    /// Encodes an image as baseline JPEG with 4:2:0 chroma subsampling (libjpeg defaults).
    /// RGBA input drops its alpha first (JPEG has none); `quality` is 1...100.
    public static func encode(_ image: Image, quality: Int = 90) throws -> Data {
        guard (1...100).contains(quality) else {
            throw ImageError(source: "<memory>", kind: .invalidArgument,
                             message: "JPEG quality must be 1...100, got \(quality)")
        }
        let opaque = image.channels == 4 ? image.converted(toChannels: 3) : image
        return try CodecCall.encode(opaque, format: "JPEG", library: "libjpeg") { pixels, out, size, message in
            sl_jpeg_encode(pixels, Int32(opaque.width), Int32(opaque.height), Int32(opaque.channels),
                           Int32(quality), out, size, message)
        }
    }
}
