import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A flag set once when the run should stop (Ctrl-C); polled by the executor and by runners.
public final class CancellationFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelled = false
    public init() {}
    public var isCancelled: Bool { lock.withLock { cancelled } }
    public func cancel() { lock.withLock { cancelled = true } }
}

/// Progress of a run on the terminal: a bar per step with items/s and ETA on a TTY, plain lines otherwise.
public final class ProgressReporter: @unchecked Sendable {
    private let lock = NSLock()
    private let isTTY: Bool
    private let quiet: Bool
    private var step = ""
    private var total = 0
    private var done = 0
    private var failed = 0
    private var started = Date()
    private var lastDraw = Date.distantPast
    private var lastPlainPercent = -1
    /// Sub-steps within the items in flight (e.g. denoising steps), as (done, total).
    private var inner: (Int, Int)?
    /// The run's steps with the items each will run, to say where the run is and what follows.
    private var runSteps: [(id: String, toRun: Int)] = []

    public init(quiet: Bool = false, forceTTY: Bool? = nil) {
        self.quiet = quiet
        self.isTTY = forceTTY ?? (isatty(2) == 1)
    }

    /// Seconds per item of each step in the workflow's previous run, for the overall ETA.
    private var priorSecondsPerItem: [String: Double] = [:]

    /// The steps of the run and how many items each will run (before the first step begins), with the
    /// seconds per item each step took in the previous run where known.
    public func begin(run steps: [(id: String, toRun: Int)], secondsPerItem: [String: Double] = [:]) {
        lock.withLock {
            runSteps = steps
            priorSecondsPerItem = secondsPerItem
        }
    }

    /// Time left in the later steps at their previous pace; nil when a step that will run has no earlier figure.
    private var laterSeconds: Double? {
        guard let i = runSteps.firstIndex(where: { $0.id == step }) else { return nil }
        var total = 0.0
        for s in runSteps[(i + 1)...] where s.toRun > 0 {
            guard let per = priorSecondsPerItem[s.id] else { return nil }
            total += per * Double(s.toRun)
        }
        return total
    }

    /// `2/5`: this step's place in the run; and the items the later steps will run.
    private var position: (label: String, later: Int, laterSteps: Int) {
        guard let i = runSteps.firstIndex(where: { $0.id == step }) else { return ("", 0, 0) }
        let later = runSteps[(i + 1)...].filter { $0.toRun > 0 }
        return ("\(i + 1)/\(runSteps.count) ", later.reduce(0) { $0 + $1.toRun }, later.count)
    }

    public func begin(step: String, total: Int, cached: Int) {
        lock.withLock {
            self.step = step
            self.total = total
            done = 0
            failed = 0
            inner = nil
            started = Date()
            lastPlainPercent = -1
            if quiet { return }
            let at = position.label
            if total == 0 {
                write("[\(at)\(step)] nothing to run (\(cached) cached)\n")
            } else if !isTTY {
                write("[\(at)\(step)] running \(total) item\(total == 1 ? "" : "s") (\(cached) cached)\n")
            }
        }
    }

    public func advance(by n: Int, failed f: Int) {
        lock.withLock {
            done += n
            failed += f
            inner = nil
            draw(force: done == total)
        }
    }

    public func inner(done d: Int, total t: Int) {
        lock.withLock {
            inner = (d, t)
            draw(force: false)
        }
    }

    public func end() {
        lock.withLock {
            guard !quiet, total > 0 else { return }
            let secs = Date().timeIntervalSince(started)
            if isTTY { write("\r\u{1B}[2K") }
            write("[\(position.label)\(step)] \(done)/\(total) done\(failed > 0 ? ", \(failed) failed" : "") in \(String(format: "%.2f", secs)) s (\(String(format: "%.1f", Double(done) / max(secs, 1e-9))) items/s)\n")
        }
    }

    /// Prints a message without breaking the bar.
    public func note(_ message: String) {
        lock.withLock {
            guard !quiet else { return }
            if isTTY { write("\r\u{1B}[2K") }
            write(message + "\n")
            draw(force: true)
        }
    }

    private func draw(force: Bool) {
        guard !quiet, total > 0 else { return }
        let now = Date()
        let elapsed = now.timeIntervalSince(started)
        let rate = Double(done) / max(elapsed, 1e-9)
        if isTTY {
            guard force || now.timeIntervalSince(lastDraw) > 0.1 else { return }
            lastDraw = now
            let width = 24
            let fraction = Double(done) / Double(total)
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            let (at, later, laterSteps) = position
            var line = "[\(at)\(step)] \(bar) \(done)/\(total)  \(String(format: "%.1f", rate)) items/s  ETA \(eta(rate: rate, elapsed: elapsed))"
            if failed > 0 { line += "  \(failed) failed" }
            if let (d, t) = inner { line += "  (\(d)/\(t))" }
            if later > 0 {
                line += "  · then \(later) item\(later == 1 ? "" : "s") in \(laterSteps) step\(laterSteps == 1 ? "" : "s")"
                if let rest = laterSeconds, done > 0, rate > 0 {
                    line += ", run ETA \(Self.duration(Double(total - done) / rate + rest))"
                }
            }
            write("\r\u{1B}[2K" + line)
        } else {
            let percent = total > 0 ? done * 10 / total : 10
            guard percent != lastPlainPercent, done < total else { return }
            lastPlainPercent = percent
            if done > 0 {
                let run = laterSeconds.map { rest in rate > 0 ? ", run ETA \(Self.duration(Double(total - done) / rate + rest))" : "" } ?? ""
                write("[\(position.label)\(step)] \(done)/\(total) (\(String(format: "%.1f", rate)) items/s, ETA \(eta(rate: rate, elapsed: elapsed))\(run))\n")
            }
        }
    }

    /// Time left in this step: from the item rate, or before the first item finishes from the sub-steps of
    /// the items in flight (denoising steps), else unknown.
    private func eta(rate: Double, elapsed: Double) -> String {
        if done > 0, rate > 0 { return Self.duration(Double(total - done) / rate) }
        if let (d, t) = inner, d > 0, t > d {
            // The batch in flight is d/t through after `elapsed`: only its own remaining time is known yet.
            return Self.duration(elapsed * Double(t - d) / Double(d)) + " for the first batch"
        }
        return "?"
    }

    static func duration(_ s: Double) -> String {
        if s < 60 { return "\(Int(s.rounded()))s" }
        if s < 3600 { return "\(Int(s) / 60)m\(Int(s) % 60)s" }
        return "\(Int(s) / 3600)h\(Int(s) % 3600 / 60)m"
    }

    private func write(_ s: String) {
        FileHandle.standardError.write(Data(s.utf8))
    }
}
