import Foundation
import Imaging

extension CLI {
    /// A workflow of a slow `command` step (batches of 2 entries) and a template after it, over `collection`:
    /// long enough to interrupt or to hold the run lock.
    static let slowWorkflow = """
        name: slow
        collection: collection
        steps:
          - id: work
            use: command
            scope: entry
            batch_size: 2
            params: {run: [sh, -c, 'sleep 0.05; echo "$1"', sh, "{item}:{a}"]}
            inputs: {a: texts}
          - id: after
            use: template
            inputs: {a: work}
            params: {template: "done {a}"}
        """

    /// `count` stories of two 16×16 PNG panels each (ids s1…sN) as a native collection in `folder`.
    func writeImageStories(_ count: Int, in folder: String) throws {
        let dir = root.appendingPathComponent(folder)
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("images"), withIntermediateDirectories: true)
        var lines: [String] = []
        for i in 1...count {
            var panels: [String] = []
            for p in 1...2 {
                var px = [UInt8]()
                for y in 0..<16 { for x in 0..<16 { px += [UInt8((x * 16 + i * 50) % 256), UInt8(y * 16), UInt8(p * 100)] } }
                try Image(width: 16, height: 16, channels: 3, pixels: px).write(to: dir.appendingPathComponent("images/\(i)-\(p).png"))
                panels.append("{\"image\":\"images/\(i)-\(p).png\",\"text\":\"Story \(i) panel \(p).\"}")
            }
            lines.append("{\"id\":\"s\(i)\",\"kind\":\"story\",\"panels\":[\(panels.joined(separator: ","))]}")
        }
        try (lines.joined(separator: "\n") + "\n").write(to: dir.appendingPathComponent("collection.jsonl"), atomically: true, encoding: .utf8)
    }

    func symlink(_ name: String, to target: String) throws {
        let link = root.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: link.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: root.appendingPathComponent(target).path)
    }

    func folder(_ name: String) throws -> URL {
        let url = root.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    func exists(_ name: String) -> Bool {
        FileManager.default.fileExists(atPath: root.appendingPathComponent(name).path)
    }

    /// The repository's root (for the committed examples and models).
    static var repository: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }
}
