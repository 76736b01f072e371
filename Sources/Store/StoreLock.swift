import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An exclusive advisory lock on the store (flock on `store/run.lock`), held by a running `run`.
/// The kernel drops it when the process dies, so a crashed run never leaves a stale lock.
public final class StoreLock: RunLock, @unchecked Sendable {
    private let fd: Int32
    public let path: String

    /// Takes the lock. With `wait`, blocks until it is free; otherwise fails at once with a message
    /// naming the process that holds it.
    public init(storeRoot: URL, wait: Bool) throws {
        path = storeRoot.appendingPathComponent("run.lock").path
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StoreError("cannot open lock file \(path): \(String(cString: strerror(errno)))") }
        if flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) != 0 {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            close(fd)
            throw StoreError("another storyloom run (\(holder.isEmpty ? "unknown process" : holder)) is using the store at \(storeRoot.path); wait for it to finish or pass --wait")
        }
        let note = "pid \(getpid())"
        _ = ftruncate(fd, 0)
        _ = note.withCString { pwrite(fd, $0, strlen($0), 0) }
    }

    deinit {
        _ = ftruncate(fd, 0)
        flock(fd, LOCK_UN)
        close(fd)
    }
}
