import Foundation
import Testing
@testable import Imaging

/// Deterministic test pattern: gradients, a hard edge and hash noise, per channel.
func patternImage(width: Int, height: Int, channels: Int, seed: UInt32 = 1) -> Image {
    var pixels = [UInt8](repeating: 0, count: width * height * channels)
    var state = seed &* 2_654_435_761 | 1
    for y in 0..<height {
        for x in 0..<width {
            for c in 0..<channels {
                state ^= state << 13; state ^= state >> 17; state ^= state << 5
                let gradient = (x * 255 / max(width - 1, 1) + y * 128 / max(height - 1, 1) + c * 60) % 256
                let edge = x > width / 2 ? 90 : 0
                pixels[(y * width + x) * channels + c] = UInt8((gradient + edge + Int(state % 24)) % 256)
            }
        }
    }
    return Image(width: width, height: height, channels: channels, pixels: pixels)
}

/// A photo-like pattern for lossy codecs: smooth gradients, one edge, mild noise, no wrap-around
/// (the wrapping `patternImage` has 255-level chroma jumps that 4:2:0 JPEG cannot keep).
func smoothImage(width: Int, height: Int, channels: Int) -> Image {
    var image = patternImage(width: width, height: height, channels: channels)
    for y in 0..<height {
        for x in 0..<width {
            for c in 0..<channels {
                let i = (y * width + x) * channels + c
                let base = 30 + x * 100 / width + y * 50 / height + c * 10 + (x > width / 2 ? 30 : 0)
                image.pixels[i] = UInt8(base + Int(image.pixels[i] % 8))
            }
        }
    }
    return image
}

@Suite("PNG and JPEG codecs")
struct CodecTests {
    @Test("PNG round trip is lossless for every channel count", arguments: [1, 3, 4])
    func pngRoundTrip(channels: Int) throws {
        let image = patternImage(width: 37, height: 23, channels: channels)
        let data = try PNGCodec.encode(image)
        #expect(Array(data.prefix(4)) == [0x89, 0x50, 0x4E, 0x47])
        let decoded = try PNGCodec.decode(data)
        #expect(decoded == image)
        // Deterministic bytes: encoding again gives the same file.
        #expect(try PNGCodec.encode(decoded) == data)
    }

    @Test("JPEG round trip stays close", arguments: [1, 3])
    func jpegRoundTrip(channels: Int) throws {
        let image = smoothImage(width: 64, height: 48, channels: channels)
        let data = try JPEGCodec.encode(image, quality: 95)
        let decoded = try JPEGCodec.decode(data)
        #expect(decoded.width == 64 && decoded.height == 48 && decoded.channels == channels)
        let psnr = try PixelMetrics.psnr(image, decoded)
        #expect(psnr > 30, "JPEG q95 PSNR \(psnr) dB")
        #expect(psnr.isFinite)
    }

    @Test("JPEG encode of RGBA drops alpha")
    func jpegDropsAlpha() throws {
        let image = smoothImage(width: 20, height: 10, channels: 4)
        let decoded = try JPEGCodec.decode(try JPEGCodec.encode(image, quality: 100))
        #expect(decoded.channels == 3)
        #expect(try PixelMetrics.psnr(image.converted(toChannels: 3), decoded) > 35)
    }

    @Test("random bytes, empty data and foreign formats are not images")
    func notImages() throws {
        var generator = SystemRandomNumberGenerator()
        let random = Data((0..<512).map { _ in UInt8.random(in: 0...255, using: &generator) })
        for data in [random, Data(), Data("GIF89a....".utf8)] {
            #expect(throws: ImageError.self) { try Image.decode(data, source: "x.bin") }
            #expect(throws: ImageError.self) { try PNGCodec.decode(data) }
            #expect(throws: ImageError.self) { try JPEGCodec.decode(data) }
        }
        let error = try #require(throws: ImageError.self) { try Image.decode(Data([1, 2, 3]), source: "x.jpg") }
        #expect(error.description == "x.jpg: not a PNG or JPEG file")
        #expect(error.kind == .notAnImage)
    }

    @Test("every truncation of a PNG is a clear error")
    func truncatedPNG() throws {
        let data = try PNGCodec.encode(patternImage(width: 37, height: 23, channels: 3))
        for length in stride(from: 0, to: data.count - 12, by: 7) {  // the last 12 bytes are IEND
            let error = try #require(throws: ImageError.self) {
                try PNGCodec.decode(data.prefix(length), source: "photo.png")
            }
            #expect(error.description.hasPrefix("photo.png: "))
            if length >= 8 { #expect(error.kind == .truncated, "\(length): \(error)") }
        }
        let error = try #require(throws: ImageError.self) { try PNGCodec.decode(data.prefix(100), source: "photo.png") }
        #expect(error.description.hasPrefix("photo.png: truncated PNG data (libpng: "))
    }

    @Test("every truncation of a JPEG is a clear error")
    func truncatedJPEG() throws {
        let data = try JPEGCodec.encode(patternImage(width: 37, height: 23, channels: 3))
        for length in stride(from: 0, to: data.count - 2, by: 11) {  // the last 2 bytes are EOI
            let error = try #require(throws: ImageError.self) {
                try JPEGCodec.decode(data.prefix(length), source: "x.jpg")
            }
            #expect(error.description.hasPrefix("x.jpg: "))
            if length >= 3 { #expect(error.kind == .truncated || error.kind == .corrupt, "\(length): \(error)") }
        }
    }

    @Test("corrupted PNG and JPEG bytes give errors, never crashes")
    func corruptBytes() throws {
        let png = try PNGCodec.encode(patternImage(width: 37, height: 23, channels: 4))
        let jpeg = try JPEGCodec.encode(patternImage(width: 37, height: 23, channels: 3))
        var pngErrors = 0
        // Flip bytes at many offsets past the signature; CRCs make every PNG flip fatal.
        for offset in stride(from: 8, to: png.count, by: 5) {
            var bad = png
            bad[offset] ^= 0x5A
            do { _ = try PNGCodec.decode(bad, source: "bad.png") } catch let error as ImageError {
                pngErrors += 1
                #expect(error.description.hasPrefix("bad.png: "))
            }
        }
        #expect(pngErrors == (png.count - 8 + 4) / 5)
        // JPEG has no checksums: a flipped entropy byte may decode to a damaged picture. It must
        // either decode to the right geometry or throw; headers flips must throw.
        for offset in stride(from: 3, to: jpeg.count, by: 3) {
            var bad = jpeg
            bad[offset] ^= 0xFF
            do {
                let image = try JPEGCodec.decode(bad, source: "bad.jpg")
                #expect(image.pixels.count == image.width * image.height * image.channels)
            } catch let error as ImageError {
                #expect(error.description.hasPrefix("bad.jpg: "))
            }
        }
    }

    @Test("a PNG header claiming a huge image is refused before allocating")
    func hugePNGHeader() throws {
        func chunk(_ kind: String, _ body: [UInt8]) -> [UInt8] {
            let typed = Array(kind.utf8) + body
            var crc: UInt32 = 0xFFFF_FFFF
            for byte in typed {
                crc ^= UInt32(byte)
                for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
            }
            return bigEndian(UInt32(body.count)) + typed + bigEndian(~crc)
        }
        func bigEndian(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) } }
        // 100000 x 100000 RGBA: valid IHDR (within libpng's 1e6 limit) but 40 GB of pixels.
        let header = bigEndian(100_000) + bigEndian(100_000) + [8, 6, 0, 0, 0]
        let png = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", header) + chunk("IDAT", []) + chunk("IEND", [])
        let error = try #require(throws: ImageError.self) { try PNGCodec.decode(Data(png), source: "huge.png") }
        #expect(error.kind == .tooLarge, "\(error)")
        #expect(error.description.hasPrefix("huge.png: PNG image too large"))
    }

    @Test("load picks the codec by magic bytes and write by extension, atomically")
    func fileIO() throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("imaging-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let image = patternImage(width: 17, height: 9, channels: 3)
        let png = directory.appendingPathComponent("a.png")
        try image.write(to: png)
        // A PNG stored under a .jpg name still loads as PNG.
        let misnamed = directory.appendingPathComponent("b.jpg")
        try FileManager.default.copyItem(at: png, to: misnamed)
        #expect(try Image.load(contentsOf: misnamed) == image)
        let jpeg = directory.appendingPathComponent("c.JPEG")
        try image.write(to: jpeg)
        #expect(try Image.load(contentsOf: jpeg).width == 17)
        let unknown = try #require(throws: ImageError.self) {
            try image.write(to: directory.appendingPathComponent("d.gif"))
        }
        #expect(unknown.description.contains("d.gif: unknown image extension '.gif'"))
        let missing = try #require(throws: ImageError.self) {
            try Image.load(contentsOf: directory.appendingPathComponent("missing.png"))
        }
        #expect(missing.kind == .io && missing.description.contains("missing.png: cannot read file"))
    }

    @Test("channel conversions follow Pillow's convert")
    func conversions() {
        let rgba = Image(width: 2, height: 1, channels: 4, pixels: [10, 200, 30, 7, 255, 0, 128, 0])
        #expect(rgba.converted(toChannels: 3).pixels == [10, 200, 30, 255, 0, 128])
        // Pillow: L = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16
        #expect(rgba.converted(toChannels: 1).pixels == [124, 91])
        let grey = Image(width: 2, height: 1, channels: 1, pixels: [3, 250])
        #expect(grey.converted(toChannels: 3).pixels == [3, 3, 3, 250, 250, 250])
        #expect(grey.converted(toChannels: 4).pixels == [3, 3, 3, 255, 250, 250, 250, 255])
    }
}
