import Foundation
import Testing
@testable import Imaging

@Suite("Decoding every fixture variant, and pixel metrics against scikit-image")
struct FixtureDecodeTests {
    @Test("every PNG/JPEG variant decodes to the expected 8-bit pixels")
    func decodeVariants() throws {
        let manifest = try Fixtures.manifest()
        #expect(manifest.decode.count == 16)
        for testCase in manifest.decode {
            let image = try Fixtures.image(testCase.input)
            #expect(image.channels == testCase.channels, "\(testCase.input)")
            // The expected files are plain 8-bit PNGs written by Pillow.
            let expected = try Fixtures.image(testCase.expected)
            #expect(pixelDifference(image, expected) == nil, "\(testCase.input): \(pixelDifference(image, expected) ?? "")")
        }
    }

    @Test("PSNR and SSIM match scikit-image within 1e-6 relative")
    func metrics() throws {
        let manifest = try Fixtures.manifest()
        #expect(manifest.metrics.count == 4)
        for testCase in manifest.metrics {
            let a = try Fixtures.image(testCase.a), b = try Fixtures.image(testCase.b)
            let psnr = try PixelMetrics.psnr(a, b)
            let ssim = try PixelMetrics.ssim(a, b)
            #expect(abs(psnr - testCase.psnr) <= 1e-6 * abs(testCase.psnr), "\(testCase.a): PSNR \(psnr) vs \(testCase.psnr)")
            #expect(abs(ssim - testCase.ssim) <= 1e-6 * abs(testCase.ssim), "\(testCase.a): SSIM \(ssim) vs \(testCase.ssim)")
        }
    }

    @Test("metrics: identical images, size mismatch, too small for SSIM")
    func metricEdges() throws {
        let image = patternImage(width: 12, height: 11, channels: 3)
        #expect(try PixelMetrics.psnr(image, image) == .infinity)
        #expect(abs(try PixelMetrics.ssim(image, image) - 1) < 1e-12)
        let other = patternImage(width: 11, height: 12, channels: 3)
        let mismatch = try #require(throws: ImageError.self) { try PixelMetrics.psnr(image, other) }
        #expect(mismatch.description.contains("12x11x3 and 11x12x3"))
        #expect(throws: ImageError.self) { try PixelMetrics.ssim(image, other) }
        let small = patternImage(width: 10, height: 20, channels: 1)
        #expect(throws: ImageError.self) { try PixelMetrics.ssim(small, small) }
    }

    @Test("decoded fixtures re-encode losslessly as PNG")
    func reencode() throws {
        let manifest = try Fixtures.manifest()
        for testCase in manifest.decode {
            let image = try Fixtures.image(testCase.input)
            #expect(try PNGCodec.decode(try PNGCodec.encode(image)) == image, "\(testCase.input)")
        }
    }
}
