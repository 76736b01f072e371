import Crypto
import Foundation

/// SHA-256 helpers: every fingerprint and media name in Storyloom is a lowercase hex SHA-256.
public enum Hashing {
    public static func sha256Hex(_ data: some DataProtocol) -> String {
        hex(SHA256.hash(data: data))
    }

    public static func sha256Hex(_ string: String) -> String {
        var s = string
        return s.withUTF8 { hex(SHA256.hash(data: UnsafeRawBufferPointer($0))) }
    }

    /// Hashes a file's bytes without loading it whole.
    public static func sha256Hex(fileAt url: URL) throws -> String {
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            hasher.update(data: chunk)
        }
        return hex(hasher.finalize())
    }

    /// A model's digest: the SHA-256 of each file's name then its bytes (memory-mapped), in order; files
    /// that do not exist are skipped, and `extra` (e.g. the digests of parts loaded from elsewhere) ends it.
    public static func sha256Hex(files: [(name: String, url: URL)], extra: String = "") -> String {
        var hasher = SHA256()
        for (name, url) in files {
            guard let data = try? Data(contentsOf: url, options: .alwaysMapped) else { continue }
            hasher.update(data: Data(name.utf8))
            hasher.update(data: data)
        }
        hasher.update(data: Data(extra.utf8))
        return hex(hasher.finalize())
    }

    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    static func hex(_ digest: SHA256.Digest) -> String {
        var out = [UInt8](repeating: 0, count: 64)
        var i = 0
        for byte in digest {
            out[i] = digits[Int(byte >> 4)]
            out[i + 1] = digits[Int(byte & 0xF)]
            i += 2
        }
        return String(decoding: out, as: UTF8.self)
    }
}
