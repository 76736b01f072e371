import Foundation

/// Content-addressed files: `media/ab/<sha256>.<ext>`, written atomically (temp file + rename), so a crash
/// never leaves a half-written object under its final name.
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
        try data.write(to: tmp)
        if rename(tmp.path, url.path) != 0 {
            let code = errno
            try? FileManager.default.removeItem(at: tmp)
            throw StoreError("cannot move media object into place at \(url.path): \(String(cString: strerror(code)))")
        }
        return hash
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
