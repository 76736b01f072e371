import Foundation
import Testing
@testable import Imaging

/// The golden fixtures written by `Tools/make_imaging_fixtures.py` (see its docstring).
struct FixtureManifest: Decodable {
    struct DecodeCase: Decodable { let input: String; let expected: String; let channels: Int }
    struct ResizeCase: Decodable { let input: String; let filter: String; let width: Int; let height: Int; let expected: String }
    struct CropCase: Decodable { let convention: String; let width: Int; let height: Int; let expected: String }
    struct CenterCrop: Decodable { let input: String; let cases: [CropCase] }
    struct ClipCase: Decodable {
        let input: String; let shortestEdge: Int; let width: Int; let height: Int
        let crop: String; let pixelValues: String; let mean: [Float]; let std: [Float]; let rescale: Double
    }
    struct MetricCase: Decodable { let a: String; let b: String; let psnr: Double; let ssim: Double }

    let versions: [String: String]
    let decode: [DecodeCase]
    let resize: [ResizeCase]
    let centerCrop: CenterCrop
    let clip: [ClipCase]
    let metrics: [MetricCase]
}

enum Fixtures {
    static func root() throws -> URL {
        try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil), "Fixtures resource missing")
    }

    static func manifest() throws -> FixtureManifest {
        let data = try Data(contentsOf: try root().appendingPathComponent("manifest.json"))
        return try JSONDecoder().decode(FixtureManifest.self, from: data)
    }

    static func url(_ relative: String) throws -> URL { try root().appendingPathComponent(relative) }

    static func image(_ relative: String) throws -> Image { try Image.load(contentsOf: try url(relative)) }

    static func floats(_ relative: String) throws -> [Float] {
        let data = try Data(contentsOf: try url(relative))
        return data.withUnsafeBytes { raw in
            (0..<(raw.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
    }
}

/// Describes how two images differ, for failure messages: geometry, or the number of differing
/// bytes, the largest difference and the first differing pixel.
func pixelDifference(_ actual: Image, _ expected: Image) -> String? {
    guard actual.width == expected.width, actual.height == expected.height, actual.channels == expected.channels else {
        return "geometry \(actual.width)x\(actual.height)x\(actual.channels) != \(expected.width)x\(expected.height)x\(expected.channels)"
    }
    var count = 0, largest = 0, first = -1
    for i in 0..<actual.pixels.count where actual.pixels[i] != expected.pixels[i] {
        count += 1
        largest = max(largest, abs(Int(actual.pixels[i]) - Int(expected.pixels[i])))
        if first < 0 { first = i }
    }
    guard count > 0 else { return nil }
    let pixel = first / actual.channels
    return "\(count) bytes differ (max \(largest)); first at x \(pixel % actual.width), y \(pixel / actual.width), "
        + "channel \(first % actual.channels): \(actual.pixels[first]) vs \(expected.pixels[first])"
}
