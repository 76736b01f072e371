import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Content-addressed files: `media/ab/<sha256>.<ext>`, written durably and atomically (temp file, fsync,
/// rename, fsync of the folder), so a crash never leaves a half-written object under its final name, and
/// read back only after checking the bytes against the hash in the name. Several nodes may write the same
/// object into a shared folder at once: each writes its own temp file, and either rename leaves the
/// same bytes.
public struct MediaStore: Sendable {
    public let root: URL

    public init(root: URL) throws {
        self.root = root
        try FileManager.default.createDirectory(at: root.appendingPathComponent("tmp"), withIntermediateDirectories: true)
    }

    /// Reads an existing folder without creating anything (for checking a store).
    init(unchecked root: URL) {
        self.root = root
    }

    /// Stores `data` and returns its hash. Storing the same bytes twice is a no-op.
    @discardableResult
    public func put(_ data: Data, ext: String) throws -> String {
        let hash = Hashing.sha256Hex(data)
        let url = self.url(hash: hash, ext: ext)
        if FileManager.default.fileExists(atPath: url.path) { return hash }
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let tmp = root.appendingPathComponent("tmp/\(hash).\(UUID().uuidString).part")
        do {
            try Self.writeSynced(data, to: tmp.path)
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            throw error
        }
        if rename(tmp.path, url.path) != 0 {
            let code = errno
            try? FileManager.default.removeItem(at: tmp)
            throw StoreError("cannot move media object into place at \(url.path): \(String(cString: strerror(code)))")
        }
        // The rename is durable once the folder's entry is on disk.
        try Self.sync(folder: url.deletingLastPathComponent().path)
        return hash
    }

    /// The object's bytes, checked against its hash: a mismatch (a damaged or half-copied file) is an error
    /// naming the file and both hashes, never data passed on.
    public func read(hash: String, ext: String) throws -> Data {
        let url = url(hash: hash, ext: ext)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw StoreError("media object \(url.path) is missing")
        }
        let actual = Hashing.sha256Hex(data)
        guard actual == hash else {
            throw StoreError("""
                media object \(url.path) is damaged: its bytes hash to \(actual), not \(hash); \
                `storyloom cache check --repair` deletes it and forgets the results that use it, so the next run recomputes them
                """)
        }
        return data
    }

    /// Writes `data` to a new file at `path` and fsyncs it.
    static func writeSynced(_ data: Data, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StoreError("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        try data.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) in
            var offset = 0
            while offset < buffer.count {
                let n = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw StoreError("cannot write \(path): \(String(cString: strerror(errno)))")
                }
                offset += n
            }
        }
        guard fsync(fd) == 0 else { throw StoreError("cannot flush \(path) to disk: \(String(cString: strerror(errno)))") }
    }

    static func sync(folder path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw StoreError("cannot open folder \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw StoreError("cannot flush folder \(path) to disk: \(String(cString: strerror(errno)))") }
    }

    /// Where the object with this hash lives (whether or not it exists).
    public func url(hash: String, ext: String) -> URL {
        root.appendingPathComponent(String(hash.prefix(2))).appendingPathComponent("\(hash).\(ext)")
    }

    public func contains(hash: String, ext: String) -> Bool {
        FileManager.default.fileExists(atPath: url(hash: hash, ext: ext).path)
    }

    /// Every stored object as (hash, ext, url); used by garbage collection.
    public func allObjects() -> [(hash: String, ext: String, url: URL)] {
        var out: [(String, String, URL)] = []
        let fm = FileManager.default
        guard let shards = try? fm.contentsOfDirectory(atPath: root.path) else { return [] }
        for shard in shards where shard.count == 2 {
            let dir = root.appendingPathComponent(shard)
            for name in (try? fm.contentsOfDirectory(atPath: dir.path)) ?? [] {
                let parts = name.split(separator: ".", maxSplits: 1)
                guard parts.count == 2 else { continue }
                out.append((String(parts[0]), String(parts[1]), dir.appendingPathComponent(name)))
            }
        }
        return out
    }

    /// Removes temp files left by interrupted writes.
    public func removeTemporaries() -> Int {
        let dir = root.appendingPathComponent("tmp")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        for name in names { try? FileManager.default.removeItem(at: dir.appendingPathComponent(name)) }
        return names.count
    }
}
