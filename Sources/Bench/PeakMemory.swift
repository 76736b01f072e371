import Foundation

/// This process's peak resident set (Linux `VmHWM`), resettable so one benchmark row can report
/// the peak of its own phase rather than of everything the process did before.
enum PeakMemory {
    /// Resets the high-water mark to the current RSS (`/proc/self/clear_refs` ← 5, Linux ≥ 4.0).
    /// Returns false where that is not possible; the peak then covers the whole process.
    @discardableResult
    static func reset() -> Bool {
        guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? handle.close() }
        do { try handle.write(contentsOf: Data("5".utf8)) } catch { return false }
        return true
    }

    /// Peak RSS in bytes since start or the last `reset()`, or nil where `/proc` is not available.
    static func peakBytes() -> Double? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            // "VmHWM:\t 1234 kB", or no space at all once the number fills its 8-digit field.
            let kb = line.dropFirst("VmHWM:".count).split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { Double($0) }.first
            return kb.map { $0 * 1024 }
        }
        return nil
    }
}
