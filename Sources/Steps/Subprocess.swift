import Foundation
import Workflow
#if canImport(Glibc)
import Glibc
#endif

/// Runs a program with a timeout, capturing its output; used by the `command` step.
enum Subprocess {
    struct Result {
        var status: Int32
        var stdout: Data
        var stderr: Data
    }

    /// - Parameter input: written to the program's standard input (nothing when nil).
    static func run(_ args: [String], environment: [String: String], directory: URL, timeout: Double, input: Data? = nil,
                    isCancelled: @Sendable () -> Bool) throws -> Result {
        let process = Process()
        // A bare name is looked up on PATH, as a shell would.
        if args[0].contains("/") {
            process.executableURL = URL(fileURLWithPath: args[0])
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        }
        process.arguments = args[0].contains("/") ? Array(args.dropFirst()) : args
        process.environment = environment
        process.currentDirectoryURL = directory
        let outFile = directory.appendingPathComponent(".stdout")
        let errFile = directory.appendingPathComponent(".stderr")
        FileManager.default.createFile(atPath: outFile.path, contents: nil)
        FileManager.default.createFile(atPath: errFile.path, contents: nil)
        let outHandle = try FileHandle(forWritingTo: outFile)
        let errHandle = try FileHandle(forWritingTo: errFile)
        defer { try? outHandle.close(); try? errHandle.close() }
        process.standardOutput = outHandle
        process.standardError = errHandle
        if let input {
            let inFile = directory.appendingPathComponent(".stdin")
            try input.write(to: inFile)
            process.standardInput = try FileHandle(forReadingFrom: inFile)
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        do { try process.run() } catch {
            throw StepError("cannot start \(args[0]): \(error.localizedDescription)")
        }
        let deadline = Date().addingTimeInterval(timeout)
        var timedOut = false
        while process.isRunning {
            if Date() > deadline { timedOut = true; break }
            if isCancelled() { break }
            usleep(2000)
        }
        if process.isRunning {
            process.terminate()
            let grace = Date().addingTimeInterval(2)
            while process.isRunning && Date() < grace { usleep(2000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            if timedOut { throw StepError("\(args[0]) timed out after \(timeout) s and was stopped") }
            throw StepError("cancelled")
        }
        let stdout = (try? Data(contentsOf: outFile)) ?? Data()
        let stderr = (try? Data(contentsOf: errFile)) ?? Data()
        if process.terminationReason == .uncaughtSignal {
            throw StepError("\(args[0]) was killed by signal \(process.terminationStatus): \(tail(stderr))")
        }
        if process.terminationStatus == 127 && args[0].contains("/") == false && stderr.count < 200,
           String(decoding: stderr, as: UTF8.self).contains("No such file") {
            throw StepError("program \(args[0]) not found on PATH")
        }
        return Result(status: process.terminationStatus, stdout: stdout, stderr: stderr)
    }

    /// The last lines of a program's stderr, for error messages.
    static func tail(_ data: Data, lines: Int = 5) -> String {
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if text.isEmpty { return "(no error output)" }
        return text.split(separator: "\n").suffix(lines).joined(separator: " | ")
    }
}
