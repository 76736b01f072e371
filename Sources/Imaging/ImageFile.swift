import Foundation

extension Image {
    /// Reads and decodes an image file, choosing PNG or JPEG by its magic bytes (not its
    /// extension). Errors name the file.
    public static func load(contentsOf url: URL) throws -> Image {
        let source = url.isFileURL ? url.path : url.absoluteString
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw ImageError(source: source, kind: .io, message: "cannot read file (\(error.localizedDescription))")
        }
        return try decode(data, source: source)
    }

    /// Decodes PNG or JPEG bytes, chosen by magic bytes.
    public static func decode(_ data: Data, source: String = "<memory>") throws -> Image {
        let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        if data.count >= 8, data.prefix(8).elementsEqual(pngSignature) {
            return try PNGCodec.decode(data, source: source)
        }
        if data.count >= 3, data.prefix(3).elementsEqual([0xFF, 0xD8, 0xFF]) {
            return try JPEGCodec.decode(data, source: source)
        }
        throw ImageError(source: source, kind: .notAnImage, message: "not a PNG or JPEG file")
    }

    /// Encodes by the URL's extension (`.png`, `.jpg`, `.jpeg`, case-insensitive; JPEG at quality
    /// 90) and writes atomically, so readers never see a half-written file.
    public func write(to url: URL) throws {
        let source = url.isFileURL ? url.path : url.absoluteString
        let data: Data
        switch url.pathExtension.lowercased() {
        case "png":
            data = try rethrowing(source) { try PNGCodec.encode(self) }
        case "jpg", "jpeg":
            data = try rethrowing(source) { try JPEGCodec.encode(self) }
        default:
            throw ImageError(source: source, kind: .invalidArgument,
                             message: "unknown image extension '.\(url.pathExtension)' (expected .png, .jpg or .jpeg)")
        }
        do {
            try data.write(to: url, options: .atomic)
        } catch {
            throw ImageError(source: source, kind: .io, message: "cannot write file (\(error.localizedDescription))")
        }
    }

    /// Re-labels encoder errors (which only know `<memory>`) with the destination file.
    private func rethrowing(_ source: String, _ body: () throws -> Data) throws -> Data {
        do {
            return try body()
        } catch var error as ImageError {
            error.source = source
            throw error
        }
    }

    /// Converts between 1, 3 and 4 channels as Pillow's `convert` does: RGB(A) -> grey uses
    /// ITU-R 601-2 luma `L = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16`, grey -> RGB replicates,
    /// RGBA -> RGB drops alpha (no compositing), RGB/grey -> RGBA adds opaque alpha.
    public func converted(toChannels target: Int) -> Image {
        precondition([1, 3, 4].contains(target), "channels must be 1, 3 or 4")
        if target == channels { return self }
        let count = width * height
        var out = [UInt8](repeating: 255, count: count * target)
        let source = channels
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<count {
                    let s = i * source, d = i * target
                    if source == 1 {
                        let v = src[s]
                        dst[d] = v
                        if target >= 3 { dst[d + 1] = v; dst[d + 2] = v }
                    } else if target == 1 {
                        let luma = UInt32(src[s]) * 19595 + UInt32(src[s + 1]) * 38470 + UInt32(src[s + 2]) * 7471
                        dst[d] = UInt8(truncatingIfNeeded: (luma + 0x8000) >> 16)
                    } else {
                        dst[d] = src[s]; dst[d + 1] = src[s + 1]; dst[d + 2] = src[s + 2]
                    }
                }
            }
        }
        return Image(width: width, height: height, channels: target, pixels: out)
    }
}
