import Foundation
import Imaging
@testable import StoryWorld

/// Helpers shared by the StoryWorld tests.
enum Support {
    /// RGB of pixel (x, y).
    static func pixel(_ image: Image, _ x: Int, _ y: Int) -> (Int, Int, Int) {
        let i = (y * image.width + x) * image.channels
        return (Int(image.pixels[i]), Int(image.pixels[i + 1]), Int(image.pixels[i + 2]))
    }

    /// Largest per-channel difference.
    static func diff(_ a: (Int, Int, Int), _ b: (Int, Int, Int)) -> Int {
        max(abs(a.0 - b.0), abs(a.1 - b.1), abs(a.2 - b.2))
    }

    static func rgb(_ c: ObjectColour) -> (Int, Int, Int) { (Int(c.rgb.r), Int(c.rgb.g), Int(c.rgb.b)) }

    /// A temporary folder removed by the caller.
    static func temporaryFolder(_ name: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("storyworld-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func median(_ values: [Int]) -> Double {
        let s = values.sorted()
        guard !s.isEmpty else { return 0 }
        return s.count % 2 == 1 ? Double(s[s.count / 2]) : Double(s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}
