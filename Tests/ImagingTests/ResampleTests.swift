import Foundation
import Testing
@testable import Imaging

@Suite("Pillow-exact resampling, crops and CLIP preprocessing")
struct ResampleTests {
    /// Every case must be byte-identical to Pillow 13's `Image.resize` (no tolerance).
    @Test("resize matches Pillow byte for byte: 3 sources x 8 sizes x 4 filters")
    func resizeMatchesPillow() throws {
        let manifest = try Fixtures.manifest()
        #expect(manifest.resize.count == 96)
        var exact = 0
        for testCase in manifest.resize {
            let filter = try #require(ResampleFilter(rawValue: testCase.filter))
            let input = try Fixtures.image(testCase.input)
            let expected = try Fixtures.image(testCase.expected)
            let actual = input.resized(width: testCase.width, height: testCase.height, filter: filter)
            if let difference = pixelDifference(actual, expected) {
                Issue.record("\(testCase.expected): \(difference)")
            } else {
                exact += 1
            }
        }
        #expect(exact == manifest.resize.count)
    }

    @Test("premultiplication round trips as Pillow's RGBa conversions do")
    func premultiply() {
        let image = Image(width: 3, height: 1, channels: 4, pixels: [200, 100, 50, 128, 9, 8, 7, 0, 1, 2, 3, 255])
        let pre = image.premultiplied()
        // MULDIV255(200, 128) = 100, (100,128) = 50, (50,128) = 25; alpha 0 -> 0; alpha 255 -> same.
        #expect(pre.pixels == [100, 50, 25, 128, 0, 0, 0, 0, 1, 2, 3, 255])
        // 255 * 100 / 128 = 199 (truncated), 99, 49.
        #expect(pre.unpremultiplied().pixels == [199, 99, 49, 128, 0, 0, 0, 0, 1, 2, 3, 255])
    }

    @Test("edge cases: same size is identity, zero size is empty, tiny sources stretch")
    func edgeCases() {
        let image = patternImage(width: 7, height: 5, channels: 3)
        for filter in ResampleFilter.allCases {
            #expect(image.resized(width: 7, height: 5, filter: filter) == image)
            let empty = image.resized(width: 0, height: 4, filter: filter)
            #expect(empty.width == 0 && empty.height == 4 && empty.pixels.isEmpty)
            // A 1x1 source stretched: every output pixel equals the one input pixel.
            let dot = Image(width: 1, height: 1, channels: 3, pixels: [10, 130, 250])
            let big = dot.resized(width: 9, height: 4, filter: filter)
            let expected: [UInt8] = Array(repeating: [10, 130, 250], count: 9 * 4).flatMap { $0 }
            #expect(big.pixels == expected)
        }
    }

    @Test("center crops match transformers' center_crop and torchvision's arithmetic")
    func centerCrops() throws {
        let manifest = try Fixtures.manifest()
        let input = try Fixtures.image(manifest.centerCrop.input)
        #expect(manifest.centerCrop.cases.count == 12)
        for testCase in manifest.centerCrop.cases {
            let convention = try #require(CenterCropConvention(rawValue: testCase.convention))
            let actual = input.centerCropped(width: testCase.width, height: testCase.height, convention: convention)
            let expected = try Fixtures.image(testCase.expected)
            #expect(pixelDifference(actual, expected) == nil, "\(testCase.expected): \(pixelDifference(actual, expected) ?? "")")
        }
        // The conventions differ exactly when an offset is x.5 with an odd floor.
        #expect(CenterCropConvention.torchvision.origin(size: 37, crop: 34) == 2)
        #expect(CenterCropConvention.transformers.origin(size: 37, crop: 34) == 1)
        #expect(CenterCropConvention.torchvision.origin(size: 37, crop: 40) == -1)
        #expect(CenterCropConvention.transformers.origin(size: 37, crop: 40) == -2)
    }

    @Test("cropped fills outside regions with zeros, like Pillow's crop")
    func cropOutside() {
        let image = Image(width: 2, height: 2, channels: 1, pixels: [1, 2, 3, 4])
        #expect(image.cropped(x: -1, y: 1, width: 3, height: 2).pixels == [0, 3, 4, 0, 0, 0])
        #expect(image.cropped(x: 5, y: 5, width: 2, height: 1).pixels == [0, 0])
        #expect(image.cropped(x: 0, y: 0, width: -3, height: 2).width == 0)
    }

    @Test("shortest-side resize, centre crop and normalisation match CLIPImageProcessorPil")
    func clipPreprocessing() throws {
        let manifest = try Fixtures.manifest()
        #expect(manifest.clip.count == 4)
        for testCase in manifest.clip {
            let input = try Fixtures.image(testCase.input).converted(toChannels: 3)
            let resized = input.resizedShortestSide(to: testCase.shortestEdge, filter: .bicubic)
            #expect(min(resized.width, resized.height) == testCase.shortestEdge)
            let crop = resized.centerCropped(width: testCase.width, height: testCase.height, convention: .transformers)
            let expectedCrop = try Fixtures.image(testCase.crop)
            #expect(pixelDifference(crop, expectedCrop) == nil, "\(testCase.crop): \(pixelDifference(crop, expectedCrop) ?? "")")
            let values = crop.normalizedCHW(mean: testCase.mean, std: testCase.std, rescale: Float(testCase.rescale))
            let expected = try Fixtures.floats(testCase.pixelValues)
            try #require(values.count == expected.count)
            // transformers rescales in float64 then normalises in float32; we stay in float32.
            let worst = zip(values, expected).map { abs($0 - $1) }.max() ?? 0
            #expect(worst < 1e-5, "\(testCase.pixelValues): max |diff| \(worst)")
        }
    }

    @Test("normalizedCHW is channel-planar")
    func planar() {
        let image = Image(width: 2, height: 1, channels: 3, pixels: [0, 51, 102, 255, 204, 153])
        let values = image.normalizedCHW(mean: [0, 0.2, 0.4], std: [1, 0.5, 0.25], rescale: 1 / 255)
        let expected: [Float] = [0, 1, 0.0, 1.2, 0, 0.8]
        #expect(zip(values, expected).allSatisfy { abs($0 - $1) < 1e-6 }, "\(values)")
    }
}
