import Foundation

/// The PyTorch side of a benchmark: `Tools/<script>` run by `$STORYLOOM_PYTHON` or `.venv/bin/python` (from
/// the repository root), printing JSON on stdout. Every benchmark runs it the same way, with the environment
/// the project measures under: `OMP_WAIT_POLICY=PASSIVE` (PyTorch on 2 cores), offline Hugging Face, and the
/// caller's OPENBLAS_* settings left as they are, so both sides see the same.
enum PyTorchReference {
    /// The interpreter to use, or nil when it or the script is missing (the benchmark then says so and prints
    /// Storyloom's side alone).
    static func python(for script: String) -> URL? {
        let fm = FileManager.default
        let cwd = URL(fileURLWithPath: fm.currentDirectoryPath)
        guard fm.fileExists(atPath: cwd.appendingPathComponent("Tools/\(script)").path) else { return nil }
        if let p = ProcessInfo.processInfo.environment["STORYLOOM_PYTHON"], fm.isExecutableFile(atPath: p) {
            return URL(fileURLWithPath: p)
        }
        let venv = cwd.appendingPathComponent(".venv/bin/python")
        return fm.isExecutableFile(atPath: venv.path) ? venv : nil
    }

    /// Runs the script and parses its JSON output; `scratch` receives its stderr (kept for the error message).
    static func run(_ script: String, python: URL, arguments: [String], scratch: URL) throws -> [String: Any] {
        let process = Process()
        process.executableURL = python
        process.arguments = [URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
            .appendingPathComponent("Tools/\(script)").path] + arguments
        var env = ProcessInfo.processInfo.environment
        env["OMP_WAIT_POLICY"] = "PASSIVE"
        env["TRANSFORMERS_VERBOSITY"] = "error"
        env["HF_HUB_OFFLINE"] = "1"
        process.environment = env
        // stderr goes to a file so a chatty reference cannot block on a full pipe while stdout is read.
        let errURL = scratch.appendingPathComponent("reference-stderr.txt")
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let errHandle = try FileHandle(forWritingTo: errURL)
        defer { try? errHandle.close() }
        let out = Pipe()
        process.standardOutput = out
        process.standardError = errHandle
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
              let json = try? JSONSerialization.jsonObject(with: outData) as? [String: Any] else {
            let tail = String(decoding: ((try? Data(contentsOf: errURL)) ?? Data()).suffix(2000), as: UTF8.self)
            throw BenchError("\(script) failed (exit \(process.terminationStatus)): \(tail)")
        }
        return json
    }
}

/// A benchmark that could not run.
public struct BenchError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
