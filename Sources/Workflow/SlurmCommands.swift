import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Slurm's client commands (`sbatch`, `squeue`, `sacct`, `scancel`), run as subprocesses with their output
/// captured. Only what the scale-out run needs; every call has a timeout, so a wedged controller shows up as
/// an error instead of a hang.
struct SlurmCommands: Sendable {
    struct Output: Sendable {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The command's full path on PATH, or nil.
    static func locate(_ name: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        for dir in (environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
            let path = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    /// Fails with what to do when Slurm's client commands are not installed.
    static func requireClient() throws {
        for name in ["sbatch", "squeue", "sacct", "scancel"] where locate(name) == nil {
            throw StepError("\(name) not found on PATH: --executor slurm needs Slurm's client commands (Debian: apt-get install slurm-client, configured for your cluster's slurm.conf and munge key), or run with --executor local")
        }
    }

    func run(_ name: String, _ args: [String], timeout: Double = 60) throws -> Output {
        guard let path = Self.locate(name) else { throw StepError("\(name) not found on PATH (Debian: slurm-client)") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = args
        let dir = FileManager.default.temporaryDirectory
        let out = dir.appendingPathComponent("storyloom-\(name)-\(UUID().uuidString).out")
        let err = dir.appendingPathComponent("storyloom-\(name)-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: out); try? FileManager.default.removeItem(at: err) }
        let outHandle = try FileHandle(forWritingTo: out)
        let errHandle = try FileHandle(forWritingTo: err)
        defer { try? outHandle.close(); try? errHandle.close() }
        process.standardOutput = outHandle
        process.standardError = errHandle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Polled rather than waitUntilExit, which spins a core on Linux.
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline {
                kill(process.processIdentifier, SIGKILL)
                while process.isRunning { usleep(1000) }
                throw StepError("\(name) \(args.joined(separator: " ")) did not answer within \(Int(timeout)) s (is slurmctld running?)")
            }
            usleep(1000)
        }
        return Output(status: process.terminationStatus,
                      stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
                      stderr: ((try? String(contentsOf: err, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Submits a batch script; returns the job id (`sbatch --parsable` prints `id` or `id;cluster`).
    func submit(script: URL, arguments: [String]) throws -> String {
        let result = try run("sbatch", ["--parsable"] + arguments + [script.path])
        guard result.status == 0 else {
            throw StepError("sbatch failed (exit \(result.status)): \(result.stderr.isEmpty ? result.stdout : result.stderr)")
        }
        let line = result.stdout.split(whereSeparator: \.isNewline).last.map(String.init) ?? ""
        guard let id = line.split(separator: ";").first.map(String.init), !id.isEmpty, id.allSatisfy(\.isNumber) else {
            throw StepError("sbatch printed no job id: \(result.stdout) \(result.stderr)")
        }
        return id
    }

    /// Live states of an array job's tasks from the controller: index → state; nil once the job has left
    /// the queue (every task finished).
    func queued(job: String) throws -> [Int: String]? {
        let result = try run("squeue", ["-h", "-r", "-j", job, "-o", "%i|%T"])
        if result.status != 0 {
            // A job purged from the controller's memory is "invalid": it has finished.
            if result.stderr.contains("Invalid job id") { return nil }
            throw StepError("squeue failed (exit \(result.status)): \(result.stderr)")
        }
        // Any line means the job is still known to the queue (pending ranges may not parse to an index).
        return result.stdout.contains(where: { !$0.isWhitespace }) ? Self.parseStates(result.stdout) : nil
    }

    /// Final states from accounting, filtered by job id, the run's unique job name and start time, so that a
    /// job id reused after the controller's state was wiped cannot answer for this one.
    func accounted(job: String, name: String, since: Date) throws -> [Int: (state: String, exit: String)] {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss"
        let result = try run("sacct", ["-n", "-P", "-X", "-j", job, "--name", name, "--starttime", formatter.string(from: since.addingTimeInterval(-120)),
                                       "--format", "JobID,State,ExitCode"])
        guard result.status == 0 else { throw StepError("sacct failed (exit \(result.status)): \(result.stderr)") }
        var out: [Int: (String, String)] = [:]
        for line in result.stdout.split(whereSeparator: \.isNewline) {
            let f = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            guard f.count >= 3, let index = Self.arrayIndex(f[0]) else { continue }
            out[index] = (f[1].split(separator: " ").first.map(String.init) ?? f[1], f[2])
        }
        return out
    }

    func cancel(jobs: [String]) {
        guard !jobs.isEmpty else { return }
        _ = try? run("scancel", jobs, timeout: 30)
    }

    /// `123_4|RUNNING` lines → [4: RUNNING]; pending ranges (`123_[5-7]`) are skipped.
    static func parseStates(_ text: String) -> [Int: String] {
        var out: [Int: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            let f = line.split(separator: "|").map(String.init)
            guard f.count >= 2, let index = arrayIndex(f[0]) else { continue }
            out[index] = f[1]
        }
        return out
    }

    /// The task index of `123_4` (nil for `123`, `123_[5-7]`, `123_4.batch`).
    static func arrayIndex(_ id: String) -> Int? {
        guard let underscore = id.firstIndex(of: "_") else { return nil }
        return Int(id[id.index(after: underscore)...])
    }

    /// `--array` indices: sorted, runs compressed (`0-3,6`), with `%K` when throttled.
    static func arraySpec(_ indices: [Int], maxParallel: Int?) -> String {
        var parts: [String] = []
        var i = 0
        let sorted = Array(Set(indices)).sorted()
        while i < sorted.count {
            var j = i
            while j + 1 < sorted.count && sorted[j + 1] == sorted[j] + 1 { j += 1 }
            parts.append(i == j ? "\(sorted[i])" : "\(sorted[i])-\(sorted[j])")
            i = j + 1
        }
        return parts.joined(separator: ",") + (maxParallel.map { "%\($0)" } ?? "")
    }
}
