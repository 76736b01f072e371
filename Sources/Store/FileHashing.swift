import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Content hashes of files, recomputed only when a file's size or mtime changed (like git's index); the
/// stores keep the known (size, mtime, hash) of each path.
enum FileHashing {
    static let racyWindow: Double = 2

    /// Hashes of `urls` by path, reusing `known` entries whose size and mtime still match; `updates` are
    /// the entries to remember. As git does for "racily clean" files, a hash is not remembered while its
    /// file's mtime is within `racyWindow` seconds of now: filesystems stamp mtimes with a coarse clock, so
    /// a same-size rewrite moments later could keep the same mtime and be taken for unchanged.
    static func hashes(for urls: [URL], known: [String: (Int64, Double, String)]) throws
        -> (hashes: [String: String], updates: [(path: String, size: Int64, mtime: Double, hash: String)]) {
        var out: [String: String] = [:]
        var updates: [(path: String, size: Int64, mtime: Double, hash: String)] = []
        let now = Date().timeIntervalSince1970
        for url in urls {
            let path = url.path
            var st = stat()
            guard stat(path, &st) == 0 else { continue }
            let size = Int64(st.st_size)
            let mtime = Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) * 1e-9
            if let k = known[path], k.0 == size, k.1 == mtime {
                out[path] = k.2
            } else {
                let hash = try Hashing.sha256Hex(fileAt: url)
                out[path] = hash
                if mtime < now - racyWindow { updates.append((path, size, mtime, hash)) }
            }
        }
        return (out, updates)
    }
}
