import Foundation
import Testing

/// Runs the built `storyloom` executable in a scratch folder.
struct CLI {
    static var binary: URL {
        if let path = ProcessInfo.processInfo.environment["STORYLOOM_BIN"] { return URL(fileURLWithPath: path) }
        // The test bundle sits in the build folder next to the executable.
        var dir = Bundle.main.bundleURL
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("storyloom")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/storyloom")
    }

    let root: URL

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("storyloom-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    func write(_ text: String, to name: String) throws {
        let url = root.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
    }

    /// Text-only stories s1…sN with three panels.
    func writeStories(_ n: Int) throws {
        var lines: [String] = []
        for i in 1...n {
            let panels = (1...3).map { "{\"text\":\"Story \(i) panel \($0).\"}" }.joined(separator: ",")
            lines.append("{\"id\":\"s\(i)\",\"kind\":\"story\",\"panels\":[\(panels)]}")
        }
        try write(lines.joined(separator: "\n") + "\n", to: "collection/collection.jsonl")
    }

    /// Starts the executable in `directory` (default: the scratch folder), with `environment` added.
    func start(_ args: [String], in directory: URL? = nil, environment: [String: String] = [:]) throws -> (Process, URL, URL) {
        let p = Process()
        p.executableURL = Self.binary
        p.arguments = args
        p.currentDirectoryURL = directory ?? root
        if !environment.isEmpty {
            p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        let out = root.appendingPathComponent("out-\(UUID().uuidString)")
        let err = root.appendingPathComponent("err-\(UUID().uuidString)")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        p.standardOutput = try FileHandle(forWritingTo: out)
        p.standardError = try FileHandle(forWritingTo: err)
        try p.run()
        return (p, out, err)
    }

    @discardableResult
    func run(_ args: [String], in directory: URL? = nil, environment: [String: String] = [:]) throws -> (status: Int32, stdout: String, stderr: String) {
        let (p, out, err) = try start(args, in: directory, environment: environment)
        p.waitUntilExit()
        return (p.terminationStatus, try String(contentsOf: out, encoding: .utf8), try String(contentsOf: err, encoding: .utf8))
    }
}
